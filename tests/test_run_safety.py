"""No silent wrong answer: results bound to the model, preprocessing and settings that made
them; one run per folder; clear one-line errors; nothing left behind."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from thermal_explain import ThermalClassifier, ThermalDataModule, ThermalInterpretabilityAnalyzer
from thermal_explain.cli.main import main
from thermal_explain.errors import ThermalExplainError
from thermal_explain.modeling.encoder import ThermalEncoder
from thermal_explain.output.lock import FolderLock
from thermal_explain.pipeline.explainer import NON_FINITE

ROOT = Path(__file__).resolve().parents[1]


def analyze(model: Path, images: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "analyze", "--model_path", str(model), "--image_dir", str(images),
            "--pattern", "*/*.png", "--output_dir", str(out), "--quiet", "--no_figures", *extra,
        ]
    )  # fmt: skip


def manifest_of(out: Path) -> dict:
    return json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))


def records_of(out: Path) -> list[dict]:
    return json.loads((out / "analysis_results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def trained_at_48(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch fit at 48 px; its Lightning checkpoint."""
    from thermal_explain.data.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("fit48")
    make_synthetic_dataset(root / "faces", n=8, size=48, seed=3)
    data = ThermalDataModule(
        image_dir=str(root / "faces" / "images"), pattern="*.png", image_size=48,
        batch_size=4, val_fraction=0.5,
    )  # fmt: skip
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=root, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(ThermalClassifier(), data)
    return next(root.rglob("*.ckpt"))


def test_fit_checkpoints_carry_their_preprocessing_and_readers_use_it(
    trained_at_48, thermal_folder, tmp_path, caplog
):
    model = ThermalClassifier(model_path=str(trained_at_48))
    assert model.preprocessing is not None and model.preprocessing.image_size == 48
    exported = model.export(tmp_path / "exported.pth")
    assert ThermalClassifier(model_path=str(exported)).preprocessing == model.preprocessing
    images = thermal_folder(n=2) / "images"
    assert analyze(trained_at_48, images, tmp_path / "a") == 0
    facts = manifest_of(tmp_path / "a")
    assert (
        facts["preprocessing"]["image_size"] == 48 and facts["preprocessing_from"] == "checkpoint"
    )
    with caplog.at_level(logging.WARNING):
        assert analyze(trained_at_48, images, tmp_path / "b", "--image_size", "32") == 0
    assert "--image_size 32 differs from the 48" in caplog.text
    assert manifest_of(tmp_path / "b")["preprocessing_from"] == "options"
    predicted = tmp_path / "p"
    assert main(
        [
            "predict", "--config", str(ROOT / "configs" / "predict.yaml"),
            "--model.model_path", str(trained_at_48), "--data.image_dir", str(images),
            "--data.pattern", "*/*.png", "--data.num_workers", "0", "--output_dir", str(predicted),
            "--gradcam.save_figures", "false", "--trainer.enable_progress_bar", "false",
        ]
    ) == 0  # fmt: skip
    assert manifest_of(predicted)["preprocessing"]["image_size"] == 48


def test_a_plain_state_dict_runs_on_the_defaults_and_says_so(
    tiny_checkpoint, thermal_folder, tmp_path
):
    analyzer = ThermalInterpretabilityAnalyzer(tiny_checkpoint(), output_dir=tmp_path / "o")
    assert analyzer.preprocessing.image_size == 224
    assert analyzer.manifest()["preprocessing_from"] == "defaults"


