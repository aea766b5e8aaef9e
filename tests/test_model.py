"""ThermalEncoder and ThermalClassifier: structure, input checks, training, class names."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from thermal_explain.errors import ConfigurationError
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.encoder import ThermalEncoder, build_backbone
from thermal_explain.types import Batch, FailedItem


def test_resnet18_layer_names_and_shapes() -> None:
    encoder = ThermalEncoder(projection_dim=16).eval()
    names = dict(encoder.named_modules())
    assert isinstance(names["backbone.layer4.1.conv2"], nn.Conv2d)
    assert not any(".fc." in key or key.startswith("backbone.fc") for key in encoder.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        embeddings, logits = encoder.forward_all(x)
        assert torch.equal(logits, encoder(x))
    assert embeddings.shape == (2, 16) and logits.shape == (2, 2)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(2))


@pytest.mark.parametrize(("name", "dim"), [("resnet34", 512), ("resnet50", 2048)])
def test_six_channel_backbones_keep_conv1_geometry(name: str, dim: int) -> None:
    backbone, feature_dim = build_backbone(name, 6)
    conv1 = backbone.conv1
    assert feature_dim == dim
    assert (conv1.in_channels, conv1.kernel_size, conv1.stride, conv1.padding) == (
        6,
        (7, 7),
        (2, 2),
        (3, 3),
    )
    assert conv1.bias is None
    assert isinstance(backbone.fc, nn.Identity)


def test_unknown_backbone_and_bad_channels() -> None:
    with pytest.raises(ConfigurationError, match="resnet18, resnet34, resnet50"):
        build_backbone("vgg16", 3)
    with pytest.raises(ConfigurationError, match="`in_channels` to be an integer >= 1"):
        build_backbone("resnet18", 0)
    with pytest.raises(ConfigurationError, match=r"`backbone` to be one of .* but got 'resnet101'"):
        ThermalClassifier(backbone="resnet101")


def test_wrong_channel_count_and_rank_are_one_line_errors() -> None:
    model = ThermalClassifier(use_asymmetry=True)
    assert model.encoder.in_channels == 6 and model.use_asymmetry
    with pytest.raises(ConfigurationError) as caught:
        model(torch.randn(1, 3, 32, 16))
    message = str(caught.value)
    assert "expects 6 channels (asymmetry mode) but got 3" in message
    assert "set use_asymmetry to match the checkpoint" in message and "\n" not in message
    with pytest.raises(ConfigurationError, match=r"shape \(N, 6, H, W\) but got shape \(6, 32"):
        model(torch.randn(6, 32, 16))
    with pytest.raises(ConfigurationError, match="convert the images to 3 channels"):
        ThermalEncoder()(torch.randn(1, 1, 32, 32))


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ConfigurationError, match="use_asymmetry=True needs 6"):
        ThermalClassifier(use_asymmetry=True, in_channels=3)
    with pytest.raises(ConfigurationError, match="num_classes=3 but class_names has 2"):
        ThermalClassifier(num_classes=3, class_names=["normal", "icas"])
    with pytest.raises(ConfigurationError, match="`learning_rate` to be a number > 0"):
        ThermalClassifier(learning_rate=0.0)
    with pytest.raises(ConfigurationError, match="`weight_decay` to be a number >= 0"):
        ThermalClassifier(weight_decay="high")
    with pytest.raises(ConfigurationError, match="both 0"):
        ThermalClassifier(contrastive_weight=0.0, ce_weight=0.0)
    model = ThermalClassifier(num_classes=3)
    assert model.class_names == ["class_0", "class_1", "class_2"]
    assert not model.use_asymmetry and model.hparams["in_channels"] == 3


def test_learns_and_eval_mode_tracks_training(thermal_faces, batch_loader, make_trainer) -> None:
    images, labels = thermal_faces
    model = ThermalClassifier(projection_dim=32)
    step_losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            step_losses.append(float(outputs["loss"]))

    trainer = make_trainer(max_epochs=2, callbacks=[Record()])
    loader = batch_loader(images, labels, batch_size=8, shuffle=True)
    trainer.fit(model, loader, batch_loader(images, labels, batch_size=16))
    assert len(step_losses) == 8
    assert sum(step_losses[-2:]) / 2 < step_losses[0]
    metrics = trainer.callback_metrics
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_auroc", "val_f1"):
        assert key in metrics
    # Near-identical faces: eval-mode BatchNorm statistics must follow the trained weights.
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).argmax(dim=1) == labels).float().mean().item()
    assert accuracy >= 0.9
    assert float(metrics["val_acc"]) >= 0.9


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_steps_skip_empty_and_unlabelled_batches(make_batch) -> None:
    model = ThermalClassifier(projection_dim=8)
    empty = make_batch(torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.long))
    assert model.training_step(empty, 0) is None
    assert model.validation_step(empty, 0) is None
    assert model.predict_step(empty, 0).shape == (0, 2)
    unlabelled = make_batch(torch.randn(4, 3, 32, 32))
    assert model.training_step(unlabelled, 0) is None
    model.eval()
    assert model.validation_step(unlabelled, 0) is None
    mixed = make_batch(torch.randn(4, 3, 32, 32), torch.tensor([0, -1, 1, -1]))
    assert torch.isfinite(model.validation_step(mixed, 0))


def test_predict_returns_probabilities_or_explainer_output(make_batch, make_trainer) -> None:
    model = ThermalClassifier(projection_dim=8)
    batches = DataLoader([make_batch(torch.randn(3, 3, 32, 32))], batch_size=None)
    (probabilities,) = make_trainer().predict(model, batches)
    assert probabilities.shape == (3, 2)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(3))

    class Explainer(nn.Module):
        def __init__(self, owner: nn.Module) -> None:
            super().__init__()
            self.owner = owner

        def forward(self, batch) -> list[str]:
            return [path.upper() for path in batch.paths]

    model.explainer = Explainer(model)
    assert "explainer" not in dict(model.named_children())
    assert not any(key.startswith("explainer") for key in model.state_dict())
    assert make_trainer().predict(model, batches) == [
        ["FACE_000.PNG", "FACE_001.PNG", "FACE_002.PNG"]
    ]


def test_lightning_moves_a_batch_to_the_device(make_batch) -> None:
    model = ThermalClassifier(projection_dim=8)
    batch = make_batch(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    batch.failed.append(FailedItem("broken.jpg", "cannot decode", "icas"))
    moved = model.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert isinstance(moved, Batch)
    assert moved.images.device.type == "meta" and moved.labels.device.type == "meta"
    assert moved.indices.device.type == "meta" and batch.images.device.type == "cpu"
    assert moved.paths == batch.paths and moved.failed == batch.failed


def test_optimizer_uses_cosine_schedule_over_max_epochs(make_trainer) -> None:
    model = ThermalClassifier(projection_dim=8, learning_rate=0.01, weight_decay=0.02)
    model.trainer = make_trainer(max_epochs=5)
    config = model.configure_optimizers()
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.02
    assert config["lr_scheduler"]["scheduler"].T_max == 5


class NamedData(L.LightningDataModule):
    """Two-face data module that names its classes like the folder-based one."""

    def __init__(self, class_names: list[str], loader: DataLoader) -> None:
        super().__init__()
        self.class_names = class_names
        self.loader = loader

    def train_dataloader(self) -> DataLoader:
        return self.loader

    def val_dataloader(self) -> DataLoader:
        return self.loader


def test_class_names_from_data_are_saved_and_restored(
    thermal_faces, batch_loader, make_trainer, tmp_path
) -> None:
    images, _ = thermal_faces
    labels = torch.arange(8) % 3
    data = NamedData(["icas", "normal", "other"], batch_loader(images[:8], labels, batch_size=8))
    model = ThermalClassifier(projection_dim=8)
    trainer = make_trainer(max_steps=1)
    trainer.fit(model, datamodule=data)
    assert model.class_names == ["icas", "normal", "other"]
    assert {"val_acc", "val_auroc", "val_f1"} <= set(trainer.callback_metrics)
    assert model.encoder.classifier.out_features == 3
    path = tmp_path / "fit.ckpt"
    trainer.save_checkpoint(path, weights_only=True)

    restored = ThermalClassifier.load_from_checkpoint(path)
    assert restored.class_names == ["icas", "normal", "other"]
    reloaded = ThermalClassifier(model_path=str(path))
    assert reloaded.class_names == ["icas", "normal", "other"]
    assert reloaded.hparams["num_classes"] == 3 and not reloaded.use_asymmetry
    x = images[:2]
    for other in (restored, reloaded):
        other.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), restored(x)) and torch.equal(model(x), reloaded(x))


def test_data_class_count_must_match_a_fixed_model(
    thermal_faces, batch_loader, make_trainer
) -> None:
    images, labels = thermal_faces
    data = NamedData(["a", "b", "c"], batch_loader(images[:4], labels[:4]))
    model = ThermalClassifier(projection_dim=8, class_names=["normal", "icas"])
    with pytest.raises(ConfigurationError, match="the data has 3 classes"):
        make_trainer(max_steps=1).fit(model, datamodule=data)
    assert model.class_names == ["normal", "icas"]
    reordered = NamedData(["icas", "normal"], batch_loader(images[:4], labels[:4]))
    with pytest.raises(ConfigurationError, match="in the data's order"):
        make_trainer(max_steps=1).fit(model, datamodule=reordered)
