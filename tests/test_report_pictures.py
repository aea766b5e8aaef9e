"""The report's pictures drawn by the writer while a run goes, and the end-of-run pass."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from thermal_explain import ThermalInterpretabilityAnalyzer
from thermal_explain.data.dataset import ThermalImageDataset, collate
from thermal_explain.data.thermal import read_display
from thermal_explain.output.html import pictures
from thermal_explain.output.html.analysis_report import write_analysis_report
from thermal_explain.output.html.pictures import ORIGINAL_SIDE, THUMB_HEIGHT, picture_paths

PICTURE_DIRS = ("thumbs", "originals")


def _analyze(checkpoint: Path, out: Path, images: Path, pattern: str = "*/*.png", **options):
    analyzer = ThermalInterpretabilityAnalyzer(
        checkpoint,
        output_dir=out,
        image_size=32,
        quiet=True,
        log_to_tensorboard=False,
        save_figures=False,
        **options,
    )
    return analyzer.batch_analyze(images, pattern)


def _decoded(folder: Path) -> dict[str, np.ndarray]:
    found = {}
    for kind in PICTURE_DIRS:
        for path in sorted((folder / kind).glob("*.jpg")):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            assert image is not None, f"{path} is not a readable JPEG"
            found[f"{kind}/{path.name}"] = image
    return found


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the end-of-run pass decodes or reads as an original, by name."""
    seen: list[str] = []
    decode, display = pictures._decode, pictures.read_display

    def counted_decode(path: Path) -> np.ndarray | None:
        seen.append(Path(path).name)
        return decode(path)

    def counted_display(path: str, *args: object) -> np.ndarray:
        seen.append(f"original:{Path(path).name}")
        return display(path, *args)

    monkeypatch.setattr(pictures, "_decode", counted_decode)
    monkeypatch.setattr(pictures, "read_display", counted_display)
    return seen


def test_the_run_draws_what_the_end_of_run_pass_would(
    thermal_folder: Callable[..., Path],
    tiny_checkpoint: Callable[..., Path],
    tmp_path: Path,
    decodes: list[str],
) -> None:
    data, checkpoint = thermal_folder(n=4, size=48), tiny_checkpoint()
    out = tmp_path / "out"
    records = _analyze(checkpoint, out, data / "images")
    assert [record["status"] for record in records] == ["ok"] * 4
    assert decodes == []  # every picture was current: nothing decoded at the end
    during_run = _decoded(out / "report_files")
    assert len(during_run) == 2 * len(records)
    for record in records:
        strip, copy = picture_paths(record["image_path"])
        assert (out / strip).is_file() and (out / copy).is_file()

    # The end-of-run pass, from the files, draws the same pictures.
    for kind in PICTURE_DIRS:
        shutil.rmtree(out / "report_files" / kind)
    results = json.loads((out / "analysis_results.json").read_text())
    layers = list(records[0]["gradcam_results"])
    write_analysis_report(out, results, class_names=["icas", "normal"], layers=layers)
    assert any(name.endswith("_overlay.png") for name in decodes)  # it had to decode them
    at_end = _decoded(out / "report_files")
    assert at_end.keys() == during_run.keys()
    for name, image in during_run.items():
        assert image.shape == at_end[name].shape, name
        assert np.abs(image.astype(int) - at_end[name]).mean() < 2.0, name
    strip = next(image for name, image in during_run.items() if name.startswith("thumbs/"))
    assert strip.shape[0] == 48 and strip.shape[1] >= (1 + len(layers)) * 48  # original + maps


def test_a_resumed_run_gets_pictures_for_every_image(
    thermal_folder: Callable[..., Path],
    tiny_checkpoint: Callable[..., Path],
    tmp_path: Path,
    decodes: list[str],
) -> None:
    data, checkpoint = thermal_folder(n=4, size=40), tiny_checkpoint()
    out = tmp_path / "out"
    first = _analyze(checkpoint, out, data / "images", "icas/*.png", html_report=False)
    assert not (out / "report_files").exists()  # no report, no pictures
    records = _analyze(checkpoint, out, data / "images")
    assert len(records) == 4 and all(record["status"] == "ok" for record in records)
    for record in records:
        for relative in picture_paths(record["image_path"]):
            assert cv2.imread(str(out / relative)) is not None, relative
    # Only the images of the first run were drawn at the end, from their files.
    originals = {name for name in decodes if name.startswith("original:")}
    assert originals == {f"original:{Path(record['image_path']).name}" for record in first}


def test_temperature_inputs_show_their_display_in_the_report(
    tiny_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rows, cols = np.mgrid[0:40, 0:56]
    for index in range(2):  # smooth, so the JPEG copy stays close to the display
        face = 30.0 + 6.0 * np.exp(-((rows - 20) ** 2 + (cols - 20 - 10 * index) ** 2) / 150.0)
        np.save(images / f"t{index}.npy", (face + 0.02 * cols).astype(np.float32))
    out = tmp_path / "out"
    records = _analyze(tiny_checkpoint(), out, images, "*.npy")
    assert {record["input_kind"] for record in records} == {"temperature_array"}
    for record in records:
        strip, copy = (
            cv2.imread(str(out / relative)) for relative in picture_paths(record["image_path"])
        )
        expected = read_display(record["image_path"])[..., ::-1]  # what the end would draw
        assert copy.shape == expected.shape
        assert np.abs(copy.astype(int) - expected).mean() < 2.0
        assert strip.shape[0] == 40


def test_the_dataset_carries_a_report_sized_colour_copy(tmp_path: Path) -> None:
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(small), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(large), rng.integers(0, 256, (600, 1000, 3), dtype=np.uint8))
    dataset = ThermalImageDataset([small, large], image_size=16, original_side=ORIGINAL_SIDE)
    batch = collate([dataset[0], dataset[1]])
    np.testing.assert_array_equal(batch.originals[0], read_display(small))
    assert batch.originals[1].shape == (307, ORIGINAL_SIDE, 3)  # longest side shrunk
    assert batch.select([1]).originals[0] is batch.originals[1]
    assert collate([ThermalImageDataset([small], image_size=16)[0]]).originals is None
    assert THUMB_HEIGHT < ORIGINAL_SIDE
