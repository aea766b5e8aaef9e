"""The probe set: validation inputs chosen once and explained at every probe epoch.

Two ways to choose, both class-balanced when labels are known and the first inputs
otherwise, both fixed across epochs and restorable from the callback's ``state_dict``:

- a map-style dataset whose labels can be read without loading its items (this
  package's datasets, ``ImageFolder``, ``TensorDataset``, a ``labels``/``targets``
  attribute): ``probe_indices``, a seeded class-balanced draw of dataset indices whose
  items are loaded with the loader's own ``collate_fn``;
- any other dataset (iterable ones included): the inputs are taken from the batches of
  the first validation epoch as they pass, taking classes in turn in label order (the
  first ones of each class); ``probe_positions`` are their positions in the loader's
  order, used to take the same inputs again after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from thermal_explain.data.dataset import class_balanced_indices
from thermal_explain.lightning.inputs import BatchReader, display_pixels
from thermal_explain.lightning.sources import dataset_labels, dataset_paths, is_map_style
from thermal_explain.types import Batch


@dataclass
class ProbeInputs:
    """Probe images ready for the explainer.

    Attributes:
        batch: the images (on the CPU), labels (``-1`` unknown) and names.
        pixels: ``(H, W, 3)`` uint8 images to draw the maps on, or ``None`` when
            ``batch.paths`` are the very files the inputs were read from whole (this
            package's data).
    """

    batch: Batch
    pixels: list[np.ndarray] | None


class ProbeSet:
    """Chooses, keeps and restores the probe inputs of a validation loader.

    Args:
        size: number of probe inputs.
        seed: seed of the class-balanced draw of dataset indices.
        reader: finds images and labels in the loader's batches.
    """

    def __init__(self, size: int, seed: int, reader: BatchReader) -> None:
        self.size = size
        self.seed = seed
        self.reader = reader
        self.indices: list[int] | None = None
        self.positions: list[int] | None = None
        self._inputs: ProbeInputs | None = None
        self._collector: _Collector | None = None

    @property
    def collecting(self) -> bool:
        """Whether validation batches should be passed to :meth:`offer` now."""
        return self._collector is not None

    def start_epoch(self, loader: Any) -> None:
        """Before a validation epoch: collect from its batches unless the set is known."""
        if self._inputs is not None or self.size == 0 or loader is None:
            return
        dataset = getattr(loader, "dataset", None)
        by_index = self.indices is not None or (
            self.positions is None and is_map_style(dataset) and dataset_labels(dataset)
        )
        if not by_index:
            self._collector = _Collector(self.size, self.positions)

    def offer(self, batch: Any) -> None:
        """Keep what the probe set needs from one validation batch (CPU copies)."""
        if self._collector is None:
            return
        images, labels = self.reader(batch)
        with torch.inference_mode(False):
            self._collector.add(images, labels)

    def inputs(self, loader: Any) -> ProbeInputs | None:
        """The probe inputs, choosing them the first time; ``None`` when there are none."""
        if self._inputs is None and self.size > 0:
            if self._collector is not None:
                collector, self._collector = self._collector, None
                self._inputs = self._from_collected(collector)
            elif loader is not None and is_map_style(getattr(loader, "dataset", None)):
                self._inputs = self._from_dataset(loader)
        if self._inputs is None or len(self._inputs.batch) == 0:
            return None
        return self._inputs

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to take the same probes."""
        return {"probe_indices": self.indices, "probe_positions": self.positions}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the probes named by :meth:`state` (loaded again at the next epoch)."""
        self.indices = state.get("probe_indices")
        self.positions = state.get("probe_positions")
        self._inputs = None
        self._collector = None

    def _from_dataset(self, loader: Any) -> ProbeInputs:
        dataset = loader.dataset
        if self.indices is None:
            labels = dataset_labels(dataset) or [0] * len(dataset)
            self.indices = class_balanced_indices(labels, self.size, self.seed)
        collate = getattr(loader, "collate_fn", None) or default_collate
        batch = collate([dataset[index] for index in self.indices])
        if isinstance(batch, Batch):
            return ProbeInputs(batch, None)
        images, labels = self.reader(batch)
        paths = dataset_paths(dataset)
        names = [paths[i] if paths else f"val{i:04d}" for i in self.indices]
        return _inputs(images.cpu(), labels, self.indices, names)

    def _from_collected(self, collector: _Collector) -> ProbeInputs | None:
        chosen = collector.choose()
        if not chosen:
            return None
        self.positions = [position for position, _, _ in chosen]
        images = torch.stack([image for _, image, _ in chosen])
        labels = torch.tensor([label for _, _, label in chosen], dtype=torch.long)
        names = [f"val{position:04d}" for position in self.positions]
        return _inputs(images, labels, self.positions, names)


class _Collector:
    """Inputs of passing batches: the first of each class (or the ``wanted`` positions)."""

    def __init__(self, size: int, wanted: Sequence[int] | None) -> None:
        self.size = size
        self.wanted = None if wanted is None else list(wanted)
        self.seen = 0
        self.kept: dict[int, list[tuple[int, torch.Tensor, int]]] = {}

    def add(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        values = labels.tolist() if labels is not None else [-1] * images.shape[0]
        for offset, label in enumerate(values):
            position = self.seen + offset
            if self.wanted is not None and position not in self.wanted:
                continue
            group = self.kept.setdefault(int(label), [])
            if self.wanted is not None or len(group) < self.size:
                group.append((position, images[offset].detach().cpu().clone(), int(label)))
        self.seen += images.shape[0]
        while len(self.kept) > self.size and self.wanted is None:
            del self.kept[max(self.kept)]  # only the `size` lowest labels can be chosen

    def choose(self) -> list[tuple[int, torch.Tensor, int]]:
        if self.wanted is not None:
            slots = {position: slot for slot, position in enumerate(self.wanted)}
            found = [item for group in self.kept.values() for item in group]
            return sorted(found, key=lambda item: slots[item[0]])
        groups = [self.kept[label] for label in sorted(self.kept)]
        chosen = []
        for rank in range(self.size):
            chosen += [group[rank] for group in groups if rank < len(group)]
        return chosen[: self.size]


def _inputs(
    images: torch.Tensor, labels: torch.Tensor | None, indices: Sequence[int], names: list[str]
) -> ProbeInputs:
    count = images.shape[0]
    batch = Batch(
        images=images,
        labels=labels.cpu() if labels is not None else torch.full((count,), -1),
        indices=torch.tensor(list(indices), dtype=torch.long),
        paths=names,
        original_sizes=[(int(images.shape[2]), int(images.shape[3]))] * count,
    )
    return ProbeInputs(batch, display_pixels(images))
