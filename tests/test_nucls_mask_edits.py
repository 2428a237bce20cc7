"""Writing NuCLS after nucleus edits changes only the edited nuclei in the mask.

The mask is read back with PIL and split with the pair encoding; every pixel
of an untouched nucleus must be as it was.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.datasets import nucls
from napari_nsclc.model import Polygon, PolygonSet
from napari_nsclc.testing import build


def _mask(path):
    instances, codes, classes, fov = nucls.decode_mask(np.asarray(Image.open(path)))
    return instances, codes, classes, fov


def _write_and_read(case, folder):
    registry.write([case], folder, "nucls", overwrite=True)
    return _mask(folder / "mask" / f"{case.name}.png")


def test_reclassify_move_delete_and_add_touch_only_those_nuclei(tmp_path):
    root = build("nucls", tmp_path / "in")
    (case, *_) = [c for c in registry.read(root) if c.polygons]
    before_instances, before_codes, before_classes, before_fov = _mask(root / "mask" / f"{case.name}.png")
    nuclei = case.polygons[0]
    assert len(nuclei) >= 4

    ids = [_instance(before_instances, nuclei.polygons[i].exterior) for i in range(4)]
    assert all(ids) and len(set(ids)) == 4, "each fixture nucleus has its own instance"

    polygons, classes, attributes = list(nuclei.polygons), list(nuclei.classes), list(nuclei.attributes)
    classes[0] = "plasma_cell"  # reclassify
    polygons[1] = Polygon(polygons[1].exterior + (0, 3), kind=polygons[1].kind)  # move 3 px right
    del polygons[2], classes[2], attributes[2]  # delete
    free = (before_fov != 0) & (before_instances == 0)
    y, x = next((y, x) for y in range(free.shape[0] - 6) for x in range(free.shape[1] - 6) if free[y:y + 7, x:x + 7].all())
    new = Polygon(np.array([[y + 2.0, x + 2.0], [y + 2.0, x + 4.0], [y + 4.0, x + 4.0], [y + 4.0, x + 2.0]]))
    case.polygons[0] = nuclei = PolygonSet(nuclei.name, [*polygons, new], [*classes, "lymphocyte"], nuclei.schema,
                                           [*attributes, {}])

    instances, codes, classes, fov = _write_and_read(case, tmp_path / "out")
    np.testing.assert_array_equal(fov, before_fov)
    # the reclassified nucleus: same pixels, new class
    np.testing.assert_array_equal(instances == ids[0], before_instances == ids[0])
    assert codes[ids[0]] == nucls.class_code("plasma_cell")
    # the deleted one is gone, the moved one left its old place
    assert not (instances == ids[2]).any() and not np.isin(instances[before_instances == ids[2]], [ids[2]]).any()
    assert not (instances == ids[1]).any()
    moved = _instance(instances, nuclei.polygons[1].exterior)
    assert moved and codes[moved] == before_codes[ids[1]]
    # the new one is drawn with its class
    added = instances[y + 3, x + 3]
    assert added and codes[int(added)] == nucls.class_code("lymphocyte")
    # every other nucleus: pixel for pixel as before
    untouched = [i for i in np.unique(before_instances) if i and i not in ids[:3]]
    assert untouched
    for i in untouched:
        np.testing.assert_array_equal(instances == i, before_instances == i)
        assert codes[i] == before_codes[i]


def test_no_edit_writes_the_mask_as_it_was(tmp_path):
    root = build("nucls", tmp_path / "in")
    (case, *_) = [c for c in registry.read(root) if c.polygons]
    written = tmp_path / "out"
    registry.write([case], written, "nucls", overwrite=True)
    original = np.asarray(Image.open(root / "mask" / f"{case.name}.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(written / "mask" / f"{case.name}.png")), original)


def _instance(instances, ring):
    from napari_nsclc.datasets.instance_edits import instance_under

    return instance_under(instances, ring)
