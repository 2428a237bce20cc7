"""Editing a label pyramid one region at a time: the model the napari dock binds to.

napari paints only into an array in memory. So a region of the pyramid is
opened at full resolution (:meth:`RegionEditor.open`), painted as an ordinary
Labels layer, then committed (:meth:`RegionEditor.commit`, one crash-safe
:meth:`~napari_nsclc.label_pyramid.LabelPyramid.commit`) or discarded. A
region is at most ``max_side`` pixels a side (4096 by default: 16 MiB of
labels), so a laptop can correct a 100k² slide. The editor keeps what the
region held when it was opened, so a commit over another window's meanwhile
is refused rather than losing their work.

Painting that is not committed yet is autosaved (:meth:`RegionEditor.autosave`,
which the dock calls every ``NSCLC_AUTOSAVE_SECONDS``, as the correction
workflow autosaves a case) to ``<pyramid>/.nsclc-autosave/<annotator>.npz``;
after a crash, :meth:`RegionEditor.unfinished` finds it and
:meth:`RegionEditor.restore` opens the region again as it was painted. A
commit or a discard removes it. No napari or Qt import.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from .._atomic import atomic_write_bytes
from ..model import NsclcFormatError
from .pyramid import MAX_REGION_SIDE, CommitResult, LabelPyramid, utc_now

__all__ = ["AUTOSAVE", "RegionEdit", "RegionEditor", "creation_sources", "pyramid_path_for", "region_of_box",
           "visible_region"]  # fmt: skip

#: The folder, inside a pyramid, of regions painted but not committed.
AUTOSAVE = ".nsclc-autosave"


@dataclass
class RegionEdit:
    """A level-0 region open for painting.

    Attributes
    ----------
    y0, x0, y1, x1 : int
        The region, level-0 pixels (``y1``, ``x1`` excluded).
    original : ndarray, shape (y1 - y0, x1 - x0)
        What the pyramid held there when it was opened.
    labels : ndarray, shape (y1 - y0, x1 - x0)
        The labels being painted: a copy of ``original`` to change in place.
    """

    y0: int
    x0: int
    y1: int
    x1: int
    original: np.ndarray
    labels: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)

    def changed_pixels(self) -> int:
        """How many pixels differ from what was opened."""
        return int(np.count_nonzero(self.labels != self.original))


def visible_region(center: tuple[float, float], extent: tuple[float, float], pixel_size: tuple[float, float],
                   shape: tuple[int, int]) -> tuple[int, int, int, int]:  # fmt: skip
    """The level-0 pixels a view shows: ``(y0, x0, y1, x1)``, clipped to the slide.

    Parameters
    ----------
    center : (float, float)
        The view's centre ``(y, x)`` in world units (the layer's scale: µm for slides).
    extent : (float, float)
        The view's height and width in world units.
    pixel_size : (float, float)
        Level-0 pixel size ``(dy, dx)`` in the same units.
    shape : (int, int)
        Level-0 rows and columns.
    """
    (cy, cx), (height, width), (dy, dx) = center, extent, pixel_size
    y0, y1 = np.floor((cy - height / 2) / dy + 0.5), np.ceil((cy + height / 2) / dy + 0.5)
    x0, x1 = np.floor((cx - width / 2) / dx + 0.5), np.ceil((cx + width / 2) / dx + 0.5)
    y0, x0 = max(0, int(y0)), max(0, int(x0))
    return y0, x0, min(shape[0], int(y1)), min(shape[1], int(x1))


def region_of_box(box: tuple[float, float, float, float], pixel_size: tuple[float, float],
                  shape: tuple[int, int]) -> tuple[int, int, int, int]:  # fmt: skip
    """The level-0 pixels whose centres a world box covers: ``(y0, x0, y1, x1)``, clipped to the slide.

    Parameters
    ----------
    box : (float, float, float, float)
        ``(top, left, bottom, right)`` in world units, relative to the pyramid's origin.
    pixel_size : (float, float)
        Level-0 pixel size ``(dy, dx)`` in world units.
    shape : (int, int)
        Level-0 rows and columns.
    """
    top, left, bottom, right = box
    center = ((top + bottom) / 2, (left + right) / 2)
    return visible_region(center, (bottom - top, right - left), pixel_size, shape)


def pyramid_path_for(slide: str | Path) -> Path:
    """Where a slide's label pyramid lives: ``<slide stem>_labels.zarr`` beside it."""
    from ..formats.slide import _stem

    slide = Path(slide)
    return slide.with_name(f"{_stem(slide)}_labels.zarr")


