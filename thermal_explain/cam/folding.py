"""Eval-mode BatchNorm folded into the convolution before it, for a faster explanation pass.

In eval mode ``BatchNorm2d(Conv2d(x))`` is one convolution with per-channel scaled weights
and a bias, so the engine can skip every BatchNorm pass, forward and backward. It runs a
*view* of the model: the same module objects, except that each foldable pair is one
:class:`FoldedConv` (weights computed from the live parameters at every call, so training
steps, ``load_state_dict`` and device moves are always followed) followed by an identity.
The target layers are never folded, nor the BatchNorm after a target convolution, so
their outputs and gradients are the model's own; maps agree with the unfolded model's
within float rounding.

A pair is foldable when, in one float32 forward pass of the first image:

- a plain ``nn.Conv2d`` and a plain ``nn.BatchNorm2d`` with running statistics each run
  once, without hooks of their own;
- the BatchNorm's input is the convolution's output and no other operation reads it.

The view's logits are then compared with the model's on that image; a model whose view
disagrees (a module called through a plain attribute, say) runs unfolded. When the
model's module tree changes later (a layer replaced), the view is built again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from thermal_explain.cam.modes import eval_mode
from thermal_explain.cam.precision import float32

log = logging.getLogger(__name__)

LOGIT_TOLERANCE = 1e-3
"""Relative tolerance (to the largest logit) of the view's logits against the model's."""


class FoldedConv(nn.Module):
    """A convolution with the eval-mode BatchNorm after it folded in.

    ``refresh`` recomputes the folded weight and bias from the two modules' current
    parameters and running statistics (no autograd graph: the engine never needs
    gradients of the weights).
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        self._pair = (conv, norm)  # a tuple, so neither is registered as a submodule
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def refresh(self, memory_format: torch.memory_format) -> None:
        """Fold the current parameters; ``memory_format`` of the weight the input will have."""
        conv, norm = self._pair
        with torch.no_grad():
            weight = conv.weight
            assert norm.running_var is not None and norm.running_mean is not None
            scale = torch.rsqrt(norm.running_var.to(weight.dtype) + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight.to(weight.dtype)
            shift = -norm.running_mean.to(weight.dtype) * scale
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            if norm.bias is not None:
                shift = shift + norm.bias.to(weight.dtype)
            folded = torch.empty_like(weight, memory_format=memory_format)
            torch.mul(weight, scale.view(-1, 1, 1, 1), out=folded)  # one pass, any layout
            self.weight, self.bias = folded, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.weight is not None, "refresh() before the first call"
        return self._pair[0]._conv_forward(x, self.weight, self.bias)


@dataclass(frozen=True)
class _Copied:
    """A container copied into the view, with the children its original had then."""

    original: nn.Module
    children: tuple[tuple[str, int], ...]


class FoldedModel:
    """The model's view with its foldable Conv2d + BatchNorm2d pairs folded.

    Args:
        model: the model the engine explains.
        keep: dotted names of modules that must stay as they are (the target layers).
    """

    def __init__(self, model: nn.Module, keep: Collection[str]) -> None:
        self.model = model
        self.keep = frozenset(keep)
        self._view: nn.Module | None = None
        self._folded: list[FoldedConv] = []
        self._copied: list[_Copied] = []
        self._checked = False

    @property
    def pairs(self) -> int:
        """How many convolution + BatchNorm pairs the view folds (0 before the first call)."""
        return len(self._folded) if self._view is not None else 0

    def module_for(self, images: torch.Tensor, channels_last: bool) -> nn.Module:
        """The module to run on ``images``: the folded view (weights refreshed) or the model.

        The first call (and the first after the model's module tree changed) finds the
        pairs and checks the view on the first image.
        """
        if self._checked and not self._tree_unchanged():
            self._checked = False
        if not self._checked:
            self._build(images[:1])
            self._checked = True
        if self._view is None:
            return self.model
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for folded in self._folded:
            folded.refresh(memory_format)
        return self._view

    def _build(self, sample: torch.Tensor) -> None:
        """Find the pairs and keep the view when its output is the model's (full precision).

        Whatever goes wrong here leaves the model unfolded: the engine's own pass then
        reports a model that cannot run.
        """
        self._view, self._folded, self._copied = None, [], []
        try:
            with (
                torch.inference_mode(False),
                torch.no_grad(),
                float32(sample.device),
                eval_mode(self.model),
            ):
                sample = sample.detach().clone()
                pairs, reference = _find_pairs(self.model, sample, self.keep)
                if not pairs or not isinstance(reference, torch.Tensor):
                    return
                view, folded, copied = _fold(self.model, pairs)
                for module in folded:
                    module.refresh(torch.contiguous_format)
                with eval_mode(view):
                    result = view(sample)
        except Exception as error:  # folding is only an optimization
            log.debug("BatchNorm folding skipped: %s", error)
            return
        if not _agree(result, reference):
            log.debug("BatchNorm folding changes this model's output; running it unfolded")
            return
        self._view, self._folded, self._copied = view, folded, copied

    def _tree_unchanged(self) -> bool:
        """No module of the view was replaced in the model, and no folded one got hooks."""
        same = all(_children(entry.original) == entry.children for entry in self._copied)
        return same and not any(_hooked(module) for f in self._folded for module in f._pair)


def _children(module: nn.Module) -> tuple[tuple[str, int], ...]:
    return tuple((name, id(child)) for name, child in module._modules.items())


def _agree(result: object, reference: torch.Tensor) -> bool:
    """The view's output is the model's within float rounding (a non-finite one never is)."""
    if not isinstance(result, torch.Tensor) or result.shape != reference.shape:
        return False
    if not bool(torch.isfinite(reference).all()):
        return False
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    return bool(torch.allclose(result, reference, rtol=0.0, atol=LOGIT_TOLERANCE * max(scale, 1.0)))


class _UseCounter(TorchFunctionMode):
    """Counts, per watched tensor ``id``, the torch operations outside a BatchNorm that read it.

    ``inside`` is raised while a candidate BatchNorm runs: what it reads of its input
    (its size, the normalization) is the pair's own use.
    """

    def __init__(self, watched: dict[int, torch.Tensor]) -> None:
        super().__init__()
        self.watched = watched
        self.uses: dict[int, int] = {}
        self.inside = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        for value in _flatten((args, kwargs or {})) if not self.inside else ():
            key = id(value)
            if key in self.watched and self.watched[key] is value:
                self.uses[key] = self.uses.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


def _flatten(value: object) -> Iterator[object]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    else:
        yield value


def _find_pairs(
    model: nn.Module, sample: torch.Tensor, keep: frozenset[str]
) -> tuple[list[tuple[str, str]], object]:
    """``(conv name, norm name)`` pairs that fold exactly, and the model's output on ``sample``
    (``None`` when the model has no BatchNorm to fold: then it does not run)."""
    names = {id(module): name for name, module in model.named_modules()}
    calls: dict[str, int] = {}
    conv_outputs: dict[int, torch.Tensor] = {}  # kept alive, so ids stay unique
    produced_by: dict[int, str] = {}
    norm_inputs: dict[str, int] = {}

    def on_conv(module: nn.Module, inputs: object, output: object) -> None:
        name = names[id(module)]
        calls[name] = calls.get(name, 0) + 1
        if isinstance(output, torch.Tensor):
            conv_outputs[id(output)] = output
            produced_by[id(output)] = name

    def on_norm(module: nn.Module, inputs: tuple[object, ...]) -> None:
        name = names[id(module)]
        calls[name] = calls.get(name, 0) + 1
        if inputs and isinstance(inputs[0], torch.Tensor):
            norm_inputs[name] = id(inputs[0])
        counter.inside += 1

    def after_norm(module: nn.Module, inputs: object, output: object) -> None:
        counter.inside -= 1

    candidates = _candidates(model, keep)
    if not any(isinstance(module, nn.BatchNorm2d) for module in candidates.values()):
        return [], None
    counter = _UseCounter(conv_outputs)
    handles = []
    try:
        for module in candidates.values():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(on_conv))
            else:
                handles.append(module.register_forward_pre_hook(on_norm))
                handles.append(module.register_forward_hook(after_norm))
        with counter:
            reference = model(sample)
    finally:
        for handle in handles:
            handle.remove()
    pairs = []
    for norm_name, source in norm_inputs.items():
        conv_name = produced_by.get(source)
        if conv_name is None or calls.get(conv_name) != 1 or calls.get(norm_name) != 1:
            continue
        conv, norm = candidates[conv_name], candidates[norm_name]
        assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
        if not counter.uses.get(source) and conv.out_channels == norm.num_features:
            pairs.append((conv_name, norm_name))
    return pairs, reference


