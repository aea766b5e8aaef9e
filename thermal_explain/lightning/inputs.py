"""Images and labels out of any batch, and the pixels the maps of foreign inputs are drawn on.

A batch may be this package's :class:`~thermal_explain.types.Batch`, a tuple or list
``(x, y, ...)``, a dict (``image_key``, ``label_key``), a bare ``(N, C, H, W)`` tensor, or
anything a user function turns into ``images`` or ``(images, labels)``. Labels are
optional everywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from thermal_explain.checks import argument_message, describe_shape, expect
from thermal_explain.errors import ConfigurationError, shorten
from thermal_explain.types import Batch

BatchFunction = Callable[[Any], Any]


class BatchReader:
    """Finds the ``(N, C, H, W)`` images and the ``(N,)`` labels (or ``None``) in a batch.

    Args:
        image_key: key of the images in dict batches.
        label_key: key of the labels in dict batches (missing: no labels).
        batch_fn: a function, or its import path (``package.module.function`` or
            ``package.module:function``), mapping a batch to ``images`` or
            ``(images, labels)``; replaces the rules above.

    Raises:
        ConfigurationError: ``batch_fn`` cannot be imported.
    """

    def __init__(
        self,
        image_key: str = "image",
        label_key: str = "label",
        batch_fn: str | BatchFunction | None = None,
    ) -> None:
        expect(isinstance(image_key, str) and bool(image_key), "image_key", "a key", image_key)
        expect(isinstance(label_key, str) and bool(label_key), "label_key", "a key", label_key)
        self.image_key = image_key
        self.label_key = label_key
        self.batch_fn = import_function(batch_fn) if isinstance(batch_fn, str) else batch_fn
        expect(
            self.batch_fn is None or callable(self.batch_fn),
            "batch_fn",
            "a function or its import path",
            batch_fn,
        )

    def __call__(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(images, labels)``; ``labels`` is ``None`` when the batch holds none.

        Raises:
            ConfigurationError: no ``(N, C, H, W)`` float tensor of images was found.
        """
        if self.batch_fn is not None:
            found = self.batch_fn(batch)
            images, labels = (found[0], found[1]) if isinstance(found, tuple) else (found, None)
        elif isinstance(batch, Batch):
            images, labels = batch.images, batch.labels
        elif isinstance(batch, Mapping):
            if self.image_key not in batch:
                keys = shorten([str(key) for key in batch])
                raise ConfigurationError(
                    argument_message(
                        "image_key",
                        f"a key of the batch (keys: {keys})",
                        self.image_key,
                        "set image_key (and label_key) to the batch's keys, or batch_fn",
                    )
                )
            images, labels = batch[self.image_key], batch.get(self.label_key)
        elif isinstance(batch, Sequence) and not isinstance(batch, str) and batch:
            images, labels = batch[0], batch[1] if len(batch) > 1 else None
        else:
            images, labels = batch, None
        _check_images(images, batch)
        return images, _labels(labels, images.shape[0])


def import_function(path: str) -> BatchFunction:
    """The function at ``package.module.function`` or ``package.module:function``.

    Raises:
        ConfigurationError: nothing importable is found there.
    """
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name) if module_name else None
    except (ImportError, AttributeError) as error:
        reason = " ".join(str(error).split())
        raise ConfigurationError(
            argument_message(
                "batch_fn",
                "the import path of a function, e.g. my_project.data.split_batch",
                path,
                reason,
            )
        ) from error
    expect(callable(found), "batch_fn", "the import path of a function", path)
    return found  # type: ignore[return-value]


def display_pixels(images: torch.Tensor) -> list[np.ndarray]:
    """Each input as ``(H, W, 3)`` uint8 RGB, stretched to 0..255 per image.

    The transform that made the input is unknown, so the image is drawn as the model saw
    it: 3 channels as RGB, 1 channel (or any other count, averaged) as gray.
    """
    values = images.detach().float()
    if values.shape[1] != 3:
        values = values.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    low = values.amin((1, 2, 3), keepdim=True)
    high = values.amax((1, 2, 3), keepdim=True)
    scaled = (values - low) / (high - low).clamp_min(1e-12) * 255.0
    pixels = scaled.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(image) for image in pixels]


def _check_images(images: object, batch: object) -> None:
    if isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point():
        return
    found = describe_shape(images, dtype=True)
    raise ConfigurationError(
        f"GradCAMCallback cannot find (N, C, H, W) float images in a batch of type "
        f"{type(batch).__name__} (found {found}); batches may be (images, labels, ...) "
        "tuples, dicts (set image_key and label_key) or anything batch_fn turns into "
        "images or (images, labels)"
    )


def _labels(labels: object, count: int) -> torch.Tensor | None:
    """``(N,)`` long class indices, ``-1`` where unknown; ``None`` for anything else."""
    if isinstance(labels, Sequence) and not isinstance(labels, str):
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in labels):
            return None
        labels = torch.tensor(list(labels), dtype=torch.long)
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point():
        return None
    if labels.ndim != 1 or labels.shape[0] != count or labels.dtype == torch.bool:
        return None
    return labels.long()
