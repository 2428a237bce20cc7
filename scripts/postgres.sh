#!/usr/bin/env bash
# A throwaway PostgreSQL server for the review-store tests (scripts/test.sh starts and stops it).
#
#   eval "$(bash scripts/postgres.sh start)"   # prints the exports: NSCLC_TEST_POSTGRES_URL, NSCLC_PG_DIR
#   bash scripts/postgres.sh stop "$NSCLC_PG_DIR"
#
# Its own cluster in a temporary folder, listening only on a Unix socket in that folder (no TCP port).
# PostgreSQL refuses to run as root, so as root the server runs as Debian's "postgres" user.
set -euo pipefail

bin_dir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$found" ] || { echo "postgres.sh: PostgreSQL is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
  echo "$found"
}

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    BIN="$(bin_dir)"
    DIR="$(mktemp -d /tmp/nsclc-postgres-XXXXXX)"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    as_server_user "$BIN/initdb" -D "$DIR/data" -A trust -U nsclc --no-sync >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    as_server_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -o "-k $DIR -c listen_addresses='' -c fsync=off" start \
      >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
    as_server_user "$BIN/createdb" -h "$DIR" -U nsclc review_test
    echo "export NSCLC_PG_DIR='$DIR'"
    echo "export NSCLC_TEST_POSTGRES_URL='postgresql://nsclc@/review_test?host=$DIR'"
    ;;
  stop)
    DIR="${2:?postgres.sh stop DIR}"
    as_server_user "$(bin_dir)/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: postgres.sh start | stop DIR" >&2
    exit 2
    ;;
esac
