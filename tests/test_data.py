"""Tests for image discovery, labelling, batching and the data module."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.data.dataset import (
    Sample,
    ThermalImageDataset,
    class_balanced_indices,
    collate,
    stack_on_this_thread,
    stratified_split,
)
from thermal_explain.data.files import find_images, infer_class_names, label_index, mask_path_for
from thermal_explain.errors import ConfigurationError
from thermal_explain.types import Batch, FailedItem


def _image(path: Path, value: int = 100, size: tuple[int, int] = (24, 20)) -> Path:
    """Write a small grey image whose pixels all equal ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buffer = cv2.imencode(path.suffix, np.full((*size, 3), value, np.uint8))
    assert ok
    path.write_bytes(buffer.tobytes())
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    return path


def _class_tree(root: Path, counts: dict[str, int], suffix: str = ".png") -> list[Path]:
    paths = []
    for name, count in counts.items():
        for index in range(count):
            paths.append(_image(root / name / f"{name}_{index:02d}{suffix}", 10 + index))
    return paths


# find_images ------------------------------------------------------------------------------


def test_find_single_file(tmp_path: Path) -> None:
    path = _image(tmp_path / "one.jpg")
    assert find_images(image_path=str(path)) == [path]


def test_find_pattern_sorted_only_files(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.jpg", "c.png"):
        _image(tmp_path / name)
    (tmp_path / "folder.jpg").mkdir()
    assert [p.name for p in find_images(tmp_path, "*.jpg")] == ["a.jpg", "b.jpg"]


def test_find_class_folders_and_recursive(tmp_path: Path) -> None:
    _image(tmp_path / "top.png")
    _image(tmp_path / "icas" / "p1.png")
    _image(tmp_path / "normal" / "deep" / "p2.png")
    assert [p.name for p in find_images(str(tmp_path), "*/*.png")] == ["p1.png"]
    names = sorted(p.name for p in find_images(tmp_path, "**/*.png"))
    assert names == ["p1.png", "p2.png", "top.png"]


def test_find_ignores_case_and_hidden_files(tmp_path: Path) -> None:
    _image(tmp_path / "UPPER.JPG")
    _image(tmp_path / "lower.jpg")
    _image(tmp_path / "._lower.jpg")
    _image(tmp_path / ".cache" / "x.jpg")
    names = [p.name for p in find_images(tmp_path, "**/*.jpg")]
    assert names == ["UPPER.JPG", "lower.jpg"]


def test_find_pattern_with_brackets(tmp_path: Path) -> None:
    for name in ("p1.png", "p2.png", "p3.png"):
        _image(tmp_path / name)
    assert [p.name for p in find_images(tmp_path, "p[12].png")] == ["p1.png", "p2.png"]
    assert [p.name for p in find_images(tmp_path, "p[!12].png")] == ["p3.png"]


def test_find_non_ascii_names(tmp_path: Path) -> None:
    path = _image(tmp_path / "热像" / "患者.jpg")
    assert find_images(tmp_path, "*/*.jpg") == [path]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of --image_path .* neither"),
        ({"image_dir": ".", "image_path": "x.jpg"}, "both were given"),
        ({"image_path": "missing.jpg"}, "image_path 'missing.jpg' does not exist"),
        (
            {"image_dir": "nowhere"},
            "image_dir 'nowhere' does not exist; pass an existing folder with --image_dir",
        ),
    ],
)
def test_find_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        find_images(**kwargs)


def test_find_folder_file_mixups_and_no_match(tmp_path: Path) -> None:
    path = _image(tmp_path / "a.png")
    with pytest.raises(ConfigurationError, match="is a folder; pass it with --image_dir"):
        find_images(image_path=tmp_path)
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        find_images(image_dir=path)
    with pytest.raises(ConfigurationError, match="not a relative glob"):
        find_images(tmp_path, str(tmp_path / "*.png"))
    with pytest.raises(ConfigurationError) as info:
        find_images(tmp_path, "*.jpg")
    assert str(info.value) == (
        f"pattern '*.jpg' matched no files in '{tmp_path}'; check --pattern "
        "(e.g. '*/*.jpg' for class folders, '**/*.png' for any depth)"
    )


