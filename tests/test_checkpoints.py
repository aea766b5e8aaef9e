"""Checkpoint formats, architecture inference and one-line errors."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from thermal_explain.errors import CheckpointError
from thermal_explain.modeling.checkpoints import (
    Architecture,
    infer_architecture,
    load_encoder,
    normalize_state_dict,
    read_checkpoint,
)
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.encoder import ThermalEncoder
from thermal_explain.types import Batch

PROBE = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def encoder() -> ThermalEncoder:
    torch.manual_seed(0)
    return ThermalEncoder(projection_dim=16).eval()


@pytest.fixture(scope="module")
def lightning_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ThermalClassifier]:
    """A ``.ckpt`` written by ModelCheckpoint after a one-step CPU fit on 32-px faces."""
    folder = tmp_path_factory.mktemp("fit")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batch = Batch(images, torch.tensor([0, 1, 0, 1]), torch.arange(4), list("abcd"), [(32, 32)] * 4)
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    model = ThermalClassifier(class_names=["normal", "icas"], projection_dim=16)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=True,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=folder, filename="last")],
    )
    trainer.fit(model, loader)
    return folder / "last.ckpt", model.eval()


def _logits(encoder: ThermalEncoder) -> torch.Tensor:
    with torch.no_grad():
        return encoder.eval()(PROBE)


def _prefixed(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + key: value for key, value in state.items()}


FORMATS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "plain": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "model_state_dict": lambda sd: {"model_state_dict": sd, "class_names": ["normal", "icas"]},
    "model": lambda sd: {"model": sd, "best_acc": 0.9},
    "encoder": lambda sd: {"encoder": sd},
    "module.": lambda sd: _prefixed(sd, "module."),
    "model.": lambda sd: _prefixed(sd, "model."),
    "encoder.": lambda sd: _prefixed(sd, "encoder."),
    "stacked": lambda sd: {"state_dict": _prefixed(sd, "module.model.encoder.")},
}


@pytest.mark.parametrize("layout", list(FORMATS))
def test_every_format_gives_identical_logits(encoder, tmp_path, layout: str) -> None:
    path = tmp_path / "weights.pth"
    torch.save(FORMATS[layout](encoder.state_dict()), path)
    loaded, hparams = load_encoder(path)
    assert torch.equal(_logits(loaded), _logits(encoder))
    assert (loaded.backbone_name, loaded.num_classes, loaded.projection_dim) == ("resnet18", 2, 16)
    if layout == "model_state_dict":
        assert hparams["class_names"] == ["normal", "icas"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_loaded_encoder_is_a_trainable_float_model(encoder, tmp_path, dtype) -> None:
    """Complete weights skip random initialization; half-precision files still load as float."""
    state = {
        key: value.to(dtype) if value.is_floating_point() else value
        for key, value in encoder.state_dict().items()
    }
    del state["backbone.bn1.num_batches_tracked"]
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = load_encoder(path)[0]
    tensors = [*loaded.parameters(), *loaded.buffers()]
    assert not any(t.is_meta for t in tensors)
    assert all(p.requires_grad and p.dtype == torch.float32 for p in loaded.parameters())
    assert int(loaded.backbone.bn1.num_batches_tracked) == 0
    expected = copy.deepcopy(encoder).to(dtype).float()  # the fixture is shared: copy it
    assert torch.equal(_logits(loaded), _logits(expected))


def test_legacy_serialization_loads(encoder, tmp_path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save(encoder.state_dict(), path, _use_new_zipfile_serialization=False)
    assert torch.equal(_logits(load_encoder(path)[0]), _logits(encoder))


def test_lightning_fit_checkpoint(lightning_ckpt) -> None:
    path, model = lightning_ckpt
    state, hparams = read_checkpoint(path)
    assert any(key.startswith("encoder.backbone.") for key in state)
    assert hparams["class_names"] == ["normal", "icas"]
    loaded, _ = load_encoder(path)
    assert torch.equal(_logits(loaded), _logits(model.encoder))
    classifier = ThermalClassifier(model_path=str(path)).eval()
    assert classifier.class_names == ["normal", "icas"]
    assert torch.equal(_logits(classifier.encoder), _logits(model.encoder))


def test_pickled_module_needs_allow_pickle(encoder, tmp_path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(encoder, path)
    with pytest.raises(CheckpointError) as caught:
        load_encoder(path)
    message = str(caught.value)
    assert "allow_pickle=True" in message and "trust" in message and "\n" not in message
    loaded, _ = load_encoder(path, allow_pickle=True)
    assert torch.equal(_logits(loaded), _logits(encoder))


def test_classifier_only_export_loads_with_warning(encoder, tmp_path, caplog) -> None:
    path = tmp_path / "classifier_only.pth"
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("projection_head")}
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="thermal_explain.modeling.checkpoints"):
        loaded, _ = load_encoder(path, projection_dim=8)
    assert torch.equal(_logits(loaded), _logits(encoder))
    assert loaded.projection_dim == 8
    assert "no projection head" in caplog.text


def _write_bad(kind: str, folder: Path, encoder: ThermalEncoder) -> Path:
    path = folder / f"{kind}.pth"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("epoch,loss\n1,0.5\n")
    elif kind == "jpeg":
        path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64))
    elif kind == "truncated":
        torch.save(encoder.state_dict(), path)
        path.write_bytes(path.read_bytes()[:100_000])
    elif kind == "no_weights":
        torch.save({"epoch": 4, "note": "metrics only"}, path)
    elif kind == "foreign_weights":
        torch.save({"decoder.conv.weight": torch.zeros(2, 2)}, path)
    return path


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("missing", "does not exist; check --model_path"),
        ("empty", "is empty; re-copy or re-save it"),
        ("text", "looks like a text file); pass a .ckpt or .pth file written by torch.save"),
        ("jpeg", "looks like a JPEG image); pass a .ckpt or .pth file"),
        ("truncated", "is truncated or corrupt"),
        ("no_weights", "holds no model weights (found keys: epoch, note); pass a state_dict"),
        ("foreign_weights", "holds no encoder weights"),
    ],
)
def test_bad_files_give_one_line_errors(encoder, tmp_path, kind: str, fix: str) -> None:
    path = _write_bad(kind, tmp_path, encoder)
    with pytest.raises(CheckpointError) as caught:
        load_encoder(path)
    message = str(caught.value)
    assert fix in message and str(path) in message
    assert "\n" not in message and "Traceback" not in message


def test_truncated_file_says_how_to_fix(encoder, tmp_path) -> None:
    path = _write_bad("truncated", tmp_path, encoder)
    with pytest.raises(CheckpointError, match="re-copy or re-save it"):
        read_checkpoint(path)


@pytest.fixture(scope="module")
def resnet50_state() -> dict[str, torch.Tensor]:
    return ThermalEncoder("resnet50", projection_dim=32).state_dict()


def test_explicit_arguments_must_match_the_weights(encoder, resnet50_state, tmp_path) -> None:
    deep = tmp_path / "deep.pth"
    torch.save({k: v.half() for k, v in resnet50_state.items()}, deep)
    with pytest.raises(CheckpointError) as caught:
        load_encoder(deep, backbone="resnet18")
    assert str(caught.value) == (
        f"checkpoint '{deep}' holds resnet50 weights but backbone='resnet18'; drop --backbone "
        "or set it to resnet50"
    )
    rgb = tmp_path / "rgb.pth"
    torch.save(encoder.state_dict(), rgb)
    with pytest.raises(CheckpointError, match="has 3 input channels but in_channels=6; drop"):
        load_encoder(rgb, in_channels=6)
    with pytest.raises(CheckpointError, match="has 2 classes but num_classes=3; drop --num_c"):
        load_encoder(rgb, num_classes=3)
    with pytest.raises(CheckpointError) as caught:
        ThermalClassifier(model_path=str(rgb), use_asymmetry=True)
    assert str(caught.value) == (
        f"checkpoint '{rgb}' has 3 input channels but use_asymmetry=True needs 6; drop "
        "--use_asymmetry or pass a 6-channel checkpoint"
    )
    with pytest.raises(CheckpointError, match="has 3 input channels but in_channels=6"):
        ThermalClassifier(model_path=str(deep), in_channels=6)
    with pytest.raises(CheckpointError, match="2 classes but class_names has 3 names; pass 2"):
        ThermalClassifier(model_path=str(rgb), class_names=["a", "b", "c"])


def test_six_channel_checkpoint_turns_on_asymmetry(tmp_path, caplog) -> None:
    path = tmp_path / "asym.pth"
    source = ThermalEncoder(in_channels=6, projection_dim=8).eval()
    torch.save({"model_state_dict": source.state_dict()}, path)
    with caplog.at_level(logging.WARNING, logger="thermal_explain.modeling.opened"):
        model = ThermalClassifier(model_path=str(path)).eval()
    assert model.use_asymmetry and model.hparams["in_channels"] == 6
    assert "asymmetry mode" in caplog.text
    x = torch.randn(1, 6, 32, 16)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_missing_keys_are_named(encoder, tmp_path) -> None:
    path = tmp_path / "partial.pth"
    state = dict(encoder.state_dict())
    del state["backbone.layer4.1.conv2.weight"]
    state["classifier.extra"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_encoder(path)
    message = str(caught.value)
    assert "missing keys: backbone.layer4.1.conv2.weight" in message
    assert "unexpected keys: classifier.extra" in message
    assert "pass weights saved from this project's encoder" in message


@pytest.mark.parametrize(
    ("backbone", "in_channels", "num_classes"),
    [("resnet34", 3, 2), ("resnet18", 6, 2), ("resnet18", 3, 3)],
)
def test_infer_architecture(backbone: str, in_channels: int, num_classes: int) -> None:
    state = ThermalEncoder(backbone, in_channels, num_classes, projection_dim=24).state_dict()
    expected = Architecture(backbone, in_channels, num_classes, 24)
    assert infer_architecture(state) == expected


def test_infer_resnet50(resnet50_state) -> None:
    assert infer_architecture(resnet50_state) == Architecture("resnet50", 3, 2, 32)


def test_normalize_strips_stacked_prefixes_without_changing_input() -> None:
    weight = torch.ones(2, 2)
    state = {
        "model.encoder.backbone.conv1.weight": weight,
        "module.classifier.bias": weight[0],
        "optimizer.step": weight,
        "criterion.temperature": weight,
    }
    keys = list(state)
    normalized = normalize_state_dict(state)
    assert list(normalized) == ["backbone.conv1.weight", "classifier.bias"]
    assert normalized["backbone.conv1.weight"] is weight
    assert list(state) == keys
