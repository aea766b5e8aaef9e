"""How alike two saliency maps are: rank correlation and overlap of their hot spots.

Used to compare models (the same images explained by two checkpoints) and by the
sanity check (a trained model against its randomized copies). Every function is pure:
batched over the leading dimensions, computed on the maps' device, inputs untouched.
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermal_explain.cam.methods import upsample_maps
from thermal_explain.checks import check_number
from thermal_explain.errors import ConfigurationError

__all__ = ["average_ranks", "spearman_correlation", "top_fraction_iou", "top_fraction_mask"]


def _rank_dtype(device: torch.device) -> torch.dtype:
    """float64 keeps rank sums exact for large maps; MPS has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def average_ranks(values: Tensor) -> Tensor:
    """Rank each row of ``values``, giving tied entries the mean of their ranks.

    Ranks start at 0. For a row ``[0.1, 0.5, 0.5, 0.2]`` the ranks are
    ``[0, 2.5, 2.5, 1]``: the two tied values share the mean of ranks 2 and 3 (the
    "fractional ranking" that Spearman's coefficient with ties is defined on).

    Args:
        values: ``(N, P)`` real values.

    Returns:
        ``(N, P)`` float ranks (float64, float32 on MPS).
    """
    dtype = _rank_dtype(values.device)
    sorted_values, order = torch.sort(values, dim=-1, stable=True)
    n, p = sorted_values.shape
    starts = torch.ones_like(sorted_values, dtype=torch.bool)
    starts[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    group = torch.cumsum(starts.long(), dim=-1) - 1
    position = torch.arange(p, device=values.device, dtype=dtype).expand(n, p)
    rank_sum = torch.zeros((n, p), device=values.device, dtype=dtype)
    rank_sum.scatter_add_(1, group, position)
    count = torch.zeros((n, p), device=values.device, dtype=dtype)
    count.scatter_add_(1, group, torch.ones_like(position))
    mean_rank = (rank_sum / count.clamp_min(1)).gather(1, group)
    ranks = torch.empty_like(mean_rank)
    ranks.scatter_(1, order, mean_rank)
    return ranks


def _pearson_rows(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of matching rows; 0 where either row is constant."""
    xc = x - x.mean(dim=-1, keepdim=True)
    yc = y - y.mean(dim=-1, keepdim=True)
    denominator = torch.sqrt((xc * xc).sum(dim=-1) * (yc * yc).sum(dim=-1))
    numerator = (xc * yc).sum(dim=-1)
    return torch.where(denominator > 0, numerator / denominator, torch.zeros_like(numerator))


def _check_pair(first: Tensor, second: Tensor) -> None:
    if first.shape != second.shape:
        raise ConfigurationError(
            f"Expected arguments `first` and `second` to have the same shape but got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    if first.dim() < 2:
        raise ConfigurationError(
            f"Expected maps of shape (..., H, W) but got shape {tuple(first.shape)}"
        )


def spearman_correlation(first: Tensor, second: Tensor) -> Tensor:
    """Spearman rank correlation between matching maps, one value per map.

    .. math::
        \\rho = \\frac{\\operatorname{cov}(R(a), R(b))}{\\sigma_{R(a)} \\sigma_{R(b)}}

    where ``R`` ranks the ``H * W`` pixels of a map, ties sharing their mean rank
    (:func:`average_ranks`), so this equals ``scipy.stats.spearmanr`` per map. A map
    with all pixels equal carries no ranking; the correlation with it is defined as 0
    (rather than NaN) so that a map that went flat counts as "no longer alike".

    Args:
        first: ``(..., H, W)`` maps, e.g. ``(N, H, W)``.
        second: maps of the same shape.

    Returns:
        ``(...)`` float32 correlations in ``[-1, 1]``, e.g. ``(N,)``.

    Example:
        >>> maps = torch.rand(2, 8, 8)
        >>> spearman_correlation(maps, maps * 3 + 1)
        tensor([1., 1.])
    """
    _check_pair(first, second)
    batch_shape = first.shape[:-2]
    a = average_ranks(first.detach().reshape(-1, first.shape[-2] * first.shape[-1]))
    b = average_ranks(second.detach().reshape(-1, second.shape[-2] * second.shape[-1]))
    return _pearson_rows(a, b).clamp(-1.0, 1.0).float().reshape(batch_shape)


def top_fraction_mask(maps: Tensor, fraction: float = 0.2) -> Tensor:
    """Mark the ``fraction`` of pixels with the highest values in each map.

    Exactly ``k = max(1, round(fraction * H * W))`` pixels are marked per map; among
    pixels tied at the cut, those earlier in row-major order are taken.

    Args:
        maps: ``(..., H, W)`` maps.
        fraction: share of pixels to keep, in ``(0, 1]``.

    Returns:
        ``(..., H, W)`` bool masks.
    """
    check_number("fraction", fraction, 0.0, 1.0, low_open=True)
    flat = maps.detach().reshape(-1, maps.shape[-2] * maps.shape[-1])
    k = max(1, round(fraction * flat.shape[-1]))
    order = torch.argsort(flat, dim=-1, descending=True, stable=True)[:, :k]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, order, True)
    return mask.reshape(maps.shape)


def top_fraction_iou(first: Tensor, second: Tensor, fraction: float = 0.2) -> Tensor:
    """Intersection over union of the top-``fraction`` regions of matching maps.

    With ``A`` and ``B`` the ``k`` hottest pixels of each map (:func:`top_fraction_mask`),
    ``IoU = |A ∩ B| / |A ∪ B|``: 1 when both maps point at the same pixels, and about
    ``fraction / (2 - fraction)`` for unrelated maps.

    Args:
        first: ``(..., H, W)`` maps, e.g. ``(N, H, W)``.
        second: maps of the same shape.
        fraction: share of pixels forming each region, in ``(0, 1]`` (default 20 %).

    Returns:
        ``(...)`` float32 IoU in ``[0, 1]``.
    """
    _check_pair(first, second)
    a = top_fraction_mask(first, fraction)
    b = top_fraction_mask(second, fraction)
    intersection = (a & b).flatten(-2).sum(dim=-1)
    union = (a | b).flatten(-2).sum(dim=-1)
    return (intersection.float() / union.float()).reshape(first.shape[:-2])


def to_common_grid(maps_a: Tensor, maps_b: Tensor) -> tuple[Tensor, Tensor]:
    """Bring two sets of maps onto one grid (the engine's bilinear upsampling).

    Args:
        maps_a: ``(N, Ha, Wa)`` maps in 0..1.
        maps_b: ``(N, Hb, Wb)`` maps in 0..1.

    Returns:
        Both as ``(N, max(Ha, Hb), max(Wa, Wb))`` float32 (clamped to 0..1); a set already
        on that grid is returned unchanged.
    """
    size = (max(maps_a.shape[-2], maps_b.shape[-2]), max(maps_a.shape[-1], maps_b.shape[-1]))

    def fit(maps: Tensor) -> Tensor:
        maps = maps.float()
        return maps if maps.shape[-2:] == size else upsample_maps(maps, size).clamp(0.0, 1.0)

    return fit(maps_a), fit(maps_b)


def compare_maps(
    maps_a: Tensor, maps_b: Tensor, top_fraction: float = 0.2
) -> tuple[Tensor, Tensor]:
    """Spearman correlation and top-fraction IoU of matching maps.

    Args:
        maps_a: ``(N, Ha, Wa)`` maps.
        maps_b: ``(N, Hb, Wb)`` maps (brought to a common grid with ``maps_a`` first).
        top_fraction: share of the hottest pixels forming each map's region, in ``(0, 1]``.

    Returns:
        ``((N,) spearman, (N,) top_iou)`` float32 on the maps' device.
    """
    first, second = to_common_grid(maps_a, maps_b)
    return spearman_correlation(first, second), top_fraction_iou(first, second, top_fraction)
