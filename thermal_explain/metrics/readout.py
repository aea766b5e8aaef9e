r"""The left-right thermal readout: where the map looks, how warm each side is there.

Thermography reads a face by the temperature difference between mirror-symmetric
regions. Given a map (the fused map by default) and the image's values on the same grid
(degrees Celsius for temperature inputs, gray levels for pictures):

1. the map is taken on the half-width grid, where one position is a point of the left
   face and its mirror point on the right: as it is in asymmetry mode, folded
   (:math:`\max(m_l, \mathrm{flip}(m_r))`) otherwise;
2. only pairs of known values take part, and in degrees only pairs of skin with skin: where
   the image shows a background at least 5 C colder than the face, the face's outline (where
   a slightly off-centre or tilted head pairs skin with background) is left out
   (:func:`~thermal_explain.cam.asymmetry.face_pairs`);
3. the attended region :math:`R` is the top ``fraction`` of those positions by map value
   (10 % by default);
4. ``left`` is the mean value of the left face over :math:`R`, ``right`` the mean over
   the mirror image of :math:`R` on the right face; ``delta = left - right``;
   ``colder_side`` names the side with the lower mean (``None`` when they are equal or
   unknown).

Left and right are the image's halves, as in the asymmetry split. Healthy faces are
thermally symmetric to within a few tenths of a degree, so a ``delta`` above
``threshold`` (0.4 C by default) is flagged in the record and counted in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from thermal_explain.cam.asymmetry import face_pairs, split_halves
from thermal_explain.checks import check_number, expect
from thermal_explain.data.thermal import READOUT_FRACTION, READOUT_THRESHOLD


@dataclass(frozen=True)
class ReadoutOptions:
    """How the readout is taken: which map, how much of it, and what difference to flag.

    Attributes:
        map: ``fused`` (every layer combined) or a target layer's name.
        fraction: share of the half-width map that forms the attended region, in (0, 1].
        threshold: absolute difference in degrees Celsius flagged as notable.
    """

    map: str = "fused"
    fraction: float = READOUT_FRACTION
    threshold: float = READOUT_THRESHOLD

    def __post_init__(self) -> None:
        expect(
            isinstance(self.map, str) and bool(self.map.strip()),
            "readout_map",
            "fused or a layer name",
            self.map,
        )
        check_number("readout_fraction", self.fraction, 0.0, 1.0, low_open=True)
        check_number("readout_threshold", self.threshold, 0.0)


@dataclass(frozen=True)
class Readout:
    """Mean values of the attended region on each side, ``(N,)`` float each (NaN: unknown)."""

    left: torch.Tensor
    right: torch.Tensor


def attended_region(
    half_maps: torch.Tensor, fraction: float, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """``(N, H, w)`` bool: the top ``fraction`` of each map's (``allowed``) positions.

    ``max(1, round(fraction * n))`` of the ``n`` allowed positions (all by default; none
    where none is allowed); among equal values the first in raster order.
    """
    flat = half_maps.flatten(1).float()
    allowed = torch.ones_like(flat, dtype=torch.bool) if allowed is None else allowed.flatten(1)
    available = allowed.sum(1)
    wanted = (fraction * available.float()).round().long().clamp_min(1).minimum(available)
    if flat.shape[0] == 0 or int(wanted.max()) == 0:
        return torch.zeros_like(allowed).view_as(half_maps)
    values = torch.where(allowed, flat, -torch.inf)
    # The wanted-th largest value of each row (a partial sort), then ties in raster order.
    largest = values.topk(int(wanted.max()), dim=1).values
    cut = largest.gather(1, (wanted - 1).clamp_min(0).unsqueeze(1))
    above = (values > cut) & allowed
    tied = (values == cut) & allowed
    room = wanted.unsqueeze(1) - above.sum(1, keepdim=True)
    region = above | (tied & (tied.cumsum(1) <= room))
    return region.view_as(half_maps)


def thermal_readout(
    maps: torch.Tensor,
    signals: torch.Tensor,
    fraction: float,
    min_gap: torch.Tensor | float | None = None,
) -> Readout:
    """Mean value of the attended region on the left face and of its mirror on the right.

    Args:
        maps: ``(N, H, w)`` maps on the half-width grid (asymmetry mode) or ``(N, H, W)``
            on the full grid (folded here).
        signals: ``(N, H, W)`` values on the full grid (NaN where unknown).
        fraction: share of the compared pairs in the attended region.
        min_gap: how far (in the signal's units) a background must lie below the face for
            the face's outline to be left out (:func:`~thermal_explain.cam.asymmetry.
            face_pairs`); ``None`` compares every pair.

    Returns:
        A :class:`Readout`.
    """
    left, right = split_halves(signals.float())
    half = left.shape[-1]
    if maps.shape[-1] != half:
        map_left, map_right = split_halves(maps)
        maps = torch.maximum(map_left, map_right)
    known = face_pairs(signals, min_gap)
    pairs = attended_region(maps.to(signals.device), fraction, known)
    count = pairs.flatten(1).sum(1)
    safe = count.clamp_min(1)
    left_mean = torch.where(pairs, left, 0).flatten(1).sum(1) / safe
    right_mean = torch.where(pairs, right, 0).flatten(1).sum(1) / safe
    unknown = count == 0
    return Readout(
        left_mean.masked_fill(unknown, math.nan), right_mean.masked_fill(unknown, math.nan)
    )


def readout_records(
    readout: Readout, units: list[str], options: ReadoutOptions
) -> list[dict[str, object]]:
    """The records' ``thermal_asymmetry`` entries, one per image.

    ``{"left", "right", "delta", "colder_side", "units", "region_fraction", "map"}``; in
    degrees Celsius also ``threshold`` and ``exceeds_threshold`` (``|delta| > threshold``).
    Unknown values are ``None``.
    """
    records = []
    for left, right, unit in zip(readout.left.tolist(), readout.right.tolist(), units, strict=True):
        known = math.isfinite(left) and math.isfinite(right)
        left_value, right_value = _rounded(left), _rounded(right)
        delta = round(left_value - right_value, 3) if known else math.nan  # type: ignore[operator]
        record: dict[str, object] = {
            "left": left_value,
            "right": right_value,
            "delta": _rounded(delta),
            "colder_side": _colder(delta),
            "units": unit,
            "region_fraction": options.fraction,
            "map": options.map,
        }
        if unit == "celsius":
            record["threshold"] = options.threshold
            record["exceeds_threshold"] = abs(delta) > options.threshold if known else None
        records.append(record)
    return records


def _colder(delta: float) -> str | None:
    if not math.isfinite(delta) or delta == 0:
        return None
    return "left" if delta < 0 else "right"


def _rounded(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None
