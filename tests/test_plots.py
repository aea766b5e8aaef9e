"""Summary plots: readable PNGs of the expected size, figures renderable for TensorBoard."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.summaries import class_mean_maps
from thermal_explain.output.plot_canvas import TextCanvas
from thermal_explain.output.plot_layout import axes_at, new_figure
from thermal_explain.output.plots import (
    _bars,
    _box_plot,
    activation_area_figure,
    class_mean_heatmap_figure,
    confidence_histogram_figure,
    faithfulness_curves_figure,
    figure_to_array,
    write_png,
)

LAYERS = ["backbone.layer3.1.conv2", "backbone.layer4.1.conv2"]
RNG = np.random.default_rng(0)


def _read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable PNG"
    return image


def _render(figure: Figure, path: Path, dpi: int = 120) -> Path:
    """What the summary plots do with a figure: draw it once, write the pixels as a PNG."""
    figure.set_dpi(dpi)
    return write_png(figure_to_array(figure), path, dpi)


def _assert_png(path: Path, width_in: float, height_in: float, dpi: int = 120) -> None:
    assert path.suffix == ".png"
    image = _read_png(path)
    assert image.shape == (round(height_in * dpi), round(width_in * dpi), 3)
    assert image.std() > 5, "the plot is blank"


def test_confidence_histogram(tmp_path: Path) -> None:
    confidences = RNG.uniform(0.5, 1.0, 40).tolist()
    predicted = RNG.integers(0, 2, 40).tolist()
    figure = confidence_histogram_figure(confidences, predicted, ["normal", "ICAS"])
    path = _render(figure, tmp_path / "sub" / "conf.png")
    assert path == tmp_path / "sub" / "conf.png"
    _assert_png(path, 6.4, 3.0)


def test_confidence_histogram_with_an_empty_class(tmp_path: Path) -> None:
    figure = confidence_histogram_figure([0.9, 0.8], [0, 0], ["a", "b", "c"])
    path = _render(figure, tmp_path / "c.png")
    _assert_png(path, 9.6, 3.0)


def test_activation_area(tmp_path: Path) -> None:
    areas = {layer: RNG.uniform(0, 0.6, 25) for layer in LAYERS}
    path = _render(activation_area_figure(areas), tmp_path / "area.png", dpi=100)
    _assert_png(path, 4.0, 3.2, dpi=100)


def test_class_mean_heatmaps_grid(tmp_path: Path) -> None:
    means = RNG.uniform(0, 1, (2, 2, 32, 32))
    means[1, 0] = np.nan  # a class with no image for this layer
    figure = class_mean_heatmap_figure(means, ["normal", "ICAS"], LAYERS)
    path = _render(figure, tmp_path / "means.png")
    _assert_png(path, 4.8, 4.3)


def test_faithfulness_curves(tmp_path: Path) -> None:
    deletion = {layer: np.sort(RNG.uniform(0, 1, (5, 17)), axis=1)[:, ::-1] for layer in LAYERS}
    insertion = {layer: np.sort(RNG.uniform(0, 1, (5, 17)), axis=1) for layer in LAYERS}
    path = _render(faithfulness_curves_figure(deletion, insertion), tmp_path / "curves.png")
    _assert_png(path, 9.0, 3.4)


def test_figure_to_array_and_write_png(tmp_path: Path) -> None:
    figure = activation_area_figure({"backbone.layer4.1.conv2": [0.1, 0.2, 0.4]})
    assert isinstance(figure, Figure)
    pixels = figure_to_array(figure)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (round(3.2 * 120), round(4.0 * 120), 3)
    assert pixels.std() > 5
    path = write_png(pixels, tmp_path / "again.png")
    np.testing.assert_array_equal(_read_png(path)[..., ::-1], pixels)


def test_figures_need_no_pyplot_state() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    confidence_histogram_figure([0.7], [1], ["a", "b"])
    class_mean_heatmap_figure(np.zeros((1, 1, 4, 4)), ["a"], ["l"])
    faithfulness_curves_figure({"l": [[1.0, 0.0]]}, {"l": [[0.0, 1.0]]})
    assert plt.get_fignums() == before


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ConfigurationError, match="same length"):
        confidence_histogram_figure([0.5, 0.6], [0], ["a"])
    with pytest.raises(ConfigurationError, match="`mean_maps`"):
        class_mean_heatmap_figure(np.zeros((2, 1, 4, 4)), ["a"], ["l"])
    with pytest.raises(ConfigurationError, match="`areas`"):
        activation_area_figure({})
    with pytest.raises(ConfigurationError, match="steps"):
        faithfulness_curves_figure({"l": [0.1, 0.2]}, {"l": [[0.0, 1.0]]})


def _ink_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the non-white pixels."""
    rows, cols = np.nonzero((pixels < 200).any(axis=2))
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("confidence", {"ha": "center", "va": "top"}),
        ("layer4.1.conv2", {"rotation": 20, "ha": "center", "va": "top", "fontsize": 8}),
        ("mean activation", {"rotation": 90, "ha": "left", "va": "center"}),
        ("icas (n=0)", {"ha": "right", "va": "baseline", "fontsize": 9}),
    ],
)
def test_text_canvas_draws_text_where_matplotlib_does(text: str, style: dict) -> None:
    drawn = []
    for canvas in (FigureCanvasAgg, TextCanvas):
        figure = Figure(figsize=(3, 2), dpi=120)
        canvas(figure)
        figure.text(0.5, 0.5, text, **style)
        drawn.append(figure_to_array(figure))
    reference, fast = (_ink_box(pixels) for pixels in drawn)
    assert np.abs(np.subtract(reference, fast)).max() <= 2, (reference, fast)
    ink = [(pixels < 128).any(axis=2).sum() for pixels in drawn]
    assert abs(ink[0] - ink[1]) <= 0.25 * ink[0]


