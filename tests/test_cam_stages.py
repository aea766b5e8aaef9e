"""Default layers of the common vision backbones, and transformers' token grids."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torchvision.models as tv
from torch import nn
from torchvision.models import SwinTransformer, VisionTransformer

from thermal_explain.cam import CAMEngine, default_target_layers, upsample_maps
from thermal_explain.errors import ConfigurationError

EXPECTED = {
    "resnet18": [f"layer{k}.1.conv2" for k in range(1, 5)],
    "resnext50_32x4d": ["layer1.2.conv3", "layer2.3.conv3", "layer3.5.conv3", "layer4.2.conv3"],
    "wide_resnet50_2": ["layer1.2.conv3", "layer2.3.conv3", "layer3.5.conv3", "layer4.2.conv3"],
    "densenet121": [
        "features.denseblock1.denselayer6.conv2",
        "features.denseblock2.denselayer12.conv2",
        "features.denseblock3.denselayer24.conv2",
        "features.denseblock4.denselayer16.conv2",
    ],
    "mobilenet_v2": [
        "features.1.conv.1",
        "features.3.conv.2",
        "features.6.conv.2",
        "features.13.conv.2",
        "features.18.0",
    ],
    "mobilenet_v3_small": [
        "features.1.block.2.0",
        "features.3.block.2.0",
        "features.8.block.3.0",
        "features.12.0",
    ],
    "efficientnet_b0": [
        "features.1.0.block.2.0",
        "features.2.1.block.3.0",
        "features.3.1.block.3.0",
        "features.5.2.block.3.0",
        "features.8.0",
    ],
    "efficientnet_v2_s": [
        "features.1.1.block.0.0",
        "features.2.3.block.1.0",
        "features.3.3.block.1.0",
        "features.5.8.block.3.0",
        "features.7.0",
    ],
    "convnext_tiny": [
        "features.1.2.block.0",
        "features.3.2.block.0",
        "features.5.8.block.0",
        "features.7.2.block.0",
    ],
    "vgg16_bn": ["features.3", "features.10", "features.20", "features.30", "features.40"],
    "vit_b_16": ["encoder.layers.encoder_layer_11.ln_1"],
    "swin_t": ["permute"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_last_convolution_of_each_stage(name: str) -> None:
    with torch.device("meta"):  # structure and shapes only: no weights are initialized
        model = getattr(tv, name)(weights=None)
    assert default_target_layers(model) == EXPECTED[name]


def test_regnet_stages() -> None:
    model = tv.regnet_y_400mf(weights=None)  # its constructor cannot run on the meta device
    last_blocks = {1: 0, 2: 2, 3: 5, 4: 5}
    assert default_target_layers(model) == [
        f"trunk_output.block{k}.block{k}-{last}.f.c.0" for k, last in last_blocks.items()
    ]


def test_a_module_holding_a_backbone_gets_prefixed_names() -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tv.mobilenet_v3_small(weights=None, num_classes=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    with torch.device("meta"):
        holder = Holder()
    assert default_target_layers(holder)[-1] == "net.features.12.0"


def test_a_generic_cnn_gets_the_last_conv_before_each_downsampling() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 2),
    )
    assert default_target_layers(model) == ["2", "5"]


def test_nothing_to_explain_is_one_clear_line() -> None:
    with pytest.raises(ConfigurationError, match="`layers`") as error:
        default_target_layers(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
    assert "\n" not in str(error.value)


def test_the_dummy_pass_leaves_modes_and_random_state_alone() -> None:
    model = tv.resnet18(weights=None)
    model.train()
    model.layer2.eval()
    modes = {name: m.training for name, m in model.named_modules()}
    stats = model.bn1.running_mean.clone()
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    default_target_layers(model)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert torch.equal(model.bn1.running_mean, stats)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    vit = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    vit.heads.head = nn.Linear(16, 3)  # torchvision starts the head at zero: no gradient
    return vit.eval()


def test_vit_tokens_are_read_as_a_grid() -> None:
    vit = tiny_vit()
    images = torch.randn(2, 3, 32, 32)
    result = CAMEngine(vit)(images)
    (layer,) = result.layers
    assert layer == "encoder.layers.encoder_layer_1.ln_1"
    assert result.maps[layer].shape == (2, 1, 32, 32) and float(result.maps[layer].max()) == 1.0
    with torch.no_grad():
        assert torch.allclose(result.logits, vit(images), atol=1e-5)  # the model is unchanged


def test_token_grid_gradcam_matches_the_closed_form() -> None:
    """Logits ``W mean(tokens) + b``: each patch token's gradient is ``W[c] / T``."""

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, 4, 4, stride=4)
            self.cls = nn.Parameter(torch.randn(1, 1, 4))
            self.tokens = nn.Identity()
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            patches = self.embed(x).flatten(2).transpose(1, 2)
            tokens = self.tokens(torch.cat([self.cls.expand(len(x), -1, -1), patches], 1))
            return self.head(tokens.mean(1))

    torch.manual_seed(1)
    model = Tokens()
    images = torch.randn(2, 3, 16, 16)
    result = CAMEngine(model, layers=["tokens"], method="gradcam")(images)
    with torch.no_grad():
        grid = model.embed(images)  # (N, 4, 4, 4): the patch tokens as a grid
        weights = model.head.weight[result.predicted] / 17  # 16 patches + the class token
        expected = torch.relu((weights[:, :, None, None] * grid).sum(1, keepdim=True))
    assert torch.allclose(result.raw_maps["tokens"], upsample_maps(expected, (16, 16)), atol=1e-5)


def test_swin_is_explained_at_its_last_stage_and_bad_tokens_are_refused() -> None:
    torch.manual_seed(0)
    swin = SwinTransformer(
        patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=[2, 2]
    )
    result = CAMEngine(swin.eval())(torch.randn(1, 3, 32, 32))
    assert result.layers == ["permute"] and result.maps["permute"].shape == (1, 1, 32, 32)

    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, 4, 4, stride=4)
            self.tokens = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = self.embed(x).flatten(2).transpose(1, 2)[:, :3]
            return self.tokens(tokens).mean(1)

    with pytest.raises(ConfigurationError, match="square grid"):
        CAMEngine(Odd(), layers=["tokens"])(torch.randn(1, 3, 16, 16))
