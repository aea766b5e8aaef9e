"""``ContrastivePretrainer``: self-supervised two-view pretraining of the encoder (no labels)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from thermal_explain.errors import ConfigurationError
from thermal_explain.modeling.encoder import (
    ASYMMETRY_CHANNELS,
    RGB_CHANNELS,
    build_backbone,
    build_projection_head,
)
from thermal_explain.modeling.losses import nt_xent_loss
from thermal_explain.modeling.pretrained import apply_pretrained, read_pretrained
from thermal_explain.modeling.training import adamw_with_cosine
from thermal_explain.types import Batch


class ContrastivePretrainer(L.LightningModule):
    """Train a ResNet backbone and projection head with NT-Xent on unlabeled images.

    Each batch carries ``V >= 2`` augmented views of ``N`` images (``batch.views``); the
    loss pulls the views of one image together and pushes the other images' views away
    (SimCLR). Clinics hold many more unlabeled than labelled faces: the backbone learns
    what thermal faces look like before ``fit --model.pretrained CHECKPOINT`` teaches it
    the classes. The module's weights are named like the classifier's encoder
    (``backbone.*``, ``projection_head.*``), so every checkpoint it writes is a valid
    ``pretrained`` start; it has no classifier, so it is never mistaken for a trained model.

    Args:
        backbone: ``resnet18``, ``resnet34`` or ``resnet50``; ``None``: the ``pretrained``
            file's depth, else ``resnet18``.
        use_asymmetry: 6-channel asymmetry input (left face + mirrored right face).
        in_channels: ``None``: 6 with ``use_asymmetry``, else 3.
        projection_dim: output size of the projection head.
        learning_rate: AdamW learning rate (cosine-annealed over the epochs).
        weight_decay: AdamW weight decay.
        temperature: NT-Xent temperature.
        pretrained: start from ``imagenet`` or a checkpoint file instead of random weights.
    """

    def __init__(
        self,
        backbone: str | None = None,
        use_asymmetry: bool = False,
        in_channels: int | None = None,
        projection_dim: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        temperature: float = 0.2,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("learning_rate", learning_rate), ("temperature", temperature)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(
                    f"Expected argument `{name}` to be a number > 0 but got {value!r}"
                )
        channels = in_channels or (ASYMMETRY_CHANNELS if use_asymmetry else RGB_CHANNELS)
        if use_asymmetry and channels != ASYMMETRY_CHANNELS:
            raise ConfigurationError(
                f"in_channels={in_channels} but use_asymmetry=True needs {ASYMMETRY_CHANNELS}; "
                "drop in_channels or use_asymmetry"
            )
        start = None if pretrained is None else read_pretrained(pretrained, backbone)
        self.backbone_name = backbone or (start.backbone if start is not None else "resnet18")
        self.in_channels = channels
        self.backbone, feature_dim = build_backbone(self.backbone_name, channels)
        self.projection_head = build_projection_head(feature_dim, projection_dim)
        if start is not None:
            apply_pretrained(self, start)
        self.save_hyperparameters(
            {
                "backbone": self.backbone_name,
                "in_channels": channels,
                "use_asymmetry": channels == ASYMMETRY_CHANNELS,
                "projection_dim": projection_dim,
                "learning_rate": learning_rate,
                "weight_decay": weight_decay,
                "temperature": temperature,
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, P)`` L2-normalized embeddings."""
        return F.normalize(self.projection_head(self.backbone(x)), dim=1)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        """NT-Xent over the batch's views; skips a batch of a single image (no negatives)."""
        views = batch.views
        if views is None or views.shape[0] < 2:
            raise ConfigurationError(
                "pretraining needs at least two augmented views of each image; set --data.views 2"
            )
        count, n = views.shape[:2]
        if n < 2:
            return None
        embeddings = self(views.flatten(0, 1)).view(count, n, -1)
        loss = nt_xent_loss(embeddings, self.hparams["temperature"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def configure_optimizers(self) -> Any:
        """AdamW, with cosine annealing over ``trainer.max_epochs`` when that is known."""
        return adamw_with_cosine(self, self.hparams["learning_rate"], self.hparams["weight_decay"])
