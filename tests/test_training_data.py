"""The training side of ThermalDataModule: two augmented views, never-augmented validation,
subject-disjoint splits and the checks made before training starts."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thermal_explain.data.augmentation import AugmentationPolicy
from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.data.groups import group_ids, grouped_split
from thermal_explain.data.images import read_image
from thermal_explain.data.preprocessing import to_model_input
from thermal_explain.data.realistic import GROUP_PATTERN, make_realistic_dataset
from thermal_explain.errors import ConfigurationError

STRONG = AugmentationPolicy(
    flip_probability=1.0,
    rotation=30.0,
    translate_x=0.2,
    translate_y=0.2,
    intensity=0.3,
    contrast=0.5,
    noise=0.2,
)


def _write(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((24, 24), value, np.uint8)
    image[:, :6] = 255  # left-right asymmetric, so a flip shows
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(buffer.tobytes())


def _subjects(root: Path, per_class: dict[str, list[str]], shots: int = 3) -> Path:
    """``root/<class>/<subject>_<k>.png`` for every subject of each class."""
    for name, subjects in per_class.items():
        for number, subject in enumerate(subjects):
            for shot in range(shots):
                _write(root / name / f"{subject}_{shot}.png", 40 + 10 * number + shot)
    return root


def test_training_batches_carry_two_views_and_validation_is_never_augmented(
    tmp_path: Path,
) -> None:
    root = _subjects(tmp_path, {"icas": ["a", "b"], "normal": ["c", "d"]})
    module = ThermalDataModule(
        image_dir=str(root), pattern="*.png", image_size=24, batch_size=4, augmentation=STRONG
    )
    module.setup("fit")
    train = next(iter(module.train_dataloader()))
    assert train.views is not None and train.views.shape == (2, 4, 3, 24, 24)
    assert not torch.equal(train.views[0], train.views[1])
    plain = torch.stack([to_model_input(read_image(path), 24) for path in train.paths])
    assert not torch.allclose(train.images, plain)
    # Validation (and predict) see each file exactly as preprocessing makes it.
    for batch in module.val_dataloader():
        assert batch.views is None
        expected = torch.stack([to_model_input(read_image(path), 24) for path in batch.paths])
        assert torch.equal(batch.images, expected)
    module.pattern = "*/*.png"
    module.setup("predict")
    for batch in module.predict_dataloader():
        expected = torch.stack([to_model_input(read_image(path), 24) for path in batch.paths])
        assert batch.views is None and torch.equal(batch.images, expected)


def test_one_view_and_augmentation_off_give_the_plain_images(tmp_path: Path) -> None:
    root = _subjects(tmp_path, {"icas": ["a", "b"], "normal": ["c", "d"]})
    module = ThermalDataModule(
        image_dir=str(root),
        pattern="*.png",
        image_size=24,
        batch_size=4,
        views=1,
        augmentation={"enabled": False},
    )
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    expected = torch.stack([to_model_input(read_image(path), 24) for path in batch.paths])
    assert batch.views is None and torch.equal(batch.images, expected)


def test_grouped_split_keeps_each_group_on_one_side() -> None:
    groups = [f"s{index // 4}" for index in range(40)]  # 10 subjects x 4 images
    labels = [0 if index < 20 else 1 for index in range(40)]
    train, val = grouped_split(labels, groups, 0.2, seed=3)
    assert sorted(train + val) == list(range(40))
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert {labels[i] for i in val} == {0, 1} and len(val) == 8
    assert grouped_split(labels, groups, 0.2, seed=3) == (train, val)
    assert grouped_split(labels, groups, 0.2, seed=4) != (train, val)
    # A class of one subject stays in training; a zero fraction validates nothing.
    assert grouped_split([0, 0, 1, 1], ["a", "a", "b", "c"], 0.5, 0)[1] in ([2], [3])
    assert grouped_split(labels, groups, 0.0, 0)[1] == []


def test_group_pattern_splits_by_subject(tmp_path: Path) -> None:
    root = _subjects(tmp_path, {"icas": ["p01", "p02", "p03"], "normal": ["p04", "p05", "p06"]})
    module = ThermalDataModule(
        image_dir=str(root), pattern="*.png", image_size=24, group_pattern=r"(p\d+)_"
    )
    module.setup("fit")
    assert module.train_dataset is not None and module.val_dataset is not None
    train = set(group_ids(module.train_dataset.paths, r"(p\d+)_"))
    val = set(group_ids(module.val_dataset.paths, r"(p\d+)_"))
    assert val and not train & val
    assert len(module.val_dataset) == 6  # one subject (3 images) of each class


def test_realistic_set_splits_by_its_subjects(tmp_path: Path) -> None:
    data = make_realistic_dataset(tmp_path / "r", n=24, size=32, images_per_subject=3)
    module = ThermalDataModule(
        image_dir=str(data.image_dir), pattern="*.png", image_size=32, group_pattern=GROUP_PATTERN
    )
    module.setup("fit")
    assert module.train_dataset is not None and module.val_dataset is not None
    train = set(group_ids(module.train_dataset.paths, GROUP_PATTERN))
    val = set(group_ids(module.val_dataset.paths, GROUP_PATTERN))
    assert val and not train & val and len(train | val) == 8


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"patient(\d+)", "matches none of the file names"),
        (r"(p0[12])_", "matches 12 of 18 of the file names"),
    ],
)
def test_group_pattern_that_misses_names_fails_before_training(
    tmp_path: Path, pattern: str, message: str
) -> None:
    root = _subjects(tmp_path, {"icas": ["p01", "p02", "p03"], "normal": ["p04", "p05", "p06"]})
    module = ThermalDataModule(image_dir=str(root), pattern="*.png", group_pattern=pattern)
    with pytest.raises(ConfigurationError, match=message) as info:
        module.setup("fit")
    assert "\n" not in str(info.value) and "--data.group_pattern" in str(info.value)


def test_invalid_group_pattern_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="not a valid regular expression"):
        ThermalDataModule(group_pattern="(unclosed")


def test_subject_in_train_and_val_dirs_is_reported(tmp_path: Path, caplog) -> None:
    train = _subjects(tmp_path / "train", {"icas": ["p01", "p02"], "normal": ["p03", "p04"]})
    val = _subjects(tmp_path / "val", {"icas": ["p02"], "normal": ["p05"]})
    module = ThermalDataModule(
        train_dir=str(train), val_dir=str(val), pattern="*.png", group_pattern=r"(p\d+)_"
    )
    with caplog.at_level(logging.WARNING):
        module.setup("fit")
    assert "1 subject(s) have images in both" in caplog.text and "p02" in caplog.text


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"icas": 1, "normal": 4}, "at least 2 images per class.*'icas' has 1"),
        ({"icas": 4}, "at least two classes"),
    ],
)
def test_too_few_images_or_classes_fail_before_training(
    tmp_path: Path, counts: dict[str, int], message: str
) -> None:
    for name, count in counts.items():
        for index in range(count):
            _write(tmp_path / name / f"{name}{index}.png", 90)
    module = ThermalDataModule(image_dir=str(tmp_path), pattern="*.png")
    with pytest.raises(ConfigurationError, match=message) as info:
        module.setup("fit")
    assert "\n" not in str(info.value)
