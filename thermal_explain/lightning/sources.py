"""What a dataset tells about its items without loading them: file paths, labels, class names.

Understands this package's datasets, torchvision's ``ImageFolder``/``DatasetFolder``
(``samples``, ``targets``, ``classes``), datasets with ``paths``/``files``/
``image_paths`` or ``labels``/``targets`` attributes, ``TensorDataset`` labels and
``Subset`` wrappers of any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import IterableDataset, Subset, TensorDataset

PATH_ATTRIBUTES = ("samples", "imgs", "paths", "files", "image_paths")
LABEL_ATTRIBUTES = ("labels", "targets")


def is_map_style(dataset: Any) -> bool:
    """Whether items can be read by index (``dataset[i]``) and counted."""
    if dataset is None or isinstance(dataset, IterableDataset):
        return False
    try:
        len(dataset)
    except TypeError:
        return False
    return hasattr(dataset, "__getitem__")


def dataset_paths(dataset: Any) -> list[str] | None:
    """The source file of every item, by index; ``None`` when the dataset does not say."""
    if isinstance(dataset, Subset):
        paths = dataset_paths(dataset.dataset)
        return None if paths is None else [paths[int(i)] for i in dataset.indices]
    if not is_map_style(dataset):
        return None
    for attribute in PATH_ATTRIBUTES:
        values = getattr(dataset, attribute, None)
        if not isinstance(values, Sequence) or isinstance(values, str):
            continue
        if len(values) != len(dataset):
            continue
        paths = [value[0] if isinstance(value, (tuple, list)) else value for value in values]
        if all(isinstance(path, str) or hasattr(path, "__fspath__") for path in paths):
            return [str(path) for path in paths]
    return None


def dataset_labels(dataset: Any) -> list[int] | None:
    """Every item's class index without loading it; ``None`` when unknown (or ``-1`` only)."""
    if isinstance(dataset, Subset):
        labels = dataset_labels(dataset.dataset)
        return None if labels is None else [labels[int(i)] for i in dataset.indices]
    if not is_map_style(dataset):
        return None
    candidates: list[Any] = [getattr(dataset, name, None) for name in LABEL_ATTRIBUTES]
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, Sequence) and all(
        isinstance(s, (tuple, list)) and len(s) > 1 for s in samples
    ):
        candidates.append([s[1] for s in samples])
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) > 1:
        candidates.append(dataset.tensors[1])
    for values in candidates:
        labels = _as_labels(values, len(dataset))
        if labels is not None and any(label >= 0 for label in labels):
            return labels
    return None


def dataset_class_names(dataset: Any) -> list[str] | None:
    """``classes`` or ``class_names`` of a dataset (``ImageFolder`` has ``classes``)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    for attribute in ("class_names", "classes"):
        names = getattr(dataset, attribute, None)
        listed = isinstance(names, Sequence) and not isinstance(names, str) and names
        if listed and all(isinstance(name, str) for name in names):
            return list(names)
    return None


def item_names(
    paths: Sequence[str] | None,
    indices: Sequence[int],
    count: int,
    batch_idx: int,
    dataloader_idx: int,
    trainer: Any,
) -> list[str]:
    """Names of a predict batch's items: their dataset paths, else ``batch<b>_<i>``.

    ``indices`` are the items' dataset indices (Lightning knows them for map-style data).
    Without paths the names are unique within a run: ``loader<d>_`` is prefixed for the
    second and later loaders, ``rank<r>_`` when several processes predict. They are
    stable across runs (resume) as long as the loader's order and batch size are.
    """
    if paths and len(indices) == count:
        return [paths[index] for index in indices]
    prefix = f"rank{trainer.global_rank}_" if trainer.world_size > 1 else ""
    prefix += f"loader{dataloader_idx}_" if dataloader_idx else ""
    return [f"{prefix}batch{batch_idx}_{row}" for row in range(count)]


def predict_paths(dataset: Any, loaders: Any) -> tuple[list[str], dict[int, list[str] | None]]:
    """Every input path of a predict run (the data module's ``predict_dataset`` and each
    loader's dataset), and each loader's paths by index (``None`` where it has none)."""
    paths = [str(path) for path in getattr(dataset, "paths", [])] if dataset else []
    by_loader: dict[int, list[str] | None] = {}
    for index, loader in enumerate(loaders if isinstance(loaders, list) else [loaders]):
        by_loader[index] = dataset_paths(getattr(loader, "dataset", None))
        paths += by_loader[index] or []
    return paths, by_loader


def first_loader(loaders: Any) -> Any:
    """The first of Lightning's ``trainer.*_dataloaders`` (a loader, list or dict of them)."""
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    if isinstance(loaders, Sequence) and not isinstance(loaders, str):
        return loaders[0] if loaders else None
    return loaders


def _as_labels(values: Any, count: int) -> list[int] | None:
    if isinstance(values, torch.Tensor):
        if values.ndim != 1 or values.is_floating_point():
            return None
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != count:
        return None
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return None
    return [int(value) for value in values]