def test_resume_only_when_everything_that_changes_results_matches(
    tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    images = thermal_folder(n=2) / "images"
    out = tmp_path / "out"
    model = tiny_checkpoint()
    assert analyze(model, images, out, "--image_size", "32") == 0
    fingerprint = manifest_of(out)["model"]["fingerprint"]
    assert fingerprint.startswith("sha256:")
    capsys.readouterr()
    for extra, difference in (
        (["--image_size", "32", "--method", "gradcam++"], "the CAM method"),
        (["--image_size", "64"], "the preprocessing's image_size 32 then, 64 now"),
        (["--image_size", "32", "--colormap", "hot"], "the drawing setting colormap"),
    ):
        assert analyze(model, images, out, *extra) == 2
        err = capsys.readouterr().err
        assert difference in err and "--overwrite" in err and err.count("\n") == 1
    assert analyze(tiny_checkpoint(seed=1), images, out, "--image_size", "32") == 2
    assert "the model's weights" in capsys.readouterr().err
    assert analyze(model, images, out, "--image_size", "32") == 0  # same settings resume
    assert analyze(model, images, out, "--image_size", "64", "--overwrite") == 0
    assert manifest_of(out)["preprocessing"]["image_size"] == 64
    (out / "run_manifest.json").unlink()
    assert analyze(model, images, out, "--image_size", "64") == 2
    assert "without a run_manifest.json" in capsys.readouterr().err


def _figures_run(model: Path, images: Path, out: Path) -> list[str]:
    """An ``analyze`` with every output (figures by worker processes for 64+ images)."""
    return [
        "analyze", "--model_path", str(model), "--image_dir", str(images), "--pattern",
        "*/*.png", "--output_dir", str(out), "--quiet", "--image_size", "64", "--batch_size", "4",
    ]  # fmt: skip


def _analyze_in_subprocess(model: Path, images: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "thermal_explain", *_figures_run(model, images, out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("kill_with", [signal.SIGKILL, signal.SIGTERM])
def test_one_run_per_folder_and_nothing_left_behind(
    kill_with, tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    images = thermal_folder(n=80, size=32) / "images"
    out = tmp_path / "out"
    model = tiny_checkpoint()
    first = _analyze_in_subprocess(model, images, out)
    overlays = out / "overlay_images"
    _wait_for(lambda: overlays.is_dir() and len(list(overlays.glob("*_plt.png"))) >= 4)
    # A second run into the same folder stops at once, saying who holds it.
    assert main(_figures_run(model, images, out)) == 2
    err = capsys.readouterr().err
    assert f"is in use by process {first.pid} since" in err and err.count("\n") == 1
    workers = _children(first.pid)
    os.kill(first.pid, kill_with)
    first.wait(timeout=30)
    time.sleep(5)
    assert [pid for pid in workers if _alive(pid)] == []
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*.png")}
    time.sleep(1)
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.png")} == before
    # The lock of the killed run is taken over; the run resumes and finishes.
    assert main(_figures_run(model, images, out)) == 0
    assert len(records_of(out)) == 80


def test_predict_needs_a_model_and_exits_1_when_images_fail(
    tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    images = thermal_folder(n=2) / "images"
    (images / "icas" / "broken.png").write_bytes(b"not an image")
    args = [
        "predict", "--config", str(ROOT / "configs" / "predict.yaml"), "--data.image_dir",
        str(images), "--data.pattern", "*/*.png", "--data.image_size", "32",
        "--data.num_workers", "0", "--output_dir", str(tmp_path / "p"),
        "--trainer.enable_progress_bar", "false", "--gradcam.save_figures", "false",
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "predict needs a trained model" in err and err.count("\n") == 1
    assert not (tmp_path / "p" / "analysis_results.json").exists()
    assert main([*args, "--model.model_path", str(tiny_checkpoint())]) == 1
    failed = [r for r in records_of(tmp_path / "p") if r["status"] != "ok"]
    assert [Path(r["image_path"]).name for r in failed] == ["broken.png"]


def test_a_model_with_nan_weights_gives_error_records_not_empty_numbers(thermal_folder, tmp_path):
    encoder = ThermalEncoder()
    with torch.no_grad():
        encoder.classifier.weight.fill_(float("nan"))
    path = tmp_path / "nan.pth"
    torch.save({"model_state_dict": encoder.state_dict(), "class_names": ["icas", "normal"]}, path)
    images = thermal_folder(n=2) / "images"
    out = tmp_path / "out"
    for _ in range(2):  # the folder stays usable
        assert analyze(path, images, out, "--image_size", "32") == 1
        records = records_of(out)
        assert len(records) == 2
        assert {r["status"] for r in records} == {"error"}
        assert all(r["error"] == NON_FINITE for r in records)
        assert (out / "summary_report.txt").is_file()


def test_usage_and_environment_errors_are_one_line(
    tiny_checkpoint, thermal_folder, tmp_path, capsys, monkeypatch
):
    images = thermal_folder(n=1) / "images"
    model = tiny_checkpoint()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (["--output_dir", str(blocker)], "is a file, not a folder"),
        (["--output_dir", "/proc/thermal_explain_out"], "is not writable"),
        (["--device", "bogus"], "Expected argument `device`"),
        (["--num_workers", "-1"], "Expected argument `num_workers`"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "no CUDA GPU is available"))
    for extra, needle in cases:
        out = ["--output_dir", str(tmp_path / "o")] if "--output_dir" not in extra else []
        code = main(
            [
                "analyze", "--model_path", str(model), "--image_dir", str(images),
                "--pattern", "*/*.png", "--quiet", *out, *extra,
            ]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1, (extra, err)
    real_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self == model:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert analyze(model, images, tmp_path / "perm") == 2
    err = capsys.readouterr().err
    assert "cannot be read (Permission denied)" in err and err.count("\n") == 1


def test_a_pickled_checkpoint_is_refused_by_name(thermal_folder, tmp_path, capsys):
    pickled = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {}, "model": torch.nn.Linear(2, 2)}, pickled)
    images = thermal_folder(n=1) / "images"
    code = main(
        [
            "predict", "--config", str(ROOT / "configs" / "predict.yaml"), "--ckpt_path",
            str(pickled), "--data.image_dir", str(images), "--data.pattern", "*/*.png",
            "--output_dir", str(tmp_path / "p"),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "holds pickled Python objects or code" in err and "--allow_pickle" in err


def test_dangling_links_and_loops_become_error_records(tiny_checkpoint, thermal_folder, tmp_path):
    images = thermal_folder(n=2) / "images"
    (images / "icas" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (images / "icas" / "loop.png").symlink_to(images / "icas" / "loop.png")
    out = tmp_path / "out"
    assert analyze(tiny_checkpoint(), images, out, "--image_size", "32") == 1
    errors = {
        Path(r["image_path"]).name: r["error"] for r in records_of(out) if r["status"] != "ok"
    }
    assert set(errors) == {"gone.png", "loop.png"}


def test_overwrite_clears_the_old_tensorboard_run(tiny_checkpoint, thermal_folder, tmp_path):
    images = thermal_folder(n=1) / "images"
    out = tmp_path / "out"
    assert analyze(tiny_checkpoint(), images, out, "--image_size", "32") == 0
    old = set((out / "tensorboard").iterdir())
    assert old
    assert analyze(tiny_checkpoint(), images, out, "--image_size", "32", "--overwrite") == 0
    assert not old & set((out / "tensorboard").iterdir())


def test_quickstart_without_a_terminal_runs_nothing(tiny_checkpoint, thermal_folder, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "model.pth").write_bytes(tiny_checkpoint().read_bytes())
    data = thermal_folder(n=1)
    shutil.copytree(data / "images", root / "data")
    done = subprocess.run(
        [sys.executable, "-m", "thermal_explain", "quickstart", "--root", str(root),
         "--output_dir", str(root / "out")],
        input="n\n", capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pass --yes" in done.stderr and not (root / "out").exists()


def test_out_of_memory_halves_the_batch_with_the_same_records(
    tiny_checkpoint, thermal_folder, tmp_path, monkeypatch, caplog
):
    from thermal_explain.cam.engine import CAMEngine

    images = thermal_folder(n=4) / "images"
    model = tiny_checkpoint()
    small = tmp_path / "small"
    assert analyze(model, images, small, "--image_size", "32", "--batch_size", "1") == 0
    real_call = CAMEngine.__call__

    def limited(self: CAMEngine, inputs: torch.Tensor, *args: object, **kwargs: object):
        if inputs.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(self, inputs, *args, **kwargs)

    monkeypatch.setattr(CAMEngine, "__call__", limited)
    big = tmp_path / "big"
    with caplog.at_level(logging.WARNING):
        assert analyze(model, images, big, "--image_size", "32", "--batch_size", "4") == 0
    assert "out of memory explaining 4 images at once: going on in batches of 2" in caplog.text

    def comparable(out: Path) -> list[dict]:
        text = json.dumps(records_of(out)).replace(str(out), "OUT")
        return json.loads(text)

    assert comparable(big) == comparable(small)


def test_a_held_folder_lock_names_its_holder(tmp_path):
    with FolderLock(tmp_path), pytest.raises(ThermalExplainError) as caught:
        FolderLock(tmp_path).acquire()
    assert f"in use by process {os.getpid()} since" in str(caught.value)
    with FolderLock(tmp_path):  # released: the next run takes it
        pass
