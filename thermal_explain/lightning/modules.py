"""Which module of a LightningModule gets explained, and the names of its classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from thermal_explain.cam.modes import eval_mode, random_state_kept
from thermal_explain.checks import argument_message, check_class_names, describe_shape
from thermal_explain.errors import ConfigurationError, shorten
from thermal_explain.lightning.sources import dataset_class_names, first_loader
from thermal_explain.modeling.classifier import ThermalClassifier


def explained_module(pl_module: L.LightningModule, model_attr: str | None) -> nn.Module:
    """The module whose forward maps images to logits.

    ``model_attr`` (a dotted path such as ``net`` or ``model.backbone``) names a submodule
    of ``pl_module``; without it a :class:`ThermalClassifier` gives its ``encoder`` and
    any other module is explained itself.

    Raises:
        ConfigurationError: ``model_attr`` does not name a module.
    """
    if model_attr is None:
        return pl_module.encoder if isinstance(pl_module, ThermalClassifier) else pl_module
    found: Any = pl_module
    for part in model_attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            break
    if not isinstance(found, nn.Module):
        children = shorten([name for name, _ in pl_module.named_children()]) or "none"
        raise ConfigurationError(
            argument_message(
                "model_attr",
                f"a dotted path to a submodule of {type(pl_module).__name__} "
                f"(children: {children})",
                model_attr,
            )
        )
    return found


def count_classes(module: nn.Module, images: torch.Tensor, owner: str) -> int:
    """``K`` from one image through ``module`` (eval mode, no gradients, random state kept).

    Raises:
        ConfigurationError: the output is not ``(1, K)`` logits.
    """
    with torch.no_grad(), eval_mode(module), random_state_kept():
        output = module(images[:1])
    if isinstance(output, torch.Tensor) and output.ndim == 2 and output.shape[0] == 1:
        return int(output.shape[1])
    found = describe_shape(output)
    raise ConfigurationError(
        f"GradCAMCallback explains {owner}, whose forward must map (N, C, H, W) images to "
        f"(N, K) logits but returned {found}; set `model_attr` to the submodule that does "
        "(e.g. model_attr='net') or make forward return the logits"
    )


def resolve_class_names(
    given: Sequence[str] | None, trainer: L.Trainer, pl_module: L.LightningModule, count: int
) -> list[str]:
    """Names of the ``count`` classes, from the first source that has them.

    In order: the callback's ``class_names``, the module's or the data module's
    ``class_names``, the module's hyper-parameters, the data set's ``classes``, else
    ``class_0`` ... ``class_<K-1>``.

    Raises:
        ConfigurationError: the callback's names do not match the ``count`` classes.
    """
    if given is not None:
        if len(given) != count:
            raise ConfigurationError(
                argument_message(
                    "class_names",
                    f"{count} names, one per class of the model",
                    list(given),
                )
            )
        return list(given)
    for names in _candidates(trainer, pl_module):
        if names is not None and len(names) == count:
            try:
                return check_class_names(list(names))
            except ConfigurationError:
                continue
    return [f"class_{index}" for index in range(count)]


def _candidates(trainer: L.Trainer, pl_module: L.LightningModule) -> list[Any]:
    hparams = getattr(pl_module, "hparams", None)
    loaders = [trainer.val_dataloaders, trainer.predict_dataloaders, trainer.train_dataloader]
    datasets = [getattr(_first(loader), "dataset", None) for loader in loaders]
    return [
        _names(getattr(pl_module, "class_names", None)),
        _names(getattr(trainer.datamodule, "class_names", None)),
        _names(hparams.get("class_names") if isinstance(hparams, dict) else None),
        *(dataset_class_names(dataset) for dataset in datasets),
    ]


def _first(loaders: Any) -> Any:
    try:
        return first_loader(loaders)
    except (TypeError, IndexError):
        return None


def _names(value: Any) -> list[str] | None:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [str(name) for name in value]
    return None
