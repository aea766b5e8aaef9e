"""Every aggregate over analysis records, in one place.

Localization and sanity summaries per layer (report, demo), deletion against a random map,
per-layer values and curves, and class-mean maps read back from ``feature_maps/*.npy``
(summary plots). Pure reads: records are never changed.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
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


def deletion_against_random(
    records: Sequence[Mapping[str, Any]], layers: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """Mean deletion AUC of each layer's maps and of random maps on the same images."""
    result = {}
    for layer in layers:
        aucs = layer_values(records, layer, ("faithfulness", "deletion_auc"))
        randoms = layer_values(records, layer, ("faithfulness", "deletion_auc_random"))
        if aucs and randoms:
            result[layer] = (round(float(np.mean(aucs)), 4), round(float(np.mean(randoms)), 4))
    return result


MEAN_MAP_SIZE = 64


def class_mean_maps(
    records: Sequence[Mapping[str, Any]], class_names: Sequence[str], layers: Sequence[str]
) -> tuple[np.ndarray | None, list[str]]:
    """``(K, L, 64, 64)`` mean normalized map per class and layer, and the ``K`` groups.

    Maps are read back from ``feature_maps/*.npy``; a class without images is NaN (drawn
    empty). Asymmetry maps are mirrored onto the full width first.
    """
    by_truth = grouped_by_truth(records)
    groups = list(class_names)
    sums = np.zeros((len(groups), len(layers), MEAN_MAP_SIZE, MEAN_MAP_SIZE), np.float64)
    counts = np.zeros((len(groups), len(layers)), np.int64)
    found = False
    for record in records:
        label = record["true_label"] if by_truth else record["predicted_label"]
        if label not in groups:
            continue
        row = groups.index(label)
        for column, layer in enumerate(layers):
            entry = record.get("gradcam_results", {}).get(layer)
            raw = _raw_map(entry)
            if raw is None:
                continue
            if entry.get("side_attribution") is not None:
                raw = np.concatenate([raw, raw[:, ::-1]], axis=1)
            sums[row, column] += _normalized(raw)
            counts[row, column] += 1
            found = True
    if not found:
        return None, groups
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, :, None, None]
    return means.astype(np.float32), groups


