"""``GradCAMCallback`` on a user's own LightningModule: torchvision backbones, any batch shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest
import torch
from foreign import CLASSES, Pictures, Plain, Stream, events, probe_table, table_rows, trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader
from torchvision.models import mobilenet_v3_small, resnet18
from torchvision.models.densenet import DenseNet

from thermal_explain import GradCAMCallback
from thermal_explain.errors import ConfigurationError


def records(folder: Path) -> list[dict]:
    return json.loads((folder / "analysis_results.json").read_text())


def probe_tags(folder: Path) -> list[str]:
    return sorted(t for t in events(folder).Tags()["images"] if t.startswith("gradcam/probe_"))


def test_resnet18_with_tuple_batches(tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    logger = TensorBoardLogger(tmp_path, name="tb", version="run")
    callback = GradCAMCallback(num_probe_samples=3, output_dir=str(out), save_figures=False)
    model = Plain(resnet18(weights=None, num_classes=3))
    fit = trainer(logger=logger, callbacks=[callback])
    fit.fit(model, DataLoader(Pictures(6), batch_size=3), DataLoader(Pictures(6, seed=1)))
    # The class names come from the data set's `classes`; probes are class-balanced.
    rows = table_rows(probe_table(Path(logger.log_dir)))
    assert [row[2] for row in rows] == CLASSES and all(row[3] in CLASSES for row in rows)
    tags = probe_tags(Path(logger.log_dir))
    assert len(tags) == 3 * 4 and tags[0].endswith("/net.layer1.1.conv2")
    png = events(Path(logger.log_dir)).Images(tags[0])[0].encoded_image_string
    panel = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert panel.shape[1] == 320 and 200 < panel.shape[0] < 250  # input | overlay + header

    data = Pictures(5, seed=2)
    trainer(callbacks=[callback]).predict(model, DataLoader(data, batch_size=2))
    found = records(out)
    assert sorted(r["image_path"] for r in found) == sorted(path for path, _ in data.samples)
    assert all(r["status"] == "ok" and r["predicted_label"] in CLASSES for r in found)
    assert [r["true_label"] for r in sorted(found, key=lambda r: r["image_path"])] == [
        CLASSES[label] for _, label in sorted(data.samples)
    ]
    layers = [f"net.layer{k}.1.conv2" for k in range(1, 5)]
    assert list(found[0]["gradcam_results"]) == layers
    tags = events(out / "tensorboard").Tags()["images"]
    assert len([tag for tag in tags if tag.startswith("overlays/")]) == 5 * 4


def test_mobilenet_v3_with_dict_batches(tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    logger = TensorBoardLogger(tmp_path, name="tb", version="run")
    keys = ("pixels", "target")
    callback = GradCAMCallback(
        num_probe_samples=2,
        output_dir=str(out),
        save_figures=False,
        image_key="pixels",
        label_key="target",
    )
    model = Plain(mobilenet_v3_small(weights=None, num_classes=3), *keys)
    model.class_names = ["lynx", "wolf", "crow"]  # the module's names win over the data's
    fit = trainer(logger=logger, callbacks=[callback])
    train, val = Pictures(6, keys=keys), Pictures(4, keys=keys)
    fit.fit(model, DataLoader(train, batch_size=3), DataLoader(val))
    rows = table_rows(probe_table(Path(logger.log_dir)))
    assert [row[2] for row in rows] == ["lynx", "wolf"]

    trainer(callbacks=[callback]).predict(model, DataLoader(Pictures(3, seed=2, keys=keys)))
    found = records(out)
    assert len(found) == 3 and all(r["predicted_label"] in model.class_names for r in found)
    assert list(found[0]["gradcam_results"])[-1] == "net.features.12.0"


def test_densenet_with_an_iterable_validation_set_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    logger = TensorBoardLogger(tmp_path, name="tb", version="run")
    net = DenseNet(growth_rate=4, block_config=(1, 1, 1, 1), num_init_features=8, num_classes=2)
    model = Plain(net)
    model.save_hyperparameters({"class_names": ["healthy", "lesion"]})
    callback = GradCAMCallback(num_probe_samples=4, output_dir=str(out), save_figures=False)
    fit = trainer(logger=logger, callbacks=[callback])
    fit.fit(model, DataLoader(Stream(6), batch_size=3), DataLoader(Stream(8), batch_size=3))
    # Class-balanced in label order from the passing batches: labels 0 0 0 1 1 1 1 1.
    assert callback.probes.positions == [0, 3, 1, 4]
    rows = table_rows(probe_table(Path(logger.log_dir)))
    assert [row[1] for row in rows] == ["val0000", "val0003", "val0001", "val0004"]
    assert [row[2] for row in rows] == ["healthy", "lesion", "healthy", "lesion"]
    assert all(row[3] in ("healthy", "lesion") for row in rows)

    trainer(callbacks=[callback]).predict(model, DataLoader(Stream(5), batch_size=2))
    found = records(out)
    assert sorted(r["image_path"] for r in found) == [
        "batch0_0",
        "batch0_1",
        "batch1_0",
        "batch1_1",
        "batch2_0",
    ]
    heatmaps = sorted((out / "gradcam_heatmaps").iterdir())
    written = {path: path.stat().st_mtime_ns for path in heatmaps}
    trainer(callbacks=[callback]).predict(model, DataLoader(Stream(5), batch_size=2))
    assert len(records(out)) == 5
    assert {path: path.stat().st_mtime_ns for path in heatmaps} == written  # nothing redone


def test_training_is_untouched_on_a_foreign_module(tmp_path: Path) -> None:
    def weights_after_fit(callbacks: list) -> dict[str, torch.Tensor]:
        L.seed_everything(5, verbose=False)
        model = Plain(nn.Sequential(resnet18(weights=None, num_classes=3), nn.Dropout(0.2)))
        train = DataLoader(Pictures(8, noise=True), batch_size=4, shuffle=True)
        val = DataLoader(Pictures(6, seed=1, noise=True), batch_size=3)
        logger = TensorBoardLogger(tmp_path, name=f"tb{len(callbacks)}")
        trainer(max_epochs=2, logger=logger, callbacks=callbacks, deterministic=True).fit(
            model, train, val
        )
        return {key: value.clone() for key, value in model.state_dict().items()}

    plain = weights_after_fit([])
    explained = weights_after_fit([GradCAMCallback(num_probe_samples=3, model_attr="net.0")])
    assert plain.keys() == explained.keys()
    for key in plain:
        assert torch.equal(plain[key], explained[key]), key


def test_probe_positions_survive_a_resume(tmp_path: Path) -> None:
    first = GradCAMCallback(num_probe_samples=3, output_dir=str(tmp_path))
    model = Plain(resnet18(weights=None, num_classes=2))
    data = (DataLoader(Stream(4), batch_size=2), DataLoader(Stream(8), batch_size=3))
    trainer(callbacks=[first]).fit(model, *data)
    state = first.state_dict()
    assert state["probe_positions"] == [0, 3, 1]

    second = GradCAMCallback(num_probe_samples=3, output_dir=str(tmp_path / "again"))
    second.load_state_dict(state)
    assert second.probes.positions == [0, 3, 1]
    trainer(callbacks=[second]).fit(model, *data)
    assert second.probes.positions == [0, 3, 1]
    labels = second.probes.inputs(None).batch.labels.tolist()  # type: ignore[union-attr]
    assert labels == [0, 1, 0]


def test_without_a_tensorboard_logger_panels_become_png_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    callback = GradCAMCallback(num_probe_samples=2, output_dir=str(out))
    model = Plain(resnet18(weights=None, num_classes=3))
    data = (DataLoader(Pictures(3), batch_size=3), DataLoader(Pictures(4, seed=1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(max_epochs=2, callbacks=[callback]).fit(model, *data)
    ours = [w for w in caught if "TensorBoard logger" in str(w.message)]
    assert len(ours) == 1 and "\n" not in str(ours[0].message)
    for epoch in ("epoch_00", "epoch_01"):
        panels = list((out / "probes" / epoch).glob("probe_*_pic_1_*.png"))
        assert len(panels) == 2 * 4 and len([p for p in panels if "layer4_1_conv2" in p.name]) == 2


def test_model_attr_and_a_forward_that_is_not_logits(tmp_path: Path) -> None:
    class Wrapped(Plain):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.net(x), x.mean()

        def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
            x, y = self.split(batch)
            return nn.functional.cross_entropy(self(x)[0], y)

        def validation_step(self, batch: object, batch_idx: int) -> None:
            return None

    data = (DataLoader(Pictures(3), batch_size=3), DataLoader(Pictures(3, seed=1)))
    callback = GradCAMCallback(num_probe_samples=1, output_dir=str(tmp_path))
    with pytest.raises(ConfigurationError, match="model_attr") as error:
        trainer(callbacks=[callback]).fit(Wrapped(resnet18(weights=None, num_classes=3)), *data)
    assert "\n" not in str(error.value) and "Wrapped" in str(error.value)

    callback = GradCAMCallback(num_probe_samples=1, output_dir=str(tmp_path), model_attr="net")
    trainer(callbacks=[callback]).fit(Wrapped(resnet18(weights=None, num_classes=3)), *data)
    assert list((tmp_path / "probes" / "epoch_00").glob("*.png"))


def test_ddp_predict_of_a_foreign_module_on_two_cpu_processes(tmp_path: Path) -> None:
    """Every rank starts the run at its first batch; one record per image in the end."""
    out = tmp_path / "analysis"
    script = tmp_path / "predict.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import lightning as L\n"
        "from torch.utils.data import DataLoader\n"
        "from torchvision.models import resnet18\n"
        "from foreign import Pictures, Plain\n"
        "from thermal_explain import GradCAMCallback\n"
        "if __name__ == '__main__':\n"
        "    L.seed_everything(0)\n"
        f"    callback = GradCAMCallback(output_dir={str(out)!r}, save_figures=False)\n"
        "    trainer = L.Trainer(accelerator='cpu', devices=2, strategy='ddp', logger=False,\n"
        "                        callbacks=[callback], enable_progress_bar=False)\n"
        "    model = Plain(resnet18(weights=None, num_classes=3))\n"
        "    trainer.predict(model, DataLoader(Pictures(5), batch_size=2),\n"
        "                    return_predictions=False)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    finished = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    paths = [record["image_path"] for record in records(out)]
    assert sorted(paths) == sorted(path for path, _ in Pictures(5).samples)
