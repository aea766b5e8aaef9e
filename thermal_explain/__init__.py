"""Grad-CAM explainability for contrastive thermal-image classifiers, built into Lightning.

Exports load on first use, so ``import thermal_explain`` stays light (writer worker
processes import submodules without paying for Lightning).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from thermal_explain.cam import (
        CAMEngine,
        CAMResult,
        GradCAM,
        GradCAMPlusPlus,
        HiResCAM,
        LayerCAM,
        XGradCAM,
    )
    from thermal_explain.data.datamodule import ThermalDataModule
    from thermal_explain.lightning.callback import GradCAMCallback
    from thermal_explain.modeling.classifier import ThermalClassifier
    from thermal_explain.modeling.encoder import ThermalEncoder
    from thermal_explain.pipeline.analyzer import ThermalInterpretabilityAnalyzer
    from thermal_explain.pipeline.explainer import Explainer

_EXPORTS = {
    "ThermalInterpretabilityAnalyzer": "thermal_explain.pipeline.analyzer",
    "GradCAMCallback": "thermal_explain.lightning.callback",
    "CAMEngine": "thermal_explain.cam",
    "CAMResult": "thermal_explain.cam",
    "GradCAM": "thermal_explain.cam",
    "GradCAMPlusPlus": "thermal_explain.cam",
    "XGradCAM": "thermal_explain.cam",
    "LayerCAM": "thermal_explain.cam",
    "HiResCAM": "thermal_explain.cam",
    "ThermalDataModule": "thermal_explain.data.datamodule",
    "Explainer": "thermal_explain.pipeline.explainer",
    "ThermalClassifier": "thermal_explain.modeling.classifier",
    "ThermalEncoder": "thermal_explain.modeling.encoder",
}

__all__ = [
    "CAMEngine",
    "CAMResult",
    "Explainer",
    "GradCAM",
    "GradCAMCallback",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ThermalClassifier",
    "ThermalDataModule",
    "ThermalEncoder",
    "ThermalInterpretabilityAnalyzer",
    "XGradCAM",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
