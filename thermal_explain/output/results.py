"""The run's result files: journals merged into them, read back, cleared for a new run."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thermal_explain.output import journal
from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.folder import clear_outputs, prepare_output_dir
from thermal_explain.output.naming import (
    FEATURE_DIR,
    FEATURE_SUFFIX,
    FIGURE_SUFFIX,
    HEATMAP_DIR,
    HEATMAP_SUFFIX,
    OVERLAY_DIR,
    OVERLAY_SUFFIX,
    REPORT_FILE,
    RESULTS_FILE,
)
from thermal_explain.output.records import merge_records
from thermal_explain.output.report import build_summary


def finalize_results(
    output_dir: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Merge every rank journal in ``output_dir`` into the final files.

    Records are de-duplicated by ``image_path`` (a success beats an error) and ordered by
    path; ``analysis_results.json`` and ``summary_report.txt`` are replaced atomically.

    Returns:
        The merged records.
    """
    root = prepare_output_dir(output_dir)
    records = merge_records(entry["record"] for entry in journal.read_all(root))
    text = json.dumps(records, ensure_ascii=False, indent=2, allow_nan=False)
    atomic_write_text(root / RESULTS_FILE, text + "\n")
    summary = build_summary(
        records, class_names=class_names, layers=layers, output_dir=os.fspath(root)
    )
    atomic_write_text(root / REPORT_FILE, summary)
    return records


def read_results(output_dir: str | os.PathLike[str]) -> list[dict[str, Any]] | None:
    """The records of ``analysis_results.json`` when it is newer than every journal.

    A run that found nothing left to do reads its results back instead of writing the
    same files (and summary plots) again. ``None`` when the file is missing, unreadable or
    older than a journal entry (a run stopped before its end), so it must be written.
    """
    root = Path(os.path.abspath(os.fspath(output_dir)))
    results = root / RESULTS_FILE
    try:
        written = results.stat().st_mtime_ns
        if any(path.stat().st_mtime_ns > written for path in journal.journal_files(root)):
            return None
        records = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return records if isinstance(records, list) else None


def clear_results(root: Path, rank: int) -> None:
    """Delete this tool's earlier outputs (rank zero) or this rank's journal (other ranks)."""
    if rank != 0:
        journal.remove_journals(root, [rank])
        return
    journal.remove_journals(root)
    clear_outputs(
        root,
        files=(RESULTS_FILE, REPORT_FILE),
        owned={
            HEATMAP_DIR: (HEATMAP_SUFFIX,),
            OVERLAY_DIR: (OVERLAY_SUFFIX, FIGURE_SUFFIX),
            FEATURE_DIR: (FEATURE_SUFFIX,),
        },
    )
