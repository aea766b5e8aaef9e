"""The reusable 300-DPI overlay figure."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figures import (
    FigureRenderer,
    _box_size,
    _resize_into,
    box_interpolation,
    figure_title,
    shared_figure_renderer,
)
from thermal_explain.output.render import blend, colorize

JET = get_colormap("jet")


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


def plain_rendering(renderer: FigureRenderer, overlay: np.ndarray, title: str) -> np.ndarray:
    """The renderer's figure drawn the ordinary matplotlib way: ``imshow`` and a full draw."""
    canvas, image_axes, band = renderer._layout(_box_size(overlay.shape[:2], renderer._long_side))
    image_axes.imshow(overlay, aspect="auto")
    for line, text in zip(band.lines, title.split("\n"), strict=True):
        line.set_text(text)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _smooth_overlay(height: int, width: int) -> np.ndarray:
    """An overlay as the writer makes one: a smooth heatmap over a blurred gray image."""
    rng = np.random.default_rng(height * width)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (5, 5), 0)
    heat = colorize(cv2.resize(rng.random((7, 7), dtype=np.float32), (width, height)), JET)
    return blend(cv2.merge([gray, gray, gray]), heat, 0.3, 0.7)


@pytest.mark.parametrize(
    ("height", "width", "tolerance"),
    [
        (56, 56, 0),  # enlarged more than 3x: nearest neighbour, exactly as matplotlib
        (28, 40, 0),
        (240, 320, 6),  # enlarged 3x or less: matplotlib smooths, bilinear comes close
        (1200, 1600, 6),  # shrunk: area averaging against matplotlib's smoothing
    ],
)
def test_figure_matches_the_plain_matplotlib_rendering(height, width, tolerance) -> None:
    renderer = FigureRenderer(JET)
    overlay = _smooth_overlay(height, width)
    title = figure_title("backbone.layer1.1.conv2", "ICAS", 0.8542, "ICAS", "NORMAL")
    renderer.render(overlay, "Grad-CAM backbone.layer4.1.conv2\nPredicted: NORMAL (51.0%)")
    fast = renderer.render(overlay, title)
    plain = plain_rendering(renderer, overlay, title)
    assert fast.shape == plain.shape
    difference = np.abs(fast.astype(int) - plain.astype(int)).max(axis=2)
    assert difference.max() <= tolerance
    assert difference.mean() < 1.0


def test_png_of_the_figure_is_what_was_rendered_at_300_dpi() -> None:
    renderer = FigureRenderer(JET)
    overlay = _smooth_overlay(64, 48)
    data = renderer.render_png(overlay, "a\nb")
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        decoded = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(decoded, plain_rendering(renderer, overlay, "a\nb"))


@pytest.mark.parametrize(
    ("source", "box"),
    [
        ((50, 50), (200, 200)),
        ((50, 50), (150, 150)),
        ((50, 50), (100, 100)),
        ((50, 50), (120, 120)),
        ((200, 300), (100, 150)),
    ],
)
def test_box_interpolation_follows_matplotlib(source, box) -> None:
    image = np.random.default_rng(0).integers(0, 256, (*source, 3), dtype=np.uint8)
    figure = Figure(figsize=(box[1] / 100, box[0] / 100), dpi=100)
    canvas = FigureCanvasAgg(figure)
    figure.add_axes([0, 0, 1, 1]).imshow(image, aspect="auto")
    figure.axes[0].set_axis_off()
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())[..., :3]
    nearest = cv2.resize(image, box[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    sharp = box_interpolation(source, box) == cv2.INTER_NEAREST_EXACT
    assert np.array_equal(drawn, nearest) == sharp


@pytest.mark.parametrize(
    ("source", "box"), [((7, 9), (31, 40)), ((224, 224), (960, 960)), ((33, 50), (66, 100))]
)
def test_enlarging_row_by_row_is_opencvs_nearest_neighbour(source, box) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*source, 3), dtype=np.uint8)
    canvas = np.zeros((box[0] + 4, box[1] + 6, 3), np.uint8)
    _resize_into(image, canvas[2:-2, 3:-3])
    expected = cv2.resize(image, box[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    np.testing.assert_array_equal(canvas[2:-2, 3:-3], expected)
    assert not canvas[:2].any() and not canvas[:, :3].any()  # nothing outside the box


def test_threads_rendering_with_one_renderer_get_what_one_thread_gets() -> None:
    sizes = [(40, 56), (56, 40), (48, 48)]
    jobs = [
        (_smooth_overlay(*sizes[index % 3]), figure_title("layer", "ICAS", index / 12))
        for index in range(12)
    ]
    alone = FigureRenderer(JET)
    expected = [alone.render(overlay, title) for overlay, title in jobs]
    shared = FigureRenderer(JET, cache_size=2)  # sizes are dropped and drawn again meanwhile
    with ThreadPoolExecutor(4) as pool:
        rendered = list(pool.map(lambda job: shared.render(*job), jobs))
    for got, want in zip(rendered, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_one_shared_renderer_per_colormap() -> None:
    viridis = get_colormap("viridis")
    assert shared_figure_renderer(JET) is shared_figure_renderer(JET.copy())
    assert shared_figure_renderer(viridis) is not shared_figure_renderer(JET)
