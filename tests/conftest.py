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


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real third-party sample files."""
    if not (SAMPLES / "SOURCES.md").exists():
        pytest.fail(f"real samples not found at {SAMPLES}: put ../shared/samples beside the clone or set NSCLC_SAMPLES")
    return SAMPLES
