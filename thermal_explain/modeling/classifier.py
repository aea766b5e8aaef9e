"""``ThermalClassifier``: the LightningModule that trains and serves the thermal encoder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from thermal_explain.checks import check_class_names, check_number
from thermal_explain.data.preprocessing import Preprocessing
from thermal_explain.errors import ConfigurationError
from thermal_explain.modeling.batchnorm import (
    BN_RECALIBRATION_BATCHES,
    recalibrate_batch_norm,
    reset_batch_norm_statistics,
)
from thermal_explain.modeling.checkpoints import TrainedWeights, checkpoint_weights
from thermal_explain.modeling.encoder import ASYMMETRY_CHANNELS, RGB_CHANNELS, ThermalEncoder
from thermal_explain.modeling.losses import SupConLoss
from thermal_explain.modeling.opened import open_trained_model
from thermal_explain.modeling.pretrained import apply_pretrained, read_pretrained
from thermal_explain.modeling.training import (
    adamw_with_cosine,
    labelled_views,
    memorizing_warning,
)
from thermal_explain.types import Batch

log = logging.getLogger(__name__)


def _default_names(num_classes: int) -> list[str]:
    return [f"class_{index}" for index in range(num_classes)]


def _check_training_args(**values: float) -> None:
    for name, value in values.items():
        check_number(name, value, 0.0, low_open=name in ("learning_rate", "temperature"))
    if values["contrastive_weight"] == 0 and values["ce_weight"] == 0:
        raise ConfigurationError(
            "contrastive_weight and ce_weight are both 0; set at least one of them above 0"
        )


PREPROCESSING_KEY = "preprocessing"
"""Top-level checkpoint key of the preprocessing a model was trained on."""


class ThermalClassifier(L.LightningModule):
    """Contrastive thermal-image classifier trained with SupCon plus cross-entropy.

    A training batch with ``views`` (two augmented views of each image, the data
    module's default) trains on all ``2N`` views: SupCon over them (each view's
    positives: the other view of its image and every view of its class) plus
    cross-entropy on each view. A batch without views trains on its images.

    Args:
        backbone: ``resnet18``, ``resnet34`` or ``resnet50``; ``None`` means the checkpoint's
            depth, or ``resnet18`` without a checkpoint.
        in_channels: input channels; ``None`` means the checkpoint's, else 6 when
            ``use_asymmetry`` and 3 otherwise.
        num_classes: ``None`` means ``len(class_names)``, the checkpoint's, or the training
            data's at fit (2 until then).
        class_names: names by class index; otherwise the checkpoint's, the data module's at
            fit, or ``class_0, class_1, ...``.
        model_path: weights in any format
            :func:`thermal_explain.modeling.checkpoints.read_checkpoint` reads; its projection
            head size replaces ``projection_dim``.
        use_asymmetry: 6-channel asymmetry input (left face + mirrored right face); a
            6-channel checkpoint turns it on.
        allow_pickle: let ``model_path`` hold pickled objects (trusted files only).
        pretrained: start the backbone from ``imagenet`` (torchvision's weights) or from
            a checkpoint file, e.g. one ``thermal-explain pretrain`` wrote (see
            :mod:`thermal_explain.modeling.pretrained`); the classifier starts afresh.
            Not with ``model_path``.

    Batches are :class:`thermal_explain.types.Batch`; samples labelled ``-1`` are left out of
    the losses and metrics. The resolved architecture, ``class_names`` and ``use_asymmetry``
    are saved as hyper-parameters, so every ``.ckpt`` restores them.
    """

    def __init__(
        self,
        backbone: str | None = None,
        in_channels: int | None = None,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        model_path: str | None = None,
        use_asymmetry: bool = False,
        projection_dim: int = 128,
        learning_rate: float = 3e-4,
        weight_decay: float = 1e-4,
        contrastive_weight: float = 0.5,
        ce_weight: float = 1.0,
        temperature: float = 0.1,
        allow_pickle: bool = False,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        _check_training_args(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            contrastive_weight=contrastive_weight,
            ce_weight=ce_weight,
            temperature=temperature,
        )
        if class_names is not None:
            class_names = check_class_names(class_names)
            if num_classes is not None and num_classes != len(class_names):
                raise ConfigurationError(
                    f"num_classes={num_classes} but class_names has {len(class_names)} names; "
                    "drop num_classes or make the two agree"
                )
        if use_asymmetry and in_channels not in (None, ASYMMETRY_CHANNELS):
            raise ConfigurationError(
                f"in_channels={in_channels} but use_asymmetry=True needs {ASYMMETRY_CHANNELS}; "
                "drop in_channels or use_asymmetry"
            )
        if model_path is not None and pretrained is not None:
            raise ConfigurationError(
                "pass either model_path (a trained model to use) or pretrained (a start for "
                "training), not both"
            )
        self.model_path = model_path
        self._allow_pickle = allow_pickle
        self._ckpt_weights: TrainedWeights | None = None
        stored_names: list[str] | None = None
        stored_preprocessing: dict[str, Any] | None = None
        if model_path is None:
            start = (
                None if pretrained is None else read_pretrained(pretrained, backbone, allow_pickle)
            )
            self.encoder = ThermalEncoder(
                backbone or (start.backbone if start is not None else "resnet18"),
                in_channels or (ASYMMETRY_CHANNELS if use_asymmetry else RGB_CHANNELS),
                len(class_names) if class_names is not None else num_classes or 2,
                projection_dim,
            )
            if start is not None:
                apply_pretrained(self.encoder, start)
            # What pins the number of classes (``None``: the training data may still set it).
            self._classes_fixed_by = "num_classes" if num_classes is not None else None
        else:
            self.encoder, stored_names, stored_preprocessing = open_trained_model(
                model_path,
                dict(backbone=backbone, in_channels=in_channels, num_classes=num_classes),
                class_names,
                use_asymmetry,
                projection_dim,
                allow_pickle,
            )
            self._classes_fixed_by = f"checkpoint '{model_path}'"
        names = class_names or stored_names
        self._names_from_data = names is None
        self.supcon = SupConLoss(temperature)
        self.explainer: Callable[[Batch], Any] | None = None
        self._save_settings(
            names or _default_names(self.encoder.num_classes),
            backbone=self.encoder.backbone_name,
            in_channels=self.encoder.in_channels,
            use_asymmetry=self.encoder.in_channels == ASYMMETRY_CHANNELS,
            projection_dim=self.encoder.projection_dim,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            contrastive_weight=contrastive_weight,
            ce_weight=ce_weight,
            temperature=temperature,
        )
        # Kept beside the hyper-parameters (LightningCLI reads those back as arguments).
        self.trained_preprocessing_record = stored_preprocessing

    def __setattr__(self, name: str, value: Any) -> None:
        # The explainer may be a module that holds this model: never register it as a child.
        if name == "explainer":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _save_settings(self, class_names: list[str], **settings: Any) -> None:
        """Store the resolved settings as hyper-parameters and build the matching metrics."""
        settings.update(num_classes=len(class_names), class_names=list(class_names))
        self.save_hyperparameters(settings)
        task = "binary" if len(class_names) == 2 else "multiclass"
        self.val_acc = torchmetrics.Accuracy(task=task, num_classes=len(class_names))
        self.val_auroc = torchmetrics.AUROC(task=task, num_classes=len(class_names))
        self.val_f1 = torchmetrics.F1Score(task=task, num_classes=len(class_names))

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by class id."""
        return list(self.hparams["class_names"])

    @property
    def use_asymmetry(self) -> bool:
        """Whether the model takes 6-channel asymmetry input."""
        return bool(self.hparams["use_asymmetry"])

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The input the model was trained on (``None`` when its checkpoint did not say)."""
        return Preprocessing.from_record(self.trained_preprocessing_record, self.use_asymmetry)

    def export(self, path: str | Path) -> Path:
        """Write the encoder's weights with what explaining them needs, as a ``.pth`` file.

        The file holds the ``state_dict`` and the hyper-parameters (class names, backbone,
        channels and the preprocessing the model was trained on), so every reader of this
        package explains it the way it was trained.
        """
        target = Path(path)
        content = {"state_dict": self.encoder.state_dict(), "hyper_parameters": dict(self.hparams)}
        self.on_save_checkpoint(content)
        torch.save(content, target)
        return target

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every checkpoint carries the preprocessing the model was trained on."""
        if self.trained_preprocessing_record is not None:
            checkpoint[PREPROCESSING_KEY] = dict(self.trained_preprocessing_record)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Take the checkpoint's preprocessing and class names with its weights."""
        if isinstance(checkpoint.get(PREPROCESSING_KEY), dict):
            self.trained_preprocessing_record = dict(checkpoint[PREPROCESSING_KEY])
        names = (checkpoint.get("hyper_parameters") or {}).get("class_names")
        if isinstance(names, list) and len(names) == self.encoder.num_classes:
            self.hparams["class_names"] = list(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, K)`` logits."""
        return self.encoder(x)

    def setup(self, stage: str) -> None:
        """Agree with the data: its preprocessing and class names at fit, ours otherwise.

        At fit the data's preprocessing is recorded (every checkpoint carries it) and its
        ``class_names`` adopted unless the model has names. Otherwise the data takes what
        the model (or ``trainer.ckpt_path``) was trained on, unless set explicitly.
        """
        if self._trainer is None:
            return
        datamodule = self.trainer.datamodule
        if stage != "fit":
            adopt = getattr(datamodule, "adopt_preprocessing", None)
            if adopt is not None:
                weights = self.trained_weights()
                stored = Preprocessing.from_record(weights.preprocessing, self.use_asymmetry)
                adopt(stored, weights.source)
            return
        data_preprocessing = getattr(datamodule, "preprocessing", None)
        if isinstance(data_preprocessing, Preprocessing):
            self.trained_preprocessing_record = data_preprocessing.to_dict()
        names = getattr(datamodule, "class_names", None)
        if not names:
            return
        names = check_class_names(names)
        if len(names) != self.encoder.num_classes and (
            self._classes_fixed_by is not None or not self._names_from_data
        ):
            source = self._classes_fixed_by or "class_names"
            raise ConfigurationError(
                f"the data has {len(names)} classes ({', '.join(names)}) but the model has "
                f"{self.encoder.num_classes} from {source}; make {source} match the data"
            )
        if not self._names_from_data:
            if names != self.class_names and set(names) == set(self.class_names):
                raise ConfigurationError(
                    f"the data orders its classes {names} but the model {self.class_names}; "
                    "give class_names in the data's order so labels keep their meaning"
                )
            if names != self.class_names:
                log.warning(
                    "the data's class names %s differ from the model's %s; keeping the model's",
                    names,
                    self.class_names,
                )
            return
        if len(names) != self.encoder.num_classes:
            self.encoder.classifier = nn.Linear(self.encoder.feature_dim, len(names))
            self.encoder.num_classes = len(names)
        self._names_from_data = False
        settings = {
            k: v for k, v in self.hparams.items() if k not in ("num_classes", "class_names")
        }
        self._save_settings(names, **settings)

    def trained_weights(self) -> TrainedWeights:
        """The weights a run will use: ``trainer.ckpt_path``'s (read before Lightning restores
        them after setup), else the model's own, with their class names and preprocessing."""
        ckpt_path = self.trainer.ckpt_path if self._trainer is not None else None
        if not ckpt_path:
            return TrainedWeights(
                self.encoder.state_dict(),
                self.class_names,
                self.trained_preprocessing_record,
                f"checkpoint '{self.model_path}'" if self.model_path else "the model in memory",
                self.model_path,
            )
        if self._ckpt_weights is None or self._ckpt_weights.path != str(ckpt_path):
            self._ckpt_weights = checkpoint_weights(ckpt_path, allow_pickle=self._allow_pickle)
        return self._ckpt_weights

    def on_train_epoch_start(self) -> None:
        """Restart BatchNorm running statistics so eval mode tracks this epoch's weights."""
        reset_batch_norm_statistics(self.encoder)

    def on_validation_epoch_start(self) -> None:
        """While fitting, recompute BatchNorm statistics with the weights about to be validated.

        Running statistics gathered over an epoch mix early and late weights; on
        near-identical faces that alone can flip eval-mode predictions. Up to
        ``BN_RECALIBRATION_BATCHES`` training batches re-estimate them first.
        """
        trainer = self._trainer
        if trainer is None or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        loader = trainer.train_dataloader
        if loader is None:
            return
        images = (batch.images.to(self.device) for batch in loader if len(batch) > 1)
        recalibrate_batch_norm(self.encoder, images, BN_RECALIBRATION_BATCHES)

    def on_train_end(self) -> None:
        """Warn (one line) when training accuracy is far above validation accuracy."""
        metrics = self.trainer.callback_metrics
        if "train_acc" not in metrics or "val_acc" not in metrics:
            return
        message = memorizing_warning(float(metrics["train_acc"]), float(metrics["val_acc"]))
        if message is not None and self.trainer.is_global_zero:
            log.warning(message)

    def _labelled(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(n, C, H, W)`` images and ``(n,)`` labels of samples with a known label."""
        known = batch.labels >= 0
        if bool(known.all()):
            return batch.images, batch.labels
        return batch.images[known], batch.labels[known]

    def _loss(
        self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        loss = self.hparams["ce_weight"] * F.cross_entropy(logits, labels)
        if self.hparams["contrastive_weight"] > 0:
            loss = loss + self.hparams["contrastive_weight"] * self.supcon(embeddings, labels)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        """Weighted cross-entropy + SupCon over every view; skips batches with fewer than
        2 labelled inputs."""
        images, labels = labelled_views(batch)
        if labels.numel() < 2:
            return None
        embeddings, logits = self.encoder.forward_all(images)
        loss = self._loss(embeddings, logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        size = labels.numel()
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train_acc", accuracy, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        """Log ``val_loss`` (the training objective), ``val_acc``, ``val_auroc``, ``val_f1``."""
        images, labels = self._labelled(batch)
        if labels.numel() == 0:
            return None
        embeddings, logits = self.encoder.forward_all(images)
        loss = self._loss(embeddings, logits, labels)
        probabilities = logits.float().softmax(dim=1)
        scores = probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities
        # update, not forward: a per-batch value is never used, and a batch holding one class
        # would make AUROC warn although the epoch's value is well defined.
        self.val_acc.update(scores, labels)
        self.val_auroc.update(scores, labels)
        self.val_f1.update(scores, labels)
        size = labels.numel()
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        for name, metric in (
            ("val_acc", self.val_acc),
            ("val_auroc", self.val_auroc),
            ("val_f1", self.val_f1),
        ):
            self.log(
                name,
                metric,
                on_step=False,
                on_epoch=True,
                batch_size=size,
                prog_bar=name == "val_acc",
            )
        return loss

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """``self.explainer(batch)`` when set, else ``(N, K)`` softmax probabilities."""
        if self.explainer is not None:
            return self.explainer(batch)
        if len(batch) == 0:
            return batch.images.new_zeros((0, self.encoder.num_classes))
        return self(batch.images).softmax(dim=1)

    def configure_optimizers(self) -> Any:
        """AdamW, with cosine annealing over ``trainer.max_epochs`` when that is known."""
        return adamw_with_cosine(self, self.hparams["learning_rate"], self.hparams["weight_decay"])
