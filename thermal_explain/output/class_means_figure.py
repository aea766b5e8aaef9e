"""The class-mean heatmap grid: one row per class, one column per layer, one colorbar.

No Axes at all: every map is coloured once and placed in the figure as pixels
(:class:`~thermal_explain.output.plot_raster.RasterBox`), the row and column titles are
plain text, and the colorbar is a ramp of the same colormap with its ticks and label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from thermal_explain.errors import ConfigurationError
from thermal_explain.output.plot_layout import POINT, new_figure, short_layer, text_at, text_width
from thermal_explain.output.plot_raster import RasterBox, colorize_maps

COLORBAR_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def class_mean_heatmap_figure(
    mean_maps: np.ndarray | Sequence[Sequence[np.ndarray]],
    class_names: Sequence[str],
    layer_names: Sequence[str],
    *,
    cmap: str = "jet",
) -> Figure:
    """Grid of class-mean heatmaps: one row per class, one column per layer.

    Args:
        mean_maps: ``(K, L, H, W)`` mean map of each class and layer in ``[0, 1]``; a
            class without images may be all NaN (drawn as an empty cell).
        class_names: ``K`` row titles.
        layer_names: ``L`` column titles.
        cmap: matplotlib colormap name.

    Returns:
        A figure ``2 * L + 0.8`` by ``2 * K + 0.3`` inches with one shared colorbar.
    """
    maps = np.asarray(mean_maps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[:2] != (len(class_names), len(layer_names)):
        raise ConfigurationError(
            "Expected argument `mean_maps` to have shape (classes, layers, H, W) = "
            f"({len(class_names)}, {len(layer_names)}, H, W) but got {maps.shape}"
        )
    if cmap not in colormaps:
        raise ConfigurationError(
            f"Expected argument `cmap` to be a matplotlib colormap name but got {cmap!r}"
        )
    colormap = colormaps[cmap]
    rows, cols = maps.shape[:2]
    width, height = 2.0 * cols + 0.8, 2.0 * rows + 0.3
    figure = new_figure(width, height)
    # The grid fills the figure but for 0.3 in (left, top), 0.1 in (bottom) and 0.75 in
    # (right, for the colorbar); square cells 8 % of their side apart, centred.
    area_width, area_height = width - 1.05, height - 0.4
    side = min(area_width / (cols + 0.08 * (cols - 1)), area_height / (rows + 0.08 * (rows - 1)))
    pitch = 1.08 * side
    left = 0.3 + (area_width - (cols * pitch - 0.08 * side)) / 2
    top = height - 0.3 - (area_height - (rows * pitch - 0.08 * side)) / 2
    tiles = colorize_maps(maps, colormap)
    for row in range(rows):
        bottom = top - row * pitch - side
        for col in range(cols):
            figure.add_artist(RasterBox(tiles[row, col], (left + col * pitch, bottom, side, side)))
        label_style = {"rotation": 90, "ha": "right", "va": "center", "fontsize": 9}
        text_at(figure, left - 0.06, bottom + side / 2, class_names[row], **label_style)
    for col in range(cols):
        name = short_layer(layer_names[col])
        center = left + col * pitch + side / 2
        text_at(figure, center, top + 0.05, name, ha="center", va="bottom", fontsize=8)
    bar_height = 0.8 * (height - 0.4)
    _colorbar(figure, colormap, (width - 0.63, 0.1 + 0.1 * (height - 0.4), 0.12, bar_height))
    return figure


def _colorbar(figure: Figure, colormap: Colormap, box: tuple[float, float, float, float]) -> None:
    """A vertical colorbar of ``colormap`` on ``[0, 1]`` in ``box`` (inches), ticks at
    :data:`COLORBAR_TICKS` and the label ``mean activation``."""
    left, bottom, width, height = box
    ramp = colorize_maps(np.linspace(1.0, 0.0, 256)[:, None], colormap)
    figure.add_artist(RasterBox(ramp, box))
    tick = 3.5 * POINT
    marks = [
        ((left + width, bottom + value * height), (left + width + tick, bottom + value * height))
        for value in COLORBAR_TICKS
    ]
    inches = figure.dpi_scale_trans
    figure.add_artist(LineCollection(marks, colors="black", linewidths=0.8, transform=inches))
    for value in COLORBAR_TICKS:
        y = bottom + value * height
        text_at(figure, left + width + tick + 0.05, y, f"{value:.1f}", va="center", fontsize=10)
    label_x = left + width + tick + 0.1 + text_width(figure, ["0.0"], 10)
    text_at(
        figure,
        label_x,
        bottom + height / 2,
        "mean activation",
        rotation=90,
        va="center",
        ha="left",
        fontsize=10,
    )
