"""Summary plots: readable PNGs of the expected size, figures renderable for TensorBoard."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from thermal_explain.errors import ConfigurationError
from thermal_explain.output.plots import (
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
