"""The temperature figure: drawn in parts, it equals matplotlib's full drawing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figures import figure_title
from thermal_explain.output.thermal_figure import ThermalFigureRenderer, _box_size

JET = get_colormap("jet")


def _inputs(height: int = 30, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(height * width)
    celsius = 30.0 + 5.0 * rng.random((height, width), dtype=np.float32)
    overlay = np.zeros((height, width, 3), np.uint8)
    overlay[..., 0] = overlay[..., 2] = 200
    return celsius, overlay


def plain_rendering(
    renderer: ThermalFigureRenderer, shape: tuple[int, int], window: tuple[float, float], title: str
) -> np.ndarray:
    """The same figure drawn in one matplotlib pass (image boxes left empty)."""
    canvas, _axes, _degrees, band = renderer._layout(_box_size(shape, renderer._long_side), window)
    for line, text in zip(band.lines, title.split("\n"), strict=True):
        line.set_text(text)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _outside_boxes(renderer: ThermalFigureRenderer, shape: tuple[int, int], pixels: np.ndarray):
    template = renderer._templates[_box_size(shape, renderer._long_side)]
    kept = pixels.copy()
    for left, top, right, bottom in template.boxes:
        kept[top:bottom, left:right] = 0
    return kept


@pytest.mark.parametrize("windows", [[(30.0, 35.0), (12.5, 41.25), (30.0, 35.0), (-5.0, 3.0)]])
def test_figure_equals_the_full_matplotlib_drawing_for_every_range(windows) -> None:
    renderer = ThermalFigureRenderer(JET)
    celsius, overlay = _inputs()
    for index, window in enumerate(windows):
        title = figure_title("backbone.layer3.1.conv2", "ICAS", 0.5 + index / 100, None, "ICAS")
        fast = renderer.render(celsius, window, overlay, title)
        plain = plain_rendering(renderer, celsius.shape, window, title)
        assert fast.shape == plain.shape
        np.testing.assert_array_equal(
            _outside_boxes(renderer, celsius.shape, fast),
            _outside_boxes(renderer, celsius.shape, plain),
        )
        template = renderer._templates[_box_size(celsius.shape, renderer._long_side)]
        left, top, right, bottom = template.boxes[1]
        assert (fast[top:bottom, left:right] == (200, 0, 200)).all()  # the overlay in its box


def test_threads_share_one_renderer() -> None:
    celsius, overlay = _inputs()
    jobs = [((28.0 + index % 3, 36.0), f"layer\nPredicted: A ({index}.0%)") for index in range(9)]
    alone = ThermalFigureRenderer(JET)
    expected = [alone.render(celsius, window, overlay, title).copy() for window, title in jobs]
    shared = ThermalFigureRenderer(JET)
    with ThreadPoolExecutor(3) as pool:
        rendered = list(
            pool.map(lambda job: shared.render(celsius, job[0], overlay, job[1]).copy(), jobs)
        )
    for got, want in zip(rendered, expected, strict=True):
        np.testing.assert_array_equal(got, want)
