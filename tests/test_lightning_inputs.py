"""Reading any batch, what data sets say about their items, which module and class names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from foreign import Pictures, Plain, Stream
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from thermal_explain.errors import ConfigurationError
from thermal_explain.lightning.inputs import BatchReader, display_pixels
from thermal_explain.lightning.modules import (
    count_classes,
    explained_module,
    resolve_class_names,
)
from thermal_explain.lightning.sources import (
    dataset_class_names,
    dataset_labels,
    dataset_paths,
    item_names,
)
from thermal_explain.modeling.classifier import ThermalClassifier

IMAGES = torch.rand(2, 3, 8, 8)
LABELS = torch.tensor([1, 0])


@pytest.mark.parametrize(
    "batch",
    [
        (IMAGES, LABELS),
        [IMAGES, LABELS, "extra"],
        {"image": IMAGES, "label": LABELS, "meta": [1, 2]},
        {"image": IMAGES, "label": [1, 0]},
    ],
)
def test_reader_finds_images_and_labels(batch: object) -> None:
    images, labels = BatchReader()(batch)
    assert images is IMAGES and labels is not None and labels.tolist() == [1, 0]


def test_reader_without_labels_and_with_own_keys(make_batch) -> None:
    assert BatchReader()(IMAGES)[1] is None
    assert BatchReader()((IMAGES,))[1] is None
    assert BatchReader()((IMAGES, torch.rand(2, 4)))[1] is None  # soft targets are no labels
    reader = BatchReader(image_key="x", label_key="y")
    assert reader({"x": IMAGES, "y": LABELS})[1].tolist() == [1, 0]
    assert BatchReader()(make_batch(IMAGES, LABELS))[1].tolist() == [1, 0]


def test_reader_errors_name_the_fix() -> None:
    with pytest.raises(ConfigurationError) as error:
        BatchReader()({"img": IMAGES, "target": LABELS})
    message = str(error.value)
    assert "`image_key`" in message and "img, target" in message and "\n" not in message
    with pytest.raises(ConfigurationError, match="batch_fn"):
        BatchReader()(("not", "images"))
    with pytest.raises(ConfigurationError, match="batch_fn"):
        BatchReader(batch_fn="no_such_module.split")


def test_reader_takes_a_function_by_import_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "user_batches.py").write_text(
        "def split(batch):\n    return batch['scan'] * 2, batch['diagnosis']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for path in ("user_batches.split", "user_batches:split"):
        images, labels = BatchReader(batch_fn=path)({"scan": IMAGES, "diagnosis": LABELS})
        assert torch.equal(images, IMAGES * 2) and labels.tolist() == [1, 0]


def test_display_pixels_stretch_each_input() -> None:
    gray = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    rgb = torch.stack([torch.full((4, 4), value) for value in (0.0, 0.5, 1.0)])[None]
    pixels = display_pixels(torch.cat([gray.expand(1, 3, 4, 4), rgb]))
    assert pixels[0].shape == (4, 4, 3) and pixels[0].dtype == np.uint8
    assert pixels[0].min() == 0 and pixels[0].max() == 255
    assert pixels[1][0, 0].tolist() == [0, 128, 255]
    assert display_pixels(gray)[0][..., 0].tolist() == display_pixels(gray)[0][..., 2].tolist()


def test_datasets_tell_paths_labels_and_classes() -> None:
    pictures = Pictures(4)
    assert dataset_paths(pictures) == [path for path, _ in pictures.samples]
    assert dataset_labels(pictures) == [0, 1, 2, 0]
    assert dataset_class_names(pictures) == ["cat", "dog", "bird"]
    subset = Subset(pictures, [3, 1])
    assert dataset_paths(subset) == [pictures.samples[3][0], pictures.samples[1][0]]
    assert dataset_labels(subset) == [0, 1]
    assert dataset_labels(TensorDataset(IMAGES, LABELS)) == [1, 0]
    assert dataset_paths(TensorDataset(IMAGES)) is None and dataset_labels(Stream(2)) is None


def test_item_names_from_paths_else_batch_positions() -> None:
    one = SimpleNamespace(global_rank=0, world_size=1)
    assert item_names(["a.png", "b.png", "c.png"], [2, 0], 2, 5, 0, one) == ["c.png", "a.png"]
    assert item_names(None, [], 2, 5, 0, one) == ["batch5_0", "batch5_1"]
    assert item_names(None, [], 1, 0, 1, one) == ["loader1_batch0_0"]
    two = SimpleNamespace(global_rank=1, world_size=2)
    assert item_names(None, [], 1, 3, 0, two) == ["rank1_batch3_0"]


def fake_trainer(datamodule: object = None, val: object = None) -> SimpleNamespace:
    return SimpleNamespace(
        datamodule=datamodule,
        val_dataloaders=val,
        predict_dataloaders=None,
        train_dataloader=None,
    )


def test_class_names_come_from_the_first_source_that_has_them() -> None:
    module = Plain(nn.Linear(2, 3))
    loader = DataLoader(Pictures(3))
    trainer = fake_trainer(SimpleNamespace(class_names=["d0", "d1", "d2"]), loader)
    assert resolve_class_names(["a", "b", "c"], trainer, module, 3) == ["a", "b", "c"]
    module.save_hyperparameters({"class_names": ["h0", "h1", "h2"]})
    assert resolve_class_names(None, trainer, module, 3) == ["d0", "d1", "d2"]
    module.class_names = ["m0", "m1", "m2"]
    assert resolve_class_names(None, trainer, module, 3) == ["m0", "m1", "m2"]
    del module.class_names
    assert resolve_class_names(None, fake_trainer(None, loader), module, 3) == ["h0", "h1", "h2"]
    assert resolve_class_names(None, fake_trainer(None, loader), Plain(nn.Linear(2, 3)), 3) == [
        "cat",
        "dog",
        "bird",
    ]
    assert resolve_class_names(None, fake_trainer(), Plain(nn.Linear(2, 2)), 2) == [
        "class_0",
        "class_1",
    ]
    with pytest.raises(ConfigurationError, match="`class_names`"):
        resolve_class_names(["a", "b"], trainer, module, 3)


def test_the_explained_module_and_its_logits() -> None:
    module = Plain(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)))
    assert explained_module(module, None) is module
    assert explained_module(module, "net.0") is module.net[0]
    classifier = ThermalClassifier()
    assert explained_module(classifier, None) is classifier.encoder
    with pytest.raises(ConfigurationError, match="`model_attr`") as error:
        explained_module(module, "body")
    assert "net" in str(error.value) and "\n" not in str(error.value)
    assert count_classes(module, IMAGES, "Plain") == 2
    with pytest.raises(ConfigurationError, match="model_attr") as error:
        count_classes(explained_module(module, "net.0"), IMAGES, "Plain.net.0")
    assert "(1, 4, 6, 6)" in str(error.value)
