"""The PNG encoder every output image goes through."""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from thermal_explain.output.png import encode_png


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


@pytest.mark.parametrize("shape", [(13, 21), (13, 21, 3), (13, 21, 4), (1, 1, 3)])
def test_round_trip_of_gray_rgb_and_rgba(shape) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(pixels)
    np.testing.assert_array_equal(_decoded(data), pixels)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == pixels.shape


def test_smooth_images_compress_and_views_are_encoded_as_seen() -> None:
    ramp = np.tile(np.linspace(0, 255, 200).astype(np.uint8)[None, :, None], (150, 1, 3))
    assert len(encode_png(ramp)) < ramp.nbytes / 20
    view = ramp[10:50:2, ::-3]  # not contiguous
    np.testing.assert_array_equal(_decoded(encode_png(view)), view)


def test_dpi_tag_and_zlib_fallback_agree() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    data = encode_png(pixels, dpi=300, deflate=zlib)
    with Image.open(io.BytesIO(data)) as image:
        assert round(image.info["dpi"][0]) == 300 and round(image.info["dpi"][1]) == 300
    np.testing.assert_array_equal(_decoded(data), _decoded(encode_png(pixels)))
    with Image.open(io.BytesIO(encode_png(pixels))) as image:
        assert "dpi" not in image.info


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8)],
)
def test_rejects_what_is_not_an_8_bit_image(pixels) -> None:
    with pytest.raises(ValueError, match="uint8 image"):
        encode_png(pixels)
