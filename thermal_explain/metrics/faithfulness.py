"""Faithfulness: does the model's confidence follow the pixels a map calls important?

Two families of scores, both computed per map on the images' device with batched
forwards (perturbed images are built and scored ``chunk_size`` at a time, never one
image per Python iteration):

* **Deletion / insertion** (Petsiuk et al., 2018, "RISE: Randomized Input Sampling
  for Explanation of Black-box Models", BMVC). Pixels are ranked by decreasing
  saliency and, in ``steps`` equal steps, *deletion* replaces the top ``f`` of them
  by a perturbed version of the image while *insertion* starts from the perturbed
  image and restores them. The target-class probability traced against ``f`` in
  ``[0, 1]`` gives two curves; their areas (trapezoid rule) summarize them. A
  faithful map gives a **low deletion AUC** (confidence collapses once the evidence
  is gone) and a **high insertion AUC**.
* **Average drop / increase in confidence** (Chattopadhyay et al., 2018,
  "Grad-CAM++", WACV). The explanation image is ``image * map``; with ``Y`` the
  target probability on the image and ``O`` on the explanation image, the drop is
  ``max(0, Y - O) / Y * 100`` and the increase is ``O > Y``. Their means over a data
  set are the paper's "Average Drop %" and "% Increase in Confidence".

What "removing" a pixel means is set by ``perturbation``:

* ``"blur"`` (default, as in RISE): the pixel takes its value from a Gaussian-blurred
  copy of the image (``blur_sigma``, ``blur_kernel_size``, edges replicated), which
  removes fine detail without inventing new edges;
* ``"zero"``: the pixel is set to 0 in model-input space (the data set's mean colour
  when inputs are normalized);
* ``"mean"``: the pixel is set to the image's own per-channel mean.

Maps are expected on the model-input grid (as :class:`~thermal_explain.cam.engine.CAMEngine`
returns them). ``score_fn`` maps a ``(B, C, H, W)`` batch to ``(B, K)`` class
probabilities; :func:`softmax_scorer` builds one from a model returning logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thermal_explain.cam.engine import eval_mode
from thermal_explain.checks import check_choice, check_int, check_number, expect
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.perturbation import (
    PERTURBATIONS,
    Perturbation,
    curve_auc,
    drop_in_confidence,
    gaussian_blur,
    increase_in_confidence,
    perturbation_reference,
    saliency_ranks,
    step_counts,
)

__all__ = [
    "PERTURBATIONS",
    "ConfidenceChange",
    "PerturbationCurves",
    "ScoreFn",
    "confidence_change",
    "curve_auc",
    "deletion_insertion",
    "drop_in_confidence",
    "gaussian_blur",
    "increase_in_confidence",
    "perturbation_reference",
    "saliency_ranks",
    "softmax_scorer",
    "step_counts",
]


ScoreFn = Callable[[Tensor], Tensor]
"""``(B, C, H, W)`` images -> ``(B, K)`` class probabilities."""


@dataclass(frozen=True)
class PerturbationCurves:
    """Deletion and insertion curves of a set of maps.

    Attributes:
        fractions: ``(S + 1,)`` share of pixels perturbed at each point, 0 to 1.
        deletion: ``(N, S + 1)`` (or ``(N, T, S + 1)``) target probability as the most
            salient pixels are removed.
        insertion: same shape, as they are restored into the perturbed image.
    """

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor

    @property
    def deletion_auc(self) -> Tensor:
        """``(N,)`` (or ``(N, T)``) area under the deletion curve; lower is better."""
        return curve_auc(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> Tensor:
        """``(N,)`` (or ``(N, T)``) area under the insertion curve; higher is better."""
        return curve_auc(self.insertion, self.fractions)


@dataclass(frozen=True)
class ConfidenceChange:
    """Target probabilities on the images and on their explanation images ``image * map``.

    Attributes:
        original: ``(N,)`` (or ``(N, T)``) ``Y``.
        explained: same shape, ``O``.
    """

    original: Tensor
    explained: Tensor

    @property
    def drop(self) -> Tensor:
        """Per-sample drop in confidence in percent (:func:`drop_in_confidence`)."""
        return drop_in_confidence(self.original, self.explained)

    @property
    def increase(self) -> Tensor:
        """Per-sample increase in confidence (:func:`increase_in_confidence`)."""
        return increase_in_confidence(self.original, self.explained)


def softmax_scorer(model: nn.Module) -> ScoreFn:
    """A ``score_fn`` that runs ``model`` in eval mode and softmaxes its logits.

    Every submodule's own training flag is restored after every call.

    Args:
        model: maps ``(B, C, H, W)`` to ``(B, K)`` logits.

    Returns:
        Callable returning ``(B, K)`` probabilities.
    """

    def score(images: Tensor) -> Tensor:
        with eval_mode(model):
            return torch.softmax(model(images), dim=-1)

    return score


@dataclass(frozen=True)
class _Jobs:
    """Maps flattened to one row per (image, target) pair."""

    maps: Tensor  # (M, H, W)
    image_index: Tensor  # (M,)
    targets: Tensor  # (M,)
    shape: torch.Size  # (N,) or (N, T): the per-map output shape


def _flatten_jobs(images: Tensor, maps: Tensor, targets: Tensor | int | Sequence[int]) -> _Jobs:
    """Validate shapes and flatten an optional target axis ``T`` into rows."""
    if images.dim() != 4:
        raise ConfigurationError(
            f"Expected argument `images` to have shape (N, C, H, W) but got {tuple(images.shape)}"
        )
    if maps.dim() not in (3, 4) or maps.shape[0] != images.shape[0]:
        raise ConfigurationError(
            "Expected argument `maps` to have shape (N, H, W) or (N, T, H, W) with N = "
            f"{images.shape[0]} but got {tuple(maps.shape)}"
        )
    if maps.shape[-2:] != images.shape[-2:]:
        raise ConfigurationError(
            f"Expected argument `maps` on the image grid {tuple(images.shape[-2:])} but got "
            f"{tuple(maps.shape[-2:])}; resize the maps to the model-input size first"
        )
    shape = maps.shape[:-2]
    device = images.device
    if isinstance(targets, int):
        targets = torch.full(shape, targets, dtype=torch.long, device=device)
    elif not isinstance(targets, Tensor):
        targets = torch.as_tensor(targets, dtype=torch.long, device=device)
    if targets.shape != shape:
        raise ConfigurationError(
            f"Expected argument `targets` to have shape {tuple(shape)} but got "
            f"{tuple(targets.shape)}"
        )
    if targets.numel() and int(targets.min()) < 0:
        raise ConfigurationError(
            f"Expected argument `targets` to hold class indices >= 0 but got {int(targets.min())}"
        )
    n = images.shape[0]
    per_image = 1 if maps.dim() == 3 else maps.shape[1]
    image_index = torch.arange(n, device=device).repeat_interleave(per_image)
    return _Jobs(
        maps=maps.detach().to(device=device, dtype=images.dtype).reshape(-1, *maps.shape[-2:]),
        image_index=image_index,
        targets=targets.to(device=device, dtype=torch.long).reshape(-1),
        shape=shape,
    )


def _target_scores(
    score_fn: ScoreFn,
    build: Callable[[Tensor], Tensor],
    targets: Tensor,
    chunk_size: int,
) -> Tensor:
    """Score ``len(targets)`` built images ``chunk_size`` at a time.

    ``build(rows)`` returns the ``(B, C, H, W)`` images of rows ``rows``; the result
    holds, for every row, the probability of ``targets[row]``.
    """
    total = targets.shape[0]
    out = torch.empty(total, device=targets.device)
    if total == 0:
        return out
    highest = int(targets.max())
    with torch.no_grad():
        for start in range(0, total, chunk_size):
            rows = torch.arange(start, min(start + chunk_size, total), device=targets.device)
            probabilities = score_fn(build(rows))
            if probabilities.dim() != 2 or highest >= probabilities.shape[1]:
                raise ConfigurationError(
                    "Expected `score_fn` to return (B, K) probabilities with K above every "
                    f"target (max {highest}) but got shape {tuple(probabilities.shape)}"
                )
            picked = probabilities.gather(1, targets[rows].unsqueeze(1)).squeeze(1)
            out[rows] = picked.to(out.dtype)
    return out


def _check_perturbation(perturbation: str, blur_sigma: float, blur_kernel_size: int) -> None:
    check_choice("perturbation", perturbation, PERTURBATIONS)
    check_number("blur_sigma", blur_sigma, 0.0, low_open=True)
    check_int("blur_kernel_size", blur_kernel_size, 1)
    expect(blur_kernel_size % 2 == 1, "blur_kernel_size", "odd", blur_kernel_size)


def deletion_insertion(
    images: Tensor,
    maps: Tensor,
    targets: Tensor | int | Sequence[int],
    score_fn: ScoreFn,
    *,
    steps: int = 16,
    perturbation: Perturbation = "blur",
    blur_sigma: float = 5.0,
    blur_kernel_size: int = 11,
    chunk_size: int = 64,
) -> PerturbationCurves:
    """Deletion and insertion curves (Petsiuk et al., 2018) of every map.

    With pixels ranked by decreasing saliency and ``n_i = round(i * H * W / steps)``:

    * deletion point ``i``: the top ``n_i`` pixels of the image replaced by the
      reference (blurred / zero / mean image, see ``perturbation``);
    * insertion point ``i``: the reference with the top ``n_i`` pixels of the image
      put back.

    Each point is the ``score_fn`` probability of the map's target class. All
    ``2 * M * (steps + 1)`` perturbed images (``M`` maps) are built on the device and
    scored ``chunk_size`` at a time, so memory is bounded by ``chunk_size`` images.

    Args:
        images: ``(N, C, H, W)`` model inputs.
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` saliency on the same grid.
        targets: ``(N,)`` or ``(N, T)`` class explained by each map, or one class for all.
        score_fn: ``(B, C, H, W)`` -> ``(B, K)`` probabilities.
        steps: number of perturbation steps (curves have ``steps + 1`` points).
        perturbation: ``"blur"``, ``"zero"`` or ``"mean"``.
        blur_sigma: Gaussian standard deviation in pixels for ``"blur"``.
        blur_kernel_size: odd Gaussian kernel width in pixels for ``"blur"``.
        chunk_size: images per forward pass.

    Returns:
        :class:`PerturbationCurves`; curves have shape ``maps.shape[:-2] + (steps + 1,)``.

    Raises:
        ConfigurationError: on a bad shape or argument.
    """
    check_int("steps", steps, 1)
    check_int("chunk_size", chunk_size, 1)
    _check_perturbation(perturbation, blur_sigma, blur_kernel_size)
    jobs = _flatten_jobs(images, maps, targets)
    height, width = images.shape[-2:]
    num_pixels = height * width
    reference = perturbation_reference(images, perturbation, blur_sigma, blur_kernel_size)
    ranks = saliency_ranks(jobs.maps)
    counts = step_counts(num_pixels, steps, images.device)
    points = steps + 1
    per_curve = jobs.targets.shape[0] * points

    def build(rows: Tensor) -> Tensor:
        insertion = rows >= per_curve
        job = (rows % per_curve) // points
        step = rows % points
        selected = ranks[job] < counts[step].unsqueeze(1)
        use_reference = (selected ^ insertion.unsqueeze(1)).view(-1, 1, height, width)
        source = jobs.image_index[job]
        return torch.where(use_reference, reference[source], images[source])

    all_targets = jobs.targets.repeat_interleave(points).repeat(2)
    scores = _target_scores(score_fn, build, all_targets, chunk_size)
    curves = scores.view(2, *jobs.shape, points)
    return PerturbationCurves(
        fractions=counts.float() / num_pixels, deletion=curves[0], insertion=curves[1]
    )


def confidence_change(
    images: Tensor,
    maps: Tensor,
    targets: Tensor | int | Sequence[int],
    score_fn: ScoreFn,
    *,
    chunk_size: int = 64,
) -> ConfidenceChange:
    """Target probabilities on the images and on ``image * map`` (Chattopadhyay et al., 2018).

    Args:
        images: ``(N, C, H, W)`` model inputs.
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` maps in ``[0, 1]`` on the same grid.
        targets: ``(N,)`` or ``(N, T)`` class explained by each map, or one class for all.
        score_fn: ``(B, C, H, W)`` -> ``(B, K)`` probabilities.
        chunk_size: images per forward pass.

    Returns:
        :class:`ConfidenceChange` with ``.drop`` (percent) and ``.increase`` per map.

    Raises:
        ConfigurationError: on a bad shape or argument.
    """
    check_int("chunk_size", chunk_size, 1)
    jobs = _flatten_jobs(images, maps, targets)

    def build_original(rows: Tensor) -> Tensor:
        return images[jobs.image_index[rows]]

    def build_explained(rows: Tensor) -> Tensor:
        return images[jobs.image_index[rows]] * jobs.maps[rows].unsqueeze(1)

    original = _target_scores(score_fn, build_original, jobs.targets, chunk_size)
    explained = _target_scores(score_fn, build_explained, jobs.targets, chunk_size)
    return ConfidenceChange(original.view(jobs.shape), explained.view(jobs.shape))
