"""Temperature inputs end to end: analyze, fit and predict, figures, polarity, bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest

from thermal_explain import ThermalClassifier, ThermalDataModule
from thermal_explain.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def write_faces(root: Path, count: int = 2, size: int = 32) -> Path:
    """``icas/`` faces as ``.npy`` (degrees) and 16-bit centi-Kelvin TIFF, with masks.

    Each face is 34 C with a 2-degree colder square on its left half.
    """
    for folder in ("images/icas", "images/normal", "masks/icas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        values = (34.0 + rng.normal(0, 0.05, (size, size))).astype(np.float32)
        spot = (slice(8, 14), slice(4, 10))
        values[spot] -= 2.0
        mask = np.zeros((size, size), np.uint8)
        mask[spot] = 255
        np.save(root / "images" / "icas" / f"a{index}.npy", values)
        cv2.imwrite(str(root / "masks" / "icas" / f"a{index}.png"), mask)
        counts = np.round((values + 273.15) * 100).astype(np.uint16)
        cv2.imwrite(str(root / "images" / "normal" / f"b{index}.tif"), counts)
    return root


def records_of(out: Path) -> list[dict]:
    return json.loads((out / "analysis_results.json").read_text(encoding="utf-8"))


def test_analyze_reads_temperatures_and_reports_what_it_read(
    tiny_checkpoint, flir_dir, cut_flir, tmp_path, capsys
):
    data = write_faces(tmp_path / "faces")
    shutil.copy(flir_dir / "four_ducks_swimming.jpg", data / "images" / "normal" / "ducks.jpg")
    cut_flir(data / "images" / "normal" / "cut.jpg")
    cv2.imwrite(str(data / "images" / "normal" / "photo.png"), np.full((20, 30, 3), 90, np.uint8))
    out = tmp_path / "out"
    code = main(
        [
            "analyze", "--model_path", str(tiny_checkpoint(in_channels=6)),
            "--image_dir", str(data / "images"), "--pattern", "*/*", "--image_size", "32",
            "--temperature_scale", "centikelvin", "--temperature_range", "28", "38",
            "--lesion_polarity", "cold", "--mask_dir", str(data / "masks"),
            "--metrics", "localization", "--output_dir", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert code == 1  # the malformed FLIR JPEG failed, and only it
    err = capsys.readouterr().err
    assert "Traceback" not in err
    records = {Path(r["image_path"]).name: r for r in records_of(out)}
    broken = records.pop("cut.jpg")
    assert broken["status"] == "error" and "FLIR metadata is malformed" in broken["error"]
    kinds = {name: record["input_kind"] for name, record in records.items()}
    assert kinds == {
        "a0.npy": "temperature_array", "a1.npy": "temperature_array",
        "b0.tif": "temperature_array", "b1.tif": "temperature_array",
        "ducks.jpg": "flir_radiometric", "photo.png": "image",
    }  # fmt: skip
    assert records["b0.tif"]["temperature"]["min"] == pytest.approx(31.85, abs=0.2)
    assert records["ducks.jpg"]["temperature"]["max"] == pytest.approx(23.24, abs=0.05)
    assert "temperature" not in records["photo.png"]
    for name, record in records.items():
        readout = record["thermal_asymmetry"]
        assert readout["units"] == ("intensity" if name == "photo.png" else "celsius")
        assert readout["delta"] == pytest.approx(readout["left"] - readout["right"], abs=2e-3)
    localization = records["a0.npy"]["gradcam_results"]["backbone.layer3.1.conv2"]["localization"]
    assert localization["sides"] == "cold"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["preprocessing"]["temperature_range"] == [28.0, 38.0]
    assert manifest["lesion_polarity"] == "cold"
    layer = "backbone.layer3.1.conv2"
    figure = cv2.imread(records["a0.npy"]["gradcam_results"][layer]["overlay_plt_path"])
    picture = cv2.imread(records["photo.png"]["gradcam_results"][layer]["overlay_plt_path"])
    assert figure.shape[1] > 1.6 * picture.shape[1]  # temperatures in degrees beside the overlay
    report = (out / "summary_report.txt").read_text()
    assert "Left-right thermal readout" in report and "gray levels" in report


def test_fit_stores_the_window_and_predict_reads_temperatures_with_it(tmp_path):
    data = write_faces(tmp_path / "faces", count=4, size=32)
    module = ThermalDataModule(
        image_dir=str(data / "images"), pattern="*.*", image_size=32, batch_size=4,
        val_fraction=0.25, use_asymmetry=True, temperature_range=(28, 38),
        temperature_scale="centikelvin",
    )  # fmt: skip
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(ThermalClassifier(use_asymmetry=True), module)
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    stored = ThermalClassifier(model_path=str(checkpoint)).preprocessing
    assert stored is not None and stored.temperature_range == (28.0, 38.0)
    assert stored.temperature_scale == "centikelvin"
    out = tmp_path / "predicted"
    code = main(
        [
            "predict", "--config", str(ROOT / "configs" / "predict.yaml"),
            "--model.model_path", str(checkpoint), "--data.image_dir", str(data / "images"),
            "--data.pattern", "*/*", "--data.num_workers", "0", "--output_dir", str(out),
            "--gradcam.save_figures", "false", "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    assert code == 0
    records = records_of(out)
    assert {r["input_kind"] for r in records} == {"temperature_array"}
    assert all(r["thermal_asymmetry"]["units"] == "celsius" for r in records)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["preprocessing"]["temperature_range"] == [28.0, 38.0]
    assert manifest["preprocessing_from"] == "checkpoint"


def test_a_16_bit_export_without_a_scale_is_a_picture_and_says_so(tiny_checkpoint, tmp_path):
    image = tmp_path / "raw.png"
    cv2.imwrite(str(image), (np.arange(32 * 32).reshape(32, 32) * 40).astype(np.uint16))
    out = tmp_path / "out"
    code = main(
        [
            "analyze", "--model_path", str(tiny_checkpoint()), "--image_path", str(image),
            "--image_size", "32", "--output_dir", str(out), "--quiet", "--no_figures",
        ]
    )  # fmt: skip
    assert code == 0
    (record,) = records_of(out)
    assert record["input_kind"] == "image" and "temperature" not in record
    assert record["thermal_asymmetry"]["units"] == "intensity"
