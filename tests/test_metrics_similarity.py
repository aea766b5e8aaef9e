"""Map similarity: Spearman against SciPy, top-region IoU by hand."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.similarity import (
    average_ranks,
    spearman_correlation,
    top_fraction_iou,
    top_fraction_mask,
)


def test_average_ranks_share_ties() -> None:
    ranks = average_ranks(torch.tensor([[0.1, 0.5, 0.5, 0.2], [3.0, 3.0, 3.0, 1.0]]))
    assert ranks.tolist() == [[0.0, 2.5, 2.5, 1.0], [2.0, 2.0, 2.0, 0.0]]


def test_spearman_matches_scipy_with_many_ties() -> None:
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, 5, (4, 12, 10), generator=generator).float()
    second = (first + torch.randint(0, 4, (4, 12, 10), generator=generator)).round() / 3
    ours = spearman_correlation(first, second)
    pairs = zip(first, second, strict=True)
    expected = [spearmanr(a.flatten(), b.flatten()).statistic for a, b in pairs]
    torch.testing.assert_close(ours, torch.tensor(expected, dtype=torch.float32))
    assert ours.shape == (4,)


def test_spearman_is_rank_based_and_batched_over_leading_axes() -> None:
    maps = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(spearman_correlation(maps, maps.exp() * 5), torch.ones(2, 3))
    torch.testing.assert_close(spearman_correlation(maps, -maps), -torch.ones(2, 3))


def test_flat_map_correlates_zero_and_inputs_are_untouched() -> None:
    maps = torch.rand(2, 6, 6)
    flat = torch.zeros(2, 6, 6)
    before = maps.clone()
    assert spearman_correlation(maps, flat).tolist() == [0.0, 0.0]
    torch.testing.assert_close(maps, before)


def test_top_fraction_mask_and_iou_by_hand() -> None:
    first = torch.arange(10.0).view(1, 2, 5)  # top 20 %: values 9, 8
    second = torch.tensor([[[0.0, 0, 0, 0, 5], [0, 0, 0, 0, 9]]])  # top 20 %: 4 and 9
    assert top_fraction_mask(first).flatten().nonzero().flatten().tolist() == [8, 9]
    # A = {8, 9}, B = {4, 9}: intersection 1, union 3
    torch.testing.assert_close(top_fraction_iou(first, second), torch.tensor([1 / 3]))
    torch.testing.assert_close(top_fraction_iou(first, first), torch.tensor([1.0]))
    torch.testing.assert_close(top_fraction_iou(first, -first), torch.tensor([0.0]))


def test_top_fraction_iou_on_a_target_axis() -> None:
    maps = torch.rand(3, 2, 16, 16)
    iou = top_fraction_iou(maps, maps.flip(-1), fraction=0.5)
    assert iou.shape == (3, 2)
    assert bool(((iou >= 0) & (iou <= 1)).all())


@pytest.mark.parametrize("fraction", [0, 1.5, True, "0.2"])
def test_bad_fraction_is_named(fraction: object) -> None:
    with pytest.raises(ConfigurationError, match="`fraction`"):
        top_fraction_iou(torch.rand(1, 4, 4), torch.rand(1, 4, 4), fraction=fraction)


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ConfigurationError, match="same shape"):
        spearman_correlation(torch.rand(2, 4, 4), torch.rand(2, 4, 5))
