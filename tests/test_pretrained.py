"""Pretrained starts: the first-conv rule, ImageNet weights from torch's cache, local files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision import models

from thermal_explain.errors import CheckpointError, ConfigurationError
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.encoder import ThermalEncoder
from thermal_explain.modeling.pretrained import (
    adapt_first_conv,
    imagenet_weights_file,
    read_pretrained,
)


def _rgb_filters() -> torch.Tensor:
    return torch.randn(8, 3, 7, 7, generator=torch.Generator().manual_seed(0))


def test_first_conv_keeps_the_response_to_repeated_channels() -> None:
    weight = _rgb_filters()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    gray = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(adapt_first_conv(weight, 3), weight)
    # Asymmetry mode: a face whose two halves match answers as the RGB model on one half.
    six = adapt_first_conv(weight, 6)
    assert six.shape == (8, 6, 7, 7) and torch.allclose(six[:, :3], weight / 2)
    both = F.conv2d(torch.cat([image, image], dim=1), six)
    assert torch.allclose(both, F.conv2d(image, weight), atol=1e-5)
    # Grayscale: one channel answers as the RGB model on R = G = B.
    one = adapt_first_conv(weight, 1)
    assert one.shape == (8, 1, 7, 7)
    assert torch.allclose(
        F.conv2d(gray, one), F.conv2d(gray.expand(1, 3, 16, 16), weight), atol=1e-5
    )
    with pytest.raises(ConfigurationError, match="`weight`"):
        adapt_first_conv(torch.randn(8, 6, 7, 7), 3)


def _fake_imagenet_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A torchvision ResNet-18 state dict where torchvision looks for ImageNet weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(3)
    state = models.resnet18(weights=None).state_dict()
    target = imagenet_weights_file("resnet18")
    assert target == tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    return state


def test_imagenet_weights_come_from_torchs_cache(tmp_path, monkeypatch) -> None:
    state = _fake_imagenet_cache(tmp_path, monkeypatch)
    model = ThermalClassifier(pretrained="imagenet", use_asymmetry=True, projection_dim=8)
    backbone = model.encoder.backbone.state_dict()
    assert torch.equal(backbone["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    assert torch.equal(backbone["bn1.running_var"], state["bn1.running_var"])
    assert torch.allclose(backbone["conv1.weight"], adapt_first_conv(state["conv1.weight"], 6))
    assert model.encoder.in_channels == 6 and "pretrained" not in model.hparams
    rgb = ThermalClassifier(pretrained="imagenet", projection_dim=8)
    assert torch.equal(rgb.encoder.backbone.conv1.weight, state["conv1.weight"])


def test_imagenet_without_cache_or_network_says_where_to_put_the_file(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ConfigurationError) as info:
        ThermalClassifier(pretrained="imagenet")
    message = str(info.value)
    assert "\n" not in message and "not cached" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "download.pytorch.org/models/resnet18-f37072fd.pth" in message


def test_local_files_project_encoder_or_torchvision_state_dict(tmp_path) -> None:
    torch.manual_seed(4)
    encoder = ThermalEncoder("resnet18", 3, 5, projection_dim=8)
    project = tmp_path / "encoder.pth"
    torch.save({"model_state_dict": encoder.state_dict()}, project)
    model = ThermalClassifier(pretrained=str(project), projection_dim=8)
    assert torch.equal(
        model.encoder.backbone.layer4[1].conv2.weight, encoder.backbone.layer4[1].conv2.weight
    )
    assert torch.equal(model.encoder.projection_head[2].weight, encoder.projection_head[2].weight)
    assert model.encoder.num_classes == 2  # the classifier starts afresh for the data's classes
    plain = tmp_path / "resnet.pth"
    torchvision_model = models.resnet34(weights=None)
    torch.save({"module." + k: v for k, v in torchvision_model.state_dict().items()}, plain)
    deeper = ThermalClassifier(pretrained=str(plain), projection_dim=8)
    assert deeper.encoder.backbone_name == "resnet34"
    assert torch.equal(
        deeper.encoder.backbone.layer1[0].conv1.weight, torchvision_model.layer1[0].conv1.weight
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"backbone": "resnet50"},
            CheckpointError,
            "holds resnet18 weights but backbone='resnet50'",
        ),
        (
            {"use_asymmetry": False, "six": True},
            CheckpointError,
            "has 6 input channels and the model 3",
        ),
        ({"model_path": True}, ConfigurationError, "either model_path"),
        ({"missing": True}, ConfigurationError, "neither 'imagenet' nor an existing file"),
    ],
)
def test_pretrained_mistakes_are_one_line_errors(tmp_path, kwargs, error, message) -> None:
    six = kwargs.pop("six", False)
    path = tmp_path / "start.pth"
    torch.save(ThermalEncoder("resnet18", 6 if six else 3, 2, 8).state_dict(), path)
    if kwargs.pop("model_path", False):
        kwargs["model_path"] = str(path)
    source = str(tmp_path / "nothing.pth") if kwargs.pop("missing", False) else str(path)
    with pytest.raises(error, match=message) as info:
        ThermalClassifier(pretrained=source, projection_dim=8, **kwargs)
    assert "\n" not in str(info.value)


def test_read_pretrained_rejects_files_without_a_backbone(tmp_path) -> None:
    path = tmp_path / "head.pth"
    torch.save({"classifier.weight": torch.zeros(2, 4)}, path)
    with pytest.raises(CheckpointError, match="holds no ResNet backbone weights"):
        read_pretrained(str(path))
