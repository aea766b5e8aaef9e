"""Temperature inputs: FLIR radiometric JPEGs, scaled 16-bit exports, float arrays, windows."""

from __future__ import annotations

import logging
import sys

import cv2
import numpy as np
import pytest
import torch

from thermal_explain.data.dataset import ThermalImageDataset, collate
from thermal_explain.data.preprocessing import Preprocessing, resolve_preprocessing
from thermal_explain.data.thermal import (
    TemperatureScale,
    check_temperature_range,
    read_input,
    resize_finite,
)
from thermal_explain.errors import ConfigurationError, ImageReadError


def test_flir_jpegs_are_read_as_their_temperatures(flir_dir):
    hot = read_input(flir_dir / "200_deg_neutral.jpg")
    cold = read_input(flir_dir / "four_ducks_swimming.jpg")
    assert hot.kind == cold.kind == "flir_radiometric"
    assert hot.size == cold.size == (120, 120)
    stats = hot.statistics()
    assert stats["units"] == "celsius"
    assert stats["min"] == pytest.approx(31.69, abs=0.05)
    assert stats["max"] == pytest.approx(87.38, abs=0.05)
    assert cold.statistics()["min"] == pytest.approx(7.21, abs=0.05)
    assert cold.statistics()["max"] == pytest.approx(23.24, abs=0.05)


@pytest.mark.parametrize("keep_length_field", [True, False])
def test_a_malformed_flir_jpeg_is_a_one_line_read_error(tmp_path, cut_flir, keep_length_field):
    broken = cut_flir(tmp_path / "broken.jpg", keep_length_field)
    with pytest.raises(ImageReadError, match="FLIR metadata is malformed") as raised:
        read_input(broken)
    assert "\n" not in str(raised.value) and "flyr:" in str(raised.value)


def test_without_flyr_a_flir_jpeg_says_how_to_install_it(monkeypatch, flir_dir):
    monkeypatch.setitem(sys.modules, "flyr", None)  # import flyr raises ImportError
    with pytest.raises(ImageReadError, match=r"pip install thermal-explain\[flir\]"):
        read_input(flir_dir / "four_ducks_swimming.jpg")


def test_a_plain_jpeg_is_a_picture(tmp_path):
    path = tmp_path / "plain.jpg"
    cv2.imwrite(str(path), np.full((8, 10, 3), 100, np.uint8))
    source = read_input(path)
    assert source.kind == "image" and source.pixels.shape == (8, 10, 3)
    assert source.statistics() is None and source.units == "intensity"


@pytest.mark.parametrize(
    ("scale", "counts", "celsius"),
    [
        ("centikelvin", 30815, 35.0),
        ("celsius_x100", 3500, 35.0),
        ("linear:0.04,-273.15", 7704, 7704 * 0.04 - 273.15),
    ],
)
def test_16_bit_exports_become_degrees_with_a_scale(tmp_path, scale, counts, celsius):
    values = np.full((6, 8), counts, np.uint16)
    values[0, 0] = counts - 100
    for suffix in (".png", ".tif"):
        path = tmp_path / f"export{suffix}"
        cv2.imwrite(str(path), values)
        source = read_input(path, scale)
        assert source.kind == "temperature_array"
        assert source.pixels[1, 1] == pytest.approx(celsius, abs=1e-3)
        assert source.statistics()["max"] == pytest.approx(celsius, abs=1e-3)


def test_a_16_bit_image_without_a_scale_stays_a_picture(tmp_path):
    path = tmp_path / "raw.png"
    cv2.imwrite(str(path), np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000)
    source = read_input(path)
    assert source.kind == "image" and source.pixels.dtype == np.uint8


def test_float_tiff_and_npy_are_degrees_and_non_finite_pixels_are_left_out(tmp_path):
    values = np.full((6, 8), 34.0, np.float32)
    values[2, 3] = 31.0
    values[0, 0], values[0, 1], values[5, 7] = np.nan, np.inf, -np.inf
    tif = tmp_path / "t.tif"
    cv2.imwrite(str(tif), values)
    np.save(tmp_path / "t.npy", values)
    for path in (tif, tmp_path / "t.npy"):
        source = read_input(path)
        assert source.kind == "temperature_array"
        stats = source.statistics()
        assert (stats["min"], stats["max"], stats["non_finite_pixels"]) == (31.0, 34.0, 3)
        assert stats["mean"] == pytest.approx((34.0 * 44 + 31.0) / 45, abs=1e-3)
        assert np.isnan(source.pixels[0, 1])  # infinity kept as "unknown"


def test_arrays_that_hold_no_temperatures_are_read_errors(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((4, 4), np.nan, np.float32))
    np.save(tmp_path / "cube.npy", np.zeros((2, 4, 4), np.float32))
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    for name, reason in (
        ("nan.npy", "no pixel holds a finite value"),
        ("cube.npy", "2-D"),
        ("text.npy", "save degrees Celsius as floats"),
        ("junk.npy", "save a 2-D array"),
    ):
        with pytest.raises(ImageReadError, match=reason):
            read_input(tmp_path / name)


