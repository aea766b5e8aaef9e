r"""The contract's feature statistics of normalized CAMs, batched at the original image sizes.

For a map :math:`M \in [0, 1]^{H \times W}` (min-max normalized at the original image size):

- ``max_activation`` :math:`= \max M`, ``mean_activation`` :math:`= \bar M`,
  ``std_activation`` :math:`= \sqrt{\overline{(M - \bar M)^2}}` (population),
- ``activation_area`` :math:`= |\{(i, j) : M_{ij} \ge 0.5\}| / (HW)`,
- ``center_of_mass`` :math:`= \big(\sum_{ij} j M_{ij}, \sum_{ij} i M_{ij}\big) / \sum_{ij} M_{ij}`,
  ``[x, y]`` in pixels of that image; the image centre for an all-zero map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from thermal_explain.cam.methods import upsample_maps

STATISTICS = (
    "max_activation",
    "mean_activation",
    "std_activation",
    "activation_area",
    "center_of_mass",
)
_SCALARS = STATISTICS[:-1]
_ELEMENT_BUDGET = 1 << 25


def feature_statistics(maps: torch.Tensor, normalized: bool = False) -> dict[str, torch.Tensor]:
    """Statistics of the maps after min-max normalization, over their own grid.

    The normalization ``M = (L - min L) / (max L - min L)`` (zeros for a constant map) is
    applied implicitly, without another pass over the maps: maps resized from normalized
    ones need it, normalized maps are unchanged by it. A few whole-tensor reductions serve
    every map at once; the moments come from the row and column sums.

    Args:
        maps: ``(..., H, W)`` maps in 0..1 (normalized, or resized from normalized maps).
        normalized: the maps are exactly min-max normalized (minimum 0, maximum 1 or all
            zeros), which saves the two passes finding their minimum and maximum.

    Returns:
        ``max_activation``, ``mean_activation``, ``std_activation``, ``activation_area``, each
        ``(...)``, and ``center_of_mass`` ``(..., 2)`` as ``[x, y]`` pixel coordinates.
    """
    height, width = maps.shape[-2:]
    pixels = height * width
    maps = maps.float()
    flat = maps.flatten(-2)
    xs = torch.arange(width, device=maps.device, dtype=maps.dtype)
    ys = torch.arange(height, device=maps.device, dtype=maps.dtype)
    rows, columns = maps.sum(-1), maps.sum(-2)
    total = rows.sum(-1)
    if normalized:
        low = torch.zeros_like(total)
        span = (total > 0).float()
    else:
        low = flat.amin(-1)
        span = flat.amax(-1) - low
    live = span > 0
    scale = torch.where(live, 1 / torch.where(live, span, 1), 0)
    mean = total / pixels
    squares = torch.linalg.vector_norm(flat, dim=-1).square()
    variance = (squares / pixels - mean.square()).clamp_min(0)
    above = (flat >= (low + 0.5 * span).unsqueeze(-1)).sum(-1)
    # moments of L - min L, the unnormalized M
    mass = total - low * pixels
    x_mass = columns @ xs - low * (height * width * (width - 1) / 2)
    y_mass = rows @ ys - low * (width * height * (height - 1) / 2)
    valid = live & (mass > 0)
    safe_mass = torch.where(valid, mass, 1)
    center_of_mass = torch.stack(
        [
            torch.where(valid, x_mass / safe_mass, (width - 1) / 2),
            torch.where(valid, y_mass / safe_mass, (height - 1) / 2),
        ],
        -1,
    )
    return {
        "max_activation": live.float(),
        "mean_activation": (mean - low) * scale,
        "std_activation": variance.sqrt() * scale,
        "activation_area": torch.where(live, above / pixels, 0),
        "center_of_mass": center_of_mass,
    }


def statistics_at_sizes(
    maps: torch.Tensor, original_sizes: Sequence[tuple[int, int]] | None = None
) -> dict[str, torch.Tensor]:
    """Feature statistics of each sample's maps resized to its original image size.

    Samples are grouped by size and each group is resized at once (bilinear) and
    normalized to 0..1 again, so the common batch of equal-sized images costs one resize.
    Very large originals are processed in chunks of samples to bound memory.

    Args:
        maps: ``(N, ..., H, W)`` min-max normalized maps on the display grid.
        original_sizes: ``N`` ``(height, width)`` pairs; ``None`` keeps the display grid.

    Returns:
        As :func:`feature_statistics`, with leading dimensions ``(N, ...)``.
    """
    if original_sizes is None:
        return feature_statistics(maps, normalized=True)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (height, width) in enumerate(original_sizes):
        groups.setdefault((int(height), int(width)), []).append(index)
    if len(groups) == 1:
        return _resized_statistics(maps, next(iter(groups)))
    lead = tuple(maps.shape[:-2])
    out = {
        name: torch.empty(lead + ((2,) if name == "center_of_mass" else ()), device=maps.device)
        for name in STATISTICS
    }
    for size, indices in groups.items():
        index = torch.tensor(indices, device=maps.device)
        part = _resized_statistics(maps.index_select(0, index), size)
        for name, values in part.items():
            out[name].index_copy_(0, index, values)
    return out


def _resized_statistics(maps: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Statistics of ``(n, ..., h, w)`` maps resized to ``size``, in sample chunks."""
    if tuple(maps.shape[-2:]) == size:
        return feature_statistics(maps, normalized=True)
    per_sample = math.prod(maps.shape[1:-2]) * size[0] * size[1]
    step = max(1, _ELEMENT_BUDGET // per_sample)
    parts = [
        feature_statistics(upsample_maps(maps[start : start + step], size))
        for start in range(0, maps.shape[0], step)
    ]
    if len(parts) == 1:
        return parts[0]
    return {name: torch.cat([part[name] for part in parts]) for name in STATISTICS}


def statistics_records(
    statistics: dict[str, torch.Tensor], column: int = 0
) -> list[dict[str, object]]:
    """One layer's statistics as the contract's per-image dictionaries.

    Args:
        statistics: ``(N, T)`` tensors and ``center_of_mass`` ``(N, T, 2)``.
        column: which target column ``t`` to report.

    Returns:
        ``N`` dicts of Python floats, with ``center_of_mass`` as ``[int x, int y]``.
    """
    scalars = torch.stack([statistics[name][:, column] for name in _SCALARS], -1).tolist()
    centres = statistics["center_of_mass"][:, column].round().long().tolist()
    return [
        {**dict(zip(_SCALARS, values, strict=True)), "center_of_mass": centre}
        for values, centre in zip(scalars, centres, strict=True)
    ]
