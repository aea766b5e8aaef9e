"""Target layers: resolve dotted names and record their outputs (defaults: :mod:`.stages`)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from thermal_explain.cam.stages import default_target_layers, token_prefix
from thermal_explain.errors import ConfigurationError, shorten

__all__ = ["Recording", "default_target_layers", "record_outputs", "resolve_layers"]


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
            respect to (a transformer layer's token grid).
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

    Token-grid reshape (vision transformers): a layer whose output is an ``(N, T, C)``
    token sequence with ``T = h*w`` or ``T = 1 + h*w`` (a leading class token) is recorded
    as the ``(N, C, h, w)`` grid of its patch tokens; the model goes on with the same
    tokens rebuilt from that grid, so gradients reach it.

    Args:
        layers: ``{name: module}`` from :func:`resolve_layers`.
        clone: names of the layers whose output the model changes in place.

    Yields:
        The :class:`Recording`, filled while the model runs.

    Raises:
        ConfigurationError: a layer's output is neither a 4-D ``(N, C, H, W)`` tensor nor
            a square grid of tokens, or a layer runs more than once in one forward pass.
    """
    recording = Recording()

    def make_hook(name: str) -> Callable[[nn.Module, object, object], torch.Tensor | None]:
        def hook(module: nn.Module, inputs: object, output: object) -> torch.Tensor | None:
            if name in recording.outputs:
                raise ConfigurationError(
                    f"argument `layers`: layer '{name}' runs more than once per forward pass; "
                    "choose a layer that runs once"
                )
            _check_output(name, output)
            assert isinstance(output, torch.Tensor)
            frozen = not output.requires_grad
            if frozen:  # a leaf now: in-place changes downstream must happen on a copy
                output.requires_grad_(True)
            if output.ndim == 3:
                grid, passed_on = _token_grid(output)
                recording.outputs[name] = grid
                recording.versions[name] = grid._version
                return passed_on
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


def _check_output(name: str, output: object) -> None:
    """A 4-D feature map, or a token sequence that forms a square grid."""
    if isinstance(output, torch.Tensor) and output.ndim == 4:
        return
    if isinstance(output, torch.Tensor) and token_prefix(tuple(output.shape)) is not None:
        return
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    found = f"shape {shape}" if shape is not None else type(output).__name__
    raise ConfigurationError(
        f"argument `layers`: layer '{name}' outputs {found}, not a 4-D (N, C, H, W) feature "
        "map nor (N, tokens, C) tokens of a square grid; choose a convolutional layer such "
        "as backbone.layer4.1.conv2"
    )


def _token_grid(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, p + h*w, C)`` tokens -> the ``(N, C, h, w)`` grid and the tokens rebuilt from it.

    The grid is made from the output and the model goes on with tokens made from the
    grid (same values), so the score depends on the grid and its gradient exists. A
    leading class token (``p = 1``) is passed on unchanged and left out of the grid.
    """
    count, length, channels = tokens.shape
    prefix = token_prefix(tuple(tokens.shape)) or 0
    side = math.isqrt(length - prefix)
    grid = tokens[:, prefix:].transpose(1, 2).reshape(count, channels, side, side)
    rebuilt = torch.cat([tokens[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)
    return grid, rebuilt