def _candidates(model: nn.Module, keep: frozenset[str]) -> dict[str, nn.Module]:
    """Plain, hook-free convolutions and BatchNorms with running statistics, not kept."""
    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if name in keep or _hooked(module):
            continue
        if type(module) is nn.Conv2d or (
            type(module) is nn.BatchNorm2d
            and module.track_running_stats
            and module.running_mean is not None
            and module.running_var is not None
        ):
            found[name] = module
    return found


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _fold(
    model: nn.Module, pairs: list[tuple[str, str]]
) -> tuple[nn.Module, list[FoldedConv], list[_Copied]]:
    """The view: containers on the way to a pair copied, every other module shared."""
    copies: dict[str, nn.Module] = {}
    copied: list[_Copied] = []

    def container(path: str) -> nn.Module:
        if path not in copies:
            original = model.get_submodule(path)
            duplicate = object.__new__(type(original))  # no __getstate__ of its class runs
            duplicate.__dict__ = dict(original.__dict__)
            duplicate._modules = dict(original._modules)  # type: ignore[assignment]
            copies[path] = duplicate
            copied.append(_Copied(original, _children(original)))
            if path:
                parent, _, child = path.rpartition(".")
                container(parent)._modules[child] = duplicate
        return copies[path]

    folded = []
    for conv_name, norm_name in pairs:
        conv = model.get_submodule(conv_name)
        norm = model.get_submodule(norm_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
        module = FoldedConv(conv, norm)
        folded.append(module)
        for name, replacement in ((conv_name, module), (norm_name, nn.Identity())):
            parent, _, child = name.rpartition(".")
            container(parent)._modules[child] = replacement
    return copies[""], folded, copied
