"""Static HTML reports of a run: ``report.html`` (analysis) and ``comparison_report.html``.

Pages are rendered with Jinja2 from the templates shipped in this package and open from
``file://`` with relative links only. :class:`ReportSettings` and the file names import
nothing heavy; the writers load Jinja2 and OpenCV when called.
"""

from thermal_explain.output.html.settings import (
    ASSETS_DIR,
    COMPARISON_ASSETS_DIR,
    COMPARISON_HTML,
    ORIGINAL_SIDE,
    REPORT_HTML,
    ReportSettings,
)

__all__ = [
    "ASSETS_DIR",
    "COMPARISON_ASSETS_DIR",
    "COMPARISON_HTML",
    "ORIGINAL_SIDE",
    "REPORT_HTML",
    "ReportSettings",
]
