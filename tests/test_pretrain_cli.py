"""``thermal-explain pretrain`` and its checkpoint as ``fit --model.pretrained``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from thermal_explain.cli.main import USAGE, main
from thermal_explain.data.unlabeled import UnlabeledImageDataModule
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.modeling.pretrainer import ContrastivePretrainer

ROOT = Path(__file__).resolve().parents[1]
FIT_CONFIG = str(ROOT / "configs" / "fit.yaml")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def test_pretrain_then_fit_from_its_checkpoint(thermal_folder, tmp_path, capsys) -> None:
    data = thermal_folder(n=6)
    code = main(
        [
            "pretrain",
            "--data.image_dir",
            str(data / "images"),
            "--data.image_size",
            "32",
            "--data.batch_size",
            "3",
            "--model.use_asymmetry",
            "true",
            "--model.projection_dim",
            "16",
            "--trainer.max_epochs",
            "1",
            "--trainer.default_root_dir",
            str(tmp_path / "pre"),
            *QUIET,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("pretrained encoder"))
    checkpoint = Path(line.rsplit(": ", 1)[-1])
    assert checkpoint.is_file() and checkpoint.name == "pretrained_encoder.ckpt"
    assert "--model.pretrained" in printed and "(6 images, 1 epochs)" in line

    pretrainer = ContrastivePretrainer.load_from_checkpoint(checkpoint)
    assert pretrainer.in_channels == 6
    started = ThermalClassifier(pretrained=str(checkpoint), use_asymmetry=True, projection_dim=16)
    expected = pretrainer.backbone.state_dict()
    for key, value in started.encoder.backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert torch.equal(
        started.encoder.projection_head[0].weight, pretrainer.projection_head[0].weight
    )

    fit = [
        "fit",
        "--config",
        FIT_CONFIG,
        "--model.pretrained",
        str(checkpoint),
        "--model.use_asymmetry",
        "true",
        "--model.projection_dim",
        "16",
        "--data.image_dir",
        str(data / "images"),
        "--data.pattern",
        "*.png",
        "--data.image_size",
        "32",
        "--data.batch_size",
        "3",
        "--data.num_workers",
        "0",
        "--data.val_fraction",
        "0.5",
        "--trainer.max_epochs",
        "1",
        "--trainer.default_root_dir",
        str(tmp_path / "fit"),
        *QUIET,
    ]
    assert main(fit) == 0
    assert next((tmp_path / "fit").rglob("best-*.ckpt")).is_file()


def test_pretrain_checkpoint_is_not_a_trained_model(thermal_folder, tmp_path, capsys) -> None:
    model = ContrastivePretrainer(projection_dim=8)
    path = tmp_path / "encoder.pth"
    torch.save(model.state_dict(), path)
    code = main(
        [
            "analyze",
            "--model_path",
            str(path),
            "--image_dir",
            str(thermal_folder(n=1) / "images"),
            "--pattern",
            "*/*.png",
        ]
    )
    assert code == 2
    assert "fit --model.pretrained" in capsys.readouterr().err


def test_pretrain_on_a_folder_without_images_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no faces here", encoding="utf-8")
    code = main(["pretrain", "--data.image_dir", str(tmp_path / "empty"), *QUIET])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "no images under" in err and "--data.image_dir" in err
    assert not (Path.cwd() / "lightning_logs" / "pretrained_encoder.ckpt").exists()


def test_unlabeled_batches_carry_two_views(thermal_folder) -> None:
    data = UnlabeledImageDataModule(
        image_dir=str(thermal_folder(n=4) / "images"), image_size=32, batch_size=4
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch.views is not None and batch.views.shape == (2, 4, 3, 32, 32)
    assert (batch.labels == -1).all()


def test_usage_lists_pretrain() -> None:
    assert "pretrain" in USAGE and "--model.pretrained" in USAGE


def test_shipped_pretrain_config_parses(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--config", str(ROOT / "configs" / "pretrain.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["data"]["views"] == 2 and config["model"]["temperature"] == 0.2
