"""A Lightning progress bar that counts images in predict, with images per second and an ETA."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from typing_extensions import override

from thermal_explain.types import Batch


class ImageProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar; in predict it counts images (``img/s``, ETA), not batches.

    ``analyze`` shows the same count through :class:`~thermal_explain.pipeline.progress.Progress`,
    so every command reports the same unit. Training and validation are unchanged.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0) -> None:
        super().__init__(refresh_rate=refresh_rate, process_position=process_position)
        self._images = 0

    @override
    def init_predict_tqdm(self) -> Tqdm:
        return Tqdm(
            desc="explaining",
            unit="img",
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    @override
    def on_predict_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.has_dataloader_changed(dataloader_idx):
            return
        bar = self.predict_progress_bar
        bar.reset(total=_images_in(trainer.predict_dataloaders, dataloader_idx))
        self._images = 0

    @override
    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._images += images_in_batch(batch)
        bar = self.predict_progress_bar
        if self.is_enabled and not bar.disable:
            bar.n = self._images
            bar.refresh()


def images_in_batch(batch: Any) -> int:
    """How many inputs a batch holds (readable and failed ones for a :class:`Batch`)."""
    if isinstance(batch, Batch):
        return len(batch) + len(batch.failed)
    while isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    if isinstance(batch, dict) and batch:
        batch = next(iter(batch.values()))
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1


def _images_in(loaders: Any, index: int) -> int | None:
    """Images this process will see in predict loader ``index`` (``None`` when unknown)."""
    loader = loaders[index] if isinstance(loaders, Sequence) else loaders
    sampler = getattr(loader, "sampler", None)
    try:
        return len(sampler) if sampler is not None else len(loader.dataset)
    except TypeError:
        return None
