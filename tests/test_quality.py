"""Metric selection and asymmetry-aware localization maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from thermal_explain.cam import CAMEngine, CAMResult, mirror_to_full_width
from thermal_explain.cam.asymmetry import fold_to_half_width
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.suite import MetricOptions, QualityMetrics, parse_metrics
from thermal_explain.types import Batch


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


def test_fold_to_half_width_joins_a_mask_with_its_mirror_point() -> None:
    full = torch.zeros(1, 4, 8, dtype=torch.bool)
    full[0, 1, 6] = True  # right face, second column from the right edge
    folded = fold_to_half_width(full, 4)
    assert folded.shape == (1, 4, 4)
    assert folded.nonzero().tolist() == [[0, 1, 1]]
    odd = torch.zeros(1, 2, 9, dtype=torch.bool)
    odd[0, 0, 4] = True  # the middle column of an odd width joins the midline column
    assert fold_to_half_width(odd, 4).nonzero().tolist() == [[0, 0, 3]]
    with pytest.raises(ConfigurationError, match="masks"):
        fold_to_half_width(full, 3)


def _asymmetry_result(half_map: torch.Tensor) -> CAMResult:
    """A one-image asymmetry-mode result whose only layer holds ``half_map`` (H, w)."""
    maps = half_map[None, None]
    logits = torch.tensor([[2.0, 0.0]])
    return CAMResult(
        logits=logits,
        probabilities=logits.softmax(1),
        predicted=torch.tensor([0]),
        targets=torch.tensor([[0]]),
        maps={"layer": maps},
        raw_maps={"layer": maps},
        display_maps={"layer": mirror_to_full_width(maps)},
        statistics={"layer": {}},
        side_attribution=torch.tensor([[[0.5, 0.5]]]),
    )


@pytest.mark.parametrize("lesion_column", [2, 61])
def test_asymmetry_localization_scores_the_half_grid_against_the_folded_mask(
    tmp_path: Path, lesion_column: int
) -> None:
    """A peak at the lesion's mirror position pair is a hit, whichever side the lesion is on."""
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[30:34, lesion_column : lesion_column + 2] = 255
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), mask)
    half_column = min(lesion_column, 63 - lesion_column)
    half = torch.zeros(64, 32)
    half[31, half_column] = 1.0  # the map's peak: the lesion folded onto the half grid
    half[5, 30] = 0.4
    batch = Batch(
        images=torch.zeros(1, 6, 64, 32),
        labels=torch.tensor([0]),
        indices=torch.tensor([0]),
        paths=["face.png"],
        original_sizes=[(64, 64)],
    )
    quality = QualityMetrics(
        nn.Identity(),
        ["localization"],
        layers=["layer"],
        method="gradcam",
        mask_lookup=lambda path: mask_path,
        options=MetricOptions(tolerance=2.0),
    )
    record = quality(batch, _asymmetry_result(half))[0]["layer"]["localization"]
    assert record["pointing_game_hit"] is True
    assert record["sides"] == "folded"
    far = torch.zeros(64, 32)
    far[5, 30] = 1.0
    record = quality(batch, _asymmetry_result(far))[0]["layer"]["localization"]
    assert record["pointing_game_hit"] is False


def _two_spot_model() -> nn.Module:
    """Class k's score is the mean of input channel k: each class has its own spot."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 1] = 1.0
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)


@pytest.mark.parametrize(("label", "hit", "target"), [(0, True, "true_class"), (-1, False, None)])
def test_localization_scores_the_true_class_map_of_a_misclassified_image(
    tmp_path: Path, label: int, hit: bool, target: str | None
) -> None:
    """The lesion is where class 0 looks; the model predicts class 1, which looks elsewhere."""
    image = torch.zeros(1, 3, 16, 16)
    image[0, 0, 2, 2] = 1.0  # class 0's evidence, on the lesion
    image[0, 1, 12, 12] = 3.0  # class 1's stronger evidence: the prediction
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[2, 2] = 255
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), mask)
    model = _two_spot_model()
    result = CAMEngine(model, layers=["0"])(image)
    assert result.predicted.tolist() == [1]
    batch = Batch(
        images=image,
        labels=torch.tensor([label]),
        indices=torch.tensor([0]),
        paths=["face.png"],
        original_sizes=[(16, 16)],
    )
    quality = QualityMetrics(
        model,
        ["localization"],
        layers=["0"],
        method="gradcam",
        mask_lookup=lambda path: mask_path,
        options=MetricOptions(tolerance=0.0),
    )
    fused = result.fused("max", display=False)[:, 0]
    with torch.inference_mode():  # as in Lightning's predict loop
        records = quality(batch, result, fused)[0]
    for name in ("0", "fused"):
        assert records[name]["localization"]["pointing_game_hit"] is hit
        assert records[name]["localization"]["target"] == (target or "explained_class")
