"""CAMEngine speed settings: channels-last order (exact), reduced precision (close, float32)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from thermal_explain.cam import METHODS, CAMEngine
from thermal_explain.cam import precision as precision_module
from thermal_explain.cam.precision import check_precision, lightning_precision
from thermal_explain.errors import ConfigurationError


class Encoder(nn.Module):
    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        if in_channels != 3:
            self.backbone.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.classifier = nn.Linear(512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    torch.manual_seed(0)
    return Encoder().eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r of each pair of maps, ``(N, T, H, W)`` -> ``(N, T)``."""
    a, b = a.flatten(2), b.flatten(2)
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


@pytest.mark.parametrize("method", list(METHODS))
def test_channels_last_gives_the_contiguous_maps(encoder, images, method) -> None:
    sizes = [(48, 80)] * 3
    fast = CAMEngine(encoder, method=method, channels_last=True)(images, original_sizes=sizes)
    plain = CAMEngine(encoder, method=method, channels_last=False)(images, original_sizes=sizes)
    # Only the order of float additions differs. XGrad-CAM divides by channel sums that
    # nearly cancel, which magnifies that rounding, still well below a PNG grey level (1/255).
    tolerance = 2e-3 if method == "xgradcam" else 1e-4
    for layer in plain.layers:
        torch.testing.assert_close(fast.maps[layer], plain.maps[layer], atol=tolerance, rtol=0)
        for name, values in plain.statistics[layer].items():
            atol = 0.05 if name == "center_of_mass" else tolerance
            torch.testing.assert_close(fast.statistics[layer][name], values, atol=atol, rtol=0)
    torch.testing.assert_close(fast.logits, plain.logits, atol=1e-5, rtol=1e-5)
    assert torch.equal(fast.predicted, plain.predicted)


def test_channels_last_leaves_the_model_and_input_alone(encoder, images) -> None:
    CAMEngine(encoder)(images)
    assert images.is_contiguous()
    assert all(p.is_contiguous() for p in encoder.parameters())


def test_channels_last_in_asymmetry_mode_keeps_side_attribution() -> None:
    torch.manual_seed(1)
    model = Encoder(in_channels=6).eval()
    images = torch.randn(2, 6, 64, 32, generator=torch.Generator().manual_seed(1))
    fast = CAMEngine(model, asymmetry=True, channels_last=True)(images)
    plain = CAMEngine(model, asymmetry=True, channels_last=False)(images)
    torch.testing.assert_close(fast.side_attribution, plain.side_attribution, atol=1e-4, rtol=0)
    layer = plain.layers[-1]
    torch.testing.assert_close(
        fast.display_maps[layer], plain.display_maps[layer], atol=1e-4, rtol=0
    )


def test_bf16_maps_follow_float32_and_come_out_as_float32(encoder, images, monkeypatch) -> None:
    monkeypatch.setattr(precision_module, "bfloat16_is_native", lambda device: True)
    exact = CAMEngine(encoder)(images)
    reduced = CAMEngine(encoder, precision="bf16-mixed")(images)
    assert reduced.logits.dtype == torch.float32
    for layer in exact.layers:
        assert reduced.maps[layer].dtype == reduced.raw_maps[layer].dtype == torch.float32
        assert all(v.dtype == torch.float32 for v in reduced.statistics[layer].values())
        assert _correlation(reduced.maps[layer], exact.maps[layer]).min() > 0.9
        assert not torch.equal(reduced.raw_maps[layer], exact.raw_maps[layer])  # it did run bf16
    assert torch.equal(reduced.predicted, exact.predicted)


def test_bf16_without_native_support_says_so_once_and_runs_float32(
    encoder, images, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(precision_module, "bfloat16_is_native", lambda device: False)
    monkeypatch.setattr(precision_module, "_warned", set())
    engine = CAMEngine(encoder, precision="bf16-mixed")
    with caplog.at_level(logging.WARNING, logger=precision_module.__name__):
        result = engine(images)
        engine(images)
    lines = [r.getMessage() for r in caplog.records if r.name == precision_module.__name__]
    assert len(lines) == 1 and "bfloat16" in lines[0] and "float32" in lines[0]
    exact = CAMEngine(encoder)(images)
    for layer in exact.layers:
        torch.testing.assert_close(result.raw_maps[layer], exact.raw_maps[layer])


def test_maps_stay_float32_inside_a_callers_autocast(encoder, images) -> None:
    exact = CAMEngine(encoder)(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = CAMEngine(encoder)(images)
    for layer in exact.layers:
        torch.testing.assert_close(inside.raw_maps[layer], exact.raw_maps[layer])


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_a_scaled_score_gives_the_same_maps(encoder, images, method) -> None:
    exact = CAMEngine(encoder, method=method)(images)
    scaled_engine = CAMEngine(encoder, method=method)
    scaled_engine._gradient_scale = 1024.0  # what 16-mixed does against float16 underflow
    scaled = scaled_engine(images)
    for layer in exact.layers:
        torch.testing.assert_close(scaled.maps[layer], exact.maps[layer], atol=1e-5, rtol=0)
    assert precision_module.gradient_scale("16-mixed") > 1
    assert precision_module.gradient_scale("bf16-mixed") == 1


def test_fp16_is_cuda_only(encoder, images) -> None:
    engine = CAMEngine(encoder, precision="16-mixed")
    with pytest.raises(ConfigurationError, match=r"CUDA only.*bf16-mixed"):
        engine(images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_reduced_precision_on_cuda(encoder, images, precision) -> None:
    model, batch = Encoder().eval().cuda(), images.cuda()
    model.load_state_dict(encoder.state_dict())
    exact = CAMEngine(model)(batch)
    reduced = CAMEngine(model, precision=precision)(batch)
    for layer in exact.layers:
        assert _correlation(reduced.maps[layer], exact.maps[layer]).min() > 0.9


def test_precision_names() -> None:
    assert check_precision("bf16") == "bf16-mixed" and check_precision(32) == "32-true"
    with pytest.raises(ConfigurationError, match="Expected argument `precision` to be one of"):
        check_precision("8-mixed")
    with pytest.raises(ConfigurationError):
        CAMEngine(nn.Sequential(nn.Conv2d(3, 2, 1)), layers=["0"], precision="half")
    assert lightning_precision("bf16-mixed") == "bf16-mixed"
    assert lightning_precision("bf16-true") == lightning_precision("64-true") == "32-true"
