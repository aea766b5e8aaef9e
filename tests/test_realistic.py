"""The realistic synthetic set: subjects with several images, the three rendering steps."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from thermal_explain.cli.synth import main as synth_main
from thermal_explain.data.files import find_images
from thermal_explain.data.images import read_image
from thermal_explain.data.realistic import (
    DEFAULT_LESION_STRENGTH,
    GROUP_PATTERN,
    draw_subject,
    make_realistic_dataset,
    render_gray,
    sensor_measurement,
    subject_temperature,
)
from thermal_explain.data.synthetic import make_synthetic_dataset
from thermal_explain.errors import ConfigurationError


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_generators_are_reproducible_from_their_seed(tmp_path: Path) -> None:
    for make in (make_synthetic_dataset, make_realistic_dataset):
        make(tmp_path / "a", n=4, size=32, seed=0)
        make(tmp_path / "b", n=4, size=32, seed=0)
        make(tmp_path / "c", n=4, size=32, seed=1)
        assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
        for folder in "abc":
            shutil.rmtree(tmp_path / folder)


def test_layout_names_carry_the_subject(tmp_path: Path) -> None:
    data = make_realistic_dataset(tmp_path / "r", n=10, size=32, seed=1, images_per_subject=4)
    assert data.subjects == ["s000"] * 4 + ["s001"] * 4 + ["s002"] * 2
    assert len(data.paths) == 10 and sum(data.counts.values()) == 10
    assert sorted(find_images(data.image_dir, "*/*.png")) == sorted(data.paths)
    for path, label, mask, subject in zip(
        data.paths, data.labels, data.mask_paths, data.subjects, strict=True
    ):
        assert re.search(GROUP_PATTERN, path.name).group(1) == subject
        assert path.parent.name == data.class_names[label]
        assert (mask is not None) == (label == 0)
        assert read_image(path).shape == (32, 32, 3)
    labels_of: dict[str, set[int]] = {}
    for subject, label in zip(data.subjects, data.labels, strict=True):
        labels_of.setdefault(subject, set()).add(label)
    assert all(len(labels) == 1 for labels in labels_of.values())  # one class per subject


def test_same_arguments_same_bytes_and_stale_files_go(tmp_path: Path) -> None:
    make_realistic_dataset(tmp_path / "a", n=6, size=32, seed=2)
    make_realistic_dataset(tmp_path / "b", n=6, size=32, seed=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    make_realistic_dataset(tmp_path / "a", n=3, size=32, seed=2)
    assert len(list((tmp_path / "a" / "images").rglob("*.png"))) == 3


def test_images_of_one_subject_differ_but_resemble_each_other() -> None:
    def image(subject: int, shot: int) -> np.ndarray:
        person = draw_subject(np.random.default_rng([7, subject]), icas=False)
        rng = np.random.default_rng([7, subject, shot])
        temperature, _, head = subject_temperature(person, rng, 64, DEFAULT_LESION_STRENGTH)
        return render_gray(sensor_measurement(temperature, rng), head, rng).astype(np.float32)

    within, across = [], []
    for subject in range(6):
        first, second = image(subject, 1), image(subject, 2)
        assert not np.array_equal(first, second)  # pose, framing and sensor vary per image
        within.append(np.abs(first - second).mean())
        across.append(np.abs(first - image(subject + 10, 1)).mean())
    assert np.mean(within) < 0.7 * np.mean(across)  # a person is recognizable


def test_lesion_strength_changes_the_temperature_only_at_the_lesion() -> None:
    subject = draw_subject(np.random.default_rng([3, 0]), icas=True)
    plain, _, _ = subject_temperature(subject, np.random.default_rng(5), 64, 0.0)
    marked, mask, head = subject_temperature(subject, np.random.default_rng(5), 64, 1.0)
    difference = plain - marked  # cooling, degrees C
    assert mask.any() and head[mask].all()
    assert 0.85 * 0.99 <= difference.max() <= 1.15 * 1.01
    assert difference[mask].mean() > 0.5
    ys, xs = np.nonzero(mask)
    far = np.ones_like(mask)
    far[max(ys.min() - 6, 0) : ys.max() + 7, max(xs.min() - 6, 0) : xs.max() + 7] = False
    assert np.abs(difference[far]).max() < 0.05
    normal = draw_subject(np.random.default_rng([3, 1]), icas=False)
    _, empty, _ = subject_temperature(normal, np.random.default_rng(5), 64, 1.0)
    assert not empty.any()


def test_rendering_removes_the_background_and_uses_the_range() -> None:
    subject = draw_subject(np.random.default_rng([4, 0]), icas=False)
    rng = np.random.default_rng(9)
    temperature, _, head = subject_temperature(subject, rng, 64, 1.0)
    gray = render_gray(sensor_measurement(temperature, rng), head, rng)
    assert gray.dtype == np.uint8 and (gray[~head] == 0).all()
    assert gray[head].min() >= 1 and gray[head].max() >= 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images_per_subject": 0}, "images_per_subject"),
        ({"lesion_strength": -1.0}, "lesion_strength"),
        ({"n": 0}, "Expected argument `n` to be an integer >= 1"),
    ],
)
def test_argument_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_realistic_dataset(tmp_path, **kwargs)


def test_synth_realistic_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "faces"
    args = ["--out", str(out), "--n", "6", "--size", "32", "--realistic"]
    assert synth_main([*args, "--images_per_subject", "3", "--lesion_strength", "0.8"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 images" in printed and "2 subjects" in printed and GROUP_PATTERN in printed
    assert synth_main(["--out", str(out), "--lesion_strength", "0.8"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--lesion_strength needs --realistic" in error
    assert synth_main([*args, "--lesion_strength", "-2"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Expected argument `lesion_strength` to be a number >= 0")
