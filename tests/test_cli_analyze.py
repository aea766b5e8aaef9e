"""``thermal-explain analyze`` and the Python API: outputs, exit codes, resume, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from thermal_explain import ThermalInterpretabilityAnalyzer
from thermal_explain.cli.main import main

LAYERS = [f"backbone.layer{k}.1.conv2" for k in range(1, 5)]
RECORD_KEYS = {
    "image_path",
    "predicted_class",
    "predicted_label",
    "confidence",
    "true_label",
    "status",
    "input_kind",
    "thermal_asymmetry",
    "gradcam_results",
}
STAT_KEYS = {
    "max_activation",
    "mean_activation",
    "std_activation",
    "activation_area",
    "center_of_mass",
}


def analyze(*args: str) -> int:
    return main(["analyze", "--image_size", "32", "--quiet", *args])


def analyze_folder(model: Path, data: Path, *args: str) -> int:
    """``analyze`` over the ``*/*.png`` images of a ``thermal_folder`` data set."""
    return analyze(
        "--model_path",
        str(model),
        "--image_dir",
        str(data / "images"),
        "--pattern",
        "*/*.png",
        *args,
    )


def records_of(output_dir: Path) -> list[dict]:
    return json.loads((output_dir / "analysis_results.json").read_text(encoding="utf-8"))


def test_analyze_folder_writes_the_contract_layout(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=4)
    out = tmp_path / "out"
    code = analyze_folder(
        tiny_checkpoint(),
        data,
        "--output_dir",
        str(out),
    )
    assert code == 0
    records = records_of(out)
    assert len(records) == 4
    for record in records:
        assert set(record) == RECORD_KEYS
        assert record["status"] == "ok"
        assert record["true_label"] == Path(record["image_path"]).parent.name
        assert set(record["gradcam_results"]) == set(LAYERS)
        stem = Path(record["image_path"]).stem
        label = record["predicted_label"].upper()
        for layer, entry in record["gradcam_results"].items():
            token = layer.replace(".", "_")
            assert set(entry["feature_statistics"]) == STAT_KEYS
            assert Path(entry["heatmap_path"]).name == f"{stem}_{token}_{label}_heatmap.png"
            assert Path(entry["overlay_path"]).name == f"{stem}_{token}_{label}_overlay.png"
            assert Path(entry["overlay_plt_path"]).name == f"{stem}_{token}_{label}_overlay_plt.png"
            for key in ("heatmap_path", "overlay_path", "overlay_plt_path"):
                assert Path(entry[key]).is_file()
            raw = np.load(out / "feature_maps" / f"{stem}_{token}_{label}.npy")
            assert raw.dtype == np.float32 and raw.shape == (32, 32)
    report = (out / "summary_report.txt").read_text(encoding="utf-8")
    assert "4" in report and "icas" in report


