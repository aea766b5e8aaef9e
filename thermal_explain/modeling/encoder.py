"""The contrastive thermal encoder: a ResNet backbone, a projection head and a classifier."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from thermal_explain.checks import check_choice, check_int
from thermal_explain.errors import ConfigurationError

BACKBONES: dict[str, Callable[..., models.ResNet]] = {
    "resnet18": models.resnet18,
    "resnet34": models.resnet34,
    "resnet50": models.resnet50,
}


ASYMMETRY_CHANNELS = 6


RGB_CHANNELS = 3


def build_backbone(name: str, in_channels: int) -> tuple[nn.Module, int]:
    """A randomly initialized torchvision ResNet without its fc layer.

    Args:
        name: one of ``resnet18``, ``resnet34``, ``resnet50``.
        in_channels: input channels; ``conv1`` is replaced (same geometry, no bias) unless 3.

    Returns:
        ``(backbone, feature_dim)``: the backbone maps ``(N, C, H, W)`` to ``(N, feature_dim)``.
    """
    check_choice("backbone", name, BACKBONES)
    check_int("in_channels", in_channels, 1)
    backbone = BACKBONES[name](weights=None)
    if in_channels != RGB_CHANNELS:
        old = backbone.conv1
        backbone.conv1 = nn.Conv2d(
            in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=False,
        )
    feature_dim = backbone.fc.in_features
    backbone.fc = nn.Identity()
    return backbone, feature_dim


def build_projection_head(feature_dim: int, projection_dim: int) -> nn.Sequential:
    """The contrastive projection head: ``(N, feature_dim)`` -> ``(N, projection_dim)``."""
    return nn.Sequential(
        nn.Linear(feature_dim, feature_dim),
        nn.ReLU(inplace=True),
        nn.Linear(feature_dim, projection_dim),
    )


class ThermalEncoder(nn.Module):
    """ResNet backbone with a contrastive projection head and a linear classifier.

    Submodule names (``backbone``, ``projection_head``, ``classifier``) match the project's
    checkpoints, so ``backbone.layer4.1.conv2`` is the last convolution of ResNet-18.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_channels: int = RGB_CHANNELS,
        num_classes: int = 2,
        projection_dim: int = 128,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes, 2)
        check_int("projection_dim", projection_dim, 1)
        self.backbone, feature_dim = build_backbone(backbone, in_channels)
        self.projection_head = build_projection_head(feature_dim, projection_dim)
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.backbone_name = backbone
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.projection_dim = projection_dim
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, K)`` class logits."""
        self.check_input(x)
        return self.classifier(self.backbone(x))

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` -> ``((N, P)`` L2-normalized embeddings, ``(N, K)`` logits``)``.

        Both outputs come from a single backbone pass.
        """
        self.check_input(x)
        features = self.backbone(x)
        embeddings = F.normalize(self.projection_head(features), dim=1)
        return embeddings, self.classifier(features)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a one-line :class:`ConfigurationError` unless ``x`` is ``(N, C, H, W)``."""
        if x.ndim != 4:
            raise ConfigurationError(
                f"the model expects images of shape (N, {self.in_channels}, H, W) but got "
                f"shape {tuple(x.shape)}; pass a batch of images"
            )
        if x.shape[1] != self.in_channels:
            raise ConfigurationError(_channel_message(self.in_channels, x.shape[1]))


def _channel_message(expected: int, got: int) -> str:
    modes = {RGB_CHANNELS: " (RGB mode)", ASYMMETRY_CHANNELS: " (asymmetry mode)"}
    if {expected, got} <= set(modes):
        fix = "set use_asymmetry to match the checkpoint"
    else:
        fix = f"convert the images to {expected} channels"
    return f"the model expects {expected} channels{modes.get(expected, '')} but got {got}; {fix}"
