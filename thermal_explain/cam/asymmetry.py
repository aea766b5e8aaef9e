r"""Asymmetry mode: maps back onto the full face, and the left/right share of the evidence.

The model input stacks the two halves of a face: channels 0-2 hold the left half and
channels 3-5 the right half mirrored, both ``w`` pixels wide, so one position of the
half-width grid is a pair of mirror-symmetric points of the face.
"""

from __future__ import annotations

import torch

from thermal_explain.errors import ConfigurationError


def mirror_to_full_width(maps: torch.Tensor, full_width: int | None = None) -> torch.Tensor:
    """Draw half-width maps on both halves of the full-width face.

    The left half is the map, the right half its mirror image:
    ``cat([m, flip(m, -1)], -1)``. For an odd ``full_width`` (``2w + 1``) the middle column,
    which belongs to neither half, repeats the map's column at the midline.

    Args:
        maps: ``(..., H, w)`` maps on the 6-channel model-input grid.
        full_width: width of the full image; ``None`` means ``2w``.

    Returns:
        ``(..., H, full_width)`` maps.

    Raises:
        ConfigurationError: ``full_width`` is neither ``2w`` nor ``2w + 1``.
    """
    half = maps.shape[-1]
    full_width = 2 * half if full_width is None else full_width
    if full_width not in (2 * half, 2 * half + 1):
        raise ConfigurationError(
            f"Expected argument `full_width` to be {2 * half} or {2 * half + 1} for maps "
            f"{half} pixels wide but got {full_width}"
        )
    parts = [maps, maps[..., -1:]] if full_width % 2 else [maps]
    return torch.cat([*parts, maps.flip(-1)], -1)


def side_attribution(images: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    r"""Share of the target score's evidence that comes from the left and the right face.

    The evidence of each input value is its gradient-times-input contribution, taken in
    absolute value, summed over channels and pixels of each half:

    .. math::

        E_{\text{left}} = \sum_{c < 3} \sum_{i,j} |x_{cij}\, \partial y / \partial x_{cij}|,
        \qquad
        E_{\text{right}} = \sum_{c \ge 3} \sum_{i,j} |x_{cij}\, \partial y / \partial x_{cij}|,

    returned as ``[E_left, E_right] / (E_left + E_right)``, or ``[0.5, 0.5]`` when both are 0.

    Why this measure: both halves sit on the same spatial grid, so a CAM (a map over
    positions) cannot tell them apart; only the input channels can. Gradient x input is
    the first-order contribution of each input value to the score, and its gradient comes
    from the same backward pass as the CAM's. The absolute value keeps evidence for and
    against the class from cancelling within a side and keeps both shares in 0..1. It is
    not spatially weighted by a CAM, so it is one answer per image and target, the same
    for every layer. Values near the normalization mean contribute little (the implicit
    baseline is a zero input), which is the usual caveat of gradient x input.

    Args:
        images: ``(N, 6, h, w)`` model input.
        gradients: ``(N, 6, h, w)`` or ``(N, T, 6, h, w)`` gradient of the score(s) with
            respect to ``images``.

    Returns:
        ``(N, 2)`` or ``(N, T, 2)`` fractions ``[left, right]`` summing to 1.

    Raises:
        ConfigurationError: ``images`` does not have 6 channels.
    """
    if images.ndim != 4 or images.shape[1] != 6:
        raise ConfigurationError(
            f"Expected argument `images` to be (N, 6, H, W) left/mirrored-right stacks "
            f"but got shape {tuple(images.shape)}"
        )
    if gradients.ndim == 5:
        images = images.unsqueeze(1)
    energy = (images.float() * gradients.float()).abs().sum((-2, -1))
    sides = torch.stack([energy[..., :3].sum(-1), energy[..., 3:].sum(-1)], -1)
    total = sides.sum(-1, keepdim=True)
    return torch.where(total > 0, sides / torch.where(total > 0, total, 1), 0.5)


def fold_to_half_width(masks: torch.Tensor, half_width: int) -> torch.Tensor:
    """Fold full-width masks onto the half-width grid: the inverse of the mirror drawing.

    A half-width position stands for a pair of mirror-symmetric points of the face, so it
    is inside the folded mask when either point is inside: ``left | flip(right)``. For an
    odd full width the middle column joins the column at the midline.

    Args:
        masks: ``(..., H, W)`` masks, bool or numeric (non-zero = inside).
        half_width: ``w``, the model-input width; ``W`` must be ``2w`` or ``2w + 1``.

    Returns:
        ``(..., H, w)`` bool masks.

    Raises:
        ConfigurationError: ``W`` is neither ``2w`` nor ``2w + 1``.
    """
    width = masks.shape[-1]
    if width not in (2 * half_width, 2 * half_width + 1):
        raise ConfigurationError(
            f"Expected argument `masks` to be {2 * half_width} or {2 * half_width + 1} pixels "
            f"wide for a half width of {half_width} but got {width}"
        )
    inside = masks != 0
    folded = inside[..., :half_width] | inside[..., width - half_width :].flip(-1)
    if width % 2:
        folded[..., -1] |= inside[..., half_width]
    return folded
