"""``thermal-explain fit|validate|predict`` through LightningCLI, and DDP predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from thermal_explain.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PREDICT_CONFIG = str(ROOT / "configs" / "predict.yaml")
FIT_CONFIG = str(ROOT / "configs" / "fit.yaml")


def predict_args(model: Path, images: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict",
        "--config",
        PREDICT_CONFIG,
        "--model.model_path",
        str(model),
        "--data.image_dir",
        str(images),
        "--data.pattern",
        "*/*.png",
        "--output_dir",
        str(out),
        "--data.image_size",
        "32",
        "--data.num_workers",
        "0",
        "--gradcam.save_figures",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]


def records_of(out: Path) -> list[dict]:
    return json.loads((out / "analysis_results.json").read_text(encoding="utf-8"))


def test_contract_predict_command_and_rerun(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=5)
    out = tmp_path / "out"
    args = predict_args(tiny_checkpoint(), data / "images", out)
    assert main(args) == 0
    records = records_of(out)
    assert len(records) == 5
    assert {r["true_label"] for r in records} <= {"icas", "normal"}
    assert (out / "summary_report.txt").is_file() and (out / "tensorboard").is_dir()
    # The same command again resumes into the same folder (no config.yaml clash).
    assert main(args) == 0
    assert len(records_of(out)) == 5
    assert main([*args, "--overwrite", "true"]) == 0
    assert len(records_of(out)) == 5


def test_print_config_round_trips(tiny_checkpoint, thermal_folder, tmp_path, capsys):
    data = thermal_folder(n=1)
    with pytest.raises(SystemExit) as exit_info:
        main([*predict_args(tiny_checkpoint(), data / "images", tmp_path / "o"), "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["output_dir"] == str(tmp_path / "o")
    assert config["gradcam"]["method"] == "gradcam"
    saved = tmp_path / "printed.yaml"
    saved.write_text(printed)
    with pytest.raises(SystemExit):
        main(["predict", "--config", str(saved), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == config


def test_fit_checkpoint_serves_predict(thermal_folder, tmp_path):
    data = thermal_folder(n=8)
    root = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                "--config",
                FIT_CONFIG,
                "--data.image_dir",
                str(data / "images"),
                "--data.pattern",
                "*.png",
                "--data.image_size",
                "32",
                "--data.batch_size",
                "4",
                "--data.num_workers",
                "0",
                "--data.val_fraction",
                "0.5",
                "--trainer.max_epochs",
                "1",
                "--trainer.default_root_dir",
                str(root),
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        == 0
    )
    checkpoint = next(root.rglob("*.ckpt"))
    out = tmp_path / "out"
    assert main(predict_args(checkpoint, data / "images", out)) == 0
    records = records_of(out)
    assert len(records) == 8
    assert {r["predicted_label"] for r in records} <= {"icas", "normal"}
    out2 = tmp_path / "out2"
    without_model = predict_args(checkpoint, data / "images", out2)
    del without_model[3:5]
    assert main([*without_model, "--ckpt_path", str(checkpoint)]) == 0
    assert len(records_of(out2)) == 8


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--gradcam.layers", "[backbone.layer4.1.conv3]"], "backbone.layer4.1.conv2"),
        (["--model.use_asymmetry", "true"], "asymmetry"),
    ],
)
def test_bad_predict_input_fails_before_work(
    extra, needle, tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    data = thermal_folder(n=2)
    out = tmp_path / "out"
    code = main([*predict_args(tiny_checkpoint(), data / "images", out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (out / "analysis_results.json").exists()


def test_empty_folder_fails_with_one_line(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(predict_args(tiny_checkpoint(), empty, tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pattern" in err and len(err.splitlines()) == 1


def test_ddp_predict_on_two_cpu_processes(tiny_checkpoint, thermal_folder, tmp_path):
    """Lightning's DDP on 2 CPU processes: one record per image, none lost or duplicated."""
    data = thermal_folder(n=5)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "thermal_explain",
        *predict_args(tiny_checkpoint(), data / "images", out),
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
        "--data.batch_size",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    records = records_of(out)
    paths = [r["image_path"] for r in records]
    assert len(paths) == 5 and len(set(paths)) == 5
    assert all(r["status"] == "ok" for r in records)
    report = (out / "summary_report.txt").read_text(encoding="utf-8")
    assert "5" in report
    assert (out / "report.html").is_file()  # written once, by rank zero


@pytest.mark.parametrize("name", ["fit.yaml", "predict.yaml", "demo.yaml"])
def test_shipped_configs_parse(name, capsys):
    command = "predict" if name == "predict.yaml" else "fit"
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--config", str(ROOT / "configs" / name), "--print_config"])
    assert exit_info.value.code == 0
    assert "gradcam" in yaml.safe_load(capsys.readouterr().out)