# labels and masks -------------------------------------------------------------------------


def test_infer_class_names(tmp_path: Path) -> None:
    paths = _class_tree(tmp_path, {"normal": 1, "icas": 2})
    assert infer_class_names(paths, tmp_path) == ["icas", "normal"]
    assert infer_class_names([*paths, tmp_path / "loose.png"], tmp_path) is None
    assert infer_class_names([Path("/elsewhere/a/b.png")], tmp_path) is None
    assert infer_class_names([], tmp_path) is None


def test_label_index_from_first_level_folder(tmp_path: Path) -> None:
    names = ["icas", "normal"]
    assert label_index(tmp_path / "normal" / "x.png", tmp_path, names) == 1
    assert label_index(tmp_path / "ICAS" / "sub" / "x.png", tmp_path, names) == 0
    assert label_index(tmp_path / "other" / "x.png", tmp_path, names) == -1
    assert label_index(tmp_path / "x.png", tmp_path, None) == -1


def test_label_index_when_root_is_one_class_folder(tmp_path: Path) -> None:
    root = tmp_path / "data" / "icas"
    assert label_index(root / "p1.jpg", root, ["ICAS", "Normal"]) == 0
    assert label_index(root / "left" / "p1.jpg", root, ["ICAS", "Normal"]) == 0


def test_label_index_prefers_exact_case(tmp_path: Path) -> None:
    assert label_index(tmp_path / "a" / "x.png", tmp_path, ["A", "a"]) == 1


def test_mask_path_mirrors_image_dir(tmp_path: Path) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    assert mask_path_for(images / "icas" / "p1.jpg", images, masks) == masks / "icas" / "p1.png"
    assert mask_path_for(tmp_path / "x" / "p2.bmp", images, masks) == masks / "p2.png"
    assert mask_path_for("p3.tif", None, masks) == masks / "p3.png"


# dataset and collate ----------------------------------------------------------------------


def test_dataset_sample_and_failed_item(tmp_path: Path) -> None:
    good = _image(tmp_path / "good.png", size=(30, 50))
    bad = _corrupt(tmp_path / "bad.jpg")
    dataset = ThermalImageDataset([good, bad], [1, 0], 32, class_names=["icas", "normal"])
    sample = dataset[0]
    assert isinstance(sample, Sample)
    assert sample.image.shape == (3, 32, 32) and sample.image.dtype == torch.float32
    assert (sample.label, sample.index, sample.original_size) == (1, 0, (30, 50))
    failed = dataset[1]
    assert isinstance(failed, FailedItem)
    assert failed.path == str(bad) and failed.true_label == "icas"
    assert "bad.jpg" in failed.error and "\n" not in failed.error


def test_dataset_asymmetry_shape_and_label_check(tmp_path: Path) -> None:
    path = _image(tmp_path / "a.png")
    dataset = ThermalImageDataset([path], None, 32, use_asymmetry=True)
    assert dataset.input_shape == (6, 32, 16)
    assert dataset[0].image.shape == (6, 32, 16) and dataset[0].label == -1
    with pytest.raises(ConfigurationError, match="labels has 2 entries for 1 paths"):
        ThermalImageDataset([path], [0, 1], 32)


def test_collate_sends_failures_aside(tmp_path: Path) -> None:
    paths = [_image(tmp_path / "a.png"), _corrupt(tmp_path / "b.jpg"), _image(tmp_path / "c.png")]
    dataset = ThermalImageDataset(paths, [0, 1, 1], 32)
    batch = collate([dataset[i] for i in range(3)])
    assert isinstance(batch, Batch) and len(batch) == 2
    assert batch.images.shape == (2, 3, 32, 32)
    assert batch.labels.tolist() == [0, 1] and batch.indices.tolist() == [0, 2]
    assert batch.paths == [str(paths[0]), str(paths[2])]
    assert batch.original_sizes == [(24, 20), (24, 20)]
    assert [item.path for item in batch.failed] == [str(paths[1])]


