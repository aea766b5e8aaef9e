"""Run facts for the reports: counts, accuracy, per-layer quality, and the run manifest."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from thermal_explain.metrics.summaries import (
    accuracy_summary,
    layer_entry_of,
    localization_summary,
    sanity_summary,
)

MANIFEST_FILE = "run_manifest.json"

Fact = tuple[str, str]
"""``(label, value)``: one line of a facts table."""


def read_manifest(root: Path) -> dict[str, Any] | None:
    """``root/run_manifest.json`` as a dict; ``None`` when it is missing or unreadable."""
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_summary(manifest: Mapping[str, Any]) -> list[Fact]:
    """The facts a reader looks for first: model, weights, preprocessing, method, target."""
    facts: list[Fact] = []
    models = manifest.get("models")
    sides = models.items() if isinstance(models, Mapping) else [("", manifest.get("model"))]
    for side, model in sides:
        if not isinstance(model, Mapping):
            continue
        label = f"Model {side.upper()}" if side else "Model"
        backbone = f" ({model['backbone']})" if model.get("backbone") else ""
        facts.append((label, f"{as_text(model.get('path'))}{backbone}"))
        if model.get("fingerprint"):
            facts.append((f"{label} weights", as_text(model["fingerprint"])))
    preprocessing = manifest.get("preprocessing")
    if isinstance(preprocessing, Mapping):
        source = (manifest.get("model") or {}).get("preprocessing_from")
        text = as_text(preprocessing) + (f" (from the {source})" if source else "")
        facts.append(("Preprocessing", text))
    for key, label in (("method", "Method"), ("metrics", "Metrics"), ("created", "Created")):
        if key in manifest:
            facts.append((label, as_text(manifest[key])))
    if "target" in manifest:
        target = manifest["target"]
        facts.append(("Target", "the predicted class" if target is None else as_text(target)))
    return facts


def manifest_facts(manifest: Mapping[str, Any]) -> list[Fact]:
    """Every entry of a manifest as ``(dotted key, text)``, nested entries flattened."""
    facts: list[Fact] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            facts.append((prefix, as_text(value)))

    walk("", {key: value for key, value in manifest.items() if key != "tool"})
    return facts


def as_text(value: object) -> str:
    """A short readable form of a JSON value (lists joined with commas)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(as_text(item) for item in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {as_text(item)}" for key, item in value.items()) or "none"
    return str(value)


def count_facts(records: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> list[Fact]:
    """Images, failures, predicted classes and accuracy (when true labels are known)."""
    ok = [record for record in records if record.get("status") == "ok"]
    failed = len(records) - len(ok)
    facts = [("Images", f"{len(records)} analysed: {len(ok)} ok, {failed} failed")]
    predicted = Counter(str(record.get("predicted_label")) for record in ok)
    order = [name for name in class_names if name in predicted]
    order += sorted(name for name in predicted if name not in order)
    if order:
        facts.append(("Predicted", ", ".join(f"{name} {predicted[name]}" for name in order)))
    accuracy = accuracy_summary(records)
    if accuracy["labelled"]:
        facts.append(
            (
                "Accuracy",
                f"{accuracy['accuracy']:.1%} ({accuracy['correct']} of {accuracy['labelled']} "
                "images with a known true label)",
            )
        )
        facts.append(
            (
                "Recall per class",
                ", ".join(
                    f"{label} {counts['recall']:.1%} ({counts['correct']}/{counts['images']})"
                    for label, counts in accuracy["per_class"].items()
                ),
            )
        )
    else:
        facts.append(("Accuracy", "unknown (no true labels: use class folders for them)"))
    return facts


def quality_rows(ok: Sequence[Mapping[str, Any]], layers: Sequence[str]) -> list[dict[str, Any]]:
    """Per layer: mean activation area and the means of the quality metrics (``None`` where
    the records carry none)."""
    rows = []
    for layer in layers:
        entries = [layer_entry_of(record, layer) for record in ok]
        entries = [entry for entry in entries if entry]
        if not entries:
            continue
        row: dict[str, Any] = {"layer": layer, "images": len(entries)}
        row["area"] = _mean(
            (entry.get("feature_statistics") or {}).get("activation_area") for entry in entries
        )
        faithfulness = [entry.get("faithfulness") or {} for entry in entries]
        for key in ("deletion_auc", "deletion_auc_random", "insertion_auc"):
            row[key] = _mean(item.get(key) for item in faithfulness)
        located = localization_summary(ok, layer)
        for key in ("images", "pointing_game", "energy_inside", "mask_iou"):
            row[f"loc_{key}"] = located.get(key)
        row["sanity"] = sanity_summary(ok, layer)
        rows.append(row)
    return rows


def _mean(values: Any) -> float | None:
    numbers = [
        float(value)
        for value in values
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    return float(np.mean(numbers)) if numbers else None
