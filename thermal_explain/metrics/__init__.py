"""Are the heatmaps right? Faithfulness, localization, sanity and similarity metrics.

The math lives in small pure functions over batched tensors; the ``evaluate_*`` and
``cascading_randomization`` entry points return result records with JSON-ready
``to_records`` / ``to_dict`` views.
"""

from __future__ import annotations

from thermal_explain.metrics.faithfulness import (
    ConfidenceChange,
    PerturbationCurves,
    confidence_change,
    curve_auc,
    deletion_insertion,
    drop_in_confidence,
    increase_in_confidence,
    softmax_scorer,
)
from thermal_explain.metrics.localization import (
    LocalizationResult,
    energy_inside,
    evaluate_localization,
    mask_iou,
    pointing_game,
    resize_masks,
)
from thermal_explain.metrics.sanity import (
    LayerSanity,
    SanityResult,
    cascading_randomization,
    default_cascade,
)
from thermal_explain.metrics.similarity import spearman_correlation, top_fraction_iou

__all__ = [
    "ConfidenceChange",
    "LayerSanity",
    "LocalizationResult",
    "PerturbationCurves",
    "SanityResult",
    "cascading_randomization",
    "confidence_change",
    "curve_auc",
    "default_cascade",
    "deletion_insertion",
    "drop_in_confidence",
    "energy_inside",
    "evaluate_localization",
    "increase_in_confidence",
    "mask_iou",
    "pointing_game",
    "resize_masks",
    "softmax_scorer",
    "spearman_correlation",
    "top_fraction_iou",
]
