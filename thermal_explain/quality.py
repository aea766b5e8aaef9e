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
  has no mask file and ``not_applicable`` for an all-zero mask. In asymmetry mode each face
  half of the map is first scaled by its ``side_attribution`` share (:func:`side_weighted`).
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

from thermal_explain.cam import CAMResult
from thermal_explain.errors import ConfigurationError, ThermalExplainError
from thermal_explain.images import read_mask
from thermal_explain.metrics import (
    cascading_randomization,
    confidence_change,
    deletion_insertion,
    evaluate_localization,
    softmax_scorer,
)
from thermal_explain.metrics.sanity import cam_explainer
from thermal_explain.types import Batch

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
    sanity_threshold: float = 0.5
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
        self, batch: Batch, result: CAMResult, fused: torch.Tensor | None = None
    ) -> list[dict[str, dict[str, object]]]:
        """Per image, per layer (and ``"fused"`` when given): the metric dicts."""
        per_image: list[dict[str, dict[str, object]]] = [{} for _ in range(len(batch))]
        if {"deletion", "insertion", "confidence"} & set(self.metrics):
            self._faithfulness(batch, result, per_image)
        if "localization" in self.metrics:
            display = {name: maps[:, 0] for name, maps in result.display_maps.items()}
            if fused is not None:
                display["fused"] = fused
            if result.side_attribution is not None:
                display = {
                    name: side_weighted(maps, result.side_attribution[:, 0])
                    for name, maps in display.items()
                }
            self._localization(batch, display, per_image)
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
        display: dict[str, torch.Tensor],
        per_image: list[dict[str, dict[str, object]]],
    ) -> None:
        assert self.mask_lookup is not None
        grid = next(iter(display.values())).shape[-2:]
        masks, present = _read_masks(batch, self.mask_lookup, (int(grid[0]), int(grid[1])))
        # Tolerance is given in original-image pixels; the maps live on the input grid.
        scale = (
            torch.tensor([grid[1] / max(width, 1) for _, width in batch.original_sizes])
            .median()
            .item()
        )
        tolerance = self.options.tolerance * scale
        masks = masks.to(next(iter(display.values())).device)
        for layer, maps in display.items():
            records = evaluate_localization(
                maps, masks, tolerance=tolerance, threshold=self.options.iou_threshold
            ).to_records()
            for i, entry in enumerate(per_image):
                record = _rounded(records[i]) if present[i] else {"status": "no_mask"}
                entry.setdefault(layer, {})["localization"] = record

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
                threshold=self.options.sanity_threshold,
                seed=self.options.seed,
            )
        for layer, sanity in outcome.layers.items():
            rho = sanity.rho.flatten(2)[..., 0] if sanity.rho.dim() > 2 else sanity.rho
            final = rho[-1].tolist()
            for i, entry in enumerate(per_image):
                entry.setdefault(layer, {})["sanity"] = {"spearman_randomized": _rounded(final[i])}


def side_weighted(display: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """Asymmetry-mode maps for localization: each face half scaled by its evidence share.

    A map on the 6-channel half-width grid is drawn on both halves alike, so it cannot say
    on which side the evidence lies; ``side_attribution`` can. Scaling the left half by the
    left share and the right half by the right share (then renormalizing) gives a map whose
    peak sits on the side the model relies on.

    Args:
        display: ``(N, H, W)`` full-width maps (right half mirrored).
        sides: ``(N, 2)`` ``[left, right]`` shares.

    Returns:
        ``(N, H, W)`` maps in 0..1.
    """
    width = display.shape[-1]
    half = width // 2
    weights = torch.ones_like(display)
    weights[..., :half] = sides[:, 0, None, None]
    weights[..., width - half :] = sides[:, 1, None, None]
    weighted = display * weights
    peak = weighted.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return weighted / peak


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
