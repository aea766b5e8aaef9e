"""Localization: does a map point at the region a model should look at?

Given a ground-truth mask per image (``mask_dir``: non-zero = the lesion or region
of interest) on the map's grid, three batched scores per map:

* **pointing game** (Zhang et al., 2016, "Top-down Neural Attention by Excitation
  Backprop", ECCV): a hit when the map's maximum lies inside the mask or within
  ``tolerance`` pixels of it (Euclidean distance on the map grid; 15 px as in the
  paper). The maximum is the first pixel, in row-major order, holding the map's
  largest value;
* **energy inside** (relevance mass): ``sum(map * mask) / sum(map)``, the share of
  the map's total value that falls inside the mask (0 for an all-zero map);
* **IoU**: intersection over union of ``map >= threshold`` (default 0.5, the same
  cut as ``activation_area``) with the mask.

An image whose mask is all zero has nothing to point at: its scores are NaN, the
result's ``applicable`` is ``False`` and its record says ``"status": "not_applicable"``
(with ``null`` scores), so such images drop out of means computed with ``nanmean``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from thermal_explain.errors import ConfigurationError

__all__ = [
    "LocalizationResult",
    "energy_inside",
    "evaluate_localization",
    "mask_iou",
    "pointing_game",
    "resize_masks",
]


def resize_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize masks to a map grid with nearest-neighbour sampling.

    Nearest sampling keeps masks binary; the "exact" variant samples pixel centres so
    the mask is not shifted by half a pixel.

    Args:
        masks: ``(N, h, w)`` masks, bool or numeric (non-zero = inside).
        size: ``(H, W)`` target grid.

    Returns:
        ``(N, H, W)`` bool masks.
    """
    if masks.dim() != 3:
        raise ConfigurationError(
            f"Expected argument `masks` to have shape (N, H, W) but got {tuple(masks.shape)}"
        )
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ConfigurationError(
            f"Expected argument `size` to be (height, width) positive integers but got {size!r}"
        )
    inside = (masks != 0).float().unsqueeze(1)
    resized = F.interpolate(inside, size=tuple(size), mode="nearest-exact")
    return resized.squeeze(1) > 0.5


def _align(maps: Tensor, masks: Tensor) -> Tensor:
    """Validate shapes and return masks as bool, broadcastable against ``maps``."""
    if maps.dim() not in (3, 4):
        raise ConfigurationError(
            "Expected argument `maps` to have shape (N, H, W) or (N, T, H, W) but got "
            f"{tuple(maps.shape)}"
        )
    if masks.dim() != 3 or masks.shape[0] != maps.shape[0]:
        raise ConfigurationError(
            f"Expected argument `masks` to have shape (N, H, W) with N = {maps.shape[0]} but "
            f"got {tuple(masks.shape)}"
        )
    if masks.shape[-2:] != maps.shape[-2:]:
        raise ConfigurationError(
            f"Expected argument `masks` on the map grid {tuple(maps.shape[-2:])} but got "
            f"{tuple(masks.shape[-2:])}; use resize_masks(masks, {tuple(maps.shape[-2:])})"
        )
    inside = (masks != 0).to(maps.device)
    return inside.unsqueeze(1) if maps.dim() == 4 else inside


def _not_applicable(inside: Tensor, values: Tensor) -> Tensor:
    """NaN where the mask is empty."""
    empty = ~inside.flatten(-2).any(dim=-1)
    return values.masked_fill(empty.expand_as(values), math.nan)


def pointing_game(maps: Tensor, masks: Tensor, tolerance: float = 15.0) -> Tensor:
    """Pointing-game hit of every map (Zhang et al., 2016).

    With ``p`` the position of the map's maximum, a hit is
    ``min_{q in mask} ||p - q||_2 <= tolerance``.

    Args:
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` maps.
        masks: ``(N, H, W)`` masks on the same grid (non-zero = inside).
        tolerance: allowed distance in map pixels (0 = the maximum must be inside).

    Returns:
        ``maps.shape[:-2]`` float: 1.0 hit, 0.0 miss, NaN for an all-zero mask.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ConfigurationError(
            f"Expected argument `tolerance` to be a number >= 0 but got {tolerance!r}"
        )
    inside = _align(maps, masks)
    height, width = maps.shape[-2:]
    peak = maps.detach().flatten(-2).argmax(dim=-1)
    peak_y = (peak // width).to(torch.float32)[..., None, None]
    peak_x = (peak % width).to(torch.float32)[..., None, None]
    ys = torch.arange(height, device=maps.device, dtype=torch.float32).view(height, 1)
    xs = torch.arange(width, device=maps.device, dtype=torch.float32).view(1, width)
    squared = (ys - peak_y) ** 2 + (xs - peak_x) ** 2
    squared = squared.masked_fill(~inside, math.inf)
    hit = squared.flatten(-2).amin(dim=-1) <= float(tolerance) ** 2
    return _not_applicable(inside, hit.float())


def energy_inside(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of each map's total value inside its mask (relevance mass).

    .. math::
        E = \\frac{\\sum_{p \\in M} s_p}{\\sum_p s_p}

    Maps are expected non-negative (CAMs in ``[0, 1]``); an all-zero map gives 0.

    Args:
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` maps.
        masks: ``(N, H, W)`` masks on the same grid.

    Returns:
        ``maps.shape[:-2]`` float in ``[0, 1]``, NaN for an all-zero mask.
    """
    inside = _align(maps, masks)
    values = maps.detach().float()
    total = values.flatten(-2).sum(dim=-1)
    within = (values * inside).flatten(-2).sum(dim=-1)
    energy = torch.where(total > 0, within / total, torch.zeros_like(total))
    return _not_applicable(inside, energy)


