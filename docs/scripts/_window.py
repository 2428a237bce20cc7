"""What every screenshot script needs: where images go, and a settled window.

The scripts run as ``xvfb-run -a .venv/bin/python docs/scripts/<script>.py``; Python
puts this folder on ``sys.path``, so they import this module as ``_window``.
"""

from __future__ import annotations

from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1] / "images"


def settle(viewer=None) -> None:
    """Let Qt draw, and close napari's notification toasts so they do not cover the data."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for _ in range(10):
        QApplication.processEvents()
    for top in QApplication.topLevelWidgets():
        for toast in [top, *top.findChildren(NapariQtNotification)]:
            if isinstance(toast, NapariQtNotification):
                toast.close()
    for _ in range(10):
        QApplication.processEvents()
