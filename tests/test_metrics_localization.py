"""Localization: pointing game with tolerance, energy, IoU, empty masks, mask resizing."""

from __future__ import annotations

import json
import math

import pytest
import torch

from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.localization import (
    energy_inside,
    evaluate_localization,
    mask_iou,
    pointing_game,
    resize_masks,
)


def _peak_map(y: int, x: int, size: int = 64) -> torch.Tensor:
    heat = torch.zeros(size, size)
    heat[y, x] = 1.0
    return heat


def _square_mask(top: int, left: int, side: int, size: int = 64) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_pointing_game_uses_euclidean_tolerance() -> None:
    mask = _square_mask(10, 10, 5)  # rows/cols 10..14
    maps = torch.stack(
        [
            _peak_map(12, 12),  # inside
            _peak_map(12, 29),  # 15 px right of column 14: on the tolerance
            _peak_map(12, 30),  # 16 px: miss
            _peak_map(25, 25),  # diagonal from (14, 14): sqrt(242) ~ 15.6: miss
            _peak_map(24, 23),  # sqrt(100 + 81) ~ 13.5: hit
        ]
    )
    masks = mask.expand(5, -1, -1)
    assert pointing_game(maps, masks).tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert pointing_game(maps, masks, tolerance=0).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_energy_and_iou_by_hand() -> None:
    heat = torch.zeros(1, 4, 4)
    heat[0, 0, :] = torch.tensor([1.0, 0.6, 0.4, 0.0])
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, :2] = True
    mask[0, 1, 0] = True
    # energy: (1 + 0.6) / 2.0; active {>= 0.5} = 2 px, mask = 3 px, overlap 2 -> IoU 2/3
    torch.testing.assert_close(energy_inside(heat, mask), torch.tensor([0.8]))
    torch.testing.assert_close(mask_iou(heat, mask), torch.tensor([2 / 3]))
    torch.testing.assert_close(mask_iou(heat, mask, threshold=0.3), torch.tensor([0.5]))
    torch.testing.assert_close(energy_inside(torch.zeros(1, 4, 4), mask), torch.tensor([0.0]))


def test_empty_mask_is_not_applicable() -> None:
    maps = torch.rand(2, 8, 8)
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, 2:5, 2:5] = True
    result = evaluate_localization(maps, masks, tolerance=1)
    assert result.applicable.tolist() == [True, False]
    for scores in (result.pointing_hit, result.energy_inside, result.iou):
        assert not math.isnan(scores[0].item())
        assert math.isnan(scores[1].item())
    records = result.to_records()
    assert records[1] == {
        "status": "not_applicable",
        "pointing_game_hit": None,
        "energy_inside": None,
        "mask_iou": None,
    }
    assert records[0]["status"] == "ok"
    assert isinstance(records[0]["pointing_game_hit"], bool)
    json.dumps(records, allow_nan=False)


def test_target_axis_broadcasts_the_mask() -> None:
    mask = _square_mask(0, 0, 8, size=32)
    maps = torch.stack([_peak_map(2, 2, 32), _peak_map(30, 30, 32)]).unsqueeze(0)  # (1, 2, H, W)
    result = evaluate_localization(maps, mask.unsqueeze(0), tolerance=0)
    assert result.pointing_hit.tolist() == [[1.0, 0.0]]
    assert result.applicable.tolist() == [True]
    assert result.to_records()[0]["pointing_game_hit"] == [True, False]


def test_resize_masks_nearest_keeps_binary_and_aligned() -> None:
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, 1:3, 1:3] = 255
    up = resize_masks(mask, (8, 8))
    assert up.dtype == torch.bool
    assert up[0].nonzero().min(0).values.tolist() == [2, 2]
    assert up[0].nonzero().max(0).values.tolist() == [5, 5]
    down = resize_masks(up, (4, 4))
    assert torch.equal(down, mask.bool())


def test_inputs_untouched() -> None:
    maps = torch.rand(2, 8, 8)
    masks = torch.rand(2, 8, 8) > 0.5
    before = (maps.clone(), masks.clone())
    evaluate_localization(maps, masks)
    assert torch.equal(maps, before[0])
    assert torch.equal(masks, before[1])


def test_errors_name_the_argument_and_fix() -> None:
    with pytest.raises(ConfigurationError, match="resize_masks"):
        evaluate_localization(torch.rand(1, 8, 8), torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ConfigurationError, match="`tolerance`"):
        pointing_game(torch.rand(1, 4, 4), torch.ones(1, 4, 4), tolerance=-1)
    with pytest.raises(ConfigurationError, match="`size`"):
        resize_masks(torch.ones(1, 4, 4), (0, 4))