def mask_iou(maps: Tensor, masks: Tensor, threshold: float = 0.5) -> Tensor:
    """IoU of each thresholded map with its mask.

    ``IoU = |A ∩ M| / |A ∪ M|`` with ``A = {p : s_p >= threshold}``.

    Args:
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` maps in ``[0, 1]``.
        masks: ``(N, H, W)`` masks on the same grid.
        threshold: the cut defining the activated region.

    Returns:
        ``maps.shape[:-2]`` float in ``[0, 1]``, NaN for an all-zero mask.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigurationError(
            f"Expected argument `threshold` to be a number but got {threshold!r}"
        )
    inside = _align(maps, masks)
    active = maps.detach() >= threshold
    intersection = (active & inside).flatten(-2).sum(dim=-1).float()
    union = (active | inside).flatten(-2).sum(dim=-1).float()
    return _not_applicable(inside, intersection / union.clamp_min(1))


@dataclass(frozen=True)
class LocalizationResult:
    """Localization scores of one layer's maps.

    Attributes:
        pointing_hit: ``(N,)`` or ``(N, T)`` 1.0 hit / 0.0 miss / NaN not applicable.
        energy_inside: same shape, relevance mass inside the mask.
        iou: same shape, IoU of the thresholded map with the mask.
        applicable: ``(N,)`` bool, ``False`` where the mask is all zero.
    """

    pointing_hit: Tensor
    energy_inside: Tensor
    iou: Tensor
    applicable: Tensor

    def to_records(self) -> list[dict[str, object]]:
        """One JSON-ready dict per image.

        ``{"status": "ok", "pointing_game_hit": true, "energy_inside": 0.62,
        "mask_iou": 0.41}``; for an all-zero mask ``"status": "not_applicable"`` and the
        three scores are ``null``. Values are lists when maps have a target axis.
        """
        hits = self.pointing_hit.detach().cpu().tolist()
        energies = self.energy_inside.detach().cpu().tolist()
        ious = self.iou.detach().cpu().tolist()
        records: list[dict[str, object]] = []
        for i, applicable in enumerate(self.applicable.detach().cpu().tolist()):
            records.append(
                {
                    "status": "ok" if applicable else "not_applicable",
                    "pointing_game_hit": _json_value(hits[i], as_bool=True),
                    "energy_inside": _json_value(energies[i]),
                    "mask_iou": _json_value(ious[i]),
                }
            )
        return records


def _json_value(value: object, as_bool: bool = False) -> object:
    """NaN -> None, optionally 1.0/0.0 -> True/False, through nested lists."""
    if isinstance(value, list):
        return [_json_value(item, as_bool) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return bool(value) if as_bool else value


def evaluate_localization(
    maps: Tensor, masks: Tensor, *, tolerance: float = 15.0, threshold: float = 0.5
) -> LocalizationResult:
    """Pointing game, energy inside and IoU of every map against its mask.

    Args:
        maps: ``(N, H, W)`` or ``(N, T, H, W)`` maps in ``[0, 1]``.
        masks: ``(N, H, W)`` masks on the map grid (see :func:`resize_masks`).
        tolerance: pointing-game tolerance in map pixels.
        threshold: IoU activation cut.

    Returns:
        :class:`LocalizationResult`.
    """
    inside = _align(maps, masks)
    applicable = inside.flatten(-2).any(dim=-1)
    if maps.dim() == 4:
        applicable = applicable.squeeze(1)
    return LocalizationResult(
        pointing_hit=pointing_game(maps, masks, tolerance),
        energy_inside=energy_inside(maps, masks),
        iou=mask_iou(maps, masks, threshold),
        applicable=applicable,
    )