def test_scales_and_windows_are_checked_with_one_line_errors():
    assert TemperatureScale.parse(None) is None and TemperatureScale.parse("none") is None
    assert TemperatureScale.parse(" Linear:0.5,1 ").name == "linear:0.5,1"
    for bad in ("kelvin", "linear:1", "linear:0,3", "linear:a,b", 5):
        with pytest.raises(ConfigurationError, match="Expected argument `temperature_scale`"):
            TemperatureScale.parse(bad)
    assert check_temperature_range([28, 38]) == (28.0, 38.0)
    for bad in ((38, 28), (30, 30), (30,), (30, float("nan")), "28 38"):
        with pytest.raises(ConfigurationError, match="LOW < HIGH"):
            check_temperature_range(bad)


def test_a_fixed_window_maps_a_temperature_to_the_same_input_everywhere(tmp_path):
    """Per-image stretching gives 34 C two different inputs; the window gives it one."""
    cool = np.full((8, 8), 30.0, np.float32)
    warm = np.full((8, 8), 36.0, np.float32)
    cool[0:4], warm[0:4] = 34.0, 34.0
    np.save(tmp_path / "cool.npy", cool)
    np.save(tmp_path / "warm.npy", warm)
    paths = [tmp_path / "cool.npy", tmp_path / "warm.npy"]
    stretched = collate(list(ThermalImageDataset(paths, None, 8, mean=(0,) * 3, std=(1,) * 3)))
    assert not torch.allclose(stretched.images[0, :, 0], stretched.images[1, :, 0])
    prep = Preprocessing(image_size=8, mean=(0,) * 3, std=(1,) * 3, temperature_range=(29, 39))
    windowed = collate(list(ThermalImageDataset.for_preprocessing(paths, None, prep)))
    assert torch.allclose(windowed.images[:, :, 0], torch.tensor(0.5))
    assert windowed.images[0, 0, 7, 0] == pytest.approx(0.1)
    assert windowed.images[1, 0, 7, 0] == pytest.approx(0.7)
    assert windowed.input_kinds == ["temperature_array"] * 2
    assert windowed.signals is not None and windowed.signals[1, 7, 0] == pytest.approx(36.0)


def test_a_scale_giving_impossible_temperatures_warns_once_and_says_so(tmp_path, caplog):
    paths = []
    for index in range(3):
        path = tmp_path / f"k{index}.png"
        cv2.imwrite(str(path), np.full((6, 6), 30815, np.uint16))
        paths.append(path)
    dataset = ThermalImageDataset(paths, None, 8, temperature_scale="celsius_x100")
    with caplog.at_level(logging.WARNING):
        samples = [dataset[i] for i in range(3)]
    assert caplog.text.count("check the scale") == 1
    assert all("warning" in sample.temperature for sample in samples)
    assert samples[0].temperature["max"] == pytest.approx(308.15)


def test_preprocessing_records_without_temperature_settings_stay_readable():
    old = {"image_size": 64, "mean": [0.5] * 3, "std": [0.2] * 3, "use_asymmetry": True}
    restored = Preprocessing.from_record(old, use_asymmetry=True)
    assert restored is not None and restored.temperature_range is None
    windowed = Preprocessing(
        image_size=64, temperature_range=(28, 38), temperature_scale="CENTIKELVIN"
    )
    record = windowed.to_dict()
    assert (
        record["temperature_range"] == [28.0, 38.0] and record["temperature_scale"] == "centikelvin"
    )
    assert Preprocessing.from_dict(record) == windowed
    assert Preprocessing.from_record({**record, "temperature_range": [5, 1]}, False) is None


def test_an_explicit_window_wins_over_the_checkpoint_with_one_warning(caplog):
    trained = Preprocessing(image_size=32, temperature_range=(28, 38))
    same, source = resolve_preprocessing(trained, None, False, "checkpoint 'm'")
    assert same.temperature_range == (28.0, 38.0) and source == "checkpoint"
    with caplog.at_level(logging.WARNING):
        other, source = resolve_preprocessing(
            trained, None, False, "checkpoint 'm'", temperature_range=(30, 36)
        )
    assert other.temperature_range == (30.0, 36.0) and source == "options"
    assert "--temperature_range 30 36 differs from the 28 38" in caplog.text


def test_resizing_temperatures_keeps_unknown_pixels_out():
    values = np.full((4, 4), 30.0, np.float32)
    values[0, 0] = np.nan
    small = resize_finite(values, (2, 2))
    assert np.allclose(small, 30.0)
    values[:2, :2] = np.nan
    assert np.isnan(resize_finite(values, (2, 2))[0, 0])
