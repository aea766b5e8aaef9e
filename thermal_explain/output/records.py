"""The ``analysis_results.json`` record: building, JSON-safe values, merging."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

STATUS_OK = "ok"
STATUS_ERROR = "error"
LAYER_KEYS = ("heatmap_path", "overlay_path", "overlay_plt_path", "feature_statistics")


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` made of JSON types only.

    Tensors and numpy arrays or scalars become lists or Python numbers, tuples become
    lists, and non-finite floats become ``None`` (JSON has no NaN).
    """
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    return str(value)


def layer_entry(
    paths: Mapping[str, str | None],
    statistics: Mapping[str, Any],
    side_attribution: Mapping[str, float] | None,
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """One ``gradcam_results`` entry: paths, statistics, optional sides, then metric keys.

    Metric keys never replace the contract's own keys.
    """
    entry: dict[str, Any] = {key: paths.get(key) for key in LAYER_KEYS[:3]}
    entry["feature_statistics"] = to_jsonable(dict(statistics))
    if side_attribution is not None:
        entry["side_attribution"] = to_jsonable(dict(side_attribution))
    for key, value in metrics.items():
        entry.setdefault(str(key), to_jsonable(value))
    return entry


def ok_record(
    *,
    image_path: str,
    predicted_class: int,
    predicted_label: str,
    confidence: float,
    true_label: str | None,
    gradcam_results: Mapping[str, dict[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of an image whose outputs were all written.

    ``extra`` adds top-level entries (``input_kind``, ``temperature``,
    ``thermal_asymmetry``) before ``gradcam_results``; they never replace the others.
    """
    record = {
        "image_path": image_path,
        "predicted_class": int(predicted_class),
        "predicted_label": predicted_label,
        "confidence": to_jsonable(float(confidence)),
        "true_label": true_label,
        "status": STATUS_OK,
    }
    for key, value in (extra or {}).items():
        record.setdefault(str(key), to_jsonable(value))
    record["gradcam_results"] = dict(gradcam_results)
    return record


def error_record(
    image_path: str,
    error: str,
    *,
    true_label: str | None = None,
    predicted_class: int | None = None,
    predicted_label: str | None = None,
    confidence: float | None = None,
) -> dict[str, Any]:
    """The record of an image that failed (unreadable, or its outputs could not be written)."""
    return {
        "image_path": image_path,
        "predicted_class": predicted_class,
        "predicted_label": predicted_label,
        "confidence": None if confidence is None else to_jsonable(float(confidence)),
        "true_label": true_label,
        "status": STATUS_ERROR,
        "error": one_line(error),
        "gradcam_results": {},
    }


def describe_error(error: BaseException) -> str:
    """A one-line description of an exception for an error record."""
    text = one_line(str(error))
    return text if text else type(error).__name__


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(str(text).split())


def merge_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per ``image_path``, ordered by path.

    A successful record beats an error record for the same image (a failed image that a
    later run analysed); otherwise the later record wins.
    """
    chosen: dict[str, dict[str, Any]] = {}
    for record in records:
        path = record.get("image_path")
        if not isinstance(path, str):
            continue
        previous = chosen.get(path)
        ok = record.get("status") == STATUS_OK
        if previous is None or ok or previous.get("status") != STATUS_OK:
            chosen[path] = dict(record)
    return [chosen[path] for path in sorted(chosen)]
