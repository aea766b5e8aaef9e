"""One image's comparison record and the panel jobs that go with it."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thermal_explain.output.naming import inside, layer_token
from thermal_explain.output.records import describe_error, error_record
from thermal_explain.pipeline.compared_models import ComparedModel
from thermal_explain.pipeline.layer_pairs import LayerPair
from thermal_explain.types import Batch

PANEL_DIR = "panels"
PANEL_SUFFIX = "_comparison.png"

PanelJob = tuple[Path, np.ndarray, np.ndarray, list[str], list[str]]
"""``(panel path, map A, map B, title lines, captions)``."""


@dataclass
class BatchComparison:
    """The two models' predictions and map similarities for one batch (CPU tensors).

    Attributes:
        predicted_a: ``(N,)`` class index predicted by model A.
        confidence_a: ``(N,)`` probability of that class.
        predicted_b: ``(N,)`` model B's class index.
        confidence_b: ``(N,)`` its probability.
        spearman: ``{pair name: (N,)}`` rank correlation of the two maps (NaN where ``flat``).
        top_iou: ``{pair name: (N,)}`` IoU of the two maps' top regions (NaN where ``flat``).
        flat: ``{pair name: (N,)}`` bool: either map is flat (``cam.flat_maps``), so the pair
            has nothing to compare.
        maps_a: ``{pair name: (N, H, W)}`` model A's display maps on the common grid (zeros
            where flat).
        maps_b: ``{pair name: (N, H, W)}`` model B's.
    """

    predicted_a: torch.Tensor
    confidence_a: torch.Tensor
    predicted_b: torch.Tensor
    confidence_b: torch.Tensor
    spearman: dict[str, torch.Tensor]
    top_iou: dict[str, torch.Tensor]
    flat: dict[str, torch.Tensor]
    maps_a: dict[str, torch.Tensor]
    maps_b: dict[str, torch.Tensor]


def image_record(
    models: tuple[ComparedModel, ComparedModel],
    pairs: Sequence[LayerPair],
    top_fraction: float,
    agree: bool,
    path: str,
    stem: str,
    index: int,
    result: BatchComparison,
    root: Path,
) -> tuple[dict[str, Any], list[PanelJob]]:
    """Image ``index`` of ``result``: its record and its panel jobs."""
    model_a, model_b = models
    class_a, class_b = int(result.predicted_a[index]), int(result.predicted_b[index])
    side_a = _side(model_a, class_a, result.confidence_a[index])
    side_b = _side(model_b, class_b, result.confidence_b[index])
    layers: dict[str, dict[str, Any]] = {}
    jobs: list[PanelJob] = []
    percent = f"{top_fraction * 100:g}%"
    headline = (
        f"A: {side_a['predicted_label']} ({side_a['confidence']:.2f})  "
        f"B: {side_b['predicted_label']} ({side_b['confidence']:.2f})  "
        f"{'agree' if agree else 'disagree'}"
    )
    captions = ["original", f"A: {model_a.label}", f"B: {model_b.label}"]
    for pair in pairs:
        rho = _finite(float(result.spearman[pair.name][index]))
        iou = _finite(float(result.top_iou[pair.name][index]))
        panel = inside(root, f"{PANEL_DIR}/{stem}_{layer_token(pair.name)}{PANEL_SUFFIX}")
        layers[pair.name] = {
            "layer_a": pair.layer_a,
            "layer_b": pair.layer_b,
            "spearman": rho,
            "top_iou": iou,
            "flat_map": bool(result.flat[pair.name][index]),
            "panel_path": os.fspath(panel),
        }
        title = [headline, f"{pair.name}: Spearman {_show(rho)}, top-{percent} IoU {_show(iou)}"]
        maps = (result.maps_a[pair.name][index].numpy(), result.maps_b[pair.name][index].numpy())
        jobs.append((panel, *maps, title, captions))
    record = {
        "image_path": path,
        "status": "ok",
        "model_a": side_a,
        "model_b": side_b,
        "agree": agree,
        "layers": layers,
    }
    return record, jobs


def _side(model: ComparedModel, predicted: int, confidence: torch.Tensor) -> dict[str, Any]:
    return {
        "predicted_class": predicted,
        "predicted_label": model.class_names[predicted],
        "confidence": round(float(confidence), 4),
    }


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def failure_entries(batch: Batch) -> list[dict[str, Any]]:
    """Journal entries of the batch's unreadable images."""
    return [{"stem": None, "record": error_record(item.path, item.error)} for item in batch.failed]


def finished_entries(
    waiting: list[tuple[Future[None], dict[str, Any], str]],
) -> list[dict[str, Any]]:
    """Journal entries of queued images once their panels are written (or failed)."""
    entries = []
    for future, record, stem in waiting:
        try:
            future.result()
        except Exception as error:  # a panel that cannot be written fails its image only
            record = error_record(
                record["image_path"], f"writing panels failed: {describe_error(error)}"
            )
        entries.append({"stem": stem, "record": record})
    return entries
