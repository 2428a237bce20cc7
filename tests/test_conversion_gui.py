"""Saving from a real napari viewer goes through the same conversion plan as the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_nsclc import _writer
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import build

PLUGIN = "napari-nsclc"


def _box_layers(viewer):
    return [layer for layer in viewer.layers if layer.name.startswith("tumour boxes")]


def test_saving_the_boxes_of_two_series_together_is_refused(make_napari_viewer, samples, tmp_path):
    viewer = make_napari_viewer()
    patient = samples / "lung-pet-ct-dx" / "Lung-PET-CT-Dx" / "Lung_Dx-A0002"
    viewer.open(str(patient), plugin=PLUGIN)
    both = _box_layers(viewer)
    assert [len(layer.data) for layer in both] == [8, 10]
    with pytest.raises(NsclcFormatError, match=r"the layers come from 2 cases .*save each case's layers on their own"):
        _writer.write_lung_pet_ct_dx(str(tmp_path / "both"), [layer.as_layer_data_tuple() for layer in both])
    assert not (tmp_path / "both").exists()
    # one series at a time: one VOC file per annotated slice, named by the slice's SOPInstanceUID
    written = _writer.write_lung_pet_ct_dx(str(tmp_path / "one"), [both[1].as_layer_data_tuple()])
    uids = set(both[1].metadata["nsclc"]["image"].metadata["sop_instance_uids"])
    assert len(written) == 10 and {Path(p).stem for p in written} <= uids


def test_a_lossy_save_warns_what_it_loses_and_writes(make_napari_viewer, tmp_path, monkeypatch):
    import napari.utils.notifications as notifications

    shown = []
    monkeypatch.setattr(notifications, "show_warning", shown.append)
    viewer = make_napari_viewer()
    image = build("midog", tmp_path / "midog")
    viewer.open(str(image), plugin=PLUGIN)
    from napari.layers import Points

    (points,) = [layer for layer in viewer.layers if isinstance(layer, Points)]
    out = tmp_path / "cells.geojson"
    written = _writer.write_geojson(str(out), [points.as_layer_data_tuple()])
    assert written == [str(out)] and out.is_file()
    assert any("become Points at their centres (the box size is not kept)" in message for message in shown), shown
    assert any("does not keep: id (7)" in message for message in shown), shown
