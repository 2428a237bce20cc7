"""Shared fixtures.

``samples`` points at the real third-party files in ``../shared/samples``. When
they are missing the tests that need them skip, unless ``NSCLC_REQUIRE_SAMPLES=1``
(set by ``.ci/run``), in which case they fail: CI must never pass by skipping
the real data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("NSCLC_SAMPLES", REPO.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real third-party sample files."""
    if not (SAMPLES / "SOURCES.md").exists():
        message = f"real samples not found at {SAMPLES} (set NSCLC_SAMPLES)"
        if os.environ.get("NSCLC_REQUIRE_SAMPLES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLES
