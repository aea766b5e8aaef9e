"""Pretrained starts for the encoder's backbone: torchvision's ImageNet weights or a file.

``pretrained="imagenet"`` takes torchvision's ImageNet weights of the chosen ResNet
(downloaded once into torch's hub cache, ``$TORCH_HOME/hub/checkpoints``);
``pretrained=PATH`` takes the backbone (and, when it fits, the projection head) of any
checkpoint :func:`~thermal_explain.modeling.checkpoints.read_checkpoint` reads: a
``thermal-explain pretrain`` or ``fit`` checkpoint, an exported encoder, or a plain
torchvision ResNet state dict. The classifier always starts afresh.

The first convolution is adapted from three (RGB) input channels to the model's
``C`` by :func:`adapt_first_conv`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torchvision import models

from thermal_explain.errors import CheckpointError, ConfigurationError, shorten
from thermal_explain.modeling.checkpoints import (
    PREFIXES,
    infer_architecture,
    normalize_state_dict,
    read_checkpoint,
)
from thermal_explain.modeling.encoder import BACKBONES, RGB_CHANNELS

log = logging.getLogger(__name__)

IMAGENET = "imagenet"
"""The ``pretrained`` value that selects torchvision's ImageNet weights."""

_IMAGENET_WEIGHTS = {
    "resnet18": models.ResNet18_Weights.DEFAULT,
    "resnet34": models.ResNet34_Weights.DEFAULT,
    "resnet50": models.ResNet50_Weights.DEFAULT,
}

_RESNET_KEY = re.compile(r"(conv1|bn1|layer[1-4])\.")


class PretrainableEncoder(Protocol):
    """What :func:`apply_pretrained` loads into: a ``ThermalEncoder`` or the pretrainer."""

    backbone: nn.Module
    projection_head: nn.Module
    in_channels: int
    backbone_name: str


@dataclass(frozen=True)
class PretrainedWeights:
    """Weights to start an encoder from.

    Attributes:
        source: ``"imagenet"`` or the file they came from.
        backbone: the ResNet they belong to (``resnet18``, ``resnet34``, ``resnet50``).
        state: encoder-relative tensors (``backbone.*``, maybe ``projection_head.*``).
    """

    source: str
    backbone: str
    state: dict[str, torch.Tensor]


def read_pretrained(
    source: str, backbone: str | None = None, allow_pickle: bool = False
) -> PretrainedWeights:
    """The weights ``source`` names: ``"imagenet"`` or a checkpoint path.

    ``backbone`` picks the ImageNet ResNet (default ``resnet18``) and, for a file, must
    match the file's depth when given.

    Raises:
        ConfigurationError: ImageNet weights neither cached nor downloadable (the message
            says where to put the file), or an unknown backbone.
        CheckpointError: a file that cannot be read or holds no ResNet backbone.
    """
    if backbone is not None and backbone not in BACKBONES:
        raise ConfigurationError(
            f"unknown backbone '{backbone}'; choose one of {', '.join(BACKBONES)}"
        )
    if source == IMAGENET:
        name = backbone or "resnet18"
        state = {f"backbone.{key}": value for key, value in imagenet_state_dict(name).items()}
        return PretrainedWeights(IMAGENET, name, state)
    path = Path(source)
    if not path.exists():
        raise ConfigurationError(
            f"pretrained '{source}' is neither 'imagenet' nor an existing file; pass "
            "--model.pretrained imagenet or the path of a checkpoint (e.g. from "
            "thermal-explain pretrain)"
        )
    raw, _ = read_checkpoint(path, allow_pickle=allow_pickle)
    state = _backbone_weights(raw)
    if not state:
        raise CheckpointError(
            f"pretrained '{source}' holds no ResNet backbone weights (found keys: "
            f"{shorten(list(raw))}); pass a checkpoint of this project's encoder or a "
            "torchvision ResNet state dict"
        )
    try:
        found = infer_architecture(state).backbone
    except CheckpointError as error:
        raise CheckpointError(f"pretrained '{source}': {error}") from error
    if backbone is not None and backbone != found:
        raise CheckpointError(
            f"pretrained '{source}' holds {found} weights but backbone={backbone!r}; drop "
            f"--model.backbone or set it to {found}"
        )
    return PretrainedWeights(str(source), found, state)


