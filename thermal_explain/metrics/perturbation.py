"""The pure math under the faithfulness scores: blurring, pixel ranks, steps, curve areas."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Perturbation = Literal["blur", "zero", "mean"]


PERTURBATIONS: tuple[str, ...] = ("blur", "zero", "mean")


def gaussian_blur(images: Tensor, sigma: float = 5.0, kernel_size: int = 11) -> Tensor:
    """Separable Gaussian blur of every channel, edges replicated.

    The kernel is ``g(x) = exp(-x^2 / (2 sigma^2))`` for ``x`` in
    ``-(k // 2) .. k // 2``, normalized to sum 1, applied along rows then columns.

    Args:
        images: ``(N, C, H, W)`` float images.
        sigma: standard deviation in pixels.
        kernel_size: odd kernel width ``k`` in pixels.

    Returns:
        ``(N, C, H, W)`` blurred copy.
    """
    n, c, h, w = images.shape
    offsets = torch.arange(kernel_size, device=images.device, dtype=images.dtype)
    offsets = offsets - kernel_size // 2
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    kernel = kernel / kernel.sum()
    half = kernel_size // 2
    planes = images.reshape(n * c, 1, h, w)
    planes = F.pad(planes, (half, half, half, half), mode="replicate")
    planes = F.conv2d(planes, kernel.view(1, 1, 1, kernel_size))
    planes = F.conv2d(planes, kernel.view(1, 1, kernel_size, 1))
    return planes.reshape(n, c, h, w)


def perturbation_reference(
    images: Tensor,
    perturbation: Perturbation = "blur",
    blur_sigma: float = 5.0,
    blur_kernel_size: int = 11,
) -> Tensor:
    """The image a removed pixel takes its value from (see the module docstring).

    Args:
        images: ``(N, C, H, W)`` model inputs.
        perturbation: ``"blur"``, ``"zero"`` or ``"mean"``.
        blur_sigma: Gaussian standard deviation for ``"blur"``.
        blur_kernel_size: odd Gaussian kernel width for ``"blur"``.

    Returns:
        ``(N, C, H, W)`` fully perturbed images.
    """
    if perturbation == "blur":
        return gaussian_blur(images, blur_sigma, blur_kernel_size)
    if perturbation == "zero":
        return torch.zeros_like(images)
    return images.mean(dim=(-2, -1), keepdim=True).expand_as(images).clone()


def saliency_ranks(maps: Tensor) -> Tensor:
    """Position of every pixel in the order of decreasing saliency.

    Rank 0 is the most salient pixel; tied pixels are ordered row-major, so the order
    is deterministic.

    Args:
        maps: ``(M, H, W)`` saliency maps.

    Returns:
        ``(M, H * W)`` long ranks, a permutation of ``0 .. H * W - 1`` per map.
    """
    flat = maps.reshape(maps.shape[0], -1)
    order = torch.argsort(flat, dim=-1, descending=True, stable=True)
    positions = torch.arange(flat.shape[-1], device=maps.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def step_counts(num_pixels: int, steps: int, device: torch.device | str = "cpu") -> Tensor:
    """How many pixels are perturbed after each step: ``round(i * P / steps)``.

    Args:
        num_pixels: ``P = H * W``.
        steps: number of steps; the curve has ``steps + 1`` points (``i = 0 .. steps``).
        device: where to put the result.

    Returns:
        ``(steps + 1,)`` long counts from 0 to ``P``.
    """
    return torch.linspace(0, num_pixels, steps + 1, device=device).round().long()


def curve_auc(curves: Tensor, fractions: Tensor) -> Tensor:
    """Area under curves sampled at ``fractions`` of ``[0, 1]`` (trapezoid rule).

    .. math::
        \\mathrm{AUC} = \\sum_i \\tfrac{1}{2} (f_{i+1} - f_i)(p_i + p_{i+1})

    Args:
        curves: ``(..., S + 1)`` probabilities.
        fractions: ``(S + 1,)`` increasing fractions from 0 to 1.

    Returns:
        ``(...)`` areas in ``[0, 1]``.
    """
    return torch.trapezoid(curves, x=fractions.to(curves), dim=-1)


def drop_in_confidence(original: Tensor, explained: Tensor) -> Tensor:
    """Per-sample drop in confidence, in percent (Chattopadhyay et al., 2018).

    ``100 * max(0, Y - O) / Y``; its mean over a data set is "Average Drop %". ``Y`` is
    clamped below at ``1e-12`` so a zero original probability gives 0, not NaN.

    Args:
        original: ``(...)`` target probabilities ``Y`` on the images.
        explained: ``(...)`` target probabilities ``O`` on ``image * map``.

    Returns:
        ``(...)`` float drops in ``[0, 100]``.
    """
    return 100.0 * (original - explained).clamp_min(0) / original.clamp_min(1e-12)


def increase_in_confidence(original: Tensor, explained: Tensor) -> Tensor:
    """Per-sample increase in confidence: ``O > Y``; its mean is "% Increase in Confidence".

    Args:
        original: ``(...)`` target probabilities ``Y`` on the images.
        explained: ``(...)`` target probabilities ``O`` on ``image * map``.

    Returns:
        ``(...)`` bool.
    """
    return explained > original