def test_collate_with_nothing_readable(tmp_path: Path) -> None:
    dataset = ThermalImageDataset([_corrupt(tmp_path / "x.jpg")], None, 32, use_asymmetry=True)
    batch = collate([dataset[0]], input_shape=dataset.input_shape)
    assert batch.images.shape == (0, 6, 32, 16)
    assert batch.labels.shape == (0,) and batch.labels.dtype == torch.long
    assert len(batch.failed) == 1 and len(batch) == 0


def test_batches_are_stacked_as_torch_stacks_them() -> None:
    rng = torch.Generator().manual_seed(0)
    images = [torch.randn(3, 8, 6, generator=rng) for _ in range(4)]
    images[1] = images[1].transpose(1, 2).contiguous().transpose(1, 2)  # strided in memory
    stacked = stack_on_this_thread(images)
    assert stacked.dtype == torch.float32 and stacked.is_contiguous()
    assert torch.equal(stacked, torch.stack(images))
    stacked[0, 0, 0, 0] = 99.0  # a copy: the samples are untouched
    assert images[0][0, 0, 0] != 99.0
    brain = [image.bfloat16() for image in images]  # numpy has no bfloat16: torch stacks
    assert torch.equal(stack_on_this_thread(brain), torch.stack(brain))


# index selection --------------------------------------------------------------------------


def test_class_balanced_indices() -> None:
    labels = [0] * 10 + [1] * 3 + [2] * 5
    picked = class_balanced_indices(labels, 7, seed=1)
    assert len(picked) == len(set(picked)) == 7
    counts = Counter(labels[i] for i in picked)
    assert counts == {0: 2, 1: 3, 2: 2} or counts == {0: 3, 1: 2, 2: 2}
    assert Counter(labels[i] for i in picked[:6]) == {0: 2, 1: 2, 2: 2}
    assert picked == class_balanced_indices(labels, 7, seed=1)
    assert picked != class_balanced_indices(labels, 7, seed=2)
    assert sorted(class_balanced_indices(labels, 100, seed=0)) == list(range(18))
    assert class_balanced_indices(labels, 0, seed=0) == []
    with pytest.raises(ConfigurationError, match="Expected argument `n` to be an integer >= 0"):
        class_balanced_indices(labels, -1, seed=0)


def test_stratified_split() -> None:
    labels = [0] * 10 + [1] * 5 + [2]
    train, val = stratified_split(labels, 0.2, seed=3)
    assert sorted(train + val) == list(range(16)) and not set(train) & set(val)
    assert Counter(labels[i] for i in val) == {0: 2, 1: 1}
    assert (train, val) == stratified_split(labels, 0.2, seed=3)
    assert stratified_split(labels, 0.0, seed=3) == (list(range(16)), [])


# data module ------------------------------------------------------------------------------


def test_module_fit_with_class_folders(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"normal": 5, "icas": 5})
    module = ThermalDataModule(image_dir=str(tmp_path), pattern="*.png", image_size=32)
    assert module.class_names == ["icas", "normal"] and module.num_classes == 2
    module.setup("fit")
    assert module.train_dataset is not None and module.val_dataset is not None
    assert len(module.train_dataset) == 8 and len(module.val_dataset) == 2
    assert sorted(module.val_dataset.labels) == [0, 1]
    assert not set(module.train_dataset.paths) & set(module.val_dataset.paths)
    batch = next(iter(module.train_dataloader()))
    assert isinstance(batch, Batch) and batch.images.shape[1:] == (3, 32, 32)
    for path, label in zip(batch.paths, batch.labels.tolist(), strict=True):
        assert Path(path).parent.name == ["icas", "normal"][label]
    again = ThermalDataModule(image_dir=str(tmp_path), pattern="*.png", image_size=32)
    again.setup("validate")
    assert again.val_dataset is not None
    assert again.val_dataset.paths == module.val_dataset.paths


