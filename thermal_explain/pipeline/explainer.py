"""Batch -> explained images: the one path shared by the CLI, the Python API and the callback."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from thermal_explain.cam import CAMEngine, CAMResult
from thermal_explain.cam.asymmetry import FACE_BACKGROUND_GAP, SideChoice, choose_sides
from thermal_explain.cam.statistics import statistics_at_sizes, statistics_records
from thermal_explain.checks import check_choice, expect
from thermal_explain.data.thermal import POLARITIES
from thermal_explain.metrics.readout import ReadoutOptions, readout_records, thermal_readout
from thermal_explain.metrics.suite import MaskLookup, MetricOptions, QualityMetrics
from thermal_explain.types import FUSED, Batch, ExplainedImage, FailedItem, LayerExplanation

__all__ = ["FUSED", "NON_FINITE", "ExplainedBatch", "Explainer"]

log = logging.getLogger(__name__)


@dataclass
class ExplainedBatch:
    """What one batch produced: explained images and the inputs that failed to load."""

    items: list[ExplainedImage]
    failed: list[FailedItem] = field(default_factory=list)


class Explainer:
    """Runs the CAM engine on a :class:`Batch` and packs per-image results for the writer.

    Args:
        encoder: the classifier to explain (``ThermalEncoder``); layer names are relative to it.
        class_names: ``K`` class names, index-aligned with the logits.
        layers: dotted layer names; ``None`` picks the last convolution of each stage.
        method: CAM method name (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``,
            ``hirescam``).
        target: ``None`` for the predicted class, a class index or name for every image.
        asymmetry: whether inputs are 6-channel left/mirrored-right stacks.
        fuse: add a ``fused`` map (all layers combined) to every image.
        metrics: quality metrics to compute (see :mod:`thermal_explain.metrics.suite`).
        mask_lookup: image path -> mask file, for the localization metric.
        metric_options: settings of the metrics.
        precision: the engine's precision (``32-true``, ``bf16-mixed``, ``16-mixed``).
        lesion_polarity: ``none`` draws asymmetry-mode maps on both sides of the face;
            ``cold`` (``warm``) on the colder (warmer) point of each mirrored pair only,
            and localization then scores the full face (see
            :func:`~thermal_explain.cam.asymmetry.choose_sides`).
        readout: the left-right thermal readout's settings
            (:mod:`~thermal_explain.metrics.readout`); every image read from a file gets one.
    """

    def __init__(
        self,
        encoder: nn.Module,
        class_names: Sequence[str],
        *,
        layers: Sequence[str] | None = None,
        method: str = "gradcam",
        target: int | str | None = None,
        asymmetry: bool = False,
        fuse: bool = False,
        metrics: Sequence[str] = (),
        mask_lookup: MaskLookup | None = None,
        metric_options: MetricOptions | None = None,
        precision: str = "32-true",
        lesion_polarity: str = "none",
        readout: ReadoutOptions | None = None,
    ) -> None:
        self.class_names = list(class_names)
        self.target = target
        self.asymmetry = asymmetry
        self.fuse = fuse
        self.lesion_polarity = check_choice("lesion_polarity", lesion_polarity, POLARITIES)
        self.readout = readout or ReadoutOptions()
        self.engine = CAMEngine(
            encoder,
            layers=layers,
            method=method,
            class_names=self.class_names,
            asymmetry=asymmetry,
            precision=precision,
        )
        expect(
            self.readout.map in (FUSED, *self.engine.layers),
            "readout_map",
            f"fused or one of the explained layers ({', '.join(self.engine.layers)})",
            self.readout.map,
        )
        self._part_size: int | None = None
        self.quality = QualityMetrics(
            encoder,
            metrics,
            layers=self.engine.layers,
            method=method,
            mask_lookup=mask_lookup,
            options=metric_options,
        )

    def settings(self) -> dict[str, object]:
        """What shapes this explainer's maps and metrics (for run manifests)."""
        options = self.quality.options
        return {
            "method": self.engine.method.name,
            "layers": self.engine.layers,
            "target": self.target,
            "fuse": self.fuse,
            "metrics": list(self.quality.metrics),
            "metric_options": {"steps": options.steps, "perturbation": options.perturbation},
            # float32 runs keep the manifest they had before precision was a setting
            **({} if self.engine.precision == "32-true" else {"precision": self.engine.precision}),
            "lesion_polarity": self.lesion_polarity,
            "readout": asdict(self.readout),
        }

    @property
    def layers(self) -> list[str]:
        """The names of the maps each image gets: the target layers (and ``fused``)."""
        return [*self.engine.layers, *([FUSED] if self.fuse else [])]

    def __call__(self, batch: Batch) -> ExplainedBatch:
        """Explain every readable image of ``batch`` in one forward and one backward pass.

        Images whose logits or maps are not finite become failed items ("the model produced
        non-finite values"), never records with empty numbers. When the accelerator runs
        out of memory the batch is explained in halves (down to one image), and later
        batches in parts of the size that worked; the records are the same.
        """
        if len(batch) == 0:
            return ExplainedBatch([], list(batch.failed))
        if self._part_size is not None and len(batch) > self._part_size:
            return self._in_parts(batch, self._part_size)
        try:
            explained = self._explain(batch)
        except RuntimeError as error:
            if not _out_of_memory(error) or len(batch) == 1:
                raise
            self._part_size = (len(batch) + 1) // 2
            log.warning(
                "out of memory explaining %d images at once: going on in batches of %d",
                len(batch),
                self._part_size,
            )
            _free_cached_memory(batch.images.device)
            return self._in_parts(batch, self._part_size)
        return ExplainedBatch(explained.items, [*batch.failed, *explained.failed])

    def _in_parts(self, batch: Batch, size: int) -> ExplainedBatch:
        items: list[ExplainedImage] = []
        failed = list(batch.failed)
        for start in range(0, len(batch), size):
            part = self(batch.select(range(start, min(start + size, len(batch)))))
            items.extend(part.items)
            failed.extend(part.failed)
        return ExplainedBatch(items, failed)

    def _explain(self, batch: Batch) -> ExplainedBatch:
        """Explain the readable images of ``batch`` (its failed items are the caller's)."""
        result = self.engine(batch.images, target=self.target, original_sizes=batch.original_sizes)
        finite = finite_images(result)
        if not bool(finite.all()):
            keep = finite.nonzero().flatten().tolist()
            labels = batch.labels.tolist()
            failed = [
                FailedItem(path, NON_FINITE, self._label(labels[i]))
                for i, path in enumerate(batch.paths)
                if not finite[i]
            ]
            kept = self._explain(batch.select(keep)).items if keep else []
            return ExplainedBatch(kept, failed)
        sides = self._sides(batch)
        fused = self._fused(result, batch, sides) if self.fuse else None
        metrics = (
            self.quality(batch, result, fused.raw_map if fused else None, sides)
            if self.quality
            else None
        )
        readout = self._readout(result, batch, fused)
        shown = _drawn_on_sides(result, sides, batch) if sides is not None else result
        items = self.to_items(shown, batch)
        for i, item in enumerate(items):
            if batch.input_kinds is not None:
                item.input_kind = batch.input_kinds[i]
            if batch.temperatures is not None:
                item.temperature = batch.temperatures[i]
            if batch.celsius is not None:
                item.celsius = batch.celsius[i]
            if readout is not None:
                item.thermal_asymmetry = readout[i]
            if fused is not None:
                item.layers[FUSED] = LayerExplanation(
                    display_map=fused.display_map[i].float().cpu(),
                    raw_map=fused.raw_map[i].float().cpu(),
                    statistics=fused.statistics[i],
                )
            for layer, values in (metrics[i] if metrics else {}).items():
                item.layers[layer].metrics.update(values)
        return ExplainedBatch(items, [])

    def _label(self, index: int) -> str | None:
        return self.class_names[index] if 0 <= index < len(self.class_names) else None

    def _sides(self, batch: Batch) -> SideChoice | None:
        """Where to draw asymmetry maps given the lesion polarity (``None``: on both sides)."""
        if self.lesion_polarity == "none" or not self.asymmetry or batch.signals is None:
            return None
        return choose_sides(batch.signals, self.lesion_polarity, min_gap=_face_gaps(batch))

    def _readout(
        self, result: CAMResult, batch: Batch, fused: _Fused | None
    ) -> list[dict[str, object]] | None:
        """The ``thermal_asymmetry`` entry of every image (``None`` without signals)."""
        if batch.signals is None:
            return None
        if self.readout.map != FUSED:
            maps = result.maps[self.readout.map][:, 0]
        elif fused is not None:
            maps = fused.raw_map
        else:
            maps = result.fused("max", display=False)[:, 0]
        readout = thermal_readout(maps, batch.signals, self.readout.fraction, _face_gaps(batch))
        units = ["celsius" if kind != "image" else "intensity" for kind in _kinds(batch)]
        return readout_records(readout, units, self.readout)

    @staticmethod
    def _fused(result: CAMResult, batch: Batch, sides: SideChoice | None = None) -> _Fused:
        """All layers fused (element-wise max of the normalized maps), as an extra map."""
        raw = result.fused("max", display=False)
        display = sides.draw(raw) if sides is not None else result.fused("max", display=True)
        statistics = statistics_records(statistics_at_sizes(display, batch.original_sizes))
        return _Fused(display[:, 0], raw[:, 0], [_rounded(record) for record in statistics])

    def to_items(self, result: CAMResult, batch: Batch) -> list[ExplainedImage]:
        """Split a batched :class:`CAMResult` into per-image records on the CPU."""
        probabilities = result.probabilities.detach().float().cpu()
        predicted = result.predicted.cpu().tolist()
        targets = result.targets[:, 0].cpu().tolist()
        labels = batch.labels.cpu().tolist()
        display = {
            name: maps[:, 0].detach().float().cpu() for name, maps in result.display_maps.items()
        }
        raw = {name: maps[:, 0].detach().float().cpu() for name, maps in result.raw_maps.items()}
        statistics = {
            name: [_rounded(record) for record in result.statistics_records(name)]
            for name in result.maps
        }
        sides = result.side_attribution
        sides = sides[:, 0].detach().float().cpu().tolist() if sides is not None else None
        backgrounds = batch.backgrounds or [None] * len(batch.paths)
        originals = batch.originals or [None] * len(batch.paths)
        items = []
        for i, path in enumerate(batch.paths):
            layers = {
                name: LayerExplanation(
                    display_map=display[name][i],
                    raw_map=raw[name][i],
                    statistics=statistics[name][i],
                    side_attribution=_sides(sides[i]) if sides is not None else None,
                )
                for name in display
            }
            items.append(
                ExplainedImage(
                    image_path=path,
                    index=int(batch.indices[i]),
                    predicted_class=predicted[i],
                    predicted_label=self.class_names[predicted[i]],
                    confidence=round(float(probabilities[i, predicted[i]]), 4),
                    true_label=self.class_names[labels[i]] if labels[i] >= 0 else None,
                    target_label=self.class_names[targets[i]],
                    layers=layers,
                    probabilities=[round(p, 4) for p in probabilities[i].tolist()],
                    background=backgrounds[i],
                    original=originals[i],
                )
            )
        return items


