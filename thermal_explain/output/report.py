"""``summary_report.txt``: a pure function from analysis records to readable text."""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from thermal_explain.output.naming import (
    FEATURE_DIR,
    HEATMAP_DIR,
    OVERLAY_DIR,
    REPORT_FILE,
    RESULTS_FILE,
)
from thermal_explain.output.quality_report import quality_sections
from thermal_explain.output.readout_report import readout_section
from thermal_explain.output.records import LAYER_KEYS, STATUS_OK

_RULE = "=" * 72


def build_summary(
    records: Sequence[Mapping[str, Any]],
    *,
    class_names: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    output_dir: str | None = None,
) -> str:
    """The summary report of ``records`` (``analysis_results.json`` entries).

    Sections: totals and failed files, predicted-class distribution, confidence statistics
    (overall and per class), accuracy and confusion matrix (when true labels are known),
    per-layer activation area and metric means, side attribution (asymmetry mode), the
    left-right thermal readout per class, and where the outputs are. Records are read,
    never changed.
    """
    ok = [record for record in records if record.get("status") == STATUS_OK]
    failed = [record for record in records if record.get("status") != STATUS_OK]
    names = _class_order(ok, class_names)
    layer_order = _layer_order(ok, layers)
    parts = [
        _RULE,
        "Thermal Grad-CAM interpretability summary",
        _RULE,
        "",
        *_totals(ok, failed),
        *_distribution(ok, names),
        *_confidence(ok, names),
        *_accuracy(ok, names),
        *_layer_section(ok, layer_order),
        *_side_section(ok, layer_order),
        *readout_section(ok, names, _table),
        *quality_sections(ok, layer_order, names),
        *_outputs(ok, output_dir),
    ]
    return "\n".join(parts).rstrip() + "\n"


# Sections ------------------------------------------------------------------------------


def _totals(ok: list[Mapping[str, Any]], failed: list[Mapping[str, Any]]) -> list[str]:
    lines = [f"Images analysed: {len(ok) + len(failed)}  (ok: {len(ok)}, failed: {len(failed)})"]
    if failed:
        lines += ["", "Failed images:"]
        lines += [
            f"  {record.get('image_path')}: {record.get('error', 'unknown error')}"
            for record in failed
        ]
    return [*lines, ""]


def _distribution(ok: list[Mapping[str, Any]], names: list[str]) -> list[str]:
    if not ok:
        return []
    counts = Counter(str(record.get("predicted_label")) for record in ok)
    rows = [[name, str(counts[name]), f"{counts[name] / len(ok):.1%}"] for name in names]
    return ["Predicted class distribution:", *_table(["class", "images", "share"], rows), ""]


def _confidence(ok: list[Mapping[str, Any]], names: list[str]) -> list[str]:
    groups: list[tuple[str, list[float]]] = [("all", _numbers(r.get("confidence") for r in ok))]
    for name in names:
        values = _numbers(r.get("confidence") for r in ok if r.get("predicted_label") == name)
        if values:
            groups.append((name, values))
    rows = [_stats_row(label, values) for label, values in groups if values]
    if not rows:
        return []
    header = ["predicted", "n", "mean", "std", "min", "max"]
    return ["Confidence:", *_table(header, rows), ""]


def _accuracy(ok: list[Mapping[str, Any]], names: list[str]) -> list[str]:
    index = _label_index(ok, names)
    pairs = []
    for record in ok:
        truth = _lookup(index, record.get("true_label"))
        predicted = record.get("predicted_class")
        if truth is not None and isinstance(predicted, int):
            pairs.append((truth, predicted))
    if not pairs:
        return []
    unmatched = sum(1 for r in ok if r.get("true_label") is not None) - len(pairs)
    import torch
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
    )

    count = max(2, len(names), *(max(pair) + 1 for pair in pairs))
    target = torch.tensor([truth for truth, _ in pairs])
    predicted = torch.tensor([guess for _, guess in pairs])
    accuracy = float(multiclass_accuracy(predicted, target, num_classes=count, average="micro"))
    matrix = multiclass_confusion_matrix(predicted, target, num_classes=count).tolist()
    labels = [names[i] if i < len(names) else f"class {i}" for i in range(count)]
    lines = [f"Accuracy: {accuracy:.4f}  ({len(pairs)} images with a known true label)"]
    if unmatched:
        lines.append(f"  ({unmatched} true labels match no class name and are left out)")
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class):"]
    rows = [[labels[i], *(str(value) for value in matrix[i])] for i in range(count)]
    lines += _table(["true \\ predicted", *labels], rows)
    recall = [
        [labels[i], str(sum(matrix[i])), f"{matrix[i][i] / sum(matrix[i]):.4f}"]
        for i in range(count)
        if sum(matrix[i])
    ]
    lines += ["", "Per-class recall:", *_table(["class", "support", "recall"], recall), ""]
    return lines


def _layer_section(ok: list[Mapping[str, Any]], layers: list[str]) -> list[str]:
    rows = []
    metric_rows = []
    for layer in layers:
        entries = _layer_entries(ok, layer)
        if not entries:
            continue
        areas = _numbers(e.get("feature_statistics", {}).get("activation_area") for e in entries)
        means = _numbers(e.get("feature_statistics", {}).get("mean_activation") for e in entries)
        rows.append([layer, str(len(entries)), _mean_text(areas), _mean_text(means)])
        for key, values in _metric_values(entries).items():
            metric_rows.append([layer, key, str(len(values)), f"{float(np.mean(values)):.4f}"])
    if not rows:
        return []
    header = ["layer", "images", "mean activation_area", "mean mean_activation"]
    lines = ["Per-layer activation:", *_table(header, rows), ""]
    if metric_rows:
        lines += ["Per-layer metrics (means):"]
        lines += [*_table(["layer", "metric", "images", "mean"], metric_rows), ""]
    return lines


