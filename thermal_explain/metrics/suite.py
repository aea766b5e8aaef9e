"""Heatmap quality inside a run: faithfulness, localization and sanity metrics per layer.

Each metric is opt-in by name (``metrics: [deletion, insertion, localization, ...]``); the
costly ones (deletion/insertion curves, the randomization sanity check) are off unless asked
for. Results land in each layer's entry of the image record:

- ``faithfulness``: ``deletion_auc`` (lower is better), ``insertion_auc`` (higher is better),
  their curves, ``deletion_auc_random`` (the same images with a random map: the baseline a
  faithful map must beat), ``drop_in_confidence`` (percent) and ``increase_in_confidence``.
  Pixels are removed (deletion) or restored (insertion) in order of decreasing saliency on
  the model-input grid; a removed pixel takes its value from a Gaussian-blurred copy of the
  image (``perturbation: blur``) or a constant (``zero``/``mean``).
- ``localization`` (needs ``mask_dir``): pointing-game hit (the map's peak within
  ``tolerance`` pixels of the mask, 15 px of the original image by default), energy inside
  the mask and IoU of the map thresholded at 0.5; ``status`` says ``no_mask`` when the image
  has no mask file and ``not_applicable`` for an all-zero mask. As in the pointing game's
  protocol the scored map is the true class's (``"target": "true_class"``; recomputed for
  misclassified images), or the explained class's where the label is unknown. In
  asymmetry mode the maps are scored on their own half-width grid against the mask folded
  onto it (``"sides": "folded"`` in the record; see :func:`localization_maps`), unless a
  lesion polarity draws them on one side: then on the full face (``"sides": "cold"``).
- ``sanity``: Spearman rho between the map and the map of a copy of the model whose weights
  were re-initialized from the top layer down (Adebayo et al., 2018); the report gives a
  verdict per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from thermal_explain.cam import CAMEngine, CAMResult, fuse_maps
from thermal_explain.cam.asymmetry import SideChoice, fold_to_half_width
from thermal_explain.data.images import read_mask
from thermal_explain.errors import ConfigurationError, ThermalExplainError
from thermal_explain.metrics import (
    cascading_randomization,
    confidence_change,
    deletion_insertion,
    evaluate_localization,
    softmax_scorer,
)
from thermal_explain.metrics.sanity import cam_explainer
from thermal_explain.metrics.summaries import SANITY_THRESHOLD
from thermal_explain.types import FUSED, Batch

METRICS = ("deletion", "insertion", "confidence", "localization", "sanity")
ALIASES = {
    "faithfulness": ("deletion", "insertion", "confidence"),
    "pointing_game": ("localization",),
    "all": METRICS,
}

MaskLookup = Callable[[str], Path | None]


def parse_metrics(names: Sequence[str] | None) -> tuple[str, ...]:
    """Validate metric names (aliases expanded), in canonical order."""
    chosen: set[str] = set()
    for name in names or ():
        key = str(name).strip().lower()
        if key in ALIASES:
            chosen.update(ALIASES[key])
        elif key in METRICS:
            chosen.add(key)
        else:
            valid = ", ".join([*METRICS, *ALIASES])
            raise ConfigurationError(
                f"Expected argument `metrics` to name some of {valid} but got {name!r}"
            )
    return tuple(name for name in METRICS if name in chosen)


@dataclass(frozen=True)
class MetricOptions:
    """Settings of the metrics (see the module docstring)."""

    steps: int = 16
    perturbation: str = "blur"
    tolerance: float = 15.0
    iou_threshold: float = 0.5
    seed: int = 0


class QualityMetrics:
    """Computes the chosen metrics of a batch's maps; one dict per image and layer.

    Args:
        encoder: the explained classifier.
        metrics: names from :data:`METRICS`.
        layers: the explained layers (for the sanity check's own maps).
        method: the CAM method (for the sanity check's own maps).
        mask_lookup: image path -> its mask file (``None`` when it has none).
        options: metric settings.
    """

    def __init__(
        self,
        encoder: nn.Module,
        metrics: Sequence[str],
        *,
        layers: Sequence[str],
        method: str,
        mask_lookup: MaskLookup | None = None,
        options: MetricOptions | None = None,
    ) -> None:
        self.encoder = encoder
        self.metrics = parse_metrics(metrics)
        self.layers = list(layers)
        self.method = method
        self.mask_lookup = mask_lookup
        self.options = options or MetricOptions()
        if "localization" in self.metrics and mask_lookup is None:
            raise ConfigurationError(
                "the localization metric needs masks; pass mask_dir (--mask_dir) or drop it "
                "from metrics"
            )

    def __bool__(self) -> bool:
        return bool(self.metrics)

    def __call__(
        self,
        batch: Batch,
        result: CAMResult,
        fused: torch.Tensor | None = None,
        sides: SideChoice | None = None,
    ) -> list[dict[str, dict[str, object]]]:
        """Per image, per layer (and ``"fused"`` when given): the metric dicts.

        Args:
            batch: the explained batch.
            result: the engine's result for it.
            fused: ``(N, H, w)`` fused map on the model-input grid, or ``None``.
            sides: where asymmetry maps are drawn (a lesion polarity); localization then
                scores them on the full face. ``None``: folded.
        """
        per_image: list[dict[str, dict[str, object]]] = [{} for _ in range(len(batch))]
        if {"deletion", "insertion", "confidence"} & set(self.metrics):
            self._faithfulness(batch, result, per_image)
        if "localization" in self.metrics:
            maps = localization_maps(result, fused)
            self._localization(batch, result, maps, per_image, sides)
        if "sanity" in self.metrics:
            self._sanity(batch, result, per_image)
        return per_image

    def _faithfulness(
        self, batch: Batch, result: CAMResult, per_image: list[dict[str, dict[str, object]]]
    ) -> None:
        score = softmax_scorer(self.encoder)
        targets = result.targets[:, 0]
        images = batch.images.detach()
        curves_wanted = {"deletion", "insertion"} & set(self.metrics)
        random_auc = None
        if "deletion" in self.metrics:
            generator = torch.Generator(device="cpu").manual_seed(self.options.seed)
            noise = torch.rand(images.shape[0], *images.shape[-2:], generator=generator)
            random_auc = deletion_insertion(
                images,
                noise.to(images.device),
                targets,
                score,
                steps=self.options.steps,
                perturbation=self.options.perturbation,
            ).deletion_auc.tolist()
        for layer, maps in result.maps.items():
            values: dict[str, list] = {}
            if curves_wanted:
                curves = deletion_insertion(
                    images,
                    maps[:, 0],
                    targets,
                    score,
                    steps=self.options.steps,
                    perturbation=self.options.perturbation,
                )
                if "deletion" in self.metrics:
                    values["deletion_auc"] = curves.deletion_auc.tolist()
                    values["deletion_curve"] = curves.deletion.tolist()
                    values["deletion_auc_random"] = random_auc or []
                if "insertion" in self.metrics:
                    values["insertion_auc"] = curves.insertion_auc.tolist()
                    values["insertion_curve"] = curves.insertion.tolist()
            if "confidence" in self.metrics:
                change = confidence_change(images, maps[:, 0], targets, score)
                values["drop_in_confidence"] = change.drop.tolist()
                values["increase_in_confidence"] = change.increase.tolist()
            for i, entry in enumerate(per_image):
                entry.setdefault(layer, {})["faithfulness"] = {
                    key: _rounded(column[i]) for key, column in values.items()
                }

    def _localization(
        self,
        batch: Batch,
        result: CAMResult,
        maps: dict[str, torch.Tensor],
        per_image: list[dict[str, dict[str, object]]],
        sides: SideChoice | None = None,
    ) -> None:
        assert self.mask_lookup is not None
        asymmetry = result.side_attribution is not None
        folded = asymmetry and sides is None
        grid = next(iter(result.display_maps.values())).shape[-2:]
        height, width = int(grid[0]), int(grid[1])
        masks, present = _read_masks(batch, self.mask_lookup, (height, width))
        if folded:
            masks = fold_to_half_width(masks, next(iter(maps.values())).shape[-1])
        maps = self._true_class_maps(batch, result, maps, present)
        if asymmetry and sides is not None:
            maps = {name: sides.draw(layer_maps) for name, layer_maps in maps.items()}
        # Tolerance is given in original-image pixels; the maps live on the input grid.
        scale = (
            torch.tensor([width / max(original, 1) for _, original in batch.original_sizes])
            .median()
            .item()
        )
        tolerance = self.options.tolerance * scale
        masks = masks.to(next(iter(maps.values())).device)
        known = (batch.labels >= 0).tolist()
        for layer, layer_maps in maps.items():
            records = evaluate_localization(
                layer_maps, masks, tolerance=tolerance, threshold=self.options.iou_threshold
            ).to_records()
            for i, entry in enumerate(per_image):
                record = _rounded(records[i]) if present[i] else {"status": "no_mask"}
                if present[i]:
                    record["target"] = "true_class" if known[i] else "explained_class"
                    if folded:
                        record["sides"] = "folded"
                    elif asymmetry and sides is not None:
                        record["sides"] = sides.polarity
                entry.setdefault(layer, {})["localization"] = record

    def _true_class_maps(
        self,
        batch: Batch,
        result: CAMResult,
        maps: dict[str, torch.Tensor],
        present: list[bool],
    ) -> dict[str, torch.Tensor]:
        """``maps`` with the true class's map wherever the run explained another class.

        The pointing game asks whether the map of the ground-truth class points at the
        object (Zhang et al., 2016), so a misclassified image with a mask gets the map of
        its label, from one more pass over those images only.
        """
        labels = batch.labels.to(result.targets.device)
        redo = (labels >= 0) & (labels != result.targets[:, 0])
        redo &= torch.tensor(present, device=labels.device)
        if not bool(redo.any()):
            return maps
        index = redo.nonzero().flatten()
        with torch.inference_mode(False):
            engine = CAMEngine(self.encoder, layers=self.layers, method=self.method)
            images = batch.images.index_select(0, index.to(batch.images.device)).clone()
            true_maps = engine(images, target=labels[index].clone()).maps
        replaced = {name: layer_maps.clone() for name, layer_maps in maps.items()}
        for name, layer_maps in true_maps.items():
            replaced[name][index] = layer_maps[:, 0].to(replaced[name].dtype)
        if FUSED in replaced:
            replaced[FUSED][index] = fuse_maps(true_maps, "max")[:, 0].to(replaced[FUSED].dtype)
        return replaced

    def _sanity(
        self, batch: Batch, result: CAMResult, per_image: list[dict[str, dict[str, object]]]
    ) -> None:
        # Lightning's predict loop runs under inference mode: a model copied there would hold
        # inference tensors, which autograd cannot use; copy it (and the images) outside.
        with torch.inference_mode(False):
            explain = cam_explainer(
                batch.images.detach().clone(),
                result.targets[:, 0].clone(),
                layers=self.layers,
                method=self.method,
            )
            outcome = cascading_randomization(
                self.encoder,
                explain,
                threshold=SANITY_THRESHOLD,
                seed=self.options.seed,
            )
        for layer, sanity in outcome.layers.items():
            rho = sanity.rho.flatten(2)[..., 0] if sanity.rho.dim() > 2 else sanity.rho
            final = rho[-1].tolist()
            for i, entry in enumerate(per_image):
                entry.setdefault(layer, {})["sanity"] = {"spearman_randomized": _rounded(final[i])}


def localization_maps(result: CAMResult, fused: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The maps localization scores: ``{layer: (N, H, w)}`` on the model-input grid.

    In RGB mode that grid is the image's. In asymmetry mode it is half as wide: each
    position stands for a point of the left face and its mirror point on the right, and a
    map drawn on the full face is the same on both halves. Which of the two points holds
    the evidence cannot be read from the pair alone (a warmer left cheek and a cooler right
    cheek give the same left-right difference), so the maps are scored where they live,
    against the mask folded onto the same grid (:func:`fold_to_half_width`): a hit means the
    map's peak is at the lesion or its mirror point.

    Args:
        result: the engine's result.
        fused: ``(N, H, w)`` fused map on the model-input grid, or ``None``.
    """
    maps = {name: layer_maps[:, 0] for name, layer_maps in result.maps.items()}
    if fused is not None:
        maps[FUSED] = fused
    return maps


def _read_masks(
    batch: Batch, lookup: MaskLookup, size: tuple[int, int]
) -> tuple[torch.Tensor, list[bool]]:
    """``(N, H, W)`` bool masks on the map grid, and which images have a mask file."""
    masks = torch.zeros(len(batch), *size, dtype=torch.bool)
    present = []
    for i, path in enumerate(batch.paths):
        mask_path = lookup(path)
        if mask_path is None or not Path(mask_path).is_file():
            present.append(False)
            continue
        try:
            masks[i] = torch.from_numpy(read_mask(mask_path, size))
        except ThermalExplainError:
            present.append(False)
            continue
        present.append(True)
    return masks, present


def _rounded(value: object) -> object:
    """Floats to 4 decimals, through lists and dicts."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value
