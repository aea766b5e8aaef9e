"""CAM math: a closed-form check of every method, map arithmetic, statistics, asymmetry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thermal_explain.cam import (
    METHODS,
    CAMEngine,
    CAMMethod,
    feature_statistics,
    fuse_maps,
    get_method,
    mirror_to_full_width,
    normalize_maps,
    side_attribution,
    statistics_at_sizes,
    statistics_records,
    upsample_maps,
)
from thermal_explain.cam import statistics as statistics_module
from thermal_explain.errors import ConfigurationError


class HandModel(nn.Module):
    """conv 1x1 (1 -> 2 channels) -> global average pool -> linear (2 -> 2 classes).

    With ``x = [[1, 2], [3, 4]]`` the activations are ``A0 = x`` and ``A1 = 5 - x``, the
    logits are ``[3.75, 0]`` and the gradient of class ``c`` with respect to ``A_k`` is the
    constant ``W[c, k] / 4``: every CAM can be written down by hand.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.classifier = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, 5.0]))
            self.classifier.weight.copy_(torch.tensor([[1.0, 0.5], [-1.0, 1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x).mean((2, 3)))


A0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
A1 = torch.tensor([[4.0, 3.0], [2.0, 1.0]])
# class 0: gradients (0.25, 0.125); class 1: gradients (-0.25, 0.25)
GRADCAM = (0.25 * A0 + 0.125 * A1, torch.relu(-0.25 * A0 + 0.25 * A1))
# Grad-CAM++: alpha_k = 1 / (2 + g_k * sum(A_k)), w_k = 4 * alpha_k * relu(g_k)
GRADCAM_PP = ((2 / 9) * A0 + (2 / 13) * A1, (2 / 9) * A1)
EXPECTED = {
    "gradcam": GRADCAM,
    "hirescam": GRADCAM,  # gradients are spatially constant here
    "xgradcam": GRADCAM,  # sum(G * A) / sum(A) = G for a constant G
    "layercam": (GRADCAM[0], 0.25 * A1),  # class 1: relu(-0.25) = 0 drops A0
    "gradcam++": GRADCAM_PP,
}


@pytest.fixture(scope="module")
def hand_image() -> torch.Tensor:
    return A0.view(1, 1, 2, 2)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_every_method_matches_the_closed_form(method: str, hand_image: torch.Tensor) -> None:
    result = CAMEngine(HandModel(), layers=["conv"], method=method)(hand_image, target="all")
    assert torch.allclose(result.logits, torch.tensor([[3.75, 0.0]]))
    expected = torch.stack(EXPECTED[method]).unsqueeze(0)
    assert torch.allclose(result.raw_maps["conv"], expected, atol=1e-6)
    assert torch.allclose(result.maps["conv"], normalize_maps(expected), atol=1e-6)


def test_closed_form_statistics(hand_image: torch.Tensor) -> None:
    result = CAMEngine(HandModel(), layers=["conv"])(hand_image)
    # predicted class 0: normalized map [[0, 1/3], [2/3, 1]]
    assert torch.allclose(result.maps["conv"][0, 0], torch.tensor([[0, 1 / 3], [2 / 3, 1]]))
    record = result.statistics_records("conv")[0]
    assert record["max_activation"] == pytest.approx(1.0)
    assert record["mean_activation"] == pytest.approx(0.5)
    assert record["std_activation"] == pytest.approx(math.sqrt(5 / 36), rel=1e-5)
    assert record["activation_area"] == pytest.approx(0.5)
    com = result.statistics["conv"]["center_of_mass"][0, 0]
    assert torch.allclose(com, torch.tensor([2 / 3, 5 / 6]))
    assert record["center_of_mass"] == [1, 1]


def test_get_method_names_and_aliases() -> None:
    assert set(METHODS) == {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"}
    for name, cls in METHODS.items():
        assert type(get_method(name)) is cls
    assert get_method("gradcampp").name == "gradcam++"
    assert get_method("GradCAM++").name == "gradcam++"
    assert get_method("Grad-CAM").name == "gradcam"
    instance = METHODS["layercam"]()
    assert get_method(instance) is instance


def test_unknown_method_lists_the_valid_names() -> None:
    with pytest.raises(ConfigurationError) as error:
        get_method("scorecam")
    message = str(error.value)
    assert "`method`" in message and "scorecam" in message and "\n" not in message
    for name in METHODS:
        assert name in message


def test_each_method_overrides_only_the_weights() -> None:
    for cls in METHODS.values():
        overridden = {k for k, v in vars(cls).items() if callable(v) and not k.startswith("__")}
        assert overridden == {"weights"}, cls
        assert issubclass(cls, CAMMethod)


def test_methods_are_batched_and_do_not_change_inputs() -> None:
    torch.manual_seed(0)
    activations, gradients = torch.rand(3, 4, 5, 6), torch.randn(3, 4, 5, 6)
    copies = activations.clone(), gradients.clone()
    for method in METHODS.values():
        batched = method()(activations, gradients)
        assert batched.shape == (3, 5, 6) and bool((batched >= 0).all())
        single = method()(activations[1:2], gradients[1:2])
        assert torch.allclose(batched[1:2], single, atol=1e-6)
    assert torch.equal(activations, copies[0]) and torch.equal(gradients, copies[1])


def test_zero_gradients_give_a_zero_map_without_nan() -> None:
    activations = torch.rand(2, 3, 4, 4)
    for method in METHODS.values():
        result = method()(activations, torch.zeros_like(activations))
        assert torch.equal(result, torch.zeros(2, 4, 4)), method


def test_normalize_maps_constant_map_gives_zeros() -> None:
    maps = torch.stack([torch.full((3, 3), 7.0), torch.arange(9.0).view(3, 3)])
    normalized = normalize_maps(maps)
    assert torch.equal(normalized[0], torch.zeros(3, 3))
    assert normalized[1].min() == 0 and normalized[1].max() == 1
    assert not normalized.isnan().any()


def test_upsample_maps_keeps_leading_dimensions() -> None:
    maps = torch.rand(2, 3, 4, 5)
    resized = upsample_maps(maps, (8, 10))
    assert resized.shape == (2, 3, 8, 10)
    assert upsample_maps(maps, (4, 5)) is maps
    constant = upsample_maps(torch.full((1, 2, 2), 3.0), (5, 7))
    assert torch.allclose(constant, torch.full((1, 5, 7), 3.0))


def test_fuse_maps_max_and_mean() -> None:
    coarse = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])  # right half hot, 2x2
    fine = torch.zeros(1, 4, 4)
    fine[0, 0, 0] = 2.0  # top-left pixel hot, 4x4
    fused_max = fuse_maps({"a": coarse, "b": fine}, "max")
    assert fused_max.shape == (1, 4, 4)
    assert fused_max[0, 3, 0] == 0
    assert torch.allclose(fused_max[0, 0, 3], torch.tensor(1.0), atol=2e-3)
    # Equal maxima: the peak goes where the layers agree, not to the first in raster order.
    both = torch.zeros(1, 4, 4)
    both[0, 3, 3] = 1.0
    first = both.clone()
    first[0, 0, 0] = 1.0  # `first` peaks at (0, 0) and (3, 3), `both` at (3, 3) only
    assert int(fuse_maps([first, both], "max").flatten().argmax()) == 15
    fused_mean = fuse_maps([coarse, fine], "mean")
    expected = (upsample_maps(coarse, (4, 4)) + fine / 2) / 2
    assert torch.allclose(fused_mean, normalize_maps(expected))
    with pytest.raises(ConfigurationError, match="`mode`"):
        fuse_maps([coarse], "median")
    with pytest.raises(ConfigurationError, match="`maps`"):
        fuse_maps([], "max")


def test_feature_statistics_of_a_single_hot_pixel() -> None:
    maps = torch.zeros(1, 5, 7)
    maps[0, 1, 3] = 1.0
    stats = feature_statistics(maps)
    assert torch.allclose(stats["center_of_mass"][0], torch.tensor([3.0, 1.0]))
    assert stats["activation_area"][0] == pytest.approx(1 / 35)
    assert stats["max_activation"][0] == 1
    empty = feature_statistics(torch.zeros(2, 4, 6))
    assert torch.allclose(empty["center_of_mass"], torch.tensor([[2.5, 1.5], [2.5, 1.5]]))
    assert not any(value.isnan().any() for value in empty.values())


def test_statistics_at_original_size_closed_form() -> None:
    maps = torch.zeros(1, 1, 4, 4)
    maps[..., 2:] = 1.0  # right half
    stats = statistics_at_sizes(maps, [(8, 8)])
    # bilinear x2 along x gives the row [0, 0, 0, .25, .75, 1, 1, 1]
    assert stats["center_of_mass"][0, 0].tolist() == pytest.approx([21.75 / 4, 3.5])
    assert stats["mean_activation"][0, 0] == pytest.approx(0.5)
    assert stats["activation_area"][0, 0] == pytest.approx(0.5)


def test_statistics_group_by_size_equal_a_per_image_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    maps = normalize_maps(torch.rand(4, 3, 6, 6))
    sizes = [(8, 8), (5, 11), (8, 8), (12, 7)]
    grouped = statistics_at_sizes(maps, sizes)
    for index, size in enumerate(sizes):
        single = feature_statistics(normalize_maps(upsample_maps(maps[index], size)))
        for name, values in single.items():
            assert torch.allclose(grouped[name][index], values, atol=1e-5), name
    monkeypatch.setattr(statistics_module, "_ELEMENT_BUDGET", 64)  # forces sample chunks
    chunked = statistics_at_sizes(maps, sizes)
    for name, values in grouped.items():
        assert torch.allclose(chunked[name], values, atol=1e-6), name


def test_statistics_records_are_python_values() -> None:
    stats = feature_statistics(normalize_maps(torch.rand(2, 1, 4, 4)))
    records = statistics_records(stats)
    assert len(records) == 2
    assert set(records[0]) == {
        "max_activation",
        "mean_activation",
        "std_activation",
        "activation_area",
        "center_of_mass",
    }
    assert all(type(records[0][k]) is float for k in records[0] if k != "center_of_mass")
    assert all(type(v) is int for v in records[0]["center_of_mass"])


def test_mirror_to_full_width_even_and_odd() -> None:
    maps = torch.arange(6.0).view(1, 1, 2, 3)
    full = mirror_to_full_width(maps)
    assert full.shape == (1, 1, 2, 6)
    assert torch.equal(full[..., :3], maps) and torch.equal(full[..., 3:], maps.flip(-1))
    odd = mirror_to_full_width(maps, full_width=7)
    assert torch.equal(odd[0, 0, 0], torch.tensor([0.0, 1, 2, 2, 2, 1, 0]))
    with pytest.raises(ConfigurationError, match="`full_width`"):
        mirror_to_full_width(maps, full_width=9)


def test_side_attribution_shares() -> None:
    images = torch.ones(2, 6, 3, 3)
    gradients = torch.zeros(2, 6, 3, 3)
    gradients[0, :3] = 2.0  # only the left face matters for image 0
    gradients[1, :3], gradients[1, 3:] = -1.0, 3.0  # signs do not cancel the evidence
    sides = side_attribution(images, gradients)
    assert torch.allclose(sides, torch.tensor([[1.0, 0.0], [0.25, 0.75]]))
    both_zero = side_attribution(images, torch.zeros(1, 2, 6, 3, 3).expand(2, 2, 6, 3, 3))
    assert both_zero.shape == (2, 2, 2) and torch.equal(both_zero, torch.full((2, 2, 2), 0.5))
    with pytest.raises(ConfigurationError, match="`images`"):
        side_attribution(torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2))


def test_feature_statistics_shortcut_for_normalized_maps() -> None:
    torch.manual_seed(0)
    maps = normalize_maps(torch.cat([torch.rand(3, 9, 7), torch.full((1, 9, 7), 2.0)]))
    full, shortcut = feature_statistics(maps), feature_statistics(maps, normalized=True)
    for name, values in full.items():
        assert torch.allclose(shortcut[name], values, atol=1e-6), name
    assert full["max_activation"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_upsampled_one_by_one_map_normalizes_to_zeros_not_noise() -> None:
    from thermal_explain.cam.methods import normalize_maps, upsample_maps

    upsampled = upsample_maps(torch.full((2, 1, 1, 1), 0.37), (32, 32))
    assert torch.equal(normalize_maps(upsampled), torch.zeros_like(upsampled))
