r"""Asymmetry mode: maps back onto the full face, and the left/right share of the evidence.

The model input stacks the two halves of a face: channels 0-2 hold the left half and
channels 3-5 the right half mirrored, both ``w`` pixels wide, so one position of the
half-width grid is a pair of mirror-symmetric points of the face. A map on that grid is
drawn on both points (:func:`mirror_to_full_width`), or, given the lesion's polarity, on
the colder or warmer point of each pair only (:func:`choose_sides`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from thermal_explain.data.thermal import POLARITIES
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


def split_halves(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The left half and the mirrored right half of ``(..., H, W)`` values, ``(..., H, W // 2)``
    each; for an odd ``W`` the middle column belongs to neither."""
    half = values.shape[-1] // 2
    return values[..., :half], values[..., values.shape[-1] - half :].flip(-1)


@dataclass(frozen=True)
class SideChoice:
    """Which side of each mirrored pair an asymmetry map is drawn on.

    Attributes:
        polarity: ``cold`` or ``warm``.
        left: ``(N, H, w)`` bool, positions drawn on the left half.
        right: ``(N, H, w)`` bool, positions drawn (mirrored) on the right half.
    """

    polarity: str
    left: torch.Tensor
    right: torch.Tensor

    def draw(self, maps: torch.Tensor) -> torch.Tensor:
        """Half-width maps ``(N, ..., H, w)`` -> full-width ``(N, ..., H, 2w)``, each position
        on its chosen side (on both where the two sides are equal or unknown)."""
        shape = (self.left.shape[0],) + (1,) * (maps.dim() - 3) + tuple(self.left.shape[1:])
        left = maps * self.left.view(shape).to(maps.dtype)
        right = maps * self.right.view(shape).to(maps.dtype)
        return torch.cat([left, right.flip(-1)], -1)


def choose_sides(
    signals: torch.Tensor,
    polarity: str,
    smoothing: int | None = None,
    min_gap: torch.Tensor | float | None = None,
) -> SideChoice:
    r"""Side of each mirrored pair to draw an asymmetry map on, from the pair's temperatures.

    With ``T_l`` and ``T_r`` the left value and its mirror point's on the right, smoothed
    by a box of ``smoothing`` pixels (default ``2 round(S / 64) + 1``, about the size of a
    small lesion) so that sensor noise does not pick the side, ``cold`` draws position
    ``p`` on the left where :math:`T_l(p) < T_r(p)` and on the right where
    :math:`T_r(p) < T_l(p)`; ``warm`` the other way round. Where the two are equal or
    unknown (NaN), or not both on the face (:func:`face_pairs`), the map stays on both
    sides, as in the mirrored drawing.

    Args:
        signals: ``(N, H, W)`` temperatures (or gray levels) on the full-width input grid,
            ``W`` even.
        polarity: ``cold`` or ``warm``.
        smoothing: odd box size in pixels.
        min_gap: how :func:`face_pairs` tells a face from its background (``None``: every
            pair is on the face).

    Raises:
        ConfigurationError: an unknown ``polarity`` or an odd width.
    """
    if polarity not in POLARITIES[1:]:
        raise ConfigurationError(
            f"Expected argument `polarity` to be one of cold, warm but got {polarity!r}"
        )
    if signals.shape[-1] % 2:
        raise ConfigurationError(
            f"Expected argument `signals` to have an even width but got {signals.shape[-1]}"
        )
    size = smoothing or 2 * max(1, round(signals.shape[-2] / 64)) + 1
    left, right = (_box_mean(half.float(), size) for half in split_halves(signals))
    difference = left - right
    colder_left = difference < 0
    colder_right = difference > 0
    tie = ~(colder_left | colder_right) | ~face_pairs(signals, min_gap)
    if polarity == "warm":
        colder_left, colder_right = colder_right, colder_left
    return SideChoice(polarity, colder_left | tie, colder_right | tie)


FACE_BACKGROUND_GAP = 5.0
"""Degrees between the face and a background for the outline to be left out (skin is
about 33-35 C, a room 20-26 C; a lesion or the nose tip is at most a few degrees colder
than the skin around it)."""


