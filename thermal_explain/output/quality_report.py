"""The report's heatmap-quality sections: localization per class, faithfulness against a
random map, and the randomization sanity check with a verdict per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from thermal_explain.metrics.summaries import layer_entry_of, localization_summary, sanity_summary


def quality_sections(
    ok: Sequence[Mapping[str, Any]], layers: Sequence[str], class_names: Sequence[str]
) -> list[str]:
    """Report lines for whichever metrics the records carry (nothing when none)."""
    return [
        *_localization(ok, layers, class_names),
        *_faithfulness(ok, layers),
        *_sanity(ok, layers),
    ]


def _localization(
    ok: Sequence[Mapping[str, Any]], layers: Sequence[str], class_names: Sequence[str]
) -> list[str]:
    rows = []
    groups = [None, *class_names]
    for layer in layers:
        for label in groups:
            summary = localization_summary(ok, layer, label)
            if summary["images"]:
                rows.append(
                    f"  {layer:<26} {label or 'all':<10} {summary['images']:>6}  "
                    f"{summary['pointing_game']:>13.1%}  {summary['energy_inside']:>13.4f}  "
                    f"{summary['mask_iou']:>8.4f}"
                )
    if not rows:
        return []
    missing = sum(
        1
        for record in ok
        if (layer_entry_of(record, layers[0]).get("localization") or {}).get("status") == "no_mask"
    )
    header = (
        f"  {'layer':<26} {'class':<10} {'images':>6}  {'pointing game':>13}  "
        f"{'energy inside':>13}  {'mask IoU':>8}"
    )
    notes = [f"  ({missing} images had no mask and were skipped)"] if missing else []
    entries = [layer_entry_of(record, layers[0]).get("localization") or {} for record in ok]
    if any(entry.get("sides") == "folded" for entry in entries):
        notes.append(
            "  (asymmetry mode: maps scored on the half-width input grid against the mask "
            "folded onto it; a hit is a peak at the lesion or at its mirror point)"
        )
    return [
        "Localization against the masks (images with a non-empty mask; the map of each "
        "image's true class where it is known):",
        header,
        *rows,
        *notes,
        "",
    ]


def _faithfulness(ok: Sequence[Mapping[str, Any]], layers: Sequence[str]) -> list[str]:
    rows = []
    for layer in layers:
        found = [layer_entry_of(r, layer).get("faithfulness") or {} for r in ok]
        deletion = [f["deletion_auc"] for f in found if "deletion_auc" in f]
        random = [f["deletion_auc_random"] for f in found if "deletion_auc_random" in f]
        insertion = [f["insertion_auc"] for f in found if "insertion_auc" in f]
        if not (deletion or insertion):
            continue
        cells = [
            f"{np.mean(deletion):.4f}" if deletion else "-",
            f"{np.mean(random):.4f}" if random else "-",
            f"{np.mean(insertion):.4f}" if insertion else "-",
        ]
        better = (
            ("yes" if np.mean(deletion) < np.mean(random) else "no") if deletion and random else "-"
        )
        rows.append(f"  {layer:<26} {cells[0]:>12}  {cells[1]:>12}  {cells[2]:>13}  {better:>9}")
    if not rows:
        return []
    header = (
        f"  {'layer':<26} {'deletion AUC':>12}  {'random map':>12}  {'insertion AUC':>13}  "
        f"{'beats rnd':>9}"
    )
    return [
        "Faithfulness (deletion: lower is better; insertion: higher is better):",
        header,
        *rows,
        "",
    ]


def _sanity(ok: Sequence[Mapping[str, Any]], layers: Sequence[str]) -> list[str]:
    lines = []
    for layer in layers:
        summary = sanity_summary(ok, layer)
        if summary is not None:
            lines.append(f"  {layer}: {summary['verdict']}")
    if not lines:
        return []
    return [
        "Sanity check (cascading model-parameter randomization, Adebayo et al. 2018):",
        *lines,
        "",
    ]
