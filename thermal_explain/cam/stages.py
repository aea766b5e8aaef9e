"""Default target layers: the last convolution of each stage, for any common vision backbone.

One rule serves every CNN. A forward pass on a small dummy input (eval mode, no gradients,
random state untouched) records each module's output shape. The *trunk* is the module
whose children produce feature maps at the most distinct resolutions (``backbone`` of
``ThermalEncoder``, ``features`` of DenseNet, MobileNet, EfficientNet, ConvNeXt and VGG,
``trunk_output`` of RegNet, the ResNet itself). Its consecutive children at one resolution
form a *stage*; from each stage the last convolution whose output has the stage's
resolution is taken, leaving out shortcut branches (a convolution fed the same tensor as
an earlier one, such as ResNet's ``downsample``) and squeeze-excitation convolutions (their
output is 1 x 1). A lone first convolution is the stem, not a stage. For ResNet-18 this
gives ``layer1.1.conv2`` ... ``layer4.1.conv2``; for ResNet-50 ``layer1.2.conv3`` ...

Vision transformers have no stages: a ViT (a sequence of blocks with attention and
``LayerNorm`` whose outputs are token sequences) gets the first norm of its last block,
the input of the last attention (the block outputs after it reach the class token only
through per-token layers, so their patch tokens carry no gradient); its ``(N, 1 + h*w, C)``
tokens are read as an ``(N, C, h, w)`` grid (the token-grid reshape of
:func:`~thermal_explain.cam.layers.record_outputs`).
A Swin transformer (torchvision) gets its final ``permute``, the last stage's features
already as an ``(N, C, h, w)`` map; its earlier stages are channels-last ``(N, H, W, C)``
and are not supported.

When the dummy pass cannot run, ResNet-like stages are found from the module structure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from thermal_explain.cam.modes import eval_mode, random_state_kept
from thermal_explain.errors import ConfigurationError

DUMMY_SIZE = 128
"""Side of the dummy input when neither an example nor the model's ``image_size`` is known."""


@dataclass
class _Call:
    """One module call of the dummy pass."""

    name: str
    module: nn.Module
    shape: tuple[int, ...] | None
    input: torch.Tensor | None = None


def default_target_layers(model: nn.Module, example: torch.Tensor | None = None) -> list[str]:
    """The last convolution of each stage, as dotted names relative to ``model``.

    Args:
        model: any image classifier (``ThermalEncoder``, a torchvision model, a module
            holding one).
        example: a ``(N, C, H, W)`` input for the dummy pass (only its first image is
            used); ``None`` makes a zero image of the model's ``image_size`` or 128 px.

    Returns:
        One name per stage, shallowest first (one name for a transformer).

    Raises:
        ConfigurationError: nothing fits; the caller must name the layers.
    """
    calls = _trace(model, example)
    if calls is not None:
        names = _cnn_stages(model, calls) or _transformer_layers(model, calls)
        if names:
            return names
    else:
        names = _resnet_stages(model)
        if names:
            return names
    raise ConfigurationError(
        f"cannot find convolution stages or transformer blocks in {type(model).__name__} to "
        "explain; pass `layers` explicitly (dotted names from model.named_modules(), e.g. "
        "backbone.layer4.1.conv2)"
    )


def _trace(model: nn.Module, example: torch.Tensor | None) -> list[_Call] | None:
    """Every module call of one forward pass in completion order; ``None`` if it fails."""
    if example is None:
        example = _dummy_input(model)
        if example is None:
            return None
    calls: list[_Call] = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple, object], None]:
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            calls.append(_Call(name, module, shape, first))

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad(), eval_mode(model), random_state_kept():
            model(example[:1])
    except Exception:  # a forward that needs other inputs: fall back to the structure
        return None
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _dummy_input(model: nn.Module) -> torch.Tensor | None:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    parameter = next(model.parameters(), None)
    if conv is None or parameter is None:
        return None
    size = next(
        (
            m.image_size
            for m in model.modules()
            if isinstance(getattr(m, "image_size", None), int) and m.image_size > 0
        ),
        DUMMY_SIZE,
    )
    dtype = parameter.dtype if parameter.is_floating_point() else torch.float32
    return torch.zeros(1, conv.in_channels, size, size, dtype=dtype, device=parameter.device)


