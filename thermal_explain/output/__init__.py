"""Everything written to disk after the CAM engine: names, colors, figures, results, report.

Exports load on first use, so a writer worker process that imports a submodule does not
pay for torch (which :mod:`thermal_explain.output.writer` needs for the shared records).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thermal_explain.output.atomic import atomic_write_text
    from thermal_explain.output.colormaps import get_colormap
    from thermal_explain.output.report import build_summary
    from thermal_explain.output.results import finalize_results
    from thermal_explain.output.writer import ResultWriter

_EXPORTS = {
    "ResultWriter": "thermal_explain.output.writer",
    "finalize_results": "thermal_explain.output.results",
    "build_summary": "thermal_explain.output.report",
    "get_colormap": "thermal_explain.output.colormaps",
    "atomic_write_text": "thermal_explain.output.atomic",
}

__all__ = [
    "ResultWriter",
    "atomic_write_text",
    "build_summary",
    "finalize_results",
    "get_colormap",
]


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
