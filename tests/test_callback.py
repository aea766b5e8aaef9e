"""``GradCAMCallback`` inside real Lightning loops: validation probes, predict outputs."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from thermal_explain import GradCAMCallback, ThermalClassifier, ThermalDataModule
from thermal_explain.errors import ConfigurationError

LAYER4 = "backbone.layer4.1.conv2"


def quiet_trainer(**overrides: object) -> L.Trainer:
    settings = dict(
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    settings.update(overrides)
    return L.Trainer(**settings)


def fit_data(root: Path, **overrides: object) -> ThermalDataModule:
    settings = dict(
        image_dir=str(root / "images"),
        pattern="*.png",
        image_size=32,
        batch_size=4,
        val_fraction=0.5,
        seed=0,
    )
    settings.update(overrides)
    return ThermalDataModule(**settings)


def events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_validation_logs_probe_panels_per_epoch(thermal_folder, tmp_path):
    data = thermal_folder(n=8)
    logger = TensorBoardLogger(tmp_path, name="tb", version="run")
    callback = GradCAMCallback(num_probe_samples=2, every_n_epochs=1)
    trainer = quiet_trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[callback],
        num_sanity_val_steps=1,
        log_every_n_steps=1,
    )
    trainer.fit(ThermalClassifier(), fit_data(data))
    accumulator = events(Path(logger.log_dir))
    probe_tags = [t for t in accumulator.Tags()["images"] if t.startswith("gradcam/probe_")]
    assert len(probe_tags) == 2
    for tag in probe_tags:
        steps = [event.step for event in accumulator.Images(tag)]
        assert steps == [0, 1]
    area = accumulator.Scalars(f"gradcam_area/{LAYER4}")
    assert [s.step for s in area] == [0, 1]
    assert all(0.0 <= s.value <= 1.0 for s in area)
    assert callback.state_dict()["probe_indices"] == callback.probe_indices


def test_every_n_epochs_skips_epochs(thermal_folder, tmp_path):
    data = thermal_folder(n=8)
    logger = TensorBoardLogger(tmp_path, name="tb", version="run")
    callback = GradCAMCallback(num_probe_samples=1, every_n_epochs=2)
    trainer = quiet_trainer(
        max_epochs=2, logger=logger, callbacks=[callback], num_sanity_val_steps=0
    )
    trainer.fit(ThermalClassifier(), fit_data(data))
    accumulator = events(Path(logger.log_dir))
    tag = next(t for t in accumulator.Tags()["images"] if t.startswith("gradcam/probe_"))
    assert [event.step for event in accumulator.Images(tag)] == [1]


def test_callback_does_not_disturb_training(thermal_folder, tmp_path):
    data = thermal_folder(n=8)

    def weights_after_fit(callbacks: list) -> dict[str, torch.Tensor]:
        L.seed_everything(3, verbose=False)
        model = ThermalClassifier()
        logger = TensorBoardLogger(tmp_path, name=f"tb{len(callbacks)}")
        trainer = quiet_trainer(
            max_epochs=2,
            logger=logger,
            callbacks=callbacks,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        trainer.fit(model, fit_data(data))
        return {k: v.clone() for k, v in model.state_dict().items()}

    plain = weights_after_fit([])
    with_cam = weights_after_fit([GradCAMCallback(num_probe_samples=2)])
    assert plain.keys() == with_cam.keys()
    for key in plain:
        assert torch.equal(plain[key], with_cam[key]), key


def test_predict_writes_every_output_and_tensorboard(thermal_folder, tmp_path):
    data = thermal_folder(n=5)
    out = tmp_path / "analysis"
    model = ThermalClassifier(class_names=["icas", "normal"])
    datamodule = ThermalDataModule(
        image_dir=str(data / "images"), pattern="*/*.png", image_size=32, batch_size=2
    )
    datamodule.set_class_names(model.class_names)
    callback = GradCAMCallback(output_dir=str(out), save_figures=False)
    quiet_trainer(callbacks=[callback]).predict(model, datamodule, return_predictions=False)
    records = json.loads((out / "analysis_results.json").read_text())
    assert len(records) == 5 and all(r["status"] == "ok" for r in records)
    assert all(r["true_label"] in ("icas", "normal") for r in records)
    assert (out / "summary_report.txt").is_file() and (out / "report.html").is_file()
    assert model.explainer is None
    accumulator = events(out / "tensorboard")
    overlay_tags = [t for t in accumulator.Tags()["images"] if t.startswith("overlays/")]
    assert len(overlay_tags) == 5 * 4
    assert any(Path(records[0]["image_path"]).stem in tag for tag in overlay_tags)


def test_predict_with_metrics_inside_inference_mode(thermal_folder, tmp_path):
    data = thermal_folder(n=2)
    out = tmp_path / "analysis"
    model = ThermalClassifier(class_names=["icas", "normal"])
    datamodule = ThermalDataModule(
        image_dir=str(data / "images"),
        pattern="*/*.png",
        image_size=32,
        batch_size=2,
        mask_dir=str(data / "masks"),
    )
    datamodule.set_class_names(model.class_names)
    callback = GradCAMCallback(
        output_dir=str(out),
        save_figures=False,
        fuse=True,
        metrics=["deletion", "localization", "sanity"],
        metric_steps=2,
        html_report=False,
    )
    quiet_trainer(callbacks=[callback]).predict(model, datamodule, return_predictions=False)
    records = json.loads((out / "analysis_results.json").read_text())
    entry = records[0]["gradcam_results"][LAYER4]
    assert {"faithfulness", "localization", "sanity"} <= set(entry)
    assert "fused" in records[0]["gradcam_results"]
    assert not (out / "report.html").exists()


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"num_probe_samples": -1}, "num_probe_samples"),
        ({"heatmap_alpha": 1.5}, "heatmap_alpha"),
        ({"method": "gradcamm"}, "gradcam"),
        ({"colormap": "nope"}, "colormap"),
        ({"layers": []}, "layers"),
    ],
)
def test_bad_arguments_fail_at_construction(arguments, name):
    with pytest.raises(ConfigurationError, match=name) as error:
        GradCAMCallback(**arguments)
    assert "\n" not in str(error.value)
