"""What the analysis report shows of each record: plain values the templates only print.

Building the view is pure (records in, view objects out), apart from checking which output
files exist so that no link points at nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thermal_explain.metrics.summaries import is_correct, layer_entry_of
from thermal_explain.output.html.links import display_name, output_file, short_layer
from thermal_explain.output.html.pictures import Pictures
from thermal_explain.types import FUSED

CURVE_WIDTH = 240
CURVE_HEIGHT = 140
CURVE_PAD = 24

UNITS = {"celsius": "°C", "kelvin": "K", "intensity": ""}


@dataclass
class LayerView:
    """One map of one image: its files and numbers."""

    name: str
    short: str
    overlay: str | None
    heatmap: str | None
    figure: str | None
    statistics: dict[str, Any]
    sides: dict[str, Any] | None
    localization: dict[str, Any] | None
    faithfulness: dict[str, Any] | None
    sanity: dict[str, Any] | None
    curves: dict[str, str] = field(default_factory=dict)

    @property
    def numbers(self) -> list[tuple[str, str]]:
        """``(label, text)`` of every number of the layer's record entry."""
        rows = [
            (name.replace("_", " "), _text_of(value)) for name, value in self.statistics.items()
        ]
        if self.sides:
            sides = f"{_fixed(self.sides.get('left'), 2)} / {_fixed(self.sides.get('right'), 2)}"
            rows.append(("evidence left / right", sides))
        faith = self.faithfulness or {}
        if "deletion_auc" in faith:
            random = faith.get("deletion_auc_random")
            extra = f" (random map {_fixed(random)})" if random is not None else ""
            rows.append(("deletion AUC", _fixed(faith["deletion_auc"]) + extra))
        if "insertion_auc" in faith:
            rows.append(("insertion AUC", _fixed(faith["insertion_auc"])))
        if "drop_in_confidence" in faith:
            rows.append(("drop in confidence", f"{_fixed(faith['drop_in_confidence'], 2)} %"))
        located = self.localization or {}
        if located.get("status") == "ok":
            rows.append(("peak in mask", "yes" if located.get("pointing_game_hit") else "no"))
            rows.append(("energy inside mask", _fixed(located.get("energy_inside"))))
            rows.append(("mask IoU", _fixed(located.get("mask_iou"))))
        elif located:
            rows.append(("localization", str(located.get("status", "")).replace("_", " ")))
        rho = (self.sanity or {}).get("spearman_randomized")
        if _is_number(rho):
            rows.append(("ρ with randomized model", _fixed(rho, 2)))
        return rows


@dataclass
class ImageView:
    """One record as the report shows it."""

    index: int
    id: str
    page: str
    name: str
    image_path: str
    status: str
    error: str | None
    true_label: str | None
    predicted_label: str | None
    confidence: float | None
    correct: bool | None
    layers: list[LayerView]
    input_kind: str | None
    temperature: dict[str, Any] | None
    asymmetry: dict[str, Any] | None
    pictures: Pictures = field(default_factory=Pictures)
    _by_name: dict[str, LayerView] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def verdict(self) -> str:
        """``yes``, ``no`` or ``unknown`` (for filters)."""
        return {True: "yes", False: "no"}.get(self.correct, "unknown")  # type: ignore[arg-type]

    def layer(self, name: str | None) -> LayerView | None:
        """The view of map ``name`` (``None`` when the record has none)."""
        if self._by_name is None:
            self._by_name = {layer.name: layer for layer in self.layers}
        return self._by_name.get(name) if name is not None else None


def layer_order(records: Sequence[Mapping[str, Any]], layers: Sequence[str]) -> list[str]:
    """``layers`` in their order, then any other map the records hold."""
    order = [str(layer) for layer in layers]
    for record in records:
        for layer in record.get("gradcam_results") or {}:
            if layer not in order:
                order.append(layer)
    return order


def key_layer(layers: Sequence[str]) -> str | None:
    """The layer whose metrics the overview table shows: the deepest CAM layer."""
    cams = [layer for layer in layers if layer != FUSED]
    return cams[-1] if cams else (layers[-1] if layers else None)


def image_view(
    index: int,
    record: Mapping[str, Any],
    image_id: str,
    page: str,
    layers: Sequence[str],
    root: Path,
    input_root: str | None,
) -> ImageView:
    """The view of record number ``index`` (its page is ``page``, relative to ``root``);
    its pictures are added once drawn."""
    path = str(record.get("image_path", ""))
    views = []
    for name in layers:
        entry = layer_entry_of(record, name)
        if entry:
            views.append(_layer_view(name, entry, root))
    confidence = record.get("confidence")
    return ImageView(
        index=index,
        id=image_id,
        page=page,
        name=display_name(path, input_root),
        image_path=path,
        status=str(record.get("status", "error")),
        error=record.get("error"),
        true_label=_text(record.get("true_label")),
        predicted_label=_text(record.get("predicted_label")),
        confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
        correct=is_correct(record),
        layers=views,
        input_kind=_text(record.get("input_kind")),
        temperature=_mapping(record.get("temperature")),
        asymmetry=_mapping(record.get("thermal_asymmetry")),
    )


def _layer_view(name: str, entry: Mapping[str, Any], root: Path) -> LayerView:
    faithfulness = _mapping(entry.get("faithfulness"))
    curves = {}
    if faithfulness:
        for key in ("deletion_curve", "insertion_curve"):
            points = curve_points(faithfulness.get(key))
            if points:
                curves[key.removesuffix("_curve")] = points
    return LayerView(
        name=name,
        short=short_layer(name),
        overlay=output_file(entry.get("overlay_path"), root),
        heatmap=output_file(entry.get("heatmap_path"), root),
        figure=output_file(entry.get("overlay_plt_path"), root),
        statistics=dict(_mapping(entry.get("feature_statistics")) or {}),
        sides=_mapping(entry.get("side_attribution")),
        localization=_mapping(entry.get("localization")),
        faithfulness=faithfulness,
        sanity=_mapping(entry.get("sanity")),
        curves=curves,
    )


def curve_points(values: object) -> str | None:
    """SVG polyline points of a 0..1 curve in the ``CURVE_WIDTH x CURVE_HEIGHT`` chart."""
    if not isinstance(values, list) or len(values) < 2:
        return None
    numbers = [float(v) if isinstance(v, (int, float)) else 0.0 for v in values]
    span_x, span_y = CURVE_WIDTH - 2 * CURVE_PAD, CURVE_HEIGHT - 2 * CURVE_PAD
    last = len(numbers) - 1
    return " ".join(
        f"{CURVE_PAD + span_x * step / last:.1f},"
        f"{CURVE_PAD + span_y * (1 - min(max(value, 0.0), 1.0)):.1f}"
        for step, value in enumerate(numbers)
    )


def units(mapping: Mapping[str, Any] | None) -> str:
    """The display unit of a temperature or asymmetry readout (``°C``; none for intensity)."""
    name = str((mapping or {}).get("units", ""))
    return UNITS.get(name, name)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fixed(value: object, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals (integers as they are); ``–`` when not a number."""
    if not _is_number(value) or value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _text_of(value: object) -> str:
    """A statistic as text: numbers fixed, lists (a centre of mass) joined."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text_of(item) for item in value)
    return _fixed(value) if _is_number(value) else str(value)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _mapping(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None
