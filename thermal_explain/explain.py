"""Batch -> explained images: the one path shared by the CLI, the Python API and the callback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from thermal_explain.cam import CAMEngine, CAMResult
from thermal_explain.types import Batch, ExplainedImage, FailedItem, LayerExplanation


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
        layers: dotted layer names; ``None`` picks the last conv of each ResNet stage.
        method: CAM method name (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``,
            ``hirescam``).
        target: ``None`` for the predicted class, a class index or name for every image.
        asymmetry: whether inputs are 6-channel left/mirrored-right stacks.
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
    ) -> None:
        self.class_names = list(class_names)
        self.target = target
        self.asymmetry = asymmetry
        self.engine = CAMEngine(
            encoder, layers=layers, method=method, class_names=self.class_names, asymmetry=asymmetry
        )

    @property
    def layers(self) -> list[str]:
        """The resolved target layer names."""
        return list(self.engine.layers)

    def __call__(self, batch: Batch) -> ExplainedBatch:
        """Explain every readable image of ``batch`` in one forward and one backward pass."""
        if len(batch) == 0:
            return ExplainedBatch([], list(batch.failed))
        result = self.engine(batch.images, target=self.target, original_sizes=batch.original_sizes)
        return ExplainedBatch(self.to_items(result, batch), list(batch.failed))

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
                )
            )
        return items


def _rounded(statistics: dict[str, object]) -> dict[str, object]:
    """Floats to 4 decimals (what a JSON reader needs), integers and lists unchanged."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in statistics.items()}


def _sides(pair: list[float]) -> dict[str, float]:
    return {"left": round(pair[0], 4), "right": round(pair[1], 4)}
