"""What a predict run records about itself: its manifest and the facts its report shows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import lightning as L
from torch import nn

from thermal_explain.data.preprocessing import Preprocessing
from thermal_explain.modeling.checkpoints import TrainedWeights
from thermal_explain.output.html import ReportSettings
from thermal_explain.pipeline.explainer import Explainer
from thermal_explain.pipeline.manifest import analysis_manifest, model_facts
from thermal_explain.pipeline.run import OutputOptions


def weights_in_use(pl_module: L.LightningModule) -> TrainedWeights | None:
    """The weights the run will use (``ckpt_path``'s or the module's), when it can tell."""
    trained_weights = getattr(pl_module, "trained_weights", None)
    return trained_weights() if callable(trained_weights) else None


def output_options(datamodule: Any, **drawing: Any) -> OutputOptions:
    """The run's output options: ``drawing`` (colormap, alphas, figures), and the temperature
    scale and window of the data module's preprocessing, so files are drawn as they were read."""
    preprocessing = getattr(datamodule, "preprocessing", None)
    known = isinstance(preprocessing, Preprocessing)
    return OutputOptions(
        **drawing,
        temperature_scale=preprocessing.temperature_scale if known else None,
        temperature_range=preprocessing.temperature_range if known else None,
    )


def predict_manifest(
    weights: TrainedWeights | None,
    module: nn.Module,
    explainer: Explainer,
    datamodule: Any,
    output: OutputOptions,
) -> dict[str, Any]:
    """What makes a predict run's results (``run_manifest.json``).

    ``weights`` (known before Lightning restores ``ckpt_path``) are fingerprinted when
    given, else the explained ``module``'s own.
    """
    state = weights.state if weights is not None else module.state_dict()
    path = weights.path if weights is not None else None
    backbone = getattr(module, "backbone_name", None)
    preprocessing = getattr(datamodule, "preprocessing", None)
    return analysis_manifest(
        model_facts(state, explainer.class_names, path, backbone),
        preprocessing.to_dict() if isinstance(preprocessing, Preprocessing) else None,
        getattr(datamodule, "preprocessing_from", "unknown"),
        explainer.settings(),
        asdict(output),
    )


def report_settings(
    method: str, target: int | str | None, metrics: list[str], datamodule: Any
) -> ReportSettings:
    """The facts ``report.html`` shows for a predict run, and where its masks are."""
    shown_target = "the predicted class" if target is None else str(target)
    facts = {"Method": method, "Target": shown_target, "Metrics": ", ".join(metrics) or "none"}
    masks = getattr(datamodule, "mask_dir", None) is not None
    return ReportSettings(facts=facts, mask_lookup=datamodule.mask_path if masks else None)