@dataclass
class _Fused:
    display_map: torch.Tensor
    raw_map: torch.Tensor
    statistics: list[dict[str, object]]


def _kinds(batch: Batch) -> list[str]:
    return batch.input_kinds if batch.input_kinds is not None else ["image"] * len(batch)


def _face_gaps(batch: Batch) -> torch.Tensor:
    """``(N,)`` background gap that finds the face: in degrees for temperature inputs;
    pictures have no absolute scale, so none (infinite) for them."""
    gaps = [FACE_BACKGROUND_GAP if kind != "image" else math.inf for kind in _kinds(batch)]
    device = batch.signals.device if batch.signals is not None else None
    return torch.tensor(gaps, device=device)


def _drawn_on_sides(result: CAMResult, sides: SideChoice, batch: Batch) -> CAMResult:
    """``result`` with every display map drawn on the chosen side only, and its statistics."""
    layers = result.layers
    display = torch.stack([sides.draw(result.maps[name]) for name in layers], 1)
    stats = statistics_at_sizes(display, batch.original_sizes)  # (N, L, T) values
    statistics = {
        name: {stat: values[:, i] for stat, values in stats.items()}
        for i, name in enumerate(layers)
    }
    display_maps = {name: display[:, i] for i, name in enumerate(layers)}
    return replace(result, display_maps=display_maps, statistics=statistics)


def _rounded(statistics: dict[str, object]) -> dict[str, object]:
    """Floats to 4 decimals (what a JSON reader needs), integers and lists unchanged."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in statistics.items()}


def _sides(pair: list[float]) -> dict[str, float]:
    return {"left": round(pair[0], 4), "right": round(pair[1], 4)}


NON_FINITE = (
    "the model produced non-finite values (NaN or infinity) for this image; check the "
    "checkpoint's weights"
)


def finite_images(result: CAMResult) -> torch.Tensor:
    """``(N,)`` bool: the image's logits and every layer's maps are finite."""
    finite = torch.isfinite(result.logits).all(1)
    for maps in result.raw_maps.values():
        finite &= torch.isfinite(maps.flatten(1)).all(1)
    return finite


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error)


def _free_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