def grouped_by_truth(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether class-mean maps group images by true label (every image has one), else by
    prediction."""
    return all(record.get("true_label") is not None for record in records)


def _raw_map(entry: Mapping[str, Any] | None) -> np.ndarray | None:
    """The ``feature_maps/*.npy`` of a layer entry, located from its heatmap or overlay."""
    if not entry:
        return None
    for key, suffix in (("heatmap_path", "_heatmap.png"), ("overlay_path", "_overlay.png")):
        value = entry.get(key)
        if isinstance(value, str) and value.endswith(suffix):
            image = Path(value)
            candidate = image.parent.parent / "feature_maps" / (image.name[: -len(suffix)] + ".npy")
            try:
                return _load_map(candidate)
            except OSError:
                continue
    return None


_FLOAT32_MAP = re.compile(
    rb"\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n"
)
"""The ``.npy`` header ``np.save`` writes for a C-ordered ``(h, w)`` little-endian float32."""


def _load_map(path: Path) -> np.ndarray:
    """A saved map as ``(h, w)`` float32 (read-only when it is the usual float32 file).

    The usual file is parsed here: for maps this small ``np.load`` costs several times
    the read itself, and a summary reads one per image and layer. Anything else goes to
    ``np.load``.

    Raises:
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    if data[:8] == b"\x93NUMPY\x01\x00":
        end = 10 + int.from_bytes(data[8:10], "little")
        header = _FLOAT32_MAP.fullmatch(data, 10, end)
        if header is not None:
            shape = (int(header[1]), int(header[2]))
            if len(data) - end == 4 * shape[0] * shape[1]:
                return np.frombuffer(data, "<f4", offset=end).reshape(shape)
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32)


def _normalized(raw: np.ndarray) -> np.ndarray:
    resized = cv2.resize(raw, (MEAN_MAP_SIZE, MEAN_MAP_SIZE), interpolation=cv2.INTER_LINEAR)
    low, high = float(resized.min()), float(resized.max())
    return (resized - low) / (high - low) if high > low else np.zeros_like(resized)


def layer_values(
    records: Sequence[Mapping[str, Any]], layer: str, keys: tuple[str, ...]
) -> list[float]:
    """The numbers at ``keys`` (a path into each record's ``layer`` entry), where present."""
    values = []
    for record in records:
        value: Any = record.get("gradcam_results", {}).get(layer)
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return values


def layer_curves(records: Sequence[Mapping[str, Any]], layer: str, key: str) -> np.ndarray:
    """``(N, S + 1)`` faithfulness curves ``key`` of one layer (the most common length)."""
    rows = defaultdict(list)
    for record in records:
        entry = record.get("gradcam_results", {}).get(layer) or {}
        curve = (entry.get("faithfulness") or {}).get(key)
        if isinstance(curve, list) and curve:
            rows[len(curve)].append(curve)
    if not rows:
        return np.zeros((0, 0), np.float32)
    length = max(rows, key=lambda n: len(rows[n]))
    return np.asarray(rows[length], dtype=np.float32)


def is_correct(record: Mapping[str, Any]) -> bool | None:
    """Whether a successful record's prediction names its true class.

    Names match exactly or, failing that, ignoring case (folder ``ICAS``, class ``icas``).
    ``None`` when the record failed or its true label is unknown.
    """
    truth, predicted = record.get("true_label"), record.get("predicted_label")
    if record.get("status") != "ok" or not isinstance(truth, str) or not isinstance(predicted, str):
        return None
    return truth == predicted or truth.casefold() == predicted.casefold()


def accuracy_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy over the successful records with a known true label, overall and per class.

    Returns:
        ``{"labelled": n, "correct": c, "accuracy": c / n or None, "per_class": {label:
        {"images": n, "correct": c, "recall": c / n}}}`` (classes by true label, sorted).
    """
    per_class: dict[str, dict[str, Any]] = {}
    for record in records:
        verdict = is_correct(record)
        if verdict is None:
            continue
        counts = per_class.setdefault(str(record["true_label"]), {"images": 0, "correct": 0})
        counts["images"] += 1
        counts["correct"] += int(verdict)
    for counts in per_class.values():
        counts["recall"] = counts["correct"] / counts["images"]
    labelled = sum(counts["images"] for counts in per_class.values())
    correct = sum(counts["correct"] for counts in per_class.values())
    return {
        "labelled": labelled,
        "correct": correct,
        "accuracy": correct / labelled if labelled else None,
        "per_class": dict(sorted(per_class.items())),
    }


def misclassified(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Successful records whose prediction is wrong, the most confident mistakes first."""
    wrong = [record for record in records if is_correct(record) is False]
    return sorted(wrong, key=lambda record: -_confidence(record))


def least_confident_correct(
    records: Sequence[Mapping[str, Any]], count: int
) -> list[Mapping[str, Any]]:
    """The ``count`` correct predictions with the lowest confidence, lowest first."""
    right = [record for record in records if is_correct(record) is True]
    return sorted(right, key=_confidence)[:count]


def failed_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records of images that failed, in their order."""
    return [record for record in records if record.get("status") != "ok"]


def _confidence(record: Mapping[str, Any]) -> float:
    value = record.get("confidence")
    return float(value) if isinstance(value, (int, float)) else 0.0


def thermal_asymmetry_summary(
    ok: Sequence[Mapping[str, Any]], class_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The left-right readout's distribution per class (true label, else predicted) and units.

    One dict per group, classes in ``class_names`` order, then any other: ``class``,
    ``units``, ``images``, ``delta`` (``mean``, ``std``, ``min``, ``median``, ``max``),
    ``mean_abs_delta``, ``colder_left``, ``colder_right``, and for degrees the
    ``threshold`` and how many images exceed it (``flagged``). Images whose readout is
    unknown are left out.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in ok:
        readout = record.get("thermal_asymmetry")
        if not isinstance(readout, Mapping) or not isinstance(readout.get("delta"), (int, float)):
            continue
        label = record.get("true_label") or record.get("predicted_label")
        groups[(str(label), str(readout.get("units")))].append(readout)
    order = [str(name) for name in class_names]
    rows = []
    for (label, units), readouts in sorted(
        groups.items(), key=lambda item: (_position(order, item[0][0]), item[0])
    ):
        deltas = np.asarray([float(r["delta"]) for r in readouts], dtype=np.float64)
        sides = [r.get("colder_side") for r in readouts]
        row: dict[str, Any] = {
            "class": label,
            "units": units,
            "images": len(readouts),
            "delta": {
                "mean": float(deltas.mean()),
                "std": float(deltas.std()),
                "min": float(deltas.min()),
                "median": float(np.median(deltas)),
                "max": float(deltas.max()),
            },
            "mean_abs_delta": float(np.abs(deltas).mean()),
            "colder_left": sides.count("left"),
            "colder_right": sides.count("right"),
        }
        thresholds = [r["threshold"] for r in readouts if isinstance(r.get("threshold"), float)]
        if units == "celsius" and thresholds:
            row["threshold"] = thresholds[0]
            row["flagged"] = sum(1 for r in readouts if r.get("exceeds_threshold") is True)
        rows.append(row)
    return rows


def colder_side_agreement(
    ok: Sequence[Mapping[str, Any]], lesion_sides: Mapping[str, str | None]
) -> dict[str, Any]:
    """How often the readout's ``colder_side`` names the known lesion side.

    Args:
        ok: successful records.
        lesion_sides: image path -> ``left``/``right`` (``None`` without a lesion).

    Returns:
        ``{"images": n, "agree": k, "rate": k / n}`` over the images with a known side
        (``rate`` is ``None`` when there are none).
    """
    pairs = [
        ((record.get("thermal_asymmetry") or {}).get("colder_side"), side)
        for record in ok
        if (side := lesion_sides.get(str(record.get("image_path")))) is not None
    ]
    agree = sum(1 for colder, side in pairs if colder == side)
    return {"images": len(pairs), "agree": agree, "rate": agree / len(pairs) if pairs else None}


def _position(order: list[str], label: str) -> int:
    return order.index(label) if label in order else len(order)