def test_unreadable_image_is_recorded_and_exit_is_one(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=4)
    (data / "images" / "icas" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = analyze_folder(
        tiny_checkpoint(),
        data,
        "--output_dir",
        str(out),
    )
    assert code == 1
    records = records_of(out)
    assert len(records) == 5
    failed = [r for r in records if r["status"] == "error"]
    assert len(failed) == 1 and failed[0]["image_path"].endswith("broken.png")
    assert failed[0]["error"]
    assert "broken.png" in (out / "summary_report.txt").read_text(encoding="utf-8")


def test_rerun_resumes_and_overwrite_starts_over(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=3)
    model = tiny_checkpoint()
    out = tmp_path / "out"
    args = (
        "--model_path",
        str(model),
        "--image_dir",
        str(data / "images"),
        "--pattern",
        "*/*.png",
        "--output_dir",
        str(out),
    )
    assert analyze(*args) == 0
    heatmap = next((out / "gradcam_heatmaps").iterdir())
    stamp = heatmap.stat().st_mtime_ns
    analyzer = ThermalInterpretabilityAnalyzer(model, output_dir=out, image_size=32)
    records = analyzer.batch_analyze(data / "images", "*/*.png")
    assert len(records) == 3
    assert analyzer.last_run is not None and analyzer.last_run.analyzed == 0
    assert heatmap.stat().st_mtime_ns == stamp
    assert analyze(*args, "--overwrite") == 0
    assert heatmap.stat().st_mtime_ns != stamp
    assert len(records_of(out)) == 3


def test_python_api_single_image(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=2)
    image = sorted((data / "images").glob("*/*.png"))[0]
    analyzer = ThermalInterpretabilityAnalyzer(
        tiny_checkpoint(), output_dir=tmp_path / "out", image_size=32, save_figures=False
    )
    record = analyzer.analyze_single_image(image)
    assert record["status"] == "ok" and record["image_path"] == str(image)
    entry = record["gradcam_results"]["backbone.layer4.1.conv2"]
    assert entry["overlay_plt_path"] is None and Path(entry["overlay_path"]).is_file()


def test_asymmetry_records_side_attribution(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=2)
    out = tmp_path / "out"
    code = analyze_folder(
        tiny_checkpoint(in_channels=6),
        data,
        "--use_asymmetry",
        "--output_dir",
        str(out),
        "--no_figures",
    )
    assert code == 0
    for record in records_of(out):
        for entry in record["gradcam_results"].values():
            sides = entry["side_attribution"]
            assert set(sides) == {"left", "right"}
            assert sides["left"] + sides["right"] == pytest.approx(1.0, abs=1e-3)
            raw = np.load(
                out
                / "feature_maps"
                / Path(entry["heatmap_path"]).name.replace("_heatmap.png", ".npy")
            )
            assert raw.shape == (32, 16)


@pytest.mark.parametrize("name", ["patient 01..x", "患者_热像"])
def test_awkward_file_names_stay_inside_output_dir(name, tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=1)
    source = next((data / "images").glob("*/*.png"))
    folder = tmp_path / "in"
    folder.mkdir()
    target = folder / f"{name}.png"
    target.write_bytes(source.read_bytes())
    out = tmp_path / "out"
    assert (
        analyze(
            "--model_path",
            str(tiny_checkpoint()),
            "--image_path",
            str(target),
            "--output_dir",
            str(out),
            "--no_figures",
        )
        == 0
    )
    written = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and p.suffix in {".png", ".npy"}
        and folder not in p.parents
        and data not in p.parents
    ]
    assert written and all(out in p.parents for p in written)
    if "患者" in name:
        assert any("患者" in p.name for p in written)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--image_dir", "{missing}"], "image_dir"),
        (["--image_dir", "{data}", "--pattern", "*.tif"], "pattern"),
        (["--image_path", "{missing}/x.png"], "x.png"),
    ],
)
def test_bad_input_is_one_line_exit_two(
    args, needle, tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    data = thermal_folder(n=1)
    filled = [a.format(missing=tmp_path / "nope", data=data / "images") for a in args]
    code = analyze(
        "--model_path", str(tiny_checkpoint()), "--output_dir", str(tmp_path / "o"), *filled
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_missing_model_is_one_line_exit_two(thermal_folder, tmp_path, capsys):
    data = thermal_folder(n=1)
    code = analyze_folder(
        tmp_path / "missing.pth",
        data,
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "missing.pth" in err


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--image_dir", "x"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_killed_run_resumes_with_one_record_per_image(tiny_checkpoint, thermal_folder, tmp_path):
    """SIGKILL a real run mid-way; the re-run finishes with exactly one record per image."""
    data = thermal_folder(n=24)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "thermal_explain",
        "analyze",
        "--model_path",
        str(tiny_checkpoint()),
        "--image_dir",
        str(data / "images"),
        "--pattern",
        "*/*.png",
        "--output_dir",
        str(out),
        "--image_size",
        "32",
        "--batch_size",
        "2",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    journal = out / ".journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        lines = (
            sum(len(p.read_text(errors="ignore").splitlines()) for p in journal.glob("*.jsonl"))
            if journal.is_dir()
            else 0
        )
        if lines >= 4:
            break
        time.sleep(0.05)
    killed_mid_run = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed_mid_run, "the run finished before it could be killed"
    assert not (out / "analysis_results.json").exists()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    records = records_of(out)
    paths = [r["image_path"] for r in records]
    assert len(paths) == 24 and len(set(paths)) == 24
    assert all(r["status"] == "ok" for r in records)


def test_metrics_fused_map_report_and_plots(tiny_checkpoint, thermal_folder, tmp_path):
    data = thermal_folder(n=4)
    (data / "masks" / "icas").mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    code = analyze_folder(
        tiny_checkpoint(),
        data,
        "--output_dir",
        str(out),
        "--no_figures",
        "--mask_dir",
        str(data / "masks"),
        "--metrics",
        "all",
        "--fuse",
        "--metric_steps",
        "4",
    )
    assert code == 0
    records = records_of(out)
    for record in records:
        assert set(record["gradcam_results"]) == {*LAYERS, "fused"}
        entry = record["gradcam_results"][LAYERS[-1]]
        faithfulness = entry["faithfulness"]
        assert 0.0 <= faithfulness["deletion_auc"] <= 1.0
        assert len(faithfulness["deletion_curve"]) == 5
        assert {"insertion_auc", "deletion_auc_random", "drop_in_confidence"} <= set(faithfulness)
        assert -1.0 <= entry["sanity"]["spearman_randomized"] <= 1.0
        localization = record["gradcam_results"]["fused"]["localization"]
        if record["true_label"] == "icas":
            assert localization["status"] == "ok"
            assert isinstance(localization["pointing_game_hit"], bool)
        else:
            assert localization["status"] == "no_mask"
    report = (out / "summary_report.txt").read_text(encoding="utf-8")
    assert "Localization against the masks" in report
    assert "Sanity check" in report and ("passes:" in report or "fails:" in report)
    assert "random map" in report
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {
        "confidence_histogram.png",
        "activation_area.png",
        "class_mean_heatmaps.png",
        "faithfulness_curves.png",
    } <= plots


def test_localization_without_masks_is_a_one_line_error(
    tiny_checkpoint, thermal_folder, tmp_path, capsys
):
    data = thermal_folder(n=1)
    code = analyze_folder(
        tiny_checkpoint(),
        data,
        "--output_dir",
        str(tmp_path / "o"),
        "--metrics",
        "localization",
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "mask_dir" in err and len(err.splitlines()) == 1


def test_each_image_is_decoded_once(tiny_checkpoint, thermal_folder, tmp_path, monkeypatch):
    from thermal_explain.output import worker

    def no_second_read(path, *args):
        raise AssertionError(f"the writer decoded {path} again")

    monkeypatch.setattr(worker, "read_input", no_second_read)
    data = thermal_folder(n=3)
    out = tmp_path / "out"
    code = analyze_folder(
        tiny_checkpoint(), data, "--output_dir", str(out), "--writer_workers", "1"
    )
    assert code == 0
    assert all(record["status"] == "ok" for record in records_of(out))


def test_precision_and_writer_options(tiny_checkpoint, thermal_folder, tmp_path, monkeypatch):
    from thermal_explain.cam import precision

    monkeypatch.setattr(precision, "bfloat16_is_native", lambda device: True)
    data = thermal_folder(n=2)
    out = tmp_path / "out"
    args = ["--output_dir", str(out), "--no_figures", "--writer_workers", "0"]
    assert analyze_folder(tiny_checkpoint(), data, *args, "--precision", "bf16-mixed") == 0
    assert all(record["status"] == "ok" for record in records_of(out))
    analyzer = ThermalInterpretabilityAnalyzer(
        tiny_checkpoint(), output_dir=tmp_path / "api", precision="bf16-mixed", writer_workers=3
    )
    assert analyzer.explainer.engine.precision == "bf16-mixed"
    assert analyzer.writer_workers == 3


def test_bad_precision_is_one_line(tiny_checkpoint, thermal_folder, tmp_path, capsys):
    data = thermal_folder(n=1)
    out = str(tmp_path / "out")
    assert analyze_folder(tiny_checkpoint(), data, "--output_dir", out, "--precision", "8") == 2
    assert (
        analyze_folder(
            tiny_checkpoint(),
            data,
            "--output_dir",
            out,
            "--precision",
            "16-mixed",
            "--device",
            "cpu",
        )
        == 2
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert "Expected argument `precision` to be one of" in errors[0]
    assert "CUDA only" in errors[1]


def test_resume_needs_the_same_precision_not_the_same_workers(
    tiny_checkpoint, thermal_folder, tmp_path, monkeypatch, capsys
):
    from thermal_explain.cam import precision

    monkeypatch.setattr(precision, "bfloat16_is_native", lambda device: True)
    data = thermal_folder(n=2)
    model = tiny_checkpoint()
    args = ["--output_dir", str(tmp_path / "out"), "--no_figures"]
    assert analyze_folder(model, data, *args, "--writer_workers", "1") == 0
    assert analyze_folder(model, data, *args, "--writer_workers", "2") == 0  # resumes
    assert analyze_folder(model, data, *args, "--precision", "bf16-mixed") == 2
    assert "the precision" in capsys.readouterr().err


def test_temperature_inputs_are_decoded_once_with_figures(
    tiny_checkpoint, flir_dir, tmp_path, monkeypatch
):
    from thermal_explain.output import worker

    def no_second_read(path, *args):
        raise AssertionError(f"the writer decoded {path} again")

    monkeypatch.setattr(worker, "read_input", no_second_read)
    data = tmp_path / "images" / "normal"
    data.mkdir(parents=True)
    shutil.copy(flir_dir / "four_ducks_swimming.jpg", data / "ducks.jpg")
    np.save(data / "face.npy", np.linspace(28.0, 36.0, 48 * 40, dtype=np.float32).reshape(48, 40))
    out = tmp_path / "out"
    args = ["--model_path", str(tiny_checkpoint()), "--image_dir", str(data.parent)]
    assert analyze(*args, "--pattern", "*/*.*", "--output_dir", str(out)) == 0
    records = records_of(out)
    assert {record["input_kind"] for record in records} == {"flir_radiometric", "temperature_array"}
    for record in records:
        assert record["status"] == "ok"
        for layer in record["gradcam_results"].values():
            figure = cv2.imread(layer["overlay_plt_path"])
            assert figure.shape[1] > 1.6 * figure.shape[0]  # degrees beside the overlay
