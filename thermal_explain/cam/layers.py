"""Target layers: find the defaults, resolve dotted names, and record their outputs."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from thermal_explain.errors import ConfigurationError, shorten


def default_target_layers(model: nn.Module) -> list[str]:
    """The last convolution of each ResNet stage, as dotted names relative to ``model``.

    The stages are the ``nn.Sequential`` children of ``model.backbone`` (or of ``model``
    itself when it has no ``backbone``) that contain convolutions; in the last block of each
    stage the last ``nn.Conv2d`` on the main path (not the ``downsample`` shortcut) is taken.
    This gives ``backbone.layer1.1.conv2`` ... ``backbone.layer4.1.conv2`` for ResNet-18,
    ``backbone.layer1.2.conv2``, ``backbone.layer2.3.conv2``, ... for ResNet-34 and
    ``backbone.layer1.2.conv3``, ... for ResNet-50, with no per-depth table.

    Args:
        model: the classifier, e.g. ``ThermalEncoder`` with a torchvision ResNet ``backbone``.

    Returns:
        One name per stage, shallowest first.

    Raises:
        ConfigurationError: no ResNet-like stage was found; the caller must name the layers.
    """
    backbone = getattr(model, "backbone", None)
    prefix = "backbone."
    if not isinstance(backbone, nn.Module):
        backbone, prefix = model, ""
    names: list[str] = []
    for stage_name, stage in backbone.named_children():
        if not isinstance(stage, nn.Sequential) or len(stage) == 0:
            continue
        block_name, block = list(stage.named_children())[-1]
        convs = [
            name
            for name, module in block.named_modules()
            if isinstance(module, nn.Conv2d) and not name.split(".")[0].startswith("downsample")
        ]
        if convs:
            names.append(f"{prefix}{stage_name}.{block_name}.{convs[-1]}")
    if not names:
        raise ConfigurationError(
            f"cannot find ResNet stages in {type(model).__name__}; pass `layers` explicitly "
            "(dotted names from model.named_modules(), e.g. backbone.layer4.1.conv2)"
        )
    return names


def resolve_layers(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """Map dotted layer names to the modules of ``model``, failing at once on a typo.

    Args:
        model: the module the names are relative to.
        names: dotted names such as ``backbone.layer4.1.conv2``; a single string is one name.

    Returns:
        ``{name: module}`` in the given order.

    Raises:
        ConfigurationError: the list is empty, has duplicates, or names an unknown layer
            (with the closest existing names suggested).
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigurationError(
            f"Expected argument `layers` to be a non-empty list of dotted layer names "
            f"but got {names!r}"
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(
            f"argument `layers` names {shorten(duplicates)} more than once; list each layer once"
        )
    modules = dict(model.named_modules())
    resolved: dict[str, nn.Module] = {}
    for name in names:
        if name not in modules or name == "":
            close = difflib.get_close_matches(name, [n for n in modules if n], n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigurationError(
                f"argument `layers`: {type(model).__name__} has no layer '{name}'{hint} "
                "(see model.named_modules())"
            )
        resolved[name] = modules[name]
    return resolved


@dataclass
class Recording:
    """The target layers' outputs from one forward pass.

    Attributes:
        outputs: ``{name: (N, C, h, w) tensor}``, the tensors gradients are taken with
            respect to.
        versions: each output's in-place version counter when it was recorded.
    """

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def modified_in_place(self) -> list[str]:
        """Layers whose output was changed in place after it was recorded (later in the model)."""
        return [name for name, out in self.outputs.items() if out._version != self.versions[name]]


@contextmanager
def record_outputs(
    layers: Mapping[str, nn.Module], clone: Collection[str] = ()
) -> Iterator[Recording]:
    """Record each layer's output during one forward pass; hooks are removed on exit.

    For the layers in ``clone`` a copy of the output is passed on to the rest of the model,
    so an in-place operation downstream (``ReLU(inplace=True)``, ``out += x``) changes
    neither the recorded values nor the tensor gradients are taken with respect to. Other
    layers pass their output on unchanged (no copy); :meth:`Recording.modified_in_place`
    tells which of them were changed in place, to be recorded again with ``clone``.
    An output that does not require grad (frozen parameters) is made to require it, so the
    gradient of the score with respect to it exists, and is always passed on as a copy.

    Args:
        layers: ``{name: module}`` from :func:`resolve_layers`.
        clone: names of the layers whose output the model changes in place.

    Yields:
        The :class:`Recording`, filled while the model runs.

    Raises:
        ConfigurationError: a layer's output is not a 4-D ``(N, C, H, W)`` tensor, or a
            layer runs more than once in one forward pass.
    """
    recording = Recording()

    def make_hook(name: str) -> Callable[[nn.Module, object, object], torch.Tensor | None]:
        def hook(module: nn.Module, inputs: object, output: object) -> torch.Tensor | None:
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
                found = f"shape {shape}" if shape is not None else type(output).__name__
                raise ConfigurationError(
                    f"argument `layers`: layer '{name}' outputs {found}, not a 4-D "
                    "(N, C, H, W) feature map; choose a convolutional layer such as "
                    "backbone.layer4.1.conv2"
                )
            if name in recording.outputs:
                raise ConfigurationError(
                    f"argument `layers`: layer '{name}' runs more than once per forward pass; "
                    "choose a layer that runs once"
                )
            frozen = not output.requires_grad
            if frozen:  # a leaf now: in-place changes downstream must happen on a copy
                output.requires_grad_(True)
            recording.outputs[name] = output
            recording.versions[name] = output._version
            return output.clone() if frozen or name in clone else None

        return hook

    handles = []
    try:
        for name, module in layers.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield recording
    finally:
        for handle in handles:
            handle.remove()
