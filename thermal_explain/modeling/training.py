"""Pieces of the training recipe shared by the classifier and the self-supervised pretrainer."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from thermal_explain.types import Batch

MEMORIZING_GAP = 0.25
"""Train accuracy above validation accuracy by more than this ends ``fit`` with a warning."""


def labelled_views(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(n, C, H, W)`` training inputs and ``(n,)`` labels of the labelled samples.

    With ``batch.views`` (``(V, N, C, H, W)``) every view is an input of its own, view
    by view (``n = V * N_labelled``), each carrying its image's label; otherwise the
    images. Samples labelled ``-1`` are left out.
    """
    known = batch.labels >= 0
    everything = bool(known.all())
    labels = batch.labels if everything else batch.labels[known]
    if batch.views is None:
        return (batch.images if everything else batch.images[known]), labels
    views = batch.views if everything else batch.views[:, known]
    return views.flatten(0, 1), labels.repeat(views.shape[0])


def memorizing_warning(train_accuracy: float, val_accuracy: float) -> str | None:
    """One line when training accuracy exceeds validation accuracy by > ``MEMORIZING_GAP``."""
    gap = train_accuracy - val_accuracy
    if gap <= MEMORIZING_GAP:
        return None
    return (
        f"train accuracy {train_accuracy:.3f} is {gap:.2f} above validation accuracy "
        f"{val_accuracy:.3f}: the model memorizes its training images instead of learning "
        "what tells the classes apart; try --data.group_pattern (validate on unseen "
        "subjects), stronger --data.augmentation, --model.pretrained imagenet or a "
        "thermal-explain pretrain checkpoint, fewer epochs, or more images"
    )


def adamw_with_cosine(module: L.LightningModule, learning_rate: float, weight_decay: float) -> Any:
    """AdamW, with cosine annealing over ``trainer.max_epochs`` when that is known."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    max_epochs = module.trainer.max_epochs if module._trainer is not None else None
    if not max_epochs or max_epochs < 1:
        return optimizer
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
    }
