"""A dock listing datasets (name -> path); choosing one shows it in the viewer."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class DatasetBrowser(QWidget):
    """Pick a dataset from a folder of datasets; used by ``napari-nsclc demo``."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.datasets: dict[str, Path] = {}
        self.list = QListWidget()
        self.list.currentTextChanged.connect(self.open_dataset)
        choose = QPushButton("Choose a folder of datasets…")
        choose.clicked.connect(self._choose_folder)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Click a dataset to show it:"))
        layout.addWidget(self.list)
        layout.addWidget(choose)

    def set_datasets(self, datasets: dict[str, Path]) -> None:
        """Show ``{name: path}`` in the list."""
        self.datasets = {name: Path(path) for name, path in datasets.items()}
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(list(self.datasets))
        self.list.blockSignals(False)

    def open_dataset(self, name: str) -> None:
        """Replace the viewer's layers with dataset ``name``."""
        if name not in self.datasets:
            return
        items = self.list.findItems(name, Qt.MatchFlag.MatchExactly)
        if items and self.list.currentItem() is not items[0]:
            self.list.blockSignals(True)
            self.list.setCurrentItem(items[0])
            self.list.blockSignals(False)
        self.viewer.layers.clear()
        self.viewer.open(str(self.datasets[name]), plugin="napari-nsclc")
        self.viewer.reset_view()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of datasets")
        if folder:
            self.set_datasets({p.name: p for p in sorted(Path(folder).iterdir()) if not p.name.startswith(".")})
