"""Aggregates over analysis records: localization and sanity summaries per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SANITY_THRESHOLD = 0.5
"""A layer passes the sanity check when its mean |Spearman rho| after randomization is below."""


def localization_summary(
    ok: Sequence[Mapping[str, Any]], layer: str, label: str | None = None
) -> dict[str, float | int]:
    """Pointing-game hit rate, mean energy inside and mean IoU of one layer (one true class).

    Only images with an applicable mask count; ``images`` says how many.
    """
    hits, energies, ious = [], [], []
    for record in ok:
        if label is not None and record.get("true_label") != label:
            continue
        entry = layer_entry_of(record, layer).get("localization") or {}
        if entry.get("status") != "ok":
            continue
        hits.append(float(bool(entry.get("pointing_game_hit"))))
        energies.append(float(entry.get("energy_inside") or 0.0))
        ious.append(float(entry.get("mask_iou") or 0.0))
    if not hits:
        return {"images": 0}
    return {
        "images": len(hits),
        "pointing_game": float(np.mean(hits)),
        "energy_inside": float(np.mean(energies)),
        "mask_iou": float(np.mean(ious)),
    }


def sanity_summary(ok: Sequence[Mapping[str, Any]], layer: str) -> dict[str, Any] | None:
    """Mean |rho| between trained and randomized maps of one layer, and the verdict."""
    values = [
        abs(float(rho))
        for record in ok
        if isinstance(
            rho := (layer_entry_of(record, layer).get("sanity") or {}).get("spearman_randomized"),
            (int, float),
        )
    ]
    if not values:
        return None
    mean = float(np.mean(values))
    passed = mean < SANITY_THRESHOLD
    if passed:
        verdict = (
            f"passes: once the weights are re-initialized the maps of {layer} no longer match "
            f"the trained model's (mean |rho| {mean:.2f} < {SANITY_THRESHOLD}); they depend on "
            "what the model learned."
        )
    else:
        verdict = (
            f"fails: the maps of {layer} barely change when the weights are re-initialized "
            f"(mean |rho| {mean:.2f} >= {SANITY_THRESHOLD}); they reflect the image or the "
            "architecture more than what the model learned: do not read them as its evidence."
        )
    return {"images": len(values), "mean_abs_rho": mean, "passed": passed, "verdict": verdict}


def layer_entry_of(record: Mapping[str, Any], layer: str) -> Mapping[str, Any]:
    """The ``gradcam_results`` entry of ``layer`` in ``record`` (``{}`` when absent)."""
    entry = (record.get("gradcam_results") or {}).get(layer)
    return entry if isinstance(entry, Mapping) else {}
