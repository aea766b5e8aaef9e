"""Tests for the image reader and model-input preprocessing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thermal_explain.data.images import read_image, read_mask
from thermal_explain.data.preprocessing import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    split_asymmetry,
    to_model_input,
)
from thermal_explain.errors import ConfigurationError, ImageReadError


def _write(path: Path, image: np.ndarray) -> Path:
    """Encode ``image`` (OpenCV channel order) by the suffix of ``path`` and write it."""
    ok, buffer = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(buffer.tobytes())
    return path


def _gradient_rgb(height: int = 20, width: int = 30) -> np.ndarray:
    """An RGB test image with distinct channels: R by column, G by row, B constant."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 250, width, dtype=np.uint8)[None, :]
    image[:, :, 1] = np.linspace(10, 200, height, dtype=np.uint8)[:, None]
    image[:, :, 2] = 77
    return image


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_read_lossless_formats_returns_rgb(tmp_path: Path, suffix: str) -> None:
    rgb = _gradient_rgb()
    path = _write(tmp_path / f"face{suffix}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = read_image(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, rgb)


def test_read_jpeg_keeps_channel_order(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, :, 0] = 220
    path = _write(tmp_path / "red.jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = read_image(path)
    assert image.shape == (32, 32, 3)
    assert image[:, :, 0].mean() > 200 and image[:, :, 2].mean() < 30


def test_read_non_ascii_path(tmp_path: Path) -> None:
    folder = tmp_path / "热成像"
    folder.mkdir()
    rgb = _gradient_rgb()
    path = _write(folder / "患者_001.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(path), rgb)


def test_read_8bit_grayscale_gives_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    image = read_image(_write(tmp_path / "gray.png", gray))
    assert image.shape == (12, 20, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_16bit_grayscale_is_min_max_scaled(tmp_path: Path, suffix: str) -> None:
    raw = np.full((8, 10), 30000, dtype=np.uint16)
    raw[:, 5:] = 31000
    raw[0, 0] = 30500
    image = read_image(_write(tmp_path / f"raw{suffix}", raw))
    assert image.dtype == np.uint8 and image.shape == (8, 10, 3)
    assert image[1, 1, 0] == 0
    assert image[1, 6, 0] == 255
    assert image[0, 0, 0] in (127, 128)


def test_read_constant_16bit_image_gives_zeros(tmp_path: Path) -> None:
    raw = np.full((6, 6), 4000, dtype=np.uint16)
    image = read_image(_write(tmp_path / "flat.png", raw))
    assert image.shape == (6, 6, 3) and not image.any()


def test_read_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((10, 12, 4), dtype=np.uint8)
    rgba[:, :, 0] = 200
    rgba[:, :, 1] = 100
    rgba[:, :, 2] = 50
    rgba[:, :, 3] = np.arange(12, dtype=np.uint8)[None, :] * 20
    path = _write(tmp_path / "rgba.png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    image = read_image(path)
    assert image.shape == (10, 12, 3)
    assert tuple(image[3, 3]) == (200, 100, 50)


def test_read_large_and_tiny_images(tmp_path: Path) -> None:
    tiny = read_image(_write(tmp_path / "tiny.png", np.full((1, 1, 3), 9, np.uint8)))
    assert tiny.shape == (1, 1, 3)
    wide = read_image(_write(tmp_path / "wide.png", np.zeros((3, 1500, 3), np.uint8)))
    assert wide.shape == (3, 1500, 3)


def test_truncated_jpeg_raises_one_line_error(tmp_path: Path) -> None:
    source = _write(tmp_path / "full.jpg", _gradient_rgb(64, 64))
    data = source.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError) as info:
        read_image(cut)
    message = str(info.value)
    assert "cut.jpg" in message and "\n" not in message


def test_text_file_named_jpg_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n", encoding="utf-8")
    with pytest.raises(ImageReadError, match=r"cannot decode image .*notes\.jpg"):
        read_image(path)


def test_missing_empty_and_folder_paths_raise(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(empty)
    with pytest.raises(ImageReadError):
        read_image(tmp_path)


def test_to_model_input_shape_and_normalization() -> None:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[:, :, 0] = 255
    tensor = to_model_input(image, 32, DEFAULT_MEAN, DEFAULT_STD, use_asymmetry=False)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    expected = [(1 - DEFAULT_MEAN[0]) / DEFAULT_STD[0]] + [
        (0 - DEFAULT_MEAN[c]) / DEFAULT_STD[c] for c in (1, 2)
    ]
    for channel in range(3):
        assert torch.allclose(tensor[channel], torch.full((32, 32), expected[channel]), atol=1e-5)


def test_to_model_input_is_the_float32_formula_bit_for_bit() -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pixels = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(DEFAULT_MEAN).view(3, 1, 1)
    std = torch.tensor(DEFAULT_STD).view(3, 1, 1)
    tensor = to_model_input(image, 32, DEFAULT_MEAN, DEFAULT_STD)
    assert torch.equal(tensor, (pixels - mean) / std) and tensor.is_contiguous()


def test_to_model_input_resizes_whole_image_without_crop() -> None:
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, 30:] = 255
    tensor = to_model_input(image, 16, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), use_asymmetry=False)
    assert tensor[0, 8, 0] == 0.0
    assert tensor[0, 8, 15] == 1.0
    assert 0.2 < tensor[0].mean().item() < 0.3


def test_to_model_input_does_not_change_input() -> None:
    image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    before = image.copy()
    to_model_input(image, 16, DEFAULT_MEAN, DEFAULT_STD, use_asymmetry=True)
    np.testing.assert_array_equal(image, before)


def test_to_model_input_asymmetry_mode() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, :8] = 200
    tensor = to_model_input(image, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), use_asymmetry=True)
    assert tensor.shape == (6, 32, 16)
    assert torch.all(tensor[:3, :, :8] > 0.7) and torch.all(tensor[3:] == 0)


def test_to_model_input_rejects_bad_arguments() -> None:
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ConfigurationError, match="`image_size` to be even"):
        to_model_input(image, 33, DEFAULT_MEAN, DEFAULT_STD, use_asymmetry=True)
    with pytest.raises(ConfigurationError, match="`image_size` to be an integer >= 1"):
        to_model_input(image, 0, DEFAULT_MEAN, DEFAULT_STD, use_asymmetry=False)
    with pytest.raises(ConfigurationError, match="`mean` to be three numbers"):
        to_model_input(image, 8, (0.5, 0.5), DEFAULT_STD, use_asymmetry=False)
    with pytest.raises(ConfigurationError, match="`std` to be three positive"):
        to_model_input(image, 8, DEFAULT_MEAN, (1.0, 0.0, 1.0), use_asymmetry=False)
    with pytest.raises(ConfigurationError, match="uint8 RGB"):
        to_model_input(np.zeros((8, 8), np.uint8), 8, DEFAULT_MEAN, DEFAULT_STD, False)