def test_text_canvas_leaves_math_and_missing_glyphs_to_matplotlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matplotlib.backends.backend_agg import RendererAgg

    by_matplotlib = []
    draw_text = RendererAgg.draw_text

    def spy(self: RendererAgg, gc: object, x: float, y: float, s: str, *a: object, **k: object):
        by_matplotlib.append(s)
        return draw_text(self, gc, x, y, s, *a, **k)

    monkeypatch.setattr(RendererAgg, "draw_text", spy)
    figure = Figure(figsize=(3, 2), dpi=120)
    TextCanvas(figure)
    figure.text(0.1, 0.8, r"$\alpha^2$")
    figure.text(0.1, 0.5, "\u9888\u52a8\u8109")  # no such glyphs in DejaVu Sans
    figure.text(0.1, 0.2, "plain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib warns about the missing glyphs
        pixels = figure_to_array(figure)
    assert "plain" not in by_matplotlib
    assert "\u9888\u52a8\u8109" in by_matplotlib and any("alpha" in s for s in by_matplotlib)
    assert (pixels[: pixels.shape[0] // 3] < 128).any()  # the formula is drawn
    assert (pixels[-pixels.shape[0] // 3 :] < 128).any()  # and the plain text


def test_box_plot_draws_what_matplotlib_boxplot_draws() -> None:
    data = [RNG.normal(0.5, 0.15, 40), RNG.uniform(0, 1, 25), np.r_[RNG.normal(0.3, 0.02, 30), 0.9]]
    drawn = []
    for own in (True, False):
        figure = new_figure(4, 3)
        axis = axes_at(figure, 0.5, 0.4, 3.3, 2.4)
        _box_plot(axis, data) if own else axis.boxplot(data, showmeans=True)
        axis.set_ylim(0, 1)
        axis.set_xticks([1, 2, 3], ["a", "b", "c"])
        drawn.append(figure_to_array(figure).astype(int))
    differs = np.abs(drawn[0] - drawn[1]).max(axis=2) > 64
    assert differs.mean() < 0.001  # line ends only


def test_histogram_bars_draw_what_matplotlib_hist_draws() -> None:
    values, edges = RNG.uniform(0.3, 1, 200), np.linspace(0, 1, 21)
    counts = np.histogram(values, edges)[0]
    drawn = []
    for own in (True, False):
        figure = new_figure(4, 3)
        axis = axes_at(figure, 0.5, 0.4, 3.3, 2.4)
        if own:
            _bars(axis, edges, counts, "C0")
        else:
            axis.hist(values, bins=edges, color="C0", edgecolor="white")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, counts.max() * 1.05)
        drawn.append(figure_to_array(figure).astype(int))
    assert (np.abs(drawn[0] - drawn[1]).max(axis=2) > 64).sum() == 0


def test_class_mean_heatmaps_show_every_map_and_a_colorbar() -> None:
    import matplotlib

    jet = [matplotlib.colormaps["jet"](value, bytes=True)[:3] for value in (1.0, 0.0, 0.5)]
    means = np.zeros((2, 2, 8, 8))
    means[0, 0], means[1, 0], means[1, 1] = 1.0, np.nan, 0.5
    pixels = figure_to_array(class_mean_heatmap_figure(means, ["normal", "ICAS"], LAYERS))
    width = pixels.shape[1]

    def box(color: tuple, columns: slice = slice(None), within: int = 0) -> tuple[int, ...]:
        near = np.abs(pixels[:, columns].astype(int) - color).max(axis=2) <= within
        rows, cols = np.nonzero(near)
        assert rows.size, f"no pixel of colour {color}"
        return rows.min(), rows.max(), cols.min() + (columns.start or 0), cols.max()

    grid = slice(0, width - round(0.75 * 120))
    high, low, middle = (box(color, grid) for color in jet)
    assert high[1] - high[0] > 150 and high[3] - high[2] > 150  # a whole tile
    assert high[0] == low[0] and low[2] > high[3]  # same row, next column
    assert middle[2] == low[2] and middle[0] > low[1]  # next row, same column as 0.0
    # The class without images: an empty (white) tile left of the 0.5 tile, below 1.0.
    empty = pixels[middle[0] + 2 : middle[1] - 1, high[2] + 2 : high[3] - 1]
    assert (empty == 255).all()
    # The colorbar, right of the grid: 1.0 above 0.0.
    bar = slice(width - round(0.75 * 120), width)
    top, bottom = box(jet[0], bar, 8), box(jet[1], bar, 8)
    assert top[1] < bottom[0] and bottom[1] - top[0] > 0.6 * pixels.shape[0]
    # Layer titles above the tiles and class names left of them.
    assert (pixels[: high[0] - 2, high[2] : high[3]] < 100).any()
    assert (pixels[high[0] : high[1], : high[2] - 2] < 100).any()


def test_class_mean_maps_read_every_kind_of_saved_map(tmp_path: Path) -> None:
    maps = {
        "a": RNG.uniform(0, 2, (7, 7)).astype(np.float32),
        "b": np.asfortranarray(RNG.uniform(0, 2, (14, 14))),  # float64, Fortran order
        "c": RNG.uniform(0, 2, (224, 224)).astype(np.float32),
    }
    (tmp_path / "feature_maps").mkdir()
    records = []
    for name, raw in maps.items():
        np.save(tmp_path / "feature_maps" / f"{name}.npy", raw)
        heatmap = str(tmp_path / "gradcam_heatmaps" / f"{name}_heatmap.png")
        records.append(
            {
                "true_label": "x",
                "predicted_label": "x",
                "gradcam_results": {"l": {"heatmap_path": heatmap}},
            }
        )
    means, groups = class_mean_maps(records, ["x"], ["l"])
    expected = []
    for raw in maps.values():
        resized = cv2.resize(raw.astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
        expected.append((resized - resized.min()) / (resized.max() - resized.min()))
    assert groups == ["x"]
    np.testing.assert_allclose(means[0, 0], np.mean(expected, axis=0), atol=1e-6)
