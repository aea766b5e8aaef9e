"""Summary plots of a finished analysis, from its records and raw maps (``plots/``).

Everything is derived from ``analysis_results.json``'s records and ``feature_maps/*.npy``,
so resumed and multi-process runs plot every image exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from thermal_explain.output import plots

PLOTS_DIR = "plots"
MEAN_MAP_SIZE = 64


def write_summary_plots(
    output_dir: str | Path,
    records: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    layers: Sequence[str],
    tensorboard: Any = None,
) -> list[Path]:
    """Write the summary PNGs under ``output_dir/plots`` (and to TensorBoard); returns them.

    Plots: confidence histogram per class, activation area per layer, the class-mean heatmap
    per layer (grouped by true label when every image has one, else by prediction), and the
    mean deletion/insertion curves when those metrics were computed.
    """
    ok = [record for record in records if record.get("status") == "ok"]
    if not ok:
        return []
    folder = Path(output_dir) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Figure] = {}
    names = list(class_names)
    predicted = [int(r["predicted_class"]) for r in ok]
    figures["confidence_histogram"] = plots.confidence_histogram_figure(
        [float(r["confidence"]) for r in ok], predicted, names
    )
    figures["activation_area"] = plots.activation_area_figure(
        {
            layer: _layer_values(ok, layer, ("feature_statistics", "activation_area"))
            for layer in layers
        }
    )
    means, groups = class_mean_maps(ok, names, layers)
    if means is not None:
        figures["class_mean_heatmaps"] = plots.class_mean_heatmap_figure(means, groups, layers)
    deletion = {layer: _curves(ok, layer, "deletion_curve") for layer in layers}
    insertion = {layer: _curves(ok, layer, "insertion_curve") for layer in layers}
    if any(len(c) for c in deletion.values()) and any(len(c) for c in insertion.values()):
        figures["faithfulness_curves"] = plots.faithfulness_curves_figure(
            {k: v for k, v in deletion.items() if len(v)},
            {k: v for k, v in insertion.items() if len(v)},
        )
    written = []
    for name, figure in figures.items():
        pixels = plots.figure_to_array(figure)
        written.append(plots.write_png(pixels, folder / f"{name}.png", int(figure.dpi)))
        if tensorboard is not None:
            tensorboard.add_image(f"summary/{name}", pixels, dataformats="HWC")
    return written


def class_mean_maps(
    records: Sequence[Mapping[str, Any]], class_names: Sequence[str], layers: Sequence[str]
) -> tuple[np.ndarray | None, list[str]]:
    """``(K, L, 64, 64)`` mean normalized map per class and layer, and the ``K`` groups.

    Maps are read back from ``feature_maps/*.npy``; a class without images is NaN (drawn
    empty). Asymmetry maps are mirrored onto the full width first.
    """
    by_truth = grouped_by_truth(records)
    groups = list(class_names)
    sums = np.zeros((len(groups), len(layers), MEAN_MAP_SIZE, MEAN_MAP_SIZE), np.float64)
    counts = np.zeros((len(groups), len(layers)), np.int64)
    found = False
    for record in records:
        label = record["true_label"] if by_truth else record["predicted_label"]
        if label not in groups:
            continue
        row = groups.index(label)
        for column, layer in enumerate(layers):
            entry = record.get("gradcam_results", {}).get(layer)
            raw = _raw_map(entry)
            if raw is None:
                continue
            if entry.get("side_attribution") is not None:
                raw = np.concatenate([raw, raw[:, ::-1]], axis=1)
            sums[row, column] += _normalized(raw)
            counts[row, column] += 1
            found = True
    if not found:
        return None, groups
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, :, None, None]
    return means.astype(np.float32), groups


def grouped_by_truth(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether class-mean maps group images by true label (every image has one), else by
    prediction."""
    return all(record.get("true_label") is not None for record in records)


def _raw_map(entry: Mapping[str, Any] | None) -> np.ndarray | None:
    """The ``feature_maps/*.npy`` of a layer entry, located from its heatmap or overlay."""
    if not entry:
        return None
    for key, suffix in (("heatmap_path", "_heatmap.png"), ("overlay_path", "_overlay.png")):
        value = entry.get(key)
        if isinstance(value, str) and value.endswith(suffix):
            image = Path(value)
            candidate = image.parent.parent / "feature_maps" / (image.name[: -len(suffix)] + ".npy")
            if candidate.is_file():
                return np.load(candidate).astype(np.float32)
    return None


def _normalized(raw: np.ndarray) -> np.ndarray:
    resized = cv2.resize(raw, (MEAN_MAP_SIZE, MEAN_MAP_SIZE), interpolation=cv2.INTER_LINEAR)
    low, high = float(resized.min()), float(resized.max())
    return (resized - low) / (high - low) if high > low else np.zeros_like(resized)


def _layer_values(
    records: Sequence[Mapping[str, Any]], layer: str, keys: tuple[str, ...]
) -> list[float]:
    values = []
    for record in records:
        value: Any = record.get("gradcam_results", {}).get(layer)
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return values


def _curves(records: Sequence[Mapping[str, Any]], layer: str, key: str) -> np.ndarray:
    rows = defaultdict(list)
    for record in records:
        entry = record.get("gradcam_results", {}).get(layer) or {}
        curve = (entry.get("faithfulness") or {}).get(key)
        if isinstance(curve, list) and curve:
            rows[len(curve)].append(curve)
    if not rows:
        return np.zeros((0, 0), np.float32)
    length = max(rows, key=lambda n: len(rows[n]))
    return np.asarray(rows[length], dtype=np.float32)
