"""Which layers of two models are compared: the same names, or the same ResNet stage."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from thermal_explain.cam import default_target_layers, resolve_layers
from thermal_explain.errors import ConfigurationError, shorten

_STAGE = re.compile(r"^layer\d+$")


@dataclass(frozen=True)
class LayerPair:
    """One compared pair of layers.

    Attributes:
        name: the key in records, reports and file names: the layer name when both models
            use the same one, else the shared stage (``backbone.layer4``).
        layer_a: dotted layer name in model A's encoder.
        layer_b: dotted layer name in model B's encoder.
    """

    name: str
    layer_a: str
    layer_b: str


def pair_layers(
    model_a: nn.Module, model_b: nn.Module, layers: Sequence[str] | None = None
) -> list[LayerPair]:
    """The layer pairs to compare.

    With ``layers``, every name must exist in both models and is compared with itself.
    Without, each model's default layers (the last conv of each ResNet stage) are used:
    identical names pair with each other; otherwise (models of different depth) the layers
    pair by stage (``layer1`` .. ``layer4``) and are keyed by the stage.

    Raises:
        ConfigurationError: a named layer is missing in one model (the message says which),
            or the models share no ResNet stage.
    """
    if layers is not None:
        for label, model in (("--model_a", model_a), ("--model_b", model_b)):
            try:
                resolve_layers(model, layers)
            except ConfigurationError as error:
                raise ConfigurationError(
                    f"--layers must name layers of both models; {label}: {error}"
                ) from error
        return [LayerPair(name, name, name) for name in layers]
    defaults_a = default_target_layers(model_a)
    defaults_b = default_target_layers(model_b)
    if defaults_a == defaults_b:
        return [LayerPair(name, name, name) for name in defaults_a]
    stages_b = {_stage_prefix(name): name for name in defaults_b}
    pairs = []
    for name_a in defaults_a:
        stage = _stage_prefix(name_a)
        name_b = stages_b.get(stage) if stage is not None else None
        if stage is not None and name_b is not None:
            key = name_a if name_a == name_b else stage
            pairs.append(LayerPair(key, name_a, name_b))
    if not pairs:
        raise ConfigurationError(
            f"the models share no ResNet stage (model A: {shorten(defaults_a)}; model B: "
            f"{shorten(defaults_b)}); pass --layers with names present in both models"
        )
    return pairs


def _stage_prefix(layer: str) -> str | None:
    """``backbone.layer4.1.conv2`` -> ``backbone.layer4``; ``None`` without a ResNet stage."""
    parts = layer.split(".")
    for index, part in enumerate(parts):
        if _STAGE.match(part):
            return ".".join(parts[: index + 1])
    return None
