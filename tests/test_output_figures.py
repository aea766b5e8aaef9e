"""The reusable 300-DPI overlay figure."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figures import FigureRenderer, figure_title


def _overlay(height: int = 40, width: int = 56) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = image[..., 2] = 200  # magenta: a color the jet colorbar never shows
    return image


def test_png_is_300_dpi_with_image_colorbar_and_title() -> None:
    renderer = FigureRenderer(get_colormap("jet"))
    data = renderer.render_png(_overlay(), figure_title("backbone.layer4.1.conv2", "ICAS", 0.85))
    with Image.open(io.BytesIO(data)) as image:
        assert round(image.info["dpi"][0]) == 300
        pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    assert width > 900 and height > 700  # a few inches at 300 DPI
    magenta = (pixels[..., 0] == 200) & (pixels[..., 1] == 0) & (pixels[..., 2] == 200)
    rows, cols = np.nonzero(magenta)
    box_width, box_height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert abs(box_width / box_height - 56 / 40) < 0.02  # aspect kept
    right = pixels[rows.min() : rows.max(), cols.max() + 5 :]
    red = (right[..., 0] > 100) & (right[..., 2] < 30)
    blue = (right[..., 2] > 100) & (right[..., 0] < 30)
    assert red.any() and blue.any()  # the jet colorbar
    title_band = pixels[: rows.min()]
    assert (title_band < 100).all(axis=2).any()  # dark title text above the image


def test_reused_figure_matches_a_fresh_one() -> None:
    lut = get_colormap("viridis")
    reused = FigureRenderer(lut)
    reused.render(_overlay(), "a much longer first title that must not leave any trace")
    reused.render(_overlay(30, 30), "another size in between")
    second = reused.render(_overlay(), "short")
    fresh = FigureRenderer(lut).render(_overlay(), "short")
    np.testing.assert_array_equal(second, fresh)


def test_titles_differ_per_image() -> None:
    renderer = FigureRenderer(get_colormap("jet"))
    first = renderer.render(_overlay(), "ICAS (90.0%)")
    second = renderer.render(_overlay(), "NORMAL (60.0%)")
    assert first.shape == second.shape and not np.array_equal(first, second)


def test_portrait_images_fit() -> None:
    pixels = FigureRenderer(get_colormap("jet")).render(_overlay(80, 20), "tall")
    assert pixels.shape[0] > pixels.shape[1] * 0.9


def test_title_text() -> None:
    title = figure_title("backbone.layer2.1.conv2", "ICAS", 0.8542, "NORMAL", "ICAS")
    assert "backbone.layer2.1.conv2" in title
    assert "ICAS (85.4%)" in title and "explains: NORMAL" in title and "true: ICAS" in title
    assert "explains" not in figure_title("l", "ICAS", 0.5, "ICAS")
