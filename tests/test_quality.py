"""Metric selection and asymmetry-aware localization maps."""

from __future__ import annotations

import pytest
import torch

from thermal_explain.errors import ConfigurationError
from thermal_explain.quality import parse_metrics, side_weighted


def test_parse_metrics_expands_aliases_in_canonical_order() -> None:
    assert parse_metrics(["sanity", "faithfulness"]) == (
        "deletion",
        "insertion",
        "confidence",
        "sanity",
    )
    assert parse_metrics(None) == ()


def test_unknown_metric_names_the_argument() -> None:
    with pytest.raises(ConfigurationError, match="metrics") as error:
        parse_metrics(["pointing"])
    assert "localization" in str(error.value)


def test_side_weighted_moves_the_peak_to_the_side_with_the_evidence() -> None:
    half = torch.zeros(1, 4, 4)
    half[0, 1, 1] = 1.0
    display = torch.cat([half, half.flip(-1)], -1)  # the same peak on both halves
    left = side_weighted(display, torch.tensor([[0.9, 0.1]]))
    right = side_weighted(display, torch.tensor([[0.2, 0.8]]))
    assert int(left.flatten().argmax()) == 1 * 8 + 1
    assert int(right.flatten().argmax()) == 1 * 8 + 6
    assert float(left.max()) == pytest.approx(1.0)