def _side_section(ok: list[Mapping[str, Any]], layers: list[str]) -> list[str]:
    rows = []
    for layer in layers:
        sides = [
            e["side_attribution"]
            for e in _layer_entries(ok, layer)
            if isinstance(e.get("side_attribution"), Mapping)
        ]
        left = _numbers(side.get("left") for side in sides)
        right = _numbers(side.get("right") for side in sides)
        if not left or not right:
            continue
        pairs = [(s.get("left"), s.get("right")) for s in sides]
        more_left = sum(1 for a, b in pairs if _finite(a) and _finite(b) and a > b)
        more_right = sum(1 for a, b in pairs if _finite(a) and _finite(b) and b > a)
        rows.append(
            [
                layer,
                str(len(sides)),
                _mean_text(left),
                _mean_text(right),
                str(more_left),
                str(more_right),
            ]
        )
    if not rows:
        return []
    header = ["layer", "images", "mean left", "mean right", "left-dominant", "right-dominant"]
    return ["Side attribution (asymmetry mode):", *_table(header, rows), ""]


def _outputs(ok: list[Mapping[str, Any]], output_dir: str | None) -> list[str]:
    root = output_dir if output_dir is not None else "."
    counts: Counter[str] = Counter()
    for record in ok:
        for entry in (record.get("gradcam_results") or {}).values():
            for key in LAYER_KEYS[:3]:
                if entry.get(key):
                    counts[key] += 1
    rows = [
        [f"{root}/{HEATMAP_DIR}/", f"heatmaps: {counts['heatmap_path']}"],
        [
            f"{root}/{OVERLAY_DIR}/",
            f"overlays: {counts['overlay_path']}, figures: {counts['overlay_plt_path']}",
        ],
        [f"{root}/{FEATURE_DIR}/", "raw CAMs (.npy)"],
        [f"{root}/{RESULTS_FILE}", "one record per image"],
        [f"{root}/{REPORT_FILE}", "this report"],
    ]
    return ["Outputs:", *(f"  {path}  {what}" for path, what in rows), ""]


# Helpers ---------------------------------------------------------------------------------


def _class_order(ok: list[Mapping[str, Any]], class_names: Sequence[str] | None) -> list[str]:
    """Class names in index order, then any other predicted label seen."""
    names = [str(name) for name in class_names or ()]
    by_index = sorted(
        {
            (r.get("predicted_class"), str(r.get("predicted_label")))
            for r in ok
            if isinstance(r.get("predicted_class"), int)
        }
    )
    for _, label in by_index:
        if label not in names:
            names.append(label)
    return names


def _layer_order(ok: list[Mapping[str, Any]], layers: Sequence[str] | None) -> list[str]:
    order = [str(layer) for layer in layers or ()]
    for record in ok:
        for layer in record.get("gradcam_results") or {}:
            if layer not in order:
                order.append(layer)
    return order


def _label_index(ok: list[Mapping[str, Any]], names: list[str]) -> dict[str, int]:
    """Class name -> index, from the class names or from the predictions' own pairs."""
    index = {name: position for position, name in enumerate(names)}
    for record in ok:
        label, number = record.get("predicted_label"), record.get("predicted_class")
        if isinstance(label, str) and isinstance(number, int):
            index.setdefault(label, number)
    return index


def _lookup(index: Mapping[str, int], label: object) -> int | None:
    if not isinstance(label, str):
        return None
    if label in index:
        return index[label]
    folded = {name.casefold(): value for name, value in index.items()}
    return folded.get(label.casefold())


def _layer_entries(ok: list[Mapping[str, Any]], layer: str) -> list[Mapping[str, Any]]:
    entries = [(r.get("gradcam_results") or {}).get(layer) for r in ok]
    return [entry for entry in entries if isinstance(entry, Mapping)]


def _metric_values(entries: list[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Numeric metric keys (nested ones as ``a.b``) of the layer entries, in first-seen order."""
    values: dict[str, list[float]] = {}
    for entry in entries:
        for key, value in entry.items():
            if key in LAYER_KEYS or key == "side_attribution":
                continue
            for name, number in _flatten(key, value):
                values.setdefault(name, []).append(number)
    return values


def _flatten(prefix: str, value: object) -> Iterable[tuple[str, float]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}", item)
    elif _finite(value):
        yield prefix, float(value)  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(values: Iterable[object]) -> list[float]:
    return [float(value) for value in values if _finite(value)]  # type: ignore[arg-type]


def _mean_text(values: list[float]) -> str:
    return f"{float(np.mean(values)):.4f}" if values else "-"


def _stats_row(label: str, values: list[float]) -> list[str]:
    data = np.asarray(values, dtype=np.float64)
    numbers = (data.mean(), data.std(), data.min(), data.max())
    return [label, str(len(values)), *(f"{number:.4f}" for number in numbers)]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, indented; wide (CJK) characters count double."""
    widths = [max(_width(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = zip(cells, widths, strict=True)
        padded = (cell + " " * (width - _width(cell)) for cell, width in pairs)
        return ("  " + "  ".join(padded)).rstrip()

    return [line(header), "  " + "  ".join("-" * width for width in widths), *map(line, rows)]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
