"""Per-image arguments of an engine call, checked before the forward pass.

Which class each map explains (the predicted one, an index or name, one per image, or
all classes) and the original image sizes the statistics are computed at.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from thermal_explain.errors import ConfigurationError, shorten

Target = int | str | Sequence[int | str] | torch.Tensor | None


def check_sizes(
    original_sizes: Sequence[tuple[int, int]] | None, count: int
) -> list[tuple[int, int]] | None:
    """``count`` ``(height, width)`` pairs of positive ints (``None`` passes through)."""
    if original_sizes is None:
        return None
    sizes = list(original_sizes)
    try:
        valid = len(sizes) == count and all(
            len(size) == 2 and all(int(side) == side and side > 0 for side in size)
            for size in sizes
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigurationError(
            f"Expected argument `original_sizes` to be {count} (height, width) pairs of "
            f"positive integers, one per image, but got {shorten([str(s) for s in sizes])}"
        )
    return [(int(height), int(width)) for height, width in sizes]


def _class_index(name: str, class_names: list[str] | None) -> int:
    if class_names is None:
        raise ConfigurationError(
            f"argument `target` names class {name!r} but the engine has no `class_names`; "
            "pass class_names=[...] or a class index"
        )
    if name not in class_names:
        raise ConfigurationError(
            f"Expected argument `target` to be one of {', '.join(class_names)}, an index or "
            f"'all' but got {name!r}"
        )
    return class_names.index(name)


def parse_target(
    target: Target, count: int, class_names: list[str] | None
) -> str | int | torch.Tensor:
    """Check ``target`` before the forward: ``"predicted"``, ``"all"``, an int or ``(N, T)``."""
    if target is None:
        return "predicted"
    if isinstance(target, str):
        return "all" if target == "all" else _class_index(target, class_names)
    if isinstance(target, bool):
        raise ConfigurationError(
            f"Expected argument `target` to be a class index or name but got {target}"
        )
    if isinstance(target, int):
        return target
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise ConfigurationError(
                f"Expected argument `target` to be an integer tensor but got {target.dtype}"
            )
        if target.ndim == 0:
            return int(target)
        indices = target.long()
    elif isinstance(target, Sequence):
        values = list(target)
        if any(isinstance(value, bool) or not isinstance(value, int | str) for value in values):
            raise ConfigurationError(
                f"Expected argument `target` to hold class indices or names but got {target!r}"
            )
        indices = torch.tensor(
            [
                value if isinstance(value, int) else _class_index(value, class_names)
                for value in values
            ],
            dtype=torch.long,
        )
    else:
        raise ConfigurationError(
            f"Expected argument `target` to be None, 'all', a class index or name, or one per "
            f"image but got {type(target).__name__}"
        )
    if indices.ndim == 1:
        indices = indices.unsqueeze(1)
    if indices.ndim != 2 or indices.shape[0] != count:
        raise ConfigurationError(
            f"argument `target` gives {tuple(indices.shape)} targets for {count} images; "
            "give one class per image or a single class for all"
        )
    return indices


def resolve_target(request: str | int | torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``(N, T)`` class indices on the logits' device, checked against ``K``."""
    count, classes = logits.shape
    if isinstance(request, str):
        if request == "predicted":
            return logits.argmax(1, keepdim=True)
        return torch.arange(classes, device=logits.device).repeat(count, 1)
    if isinstance(request, int):
        bad = request if not 0 <= request < classes else None
        indices = torch.full((count, 1), request, dtype=torch.long, device=logits.device)
    else:
        outside = (request < 0) | (request >= classes)
        bad = int(request[outside][0]) if bool(outside.any()) else None
        indices = request.to(logits.device)
    if bad is not None:
        raise ConfigurationError(
            f"Expected argument `target` to be a class index in [0, {classes}) but got {bad}"
        )
    return indices
