"""Resize, colorize, blend and PNG encoding of one map."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.render import blend, colorize, desaturate, encode_png, resize_map


def test_resize_map_reaches_the_original_size_and_stays_in_range() -> None:
    values = np.linspace(-0.5, 1.5, 16 * 16, dtype=np.float32).reshape(16, 16)
    resized = resize_map(values, (30, 50))
    assert resized.shape == (30, 50)
    assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_colorize_uses_the_table_ends() -> None:
    table = get_colormap("jet")
    values = np.array([[0.0, 1.0, -0.2], [np.nan, 0.5, 1.7]], dtype=np.float32)
    image = colorize(values, table)
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    expected = table[[[0, 255, 0], [0, 128, 255]]]
    np.testing.assert_array_equal(image, expected)
    ramp = np.linspace(0, 1, 1000, dtype=np.float32).reshape(20, 50)
    np.testing.assert_array_equal(colorize(ramp, table), table[np.rint(ramp * 255).astype(int)])


def test_desaturate_makes_equal_channels() -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    gray = desaturate(rgb)
    assert gray.shape == rgb.shape
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert 0 < int(gray[0, 0, 0]) < 200


def test_blend_weights_background_and_heatmap() -> None:
    background = np.full((2, 2, 3), 100, dtype=np.uint8)
    heatmap = np.full((2, 2, 3), 200, dtype=np.uint8)
    assert int(blend(background, heatmap, 0.3, 0.7)[0, 0, 0]) == 170
    assert int(blend(background, heatmap, 1.0, 1.0)[0, 0, 0]) == 255


def test_png_round_trip_and_dpi_tag() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (12, 20, 3), dtype=np.uint8)
    data = encode_png(rgb, dpi=300)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[..., ::-1], rgb)
    with Image.open(io.BytesIO(data)) as image:
        assert round(image.info["dpi"][0]) == 300
        image.verify()
    assert "dpi" not in Image.open(io.BytesIO(encode_png(rgb))).info