def test_module_train_and_val_dirs(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"icas": 3, "normal": 3})
    _class_tree(tmp_path / "val", {"icas": 1, "normal": 2})
    module = ThermalDataModule(
        train_dir=str(tmp_path / "train"),
        val_dir=str(tmp_path / "val"),
        pattern="*/*.png",
        image_size=32,
        batch_size=4,
    )
    module.setup("fit")
    assert len(module.train_dataset or []) == 6
    assert module.val_dataset is not None and module.val_dataset.labels == [0, 1, 1]
    assert sum(len(batch) for batch in module.val_dataloader()) == 3


def test_module_fit_errors(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    _image(flat / "a.png")
    with pytest.raises(ConfigurationError, match=r"no files match pattern '\*\.png' inside"):
        ThermalDataModule(image_dir=str(flat), pattern="*.png").setup("fit")
    with pytest.raises(ConfigurationError, match="outside class folders"):
        ThermalDataModule(image_dir=str(flat), pattern="**/*.png").setup("fit")
    with pytest.raises(ConfigurationError, match=r"train_dir '.*' is not an existing folder"):
        ThermalDataModule(train_dir=str(tmp_path / "no"), pattern="*.png").setup("fit")
    single = tmp_path / "single"
    _class_tree(single, {"icas": 2})
    with pytest.raises(ConfigurationError, match="found only 'icas'"):
        ThermalDataModule(image_dir=str(single), pattern="*.png").setup("fit")
    with pytest.raises(ConfigurationError, match="fit needs labelled images"):
        ThermalDataModule(image_path=str(flat / "a.png")).setup("fit")
    tree = tmp_path / "tree"
    _class_tree(tree, {"icas": 2, "normal": 2, "other": 1})
    module = ThermalDataModule(image_dir=str(tree), pattern="*.png", class_names=["icas", "normal"])
    with pytest.raises(ConfigurationError, match=r"1 image.* not in a class folder"):
        module.setup("fit")


def test_module_corrupt_file_goes_to_failed_and_batch_goes_on(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"icas": 2, "normal": 2}, suffix=".jpg")
    _corrupt(tmp_path / "icas" / "icas_01b.jpg")
    module = ThermalDataModule(image_dir=str(tmp_path), pattern="*/*.jpg", image_size=32)
    module.class_names = ["icas", "normal"]
    module.setup("predict")
    batches = list(module.predict_dataloader())
    assert len(batches) == 1
    batch = batches[0]
    assert batch.images.shape == (4, 3, 32, 32) and batch.labels.tolist() == [0, 0, 1, 1]
    assert [Path(item.path).name for item in batch.failed] == ["icas_01b.jpg"]
    assert batch.failed[0].true_label == "icas"


def test_module_predict_labels_follow_class_names(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "icas"
    _image(folder / "p1.jpg")
    _image(folder / "p2.jpg")
    module = ThermalDataModule(image_dir=str(folder), image_size=32)
    assert module.class_names is None and module.num_classes is None
    module.setup("predict")
    assert module.predict_dataset is not None and module.predict_dataset.labels == [-1, -1]
    module.set_class_names(["Normal", "ICAS"])
    assert module.predict_dataset.labels == [1, 1]
    single = ThermalDataModule(image_path=str(folder / "p2.jpg"), image_size=32)
    single.class_names = ["ICAS", "Normal"]
    single.setup("predict")
    assert single.predict_dataset is not None and single.predict_dataset.labels == [0]
    with pytest.raises(ConfigurationError, match="predict needs images"):
        ThermalDataModule(train_dir=str(folder)).setup("predict")


def test_module_loader_settings_and_mask_path(tmp_path: Path) -> None:
    _class_tree(tmp_path / "images", {"icas": 3, "normal": 3})
    module = ThermalDataModule(
        image_dir=str(tmp_path / "images"),
        pattern="*/*.png",
        mask_dir=str(tmp_path / "masks"),
        image_size=32,
        batch_size=2,
        num_workers=2,
        val_fraction=0.34,
    )
    module.setup("fit")
    loader = module.train_dataloader()
    assert loader.persistent_workers and loader.num_workers == 2 and loader.drop_last
    image = tmp_path / "images" / "icas" / "icas_00.png"
    assert module.mask_path(image) == tmp_path / "masks" / "icas" / "icas_00.png"
    assert ThermalDataModule(image_dir=str(tmp_path)).mask_path(image) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 0}, "`image_size` to be an integer >= 1"),
        ({"image_size": 33, "use_asymmetry": True}, "`image_size` to be even"),
        ({"batch_size": 0}, "`batch_size` to be an integer >= 1"),
        ({"num_workers": -1}, "`num_workers` to be an integer >= 0"),
        ({"val_fraction": 1.0}, r"`val_fraction` to be a number in \[0, 1\)"),
        ({"mean": [0.5]}, "`mean` to be three numbers"),
        ({"pattern": ""}, "`pattern` to be a non-empty glob"),
        ({"class_names": ["a", "a"]}, "`class_names` to be a list of unique names"),
        ({"image_path": "a.jpg", "image_dir": "d"}, "either image_path .* not both"),
    ],
)
def test_module_validates_arguments_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ThermalDataModule(**kwargs)


