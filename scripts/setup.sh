#!/usr/bin/env bash
# Sets up everything napari-nsclc needs on a fresh Debian/Ubuntu machine:
# the X/OpenGL libraries napari's canvas needs, Xvfb for headless runs,
# PostgreSQL for the review-store tests, and a virtual environment in .venv with the plugin and its test tools.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
  libxcb-xkb1 libx11-xcb1
  postgresql  # the review store's PostgreSQL tests (scripts/postgres.sh runs a throwaway server)
  chromium fonts-dejavu-core  # the HTML review report is checked in headless Chromium (and its text needs a font)
)

missing_apt_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

if command -v apt-get >/dev/null 2>&1; then
  mapfile -t missing < <(missing_apt_packages)
  if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then missing+=(python3-venv); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: apt-get not found; install Xvfb and the OpenGL/xcb libraries with your package manager" >&2
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[pyqt5,pyqt6,testing]"
echo "setup: done (.venv/bin/napari-nsclc is ready)"