def test_split_asymmetry_mirrors_right_half() -> None:
    width = 8
    x = torch.arange(width, dtype=torch.float32).expand(3, 2, width).clone()
    x[1] += 100
    out = split_asymmetry(x)
    assert out.shape == (6, 2, 4)
    assert out[0, 0].tolist() == [0, 1, 2, 3]
    assert out[3, 0].tolist() == [7, 6, 5, 4]
    assert out[4, 0].tolist() == [107, 106, 105, 104]


def test_split_asymmetry_batched_matches_single_and_keeps_input() -> None:
    x = torch.randn(2, 4, 3, 5, 6)
    before = x.clone()
    out = split_asymmetry(x)
    assert out.shape == (2, 4, 6, 5, 3)
    assert torch.equal(out[1, 2], split_asymmetry(x[1, 2]))
    assert torch.equal(x, before)


def test_split_asymmetry_of_symmetric_image_has_equal_halves() -> None:
    half = torch.randn(3, 4, 5)
    symmetric = torch.cat((half, half.flip(-1)), dim=-1)
    out = split_asymmetry(symmetric)
    assert torch.equal(out[:3], out[3:])


def test_split_asymmetry_rejects_odd_width_and_wrong_channels() -> None:
    with pytest.raises(ConfigurationError, match="even image width"):
        split_asymmetry(torch.zeros(3, 4, 5))
    with pytest.raises(ConfigurationError, match="3, H, W"):
        split_asymmetry(torch.zeros(6, 4, 4))


def test_read_mask_nonzero_is_region_and_resizes_nearest(tmp_path: Path) -> None:
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[2:5, 6:9] = 1
    path = _write(tmp_path / "mask.png", mask)
    region = read_mask(path, (10, 10))
    assert region.dtype == np.bool_ and region.sum() == 9 and region[3, 7]
    bigger = read_mask(path, (20, 30))
    assert bigger.shape == (20, 30)
    assert set(np.unique(bigger).tolist()) == {False, True}
    assert bigger[7, 22] and not bigger[0, 0]


def test_read_mask_colour_rgba_and_16bit(tmp_path: Path) -> None:
    colour = np.zeros((6, 6, 3), dtype=np.uint8)
    colour[1, 1] = (0, 0, 255)
    assert read_mask(_write(tmp_path / "c.png", colour), (6, 6)).sum() == 1
    rgba = np.zeros((6, 6, 4), dtype=np.uint8)
    rgba[:, :, :3] = 255
    rgba[0, :2, 3] = 255
    assert read_mask(_write(tmp_path / "a.png", rgba), (6, 6)).sum() == 2
    full = np.ones((4, 4), dtype=np.uint16)
    assert read_mask(_write(tmp_path / "w.png", full), (4, 4)).all()


def test_read_mask_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError):
        read_mask(tmp_path / "none.png", (4, 4))
    path = _write(tmp_path / "m.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigurationError, match="size"):
        read_mask(path, (0, 4))