def creation_sources(slide: str | Path) -> dict[str, Path | None]:
    """What a slide's label pyramid can be created from: ``"empty"``, and each same-named file beside it.

    Returns ``{"empty": None, "mask": <slide>_mask.tif, "xml": <slide>.xml, "geojson": <slide>.geojson}``,
    with only the files that exist (CAMELYON mask TIFF, ASAP XML, QuPath GeoJSON).
    """
    from ..formats.slide import companion_paths

    return {"empty": None, **companion_paths(Path(slide))}


class RegionEditor:
    """Open, commit or discard one region of a pyramid at a time.

    Parameters
    ----------
    pyramid : LabelPyramid
    max_side : int
        The largest region side opened (pixels).

    Signals
    -------
    opened(RegionEdit), committed(CommitResult), discarded(), autosaved(Path)
    """

    opened = Signal(object)
    committed = Signal(object)
    discarded = Signal()
    autosaved = Signal(object)

    def __init__(self, pyramid: LabelPyramid, *, max_side: int = MAX_REGION_SIDE):
        self.pyramid = pyramid
        self.max_side = int(max_side)
        self.current: RegionEdit | None = None
        self._autosaved_crc: int | None = None  # of the labels last autosaved, so an unchanged region is not rewritten
        self._autosaved_to: Path | None = None  # where, in case the annotator was named only since

    def open(self, y0: int, x0: int, y1: int, x1: int) -> RegionEdit:
        """Open ``[y0:y1, x0:x1]`` of level 0 for painting (clipped to the slide).

        Raises
        ------
        NsclcFormatError
            When a region is already open (commit or discard it first), when
            the region lies outside the slide, or when it is larger than
            ``max_side`` a side (zoom in, or draw a smaller rectangle).
        """
        if self.current is not None:
            raise NsclcFormatError(self.pyramid.path, "a region is already open: commit or discard it first")
        rows, columns = self.pyramid.shape
        y0, x0, y1, x1 = max(0, int(y0)), max(0, int(x0)), min(rows, int(y1)), min(columns, int(x1))
        if y1 <= y0 or x1 <= x0:
            raise NsclcFormatError(self.pyramid.path, f"the region lies outside the slide ({columns}x{rows} px)")
        if max(y1 - y0, x1 - x0) > self.max_side:
            raise NsclcFormatError(self.pyramid.path, f"a {x1 - x0}x{y1 - y0} px region is larger than the "
                                                      f"{self.max_side}x{self.max_side} px the editor opens at full "
                                                      "resolution: zoom in, or draw a smaller rectangle")  # fmt: skip
        original = self.pyramid.read_region(0, y0, x0, y1, x1)
        self.current = RegionEdit(y0, x0, y1, x1, original, original.copy())
        self.opened.emit(self.current)
        return self.current

    def commit(self, labels: np.ndarray | None = None, *, annotator: str | None = None) -> CommitResult:
        """Write the open region (``labels``, or the edit's own array) into the pyramid, and close it.

        Raises
        ------
        ConflictError
            When the region changed on disk since it was opened; the region stays open.
        """
        edit = self._require_open()
        labels = edit.labels if labels is None else np.asarray(labels)
        result = self.pyramid.commit(edit.y0, edit.x0, labels, annotator=annotator, expected=edit.original,
                                     max_side=self.max_side)  # fmt: skip
        self.current = None
        self._remove_autosave()
        self.committed.emit(result)
        return result

    def discard(self) -> None:
        """Close the open region without writing anything."""
        self._require_open()
        self.current = None
        self._remove_autosave()
        self.discarded.emit()

    # ------------------------------------------------------------------ autosave

    @property
    def autosave_path(self) -> Path:
        """Where the open region is autosaved: one file per annotator, so two people's regions never mix."""
        from ..workflow import identity

        who = "".join(c if c.isalnum() or c in "-_." else "_" for c in (identity.annotator() or "unnamed"))
        return self.pyramid.path / AUTOSAVE / f"{who}.npz"

    def autosave(self, labels: np.ndarray | None = None) -> Path | None:
        """Save the open region's painting aside if it changed since the last autosave; its path, or None.

        ``labels`` (the painted layer's array, when a tool replaced it) becomes
        the edit's labels. The file holds the region, what it held when opened
        and the labels painted (zlib-compressed ``.npz``, written atomically),
        so :meth:`restore` gives back the same edit, conflict check included.
        """
        edit = self.current
        if edit is None:
            return None
        if labels is not None:
            if np.shape(labels) != edit.shape:
                raise ValueError(f"labels of shape {np.shape(labels)} for a region of {edit.shape}")
            edit.labels = np.asarray(labels)
        crc = zlib.crc32(np.ascontiguousarray(edit.labels))
        if crc == self._autosaved_crc:
            return None
        if self._autosaved_crc is None and not edit.changed_pixels():
            return None  # nothing painted yet
        buffer = io.BytesIO()
        np.savez_compressed(buffer, region=np.array([edit.y0, edit.x0, edit.y1, edit.x1]), original=edit.original,
                            labels=edit.labels, saved_at=np.array(utc_now()))  # fmt: skip
        if self._autosaved_to is not None and self._autosaved_to != self.autosave_path:
            self._autosaved_to.unlink(missing_ok=True)  # named since: the region moves to the name's file
        path = atomic_write_bytes(self.autosave_path, buffer.getvalue())
        self._autosaved_crc, self._autosaved_to = crc, path
        self.autosaved.emit(path)
        return path

    def unfinished(self) -> dict | None:
        """The region an earlier session painted and neither committed nor discarded, from its autosave.

        Returns ``{"region": (y0, x0, y1, x1), "saved_at": str, "pixels": changed}``, or None.

        Raises
        ------
        NsclcFormatError
            Naming the autosave when it cannot be read; it is then set aside
            as ``*.npz.damaged``, never deleted.
        """
        saved = self._read_autosave()
        if saved is None:
            return None
        region, original, labels, saved_at = saved
        return {"region": region, "saved_at": saved_at, "pixels": int(np.count_nonzero(original != labels))}

    def restore(self) -> RegionEdit:
        """Open the autosaved region again, painted as it was; a commit still refuses what changed on disk since
        it was first opened."""
        if self.current is not None:
            raise NsclcFormatError(self.pyramid.path, "a region is already open: commit or discard it first")
        saved = self._read_autosave()
        if saved is None:
            raise NsclcFormatError(self.autosave_path, "holds no region to restore")
        (y0, x0, y1, x1), original, labels, _ = saved
        self.current = RegionEdit(y0, x0, y1, x1, original, labels)
        self._autosaved_crc, self._autosaved_to = zlib.crc32(np.ascontiguousarray(labels)), self.autosave_path
        self.opened.emit(self.current)
        return self.current

    def _read_autosave(self):
        path = self.autosave_path
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                y0, x0, y1, x1 = (int(v) for v in saved["region"])
                original, labels, saved_at = saved["original"], saved["labels"], str(saved["saved_at"])
            rows, columns = self.pyramid.shape
            if not (0 <= y0 < y1 <= rows and 0 <= x0 < x1 <= columns):
                raise ValueError(f"its region y {y0}..{y1}, x {x0}..{x1} is outside this {columns}x{rows} px pyramid")
            if original.shape != (y1 - y0, x1 - x0) or labels.shape != original.shape:
                raise ValueError("its labels are not the size of its region")
        except Exception as error:  # noqa: BLE001 - any damage: keep the file for a person to look at, and say so
            aside = path.with_name(path.name + ".damaged")
            path.replace(aside)
            raise NsclcFormatError(path, f"cannot be restored ({error}); it was set aside as {aside.name}") from error
        return (y0, x0, y1, x1), original, labels.astype(self.pyramid.dtype, copy=False), saved_at

    def _remove_autosave(self) -> None:
        for path in {self.autosave_path, self._autosaved_to} - {None}:
            path.unlink(missing_ok=True)
        self._autosaved_crc = self._autosaved_to = None

    def _require_open(self) -> RegionEdit:
        if self.current is None:
            raise NsclcFormatError(self.pyramid.path, "no region is open for editing")
        return self.current
