"""BatchNorm running statistics that track the current weights (precise BN)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BN_RECALIBRATION_BATCHES = 8
"""Training batches used to re-estimate BatchNorm statistics before each validation."""


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def reset_batch_norm_statistics(module: nn.Module) -> None:
    """Restart every BatchNorm's running statistics as a plain average of the coming batches.

    With the default exponential momentum the running statistics lag the weights for many
    steps; on near-identical thermal faces that lag alone can drop eval-mode accuracy to
    chance. Resetting at each training epoch (``momentum=None``: cumulative average) makes
    eval mode use statistics of the current weights only.
    """
    for layer in module.modules():
        if isinstance(layer, _BATCH_NORMS) and layer.track_running_stats:
            layer.reset_running_stats()
            layer.momentum = None


def recalibrate_batch_norm(
    encoder: nn.Module, images: Iterable[torch.Tensor], max_batches: int
) -> int:
    """Recompute BatchNorm running statistics from ``images`` with the current weights.

    Each ``(N, C, H, W)`` batch runs through ``encoder`` in train mode without gradients;
    the statistics become the plain average over the batches ("precise BN"), so eval mode
    uses statistics of the final weights rather than of the whole epoch's. Every module's
    mode is restored. Returns the number of batches used.
    """
    modes = {module: module.training for module in encoder.modules()}
    reset_batch_norm_statistics(encoder)
    used = 0
    try:
        encoder.train()
        with torch.inference_mode(False), torch.no_grad():
            for batch in images:
                if used >= max_batches:
                    break
                if batch.shape[0] < 2:
                    continue
                encoder(batch.clone())
                used += 1
    finally:
        for module, training in modes.items():
            module.training = training
    return used
