"""The CAM engine: target layers, CAM methods, batched maps, statistics and asymmetry mapping."""

from __future__ import annotations

from thermal_explain.cam.asymmetry import mirror_to_full_width, side_attribution
from thermal_explain.cam.engine import CAMEngine, CAMResult, eval_mode
from thermal_explain.cam.layers import default_target_layers, record_outputs, resolve_layers
from thermal_explain.cam.methods import (
    METHODS,
    CAMMethod,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    XGradCAM,
    flat_maps,
    fuse_maps,
    get_method,
    normalize_maps,
    upsample_maps,
)
from thermal_explain.cam.statistics import (
    STATISTICS,
    feature_statistics,
    statistics_at_sizes,
    statistics_records,
)

__all__ = [
    "METHODS",
    "STATISTICS",
    "CAMEngine",
    "CAMMethod",
    "CAMResult",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "XGradCAM",
    "default_target_layers",
    "eval_mode",
    "feature_statistics",
    "flat_maps",
    "fuse_maps",
    "get_method",
    "mirror_to_full_width",
    "normalize_maps",
    "record_outputs",
    "resolve_layers",
    "side_attribution",
    "statistics_at_sizes",
    "statistics_records",
    "upsample_maps",
]