def test_module_unsupported_stage() -> None:
    with pytest.raises(ConfigurationError, match="stage 'test' is not supported"):
        ThermalDataModule().setup("test")


def test_module_arguments_read_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "data.yaml"
    text = {"data": {"image_dir": "d", "mean": [0.5, 0.5, 0.5], "class_names": ["icas", "n"]}}
    config.write_text(yaml.safe_dump(text), encoding="utf-8")
    parser = ArgumentParser()
    parser.add_class_arguments(ThermalDataModule, "data")
    parser.add_argument("--config", action="config")
    parsed = parser.parse_args(["--config", str(config), "--data.image_size", "64"])
    module = ThermalDataModule(**vars(parsed.data))
    assert module.mean == [0.5, 0.5, 0.5] and module.image_size == 64
    assert module.class_names == ["icas", "n"]


def test_dataset_flip_mirrors_image(tmp_path: Path) -> None:
    path = tmp_path / "half.png"
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :8] = 200
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(buffer.tobytes())
    plain = ThermalImageDataset([path], None, 16)[0]
    flipped = ThermalImageDataset([path], None, 16, flip_probability=1.0)[0]
    assert torch.equal(flipped.image, plain.image.flip(-1))
    with pytest.raises(ConfigurationError, match="flip_probability"):
        ThermalImageDataset([path], None, 16, flip_probability=2.0)


def test_module_random_flip_only_for_training(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"icas": 3, "normal": 3})
    module = ThermalDataModule(image_dir=str(tmp_path), pattern="*.png", random_flip=True)
    module.setup("fit")
    assert module.train_dataset is not None and module.val_dataset is not None
    assert module.train_dataset.flip_probability == 0.5
    assert module.val_dataset.flip_probability == 0.0


def test_predict_samples_carry_their_desaturated_original(tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    from thermal_explain.data import dataset as dataset_module
    from thermal_explain.data.dataset import ThermalImageDataset, collate

    small, large = tmp_path / "small.png", tmp_path / "large.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(small), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    cv2.imwrite(str(large), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    monkeypatch.setattr(dataset_module, "BACKGROUND_MAX_PIXELS", 20 * 30)
    kept = ThermalImageDataset([small, large], image_size=16, keep_backgrounds=True)
    batch = collate([kept[0], kept[1]])
    expected = cv2.cvtColor(cv2.imread(str(small)), cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(batch.backgrounds[0], expected)
    assert batch.backgrounds[1] is None  # too large to hold: the writer reads it again
    assert collate([ThermalImageDataset([small], image_size=16)[0]]).backgrounds is None
    assert batch.to("cpu").backgrounds is batch.backgrounds
    assert batch.select([1]).backgrounds == [None]  # a part of a batch keeps its originals
    np.testing.assert_array_equal(batch.select([0, 1]).backgrounds[0], expected)
