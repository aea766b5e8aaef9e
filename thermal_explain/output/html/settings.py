"""What a run tells its HTML report besides the records (kept free of heavy imports)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPORT_HTML = "report.html"
"""The analysis report's front page, in ``output_dir``."""
ASSETS_DIR = "report_files"
"""The analysis report's other pages, pictures, stylesheet and script."""
ORIGINAL_SIDE = 512
"""Longest side in pixels of the report's copy of an original."""
COMPARISON_HTML = "comparison_report.html"
COMPARISON_ASSETS_DIR = "comparison_report_files"


@dataclass(frozen=True)
class ReportSettings:
    """How a run's ``report.html`` is drawn.

    Attributes:
        facts: ``{label: text}`` about the run (model, method, input size, ...), shown when
            ``output_dir`` holds no ``run_manifest.json`` to read them from.
        mask_lookup: image path -> its mask file (``--mask_dir``), for the mask contour on
            each image's page; ``None`` without masks.
    """

    facts: Mapping[str, str] = field(default_factory=dict)
    mask_lookup: Callable[[str], Path | None] | None = None
