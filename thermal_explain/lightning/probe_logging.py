"""Where explained probes go: TensorBoard (panels, a table, scalars) or PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thermal_explain.output.board import log_image
from thermal_explain.output.naming import layer_token, sanitize_component
from thermal_explain.output.panels import probe_panels
from thermal_explain.output.render import encode_png, write_file
from thermal_explain.types import ExplainedImage

PROBES_DIR = "probes"
"""Folder under ``output_dir`` of the probe panels when no TensorBoard logger is set."""


@dataclass(frozen=True)
class PanelStyle:
    """How probe panels are drawn."""

    lut: np.ndarray
    original_alpha: float = 0.3
    heatmap_alpha: float = 0.7


def log_probes(
    items: Sequence[ExplainedImage],
    layers: Sequence[str],
    epoch: int,
    style: PanelStyle,
    experiment: Any,
    output_dir: str | Path,
) -> None:
    """One panel per probe and layer under a stable name; (TensorBoard) a table and scalars.

    With a TensorBoard ``experiment``: images ``gradcam/probe_XX_<name>/<layer>``, the text
    ``gradcam/probes`` (every probe's true and predicted class) and per-layer scalars
    ``gradcam_area/<layer>``, ``gradcam_center_x/<layer>``, ``gradcam_center_y/<layer>``
    (means over the probes), all at ``step = epoch``. Without one: PNG files under
    ``output_dir/probes/epoch_XX/probe_XX_<name>_<layer>.png``.
    """
    folder = Path(output_dir) / PROBES_DIR / f"epoch_{epoch:02d}"
    for slot, item in enumerate(items):
        name = f"probe_{slot:02d}_{sanitize_component(Path(item.image_path).stem)}"
        panels = probe_panels(item, style.lut, style.original_alpha, style.heatmap_alpha)
        for layer, panel in panels:
            if experiment is not None:
                log_image(experiment, f"gradcam/{name}/{layer}", panel, epoch)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / f"{name}_{layer_token(layer)}.png"
                write_file(str(target), encode_png(panel))
    if experiment is None or not items:
        return
    experiment.add_text("gradcam/probes", probe_table(items), global_step=epoch)
    for layer in layers:
        stats = [item.layers[layer].statistics for item in items]
        area = sum(float(s["activation_area"]) for s in stats) / len(stats)
        com_x = sum(float(s["center_of_mass"][0]) for s in stats) / len(stats)
        com_y = sum(float(s["center_of_mass"][1]) for s in stats) / len(stats)
        experiment.add_scalar(f"gradcam_area/{layer}", area, global_step=epoch)
        experiment.add_scalar(f"gradcam_center_x/{layer}", com_x, global_step=epoch)
        experiment.add_scalar(f"gradcam_center_y/{layer}", com_y, global_step=epoch)


def probe_table(items: Sequence[ExplainedImage]) -> str:
    """A Markdown table of the probes: slot, image, true class, predicted class, confidence."""
    rows = [
        f"| {slot:02d} | {Path(item.image_path).name} | {item.true_label or '-'} | "
        f"{item.predicted_label} | {item.confidence:.2f} |"
        for slot, item in enumerate(items)
    ]
    header = ["| probe | image | true | predicted | confidence |", "|---|---|---|---|---|"]
    return "\n".join([*header, *rows])


def tensorboard_experiment(loggers: Sequence[Any]) -> Any:
    """The ``SummaryWriter`` of the first logger that has one (``add_image``), else ``None``."""
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            return experiment
    return None