def _cnn_stages(model: nn.Module, calls: list[_Call]) -> list[str]:
    first: dict[str, _Call] = {}
    for call in calls:
        first.setdefault(call.name, call)
    convs = _main_path_convs(calls)
    trunk, children = _trunk(model, first)
    if trunk is None:
        return []
    names: list[str] = []
    for index, (size, group) in enumerate(_stage_groups(children, first)):
        inside = [c for c in convs if any(_within(c.name, child) for child in group)]
        if index == 0 and len(inside) == 1:
            continue  # the stem
        at_size = [c for c in inside if _spatial(c.shape) == size]
        if at_size:
            names.append(at_size[-1].name)
    return names


def _main_path_convs(calls: list[_Call]) -> list[_Call]:
    """Convolution calls in execution order, without those fed an input seen before."""
    convs: list[_Call] = []
    seen: list[torch.Tensor] = []
    for call in calls:
        if not isinstance(call.module, nn.Conv2d) or call.shape is None or len(call.shape) != 4:
            continue
        if any(call.input is earlier for earlier in seen):
            continue  # a parallel branch (shortcut) of an earlier convolution
        if call.input is not None:
            seen.append(call.input)
        convs.append(call)
    return convs


def _trunk(model: nn.Module, first: dict[str, _Call]) -> tuple[str | None, list[str]]:
    """The module whose conv-holding children give maps at the most resolutions (>= 2)."""
    best: tuple[int, str | None, list[str]] = (1, None, [])
    for name, module in model.named_modules():
        children = [f"{name}.{child}" if name else child for child, _ in module.named_children()]
        sizes = {
            _spatial(first[child].shape)
            for child, (_, sub) in zip(children, module.named_children(), strict=True)
            if child in first and _has_conv(sub) and _spatial(first[child].shape) is not None
        }
        if len(sizes) > best[0]:
            best = (len(sizes), name, children)
    return best[1], best[2]


def _stage_groups(
    children: list[str], first: dict[str, _Call]
) -> Iterator[tuple[tuple[int, int], list[str]]]:
    """Consecutive called children with feature maps of one resolution: ``(size, names)``."""
    size: tuple[int, int] | None = None
    group: list[str] = []
    for child in children:
        call = first.get(child)
        if call is None:
            continue
        child_size = _spatial(call.shape)
        if child_size != size and group and size is not None:
            yield size, group
            group = []
        size = child_size
        if child_size is not None:
            group.append(child)
    if group and size is not None:
        yield size, group


def _transformer_layers(model: nn.Module, calls: list[_Call]) -> list[str]:
    shapes = {call.name: call.shape for call in reversed(calls)}
    names: list[str] = []
    for name, module in model.named_modules():
        blocks = list(module.named_children())
        if len(blocks) < 2 or len({type(block) for _, block in blocks}) != 1:
            continue
        last_name, last = blocks[-1]
        if not _is_attention_block(last):
            continue
        norm = next((n for n, m in last.named_modules() if isinstance(m, nn.LayerNorm)), None)
        full = ".".join(part for part in (name, last_name, norm) if part)
        shape = shapes.get(full)
        if norm is not None and shape is not None and token_prefix(shape) is not None:
            names = [full]
    if names:
        return names
    permutes = [c.name for c in calls if type(c.module).__name__ == "Permute" and _map(c.shape)]
    return permutes[-1:]


def token_prefix(shape: tuple[int, ...] | None) -> int | None:
    """Leading tokens to drop so an ``(N, T, C)`` sequence forms a square grid (0 or 1)."""
    if shape is None or len(shape) != 3:
        return None
    for prefix in (1, 0):
        side = math.isqrt(max(shape[1] - prefix, 0))
        if side > 0 and side * side == shape[1] - prefix:
            return prefix
    return None


def _is_attention_block(block: nn.Module) -> bool:
    modules = list(block.modules())
    attention = any(
        isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention")
        for m in modules
    )
    return attention and any(isinstance(m, nn.LayerNorm) for m in modules)


def _resnet_stages(model: nn.Module) -> list[str]:
    """ResNet-like stages from the structure alone: ``nn.Sequential`` children with convs."""
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
    return names


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    return (shape[2], shape[3]) if shape is not None and len(shape) == 4 else None


def _map(shape: tuple[int, ...] | None) -> bool:
    size = _spatial(shape)
    return size is not None and size[0] > 1 and size[1] > 1


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def _within(name: str, root: str) -> bool:
    return name == root or name.startswith(f"{root}.")
