#!/usr/bin/env bash
# Sets up the machine if needed (scripts/setup.sh), starts a throwaway PostgreSQL
# for the review-store tests (scripts/postgres.sh; stopped on exit), then runs
# the whole test suite in a virtual X server, since napari's canvas needs a real
# display. With no arguments, the tests that open a napari window (marker "gui")
# then run again on PyQt6, so that switching the Qt binding stays a one-line change.
# Both runs use two pytest-xdist workers (the machine's two cores); a test file stays
# on one worker (--dist loadfile), so its module fixtures are built once.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k coco` (one run, one process, on $QT_API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
eval "$(bash scripts/postgres.sh start)"
trap 'bash scripts/postgres.sh stop "$NSCLC_PG_DIR"' EXIT
run() { xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"; }
if [ "$#" -gt 0 ]; then
  QT_API="${QT_API:-pyqt5}" run "$@"
  exit
fi
QT_API=pyqt5 run -n 2 --dist loadfile
echo "test.sh: the napari window tests again, on PyQt6"
QT_API=pyqt6 run -n 2 --dist loadfile -m gui
