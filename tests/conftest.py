"""Shared fixtures.

``samples`` points at the real third-party files in ``../shared/samples`` (or
``$NSCLC_SAMPLES``). When they are missing, the tests that need them fail with a
message saying where they were looked for: the suite never passes by skipping the
real data. ``.ci/run`` also sets ``NSCLC_REQUIRE_SAMPLES=1`` to say so explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("NSCLC_SAMPLES", REPO.parent / "shared" / "samples"))


def pytest_collection_modifyitems(items):
    """Every test that opens a napari window is marked ``gui``: scripts/test.sh runs those again on PyQt6."""
    for item in items:
        if "make_napari_viewer" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real third-party sample files."""
    if not (SAMPLES / "SOURCES.md").exists():
        pytest.fail(f"real samples not found at {SAMPLES}: put ../shared/samples beside the clone or set NSCLC_SAMPLES")
    return SAMPLES


@pytest.fixture
def chunk_reads(monkeypatch):
    """Every tile decoded from the file, as ``"<level>/<row>.<col>"`` (level 0 = finest of a 4096 slide)."""
    from napari_nsclc.formats._slide_tiles import TILE_CACHE, TiledLevel

    keys: list[str] = []
    original = TiledLevel.decode_tile
    TILE_CACHE.clear()

    def counting_decode(self, index, offset, count):
        level = {4096: 0, 2048: 1, 1024: 2}.get(self.shape[0], self.shape[0])
        keys.append(f"{level}/{index // self.grid[1]}.{index % self.grid[1]}")
        return original(self, index, offset, count)

    monkeypatch.setattr(TiledLevel, "decode_tile", counting_decode)
    yield keys
    TILE_CACHE.clear()
