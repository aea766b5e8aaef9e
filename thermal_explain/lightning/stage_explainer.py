"""The explainer a ``GradCAMCallback`` stage uses, from its settings and the module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import lightning as L
import torch

from thermal_explain.cam import default_target_layers
from thermal_explain.cam.modes import random_state_kept
from thermal_explain.cam.precision import lightning_precision
from thermal_explain.lightning.modules import count_classes, explained_module, resolve_class_names
from thermal_explain.metrics.readout import ReadoutOptions
from thermal_explain.metrics.suite import MetricOptions
from thermal_explain.modeling.checkpoints import TrainedWeights
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.pipeline.explainer import Explainer


class ExplainerSettings(Protocol):
    """What of a ``GradCAMCallback`` its explainer is built from."""

    model_attr: str | None
    class_names: list[str] | None
    layers: list[str] | None
    method: str
    target: Any
    fuse: bool
    metrics: Sequence[str]
    metric_steps: int
    lesion_polarity: str
    readout: ReadoutOptions


def stage_explainer(
    callback: ExplainerSettings,
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    images: torch.Tensor | None,
    predicting: bool,
    weights: TrainedWeights | None,
) -> Explainer:
    """An explainer for ``pl_module`` (or its ``model_attr``) with the callback's settings.

    Args:
        callback: the callback whose method, layers, target and metrics apply.
        trainer: the running trainer (class names, precision, the data's masks).
        pl_module: the module being trained or run.
        images: ``(N, C, H, W)`` a batch to count classes and find default layers on;
            ``None`` for the cooperating ``ThermalClassifier`` before its first batch.
        predicting: a predict run (fused map, metrics and masks), else validation probes.
        weights: the checkpoint in use (its class names, when it stores them).
    """
    module = explained_module(pl_module, callback.model_attr)
    owner = ".".join(part for part in (type(pl_module).__name__, callback.model_attr) if part)
    if images is None:
        count = len(pl_module.class_names)
    else:
        with random_state_kept():
            count = count_classes(module, images, owner)
    names = resolve_class_names(callback.class_names, trainer, pl_module, count)
    stored = weights.class_names if weights is not None else None
    if callback.class_names is None and stored is not None and len(stored) == count:
        names = list(stored)  # ckpt_path's weights, restored only after setup
    layers = callback.layers
    if layers is None:
        layers = default_target_layers(module, images)
    mask_lookup = None
    if predicting and getattr(trainer.datamodule, "mask_dir", None) is not None:
        mask_lookup = trainer.datamodule.mask_path
    encoder = callback.model_attr is None and isinstance(pl_module, ThermalClassifier)
    return Explainer(
        module,
        names,
        layers=layers,
        method=callback.method,
        target=callback.target,
        asymmetry=encoder and pl_module.use_asymmetry,
        fuse=callback.fuse and predicting,
        metrics=callback.metrics if predicting else (),
        mask_lookup=mask_lookup,
        metric_options=MetricOptions(steps=callback.metric_steps),
        precision=lightning_precision(trainer.precision),
        lesion_polarity=callback.lesion_polarity,
        readout=callback.readout,
    )