def imagenet_weights_file(backbone: str) -> Path:
    """Where torchvision keeps (and looks for) the ImageNet weights of ``backbone``."""
    url = _IMAGENET_WEIGHTS[backbone].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def imagenet_state_dict(backbone: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict of ``backbone`` (cached, else downloaded).

    Raises:
        ConfigurationError: not cached and not downloadable (no network), or a cached
            file that cannot be read; the message names the file and where it goes.
    """
    weights = _IMAGENET_WEIGHTS[backbone]
    target = imagenet_weights_file(backbone)
    cached = target.is_file()
    try:
        return weights.get_state_dict(progress=False)
    except Exception as error:  # network errors, HTTP errors, unreadable files
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        if cached:
            raise ConfigurationError(
                f"cannot read the ImageNet weights at '{target}' ({reason}); delete the file "
                f"and download {weights.url} again"
            ) from error
        raise ConfigurationError(
            f"ImageNet weights for {backbone} are not cached and cannot be downloaded "
            f"({reason}); download {weights.url} elsewhere and put it at '{target}' "
            "(TORCH_HOME moves that folder)"
        ) from error


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt ``(O, 3, k, k)`` RGB filters to ``in_channels`` inputs.

    The rule keeps the response to an input whose channels repeat one image: when
    ``C`` is a multiple of 3 the RGB filters repeat ``C / 3`` times (asymmetry mode:
    the same filters see the left face and the mirrored right face); otherwise every
    channel gets the mean of the RGB filters (grayscale: their sum for ``C = 1``);
    either way the result is scaled by ``3 / C``. So a face whose two halves match gives
    a 6-channel model the activation the RGB model gives one half, and a grey image
    gives a 1-channel model the activation the RGB model gives it as ``R = G = B``.

    Returns:
        ``(O, C, k, k)``, a new tensor.
    """
    if weight.ndim != 4 or weight.shape[1] != RGB_CHANNELS:
        raise ConfigurationError(
            f"Expected argument `weight` to have shape (O, 3, k, k) but got {tuple(weight.shape)}"
        )
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ConfigurationError(
            f"Expected argument `in_channels` to be a positive integer but got {in_channels!r}"
        )
    if in_channels % RGB_CHANNELS == 0:
        adapted = weight.repeat(1, in_channels // RGB_CHANNELS, 1, 1)
    else:
        adapted = weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
    return adapted * (RGB_CHANNELS / in_channels)


def apply_pretrained(encoder: PretrainableEncoder, weights: PretrainedWeights) -> None:
    """Load ``weights`` into ``encoder``'s backbone (and projection head when it fits).

    Raises:
        CheckpointError: a backbone that does not fit (names the keys), or a first
            convolution with neither 3 nor the encoder's number of input channels.
    """
    prefix = "backbone."
    state = {
        key[len(prefix) :]: value
        for key, value in weights.state.items()
        if key.startswith(prefix) and not key.startswith(f"{prefix}fc.")
    }
    conv = state["conv1.weight"]
    if conv.shape[1] != encoder.in_channels:
        if conv.shape[1] != RGB_CHANNELS:
            raise CheckpointError(
                f"pretrained '{weights.source}' has {conv.shape[1]} input channels and the "
                f"model {encoder.in_channels}; only 3-channel weights are adapted. Set "
                "use_asymmetry to match the checkpoint or pretrain with the model's channels"
            )
        state["conv1.weight"] = adapt_first_conv(conv, encoder.in_channels)
    _load_backbone(encoder, state, weights.source)
    head = {
        key[len("projection_head.") :]: value
        for key, value in weights.state.items()
        if key.startswith("projection_head.")
    }
    expected = encoder.projection_head.state_dict()
    if head.keys() == expected.keys() and all(
        head[key].shape == expected[key].shape for key in expected
    ):
        encoder.projection_head.load_state_dict(head)
    elif head:
        log.info(
            "pretrained '%s': projection head of another size; starting it afresh", weights.source
        )


def _load_backbone(
    encoder: PretrainableEncoder, state: dict[str, torch.Tensor], source: str
) -> None:
    expected = encoder.backbone.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in state
        if key in expected and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            f"{label}: {shorten(keys)}"
            for label, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("size mismatch", mismatched),
            )
            if keys
        ]
        raise CheckpointError(
            f"pretrained '{source}' does not fit a {encoder.backbone_name} backbone: "
            f"{'; '.join(problems)}; pass weights of the same ResNet"
        )
    encoder.backbone.load_state_dict(state, strict=False)


def _backbone_weights(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Encoder-relative weights of a project checkpoint or a torchvision ResNet state dict."""
    weights = normalize_state_dict(raw)
    if any(key.startswith("backbone.") for key in weights):
        return weights
    renamed: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        name = str(key)
        while (prefix := next((p for p in PREFIXES if name.startswith(p)), None)) is not None:
            name = name[len(prefix) :]
        if _RESNET_KEY.match(name) and isinstance(value, torch.Tensor):
            renamed[f"backbone.{name}"] = value
    return renamed
