#!/usr/bin/env bash
# Sets up the machine if needed (scripts/setup.sh), then runs the whole test
# suite in a virtual X server, since napari's canvas needs a real display.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k coco`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_API="${QT_API:-pyqt5}"
exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
