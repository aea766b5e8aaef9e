"""Tests for the synthetic thermal-face generator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from thermal_explain.cli.synth import main as synth_main
from thermal_explain.data.files import find_images, infer_class_names, mask_path_for
from thermal_explain.data.images import read_image, read_mask
from thermal_explain.data.synthetic import (
    LESION_AREA_RANGE,
    make_synthetic_dataset,
    render_face,
)
from thermal_explain.errors import ConfigurationError


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_render_face_shapes_and_normal_has_empty_mask() -> None:
    image, mask = render_face(np.random.default_rng(1), 48, lesion=False)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.dtype == np.uint8
    assert not mask.any()


def test_render_face_is_a_warm_face_on_a_cool_background() -> None:
    image, _ = render_face(np.random.default_rng(2), 64, lesion=False)
    brightness = image.astype(np.float32).sum(axis=2)
    centre = brightness[24:40, 24:40].mean()
    corners = np.mean([brightness[:6, :6].mean(), brightness[:6, -6:].mean()])
    assert centre > corners + 150


def test_lesion_changes_only_its_region_of_the_same_subject() -> None:
    for seed in range(5):
        plain, empty = render_face(np.random.default_rng(seed), 64, lesion=False)
        marked, mask = render_face(np.random.default_rng(seed), 64, lesion=True)
        assert not empty.any() and set(np.unique(mask).tolist()) == {0, 255}
        region = mask > 0
        difference = np.abs(marked.astype(np.int16) - plain.astype(np.int16)).sum(axis=2)
        assert difference[region].mean() > 25
        far = np.ones_like(region)
        ys, xs = np.nonzero(region)
        far[max(ys.min() - 8, 0) : ys.max() + 9, max(xs.min() - 8, 0) : xs.max() + 9] = False
        assert difference[far].max() == 0


def test_lesion_area_is_a_few_percent_of_the_head_and_one_sided() -> None:
    size = 128
    # Head oval area bounds from the pose ranges: pi * a * b with a in 0.29..0.33 (of the
    # side) and b = a * 1.24..1.34; the lesion is 2-5 % of it.
    low = LESION_AREA_RANGE[0] * np.pi * 0.29 * 0.29 * 1.24 * size * size
    high = LESION_AREA_RANGE[1] * np.pi * 0.33 * 0.33 * 1.34 * size * size
    for seed in range(20):
        _, mask = render_face(np.random.default_rng(100 + seed), size, lesion=True)
        area = int((mask > 0).sum())
        assert 0.9 * low <= area <= 1.1 * high
        left = int((mask[:, : size // 2] > 0).sum())
        assert min(left, area - left) <= 0.05 * area


def test_render_face_rejects_tiny_size() -> None:
    with pytest.raises(ConfigurationError, match="size"):
        render_face(np.random.default_rng(0), 8, lesion=False)


def test_dataset_layout_counts_and_masks(tmp_path: Path) -> None:
    data = make_synthetic_dataset(tmp_path / "syn", n=10, size=32, seed=3, icas_fraction=0.3)
    assert data.counts == {"icas": 3, "normal": 7}
    assert data.class_names == ["icas", "normal"]
    assert len(data.paths) == 10 and len({path.stem for path in data.paths}) == 10
    found = find_images(data.image_dir, "*/*.png")
    assert sorted(found) == sorted(data.paths)
    assert infer_class_names(found, data.image_dir) == ["icas", "normal"]
    for path, label, mask_path in zip(data.paths, data.labels, data.mask_paths, strict=True):
        assert path.parent.name == data.class_names[label]
        assert read_image(path).shape == (32, 32, 3)
        expected_mask = mask_path_for(path, data.image_dir, data.mask_dir)
        if label == 0:
            assert mask_path == expected_mask and expected_mask.is_file()
            assert read_mask(expected_mask, (32, 32)).any()
        else:
            assert mask_path is None and not expected_mask.exists()


def test_dataset_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = make_synthetic_dataset(tmp_path / "a", n=6, size=32, seed=7)
    second = make_synthetic_dataset(tmp_path / "b", n=6, size=32, seed=7)
    make_synthetic_dataset(tmp_path / "c", n=6, size=32, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert first.labels == second.labels


def test_rerun_removes_stale_faces_but_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    make_synthetic_dataset(out, n=8, size=32, seed=0)
    keep = out / "images" / "icas" / "notes.txt"
    keep.write_text("mine", encoding="utf-8")
    data = make_synthetic_dataset(out, n=3, size=32, seed=1, ext="jpg")
    images = sorted(path for path in (out / "images").rglob("face_*"))
    assert images == sorted(data.paths)
    masks = sorted((out / "masks").rglob("*.png"))
    assert masks == sorted(path for path in data.mask_paths if path is not None)
    assert keep.read_text(encoding="utf-8") == "mine"


def test_all_one_class(tmp_path: Path) -> None:
    data = make_synthetic_dataset(tmp_path / "n", n=3, size=32, icas_fraction=0.0)
    assert data.counts == {"icas": 0, "normal": 3} and data.labels == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "Expected argument `n`"),
        ({"size": 8}, "Expected argument `size` to be an integer >= "),
        ({"icas_fraction": 1.5}, "icas_fraction"),
        ({"ext": "gif"}, "Expected argument `ext` to be one of"),
    ],
)
def test_dataset_argument_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_synthetic_dataset(tmp_path, **kwargs)


def test_synth_main_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    status = synth_main(["--out", str(out), "--n", "4", "--size", "32", "--seed", "5"])
    assert status == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert len(find_images(out / "images", "*/*.png")) == 4


def test_synth_main_bad_value_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert synth_main(["--out", str(tmp_path), "--n", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Expected argument `n`") and error.count("\n") == 1


def test_subjects_vary_and_classes_share_global_statistics() -> None:
    normal = [render_face(np.random.default_rng(seed), 48, lesion=False)[0] for seed in range(30)]
    icas = [render_face(np.random.default_rng(500 + s), 48, lesion=True)[0] for s in range(30)]
    assert not np.array_equal(normal[0], normal[1])
    normal_means = np.array([image.mean() for image in normal])
    icas_means = np.array([image.mean() for image in icas])
    spread = np.sqrt((normal_means.var() + icas_means.var()) / 2)
    assert spread > 1.0
    assert abs(normal_means.mean() - icas_means.mean()) < 0.75 * spread
