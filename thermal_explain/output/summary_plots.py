"""Summary plots of a finished analysis, from its records and raw maps (``plots/``).

Everything is derived from ``analysis_results.json``'s records and ``feature_maps/*.npy``,
so resumed and multi-process runs plot every image exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from thermal_explain.metrics.summaries import class_mean_maps, layer_curves, layer_values
from thermal_explain.output import plots

PLOTS_DIR = "plots"


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
    ok = [record for record in records if usable(record)]
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
            layer: layer_values(ok, layer, ("feature_statistics", "activation_area"))
            for layer in layers
        }
    )
    means, groups = class_mean_maps(ok, names, layers)
    if means is not None:
        figures["class_mean_heatmaps"] = plots.class_mean_heatmap_figure(means, groups, layers)
    deletion = {layer: layer_curves(ok, layer, "deletion_curve") for layer in layers}
    insertion = {layer: layer_curves(ok, layer, "insertion_curve") for layer in layers}
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


def usable(record: Mapping[str, Any]) -> bool:
    """An ``ok`` record with a finite confidence and a class index (older folders may hold
    records without them; they are left out of the plots instead of stopping them)."""
    confidence = record.get("confidence")
    return (
        record.get("status") == "ok"
        and isinstance(confidence, (int, float))
        and math.isfinite(confidence)
        and isinstance(record.get("predicted_class"), int)
    )