def face_pairs(
    signals: torch.Tensor, min_gap: torch.Tensor | float | None = FACE_BACKGROUND_GAP
) -> torch.Tensor:
    """``(N, H, W // 2)`` bool: mirror pairs whose two points both lie on the face.

    Where an image shows a face on a colder background (the means of the two classes of
    its Otsu threshold lie at least ``min_gap`` apart, in the signal's units), the face is
    the warmer class shrunk by ``round(H / 32)`` pixels: a head never sits exactly centred
    and upright, so along its outline a point of the skin faces a point of the background,
    a left-right difference that says nothing about the face. Elsewhere (a tight crop,
    ``min_gap`` ``None`` or infinite, or no pair left) every pair with two known values.

    Args:
        signals: ``(N, H, W)`` temperatures or gray levels (NaN where unknown).
        min_gap: scalar or ``(N,)``; ``None`` never looks for a face.
    """
    values = signals.float()
    finite = torch.isfinite(values)
    known_left, known_right = split_halves(finite)
    known = known_left & known_right
    if min_gap is None:
        return known
    wanted = torch.as_tensor(min_gap, dtype=values.dtype, device=values.device)
    if not bool(torch.isfinite(wanted).any()):  # pictures: no face is looked for
        return known
    threshold, gap = _otsu_split(values)
    face = (values > threshold.view(-1, 1, 1)) & finite
    size = 2 * round(values.shape[-2] / 32) + 1
    if size > 1:
        outside = (~face).float().unsqueeze(1)
        face = F.max_pool2d(outside, size, 1, size // 2).squeeze(1) < 0.5
    left, right = split_halves(face)
    both = left & right & known
    use_face = (gap >= wanted.to(gap.dtype)) & both.flatten(1).any(1)
    return torch.where(use_face.view(-1, 1, 1), both, known)


def _otsu_split(values: torch.Tensor, bins: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Otsu threshold of each ``(H, W)`` image's finite values and the distance between
    the means of its two classes, both ``(N,)`` in the values' units."""
    flat = values.flatten(1)
    finite = torch.isfinite(flat)
    low = torch.where(finite, flat, torch.inf).amin(1, keepdim=True)
    high = torch.where(finite, flat, -torch.inf).amax(1, keepdim=True)
    low, high = torch.nan_to_num(low), torch.nan_to_num(high)  # no finite value at all
    span = (high - low).clamp_min(1e-12)
    index = ((flat - low) / span * (bins - 1)).round().clamp(0, bins - 1)
    index = torch.where(finite, index, 0).long()
    counts = torch.zeros(flat.shape[0], bins, device=flat.device)
    counts.scatter_add_(1, index, finite.float())
    weight = counts / counts.sum(1, keepdim=True).clamp_min(1)
    levels = torch.arange(bins, device=flat.device, dtype=weight.dtype)
    below = weight.cumsum(1)
    mass_below = (weight * levels).cumsum(1)
    total = mass_below[:, -1:]
    between = (total * below - mass_below) ** 2 / (below * (1 - below)).clamp_min(1e-12)
    level = between.argmax(1, keepdim=True)
    w0, m0 = below.gather(1, level), mass_below.gather(1, level)
    mean_low = m0 / w0.clamp_min(1e-12)
    mean_high = (total - m0) / (1 - w0).clamp_min(1e-12)
    gap = (mean_high - mean_low) / (bins - 1) * span
    threshold = low + (level.float() + 0.5) / (bins - 1) * span
    return threshold.squeeze(1), torch.where(high > low, gap, 0).squeeze(1)


def _box_mean(values: torch.Tensor, size: int) -> torch.Tensor:
    """NaN-aware mean over a ``size x size`` box of ``(N, H, w)`` values (NaN where none)."""
    finite = torch.isfinite(values)
    filled = torch.where(finite, values, 0).unsqueeze(1)
    weight = finite.float().unsqueeze(1)
    pad = size // 2
    total = F.avg_pool2d(filled, size, 1, pad, count_include_pad=False)
    count = F.avg_pool2d(weight, size, 1, pad, count_include_pad=False)
    return torch.where(count > 0, total / count.clamp_min(1e-6), torch.nan).squeeze(1)
