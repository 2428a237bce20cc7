"""Whole datasets from the command line, headless: ``napari-nsclc validate``.

* :mod:`~napari_nsclc.batch.validate` runs the checks over a dataset and
  returns a :class:`ValidationResult`.
* :mod:`~napari_nsclc.batch.checks`: per-case checks, pure functions of one case.
* :mod:`~napari_nsclc.batch.casefiles`: the files of a case, and its reader's warnings as findings.
* :mod:`~napari_nsclc.batch.layouts`: duplicates and orphans across cases.
* :mod:`~napari_nsclc.batch.families`: flip- and rotation-invariant perceptual
  hashes and augmentation families.
* :mod:`~napari_nsclc.batch.splits`: the split and fold of each case.
* :mod:`~napari_nsclc.batch.report_html`: the self-contained HTML report.

No napari or Qt import.
"""

from __future__ import annotations

from .problems import KINDS, Problem
from .validate import ValidationResult, validate

__all__ = ["KINDS", "Problem", "ValidationResult", "validate"]
