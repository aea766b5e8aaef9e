"""Summary plots of an analysis run, as matplotlib figures and PNG files.

Each ``*_figure(...)`` builds a :class:`~matplotlib.figure.Figure` from plain data (lists,
arrays, tensors converted by the caller); :func:`figure_to_array` draws it once, and the
same pixels go to a PNG (:func:`write_png`) and to TensorBoard.

Figures are created without ``pyplot`` (an Agg canvas of their own), so drawing is
thread-safe, never opens a window and leaves no global figure behind. They are laid out in
inches (:mod:`~thermal_explain.output.plot_layout`), not by a layout engine, their text is
drawn by a fast canvas (:mod:`~thermal_explain.output.plot_canvas`), and they use as few
Axes and artists as they can, since each one costs its tick machinery or its own draw: the
histogram bars of a panel are one collection, a box plot is four artists, and the class-mean
maps (:mod:`~thermal_explain.output.class_means_figure`) are pixels placed in the figure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cbook import boxplot_stats
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from thermal_explain.errors import ConfigurationError
from thermal_explain.output.class_means_figure import class_mean_heatmap_figure
from thermal_explain.output.plot_layout import (
    DEFAULT_DPI,
    LABEL_PAD,
    LINE,
    POINT,
    TICKS,
    TITLE,
    axes_at,
    label_axes,
    new_figure,
    short_layer,
    text_width,
)
from thermal_explain.output.render import encode_png, write_file

__all__ = [
    "activation_area_figure",
    "class_mean_heatmap_figure",
    "confidence_histogram_figure",
    "faithfulness_curves_figure",
    "figure_to_array",
    "write_png",
]


def write_png(pixels: np.ndarray, path: str | os.PathLike[str], dpi: int = DEFAULT_DPI) -> Path:
    """Write an ``(H, W, 3)`` rendered figure (:func:`figure_to_array`) as a PNG.

    The fast encoder of the overlays, not matplotlib's: a summary figure is drawn once and
    the same pixels serve the file and TensorBoard.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(str(path), encode_png(pixels, dpi=dpi))
    return path


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render ``figure`` to an RGB image (e.g. for ``SummaryWriter.add_image``).

    Args:
        figure: the figure to render.

    Returns:
        ``(H, W, 3)`` uint8 array, ``H, W = figsize * figure.dpi``.
    """
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return cv2.cvtColor(np.asarray(canvas.buffer_rgba()), cv2.COLOR_RGBA2RGB)


def _as_1d(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ConfigurationError(
            f"Expected argument `{name}` to be a flat sequence but got shape {array.shape}"
        )
    return array


# --------------------------------------------------------------------------- confidence


def confidence_histogram_figure(
    confidences: Sequence[float] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    *,
    bins: int = 20,
) -> Figure:
    """Histogram of the prediction confidence, one panel per predicted class.

    Args:
        confidences: ``(N,)`` probability of the predicted class per image.
        predicted: ``(N,)`` predicted class index per image.
        class_names: ``K`` class names (panel titles).
        bins: number of bins over ``[0, 1]``.

    Returns:
        A figure ``3.2 * K`` by ``3`` inches.
    """
    values = _as_1d("confidences", confidences)
    classes = np.asarray(predicted, dtype=np.int64).reshape(-1)
    if classes.shape != values.shape:
        raise ConfigurationError(
            f"Expected arguments `confidences` and `predicted` to have the same length but "
            f"got {values.shape[0]} and {classes.shape[0]}"
        )
    if not class_names:
        raise ConfigurationError("Expected argument `class_names` to name at least one class")
    edges = np.linspace(0.0, 1.0, bins + 1)
    groups = [values[classes == index] for index in range(len(class_names))]
    counts = [np.histogram(group, edges)[0] for group in groups]
    highest = [max(1, int(count.max(initial=0))) for count in counts]
    figure = new_figure(3.2 * len(class_names), 3.0)
    numbers = text_width(figure, [str(top) for top in highest], 10)
    left, gap = TICKS + numbers + LABEL_PAD + LINE + 0.05, TICKS + numbers + 0.3
    bottom = TICKS + LINE + LABEL_PAD + LINE + 0.05
    width = (figure.get_figwidth() - left - 0.2 - gap * (len(class_names) - 1)) / len(class_names)
    for index, name in enumerate(class_names):
        axis = axes_at(figure, left + index * (width + gap), bottom, width, 3.0 - bottom - TITLE)
        _bars(axis, edges, counts[index], f"C{index % 10}")
        axis.set_xlim(0.0, 1.0)
        axis.set_ylim(0.0, highest[index] * 1.05)
        axis.yaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
        mean = f", mean {groups[index].mean():.2f}" if groups[index].size else ""
        label_axes(
            axis,
            title=f"{name} (n={groups[index].size}{mean})",
            xlabel="confidence",
            ylabel="images" if index == 0 else None,
            numbers=numbers,
        )
    return figure


def _bars(axis: Axes, edges: np.ndarray, counts: np.ndarray, color: str) -> None:
    """Histogram bars as one collection (white outlines), not one patch per bin."""
    boxes = [
        ((low, 0.0), (low, count), (high, count), (high, 0.0))
        for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)
        if count
    ]
    axis.add_collection(PolyCollection(boxes, facecolors=color, edgecolors="white"))


# --------------------------------------------------------------------------- activation area


def activation_area_figure(areas: Mapping[str, Sequence[float] | np.ndarray]) -> Figure:
    """Box plot of the activation area (share of pixels >= 0.5) per layer.

    Args:
        areas: layer name -> ``(N,)`` activation areas in ``[0, 1]``.

    Returns:
        A figure ``max(4, 1.4 * L)`` by ``3.2`` inches for ``L`` layers.
    """
    if not areas:
        raise ConfigurationError("Expected argument `areas` to hold at least one layer")
    names = list(areas)
    data = [_as_1d(f"areas[{name!r}]", areas[name]) for name in names]
    labels = [short_layer(name) for name in names]
    width, height = max(4.0, 1.4 * len(names)), 3.2
    figure = new_figure(width, height)
    # Tick labels turned by 20 degrees: as high as sin(20) of the longest, plus a line.
    longest = text_width(figure, labels, 8)
    bottom = TICKS + 0.342 * longest + 0.94 * 8 * POINT + 0.1
    numbers = text_width(figure, ["0.0"], 10)
    left = TICKS + numbers + LABEL_PAD + LINE + 0.05
    axis = axes_at(figure, left, bottom, width - left - 0.2, height - bottom - TITLE)
    _box_plot(axis, data)
    axis.set_xticks(range(1, len(names) + 1), labels)
    axis.tick_params(axis="x", labelsize=8, labelrotation=20)
    axis.set_ylim(0.0, 1.0)
    label_axes(
        axis,
        title="Share of the image each layer's map activates (>= 0.5)",
        ylabel="activation area",
        numbers=numbers,
    )
    return figure


def _box_plot(axis: Axes, data: Sequence[np.ndarray]) -> None:
    """``Axes.boxplot(data, showmeans=True)`` drawn as four artists, not eight per box.

    Boxes span the quartiles, whiskers reach the furthest values within 1.5 times the
    box's height, with the median (orange line), mean (green triangle) and the values
    beyond the whiskers (open circles) of each sample.
    """
    half = float(np.clip(0.15 * (len(data) - 1), 0.15, 0.5)) / 2  # boxplot's default width
    frames, medians, means, outliers = [], [], [], []
    for position, stats in enumerate(boxplot_stats([list(values) for values in data]), 1):
        low, high, box, cap = position - half, position + half, stats["q1"], stats["q3"]
        frames.append([(low, box), (high, box), (high, cap), (low, cap), (low, box)])
        for end in (stats["whislo"], stats["whishi"]):
            frames.append([(position, box if end < box else cap), (position, end)])
            frames.append([(position - half / 2, end), (position + half / 2, end)])
        medians.append([(low, stats["med"]), (high, stats["med"])])
        means.append((position, stats["mean"]))
        outliers += [(position, value) for value in stats["fliers"]]
    axis.add_collection(LineCollection(frames, colors="black", linewidths=1.0))
    axis.add_collection(LineCollection(medians, colors="C1", linewidths=1.0))
    for points, style in ((means, {"marker": "^", "color": "C2"}), (outliers, BOX_OUTLIER)):
        if points:
            x, y = zip(*points, strict=True)
            axis.plot(x, y, linestyle="none", markersize=6, **style)
    axis.set_xlim(0.5, len(data) + 0.5)


BOX_OUTLIER = {"marker": "o", "markerfacecolor": "none", "markeredgecolor": "black"}


# --------------------------------------------------------------------------- faithfulness


def _curve_panel(axis: Axes, curves: Mapping[str, np.ndarray], title: str) -> None:
    for index, (name, values) in enumerate(curves.items()):
        fractions = np.linspace(0.0, 1.0, values.shape[1])
        mean = np.nanmean(values, axis=0)
        spread = np.nanstd(values, axis=0)
        area = float(((mean[1:] + mean[:-1]) / 2 * np.diff(fractions)).sum())
        color = f"C{index % 10}"
        axis.plot(fractions, mean, color=color, label=f"{short_layer(name)} (AUC {area:.3f})")
        axis.fill_between(fractions, mean - spread, mean + spread, color=color, alpha=0.15)
    axis.set_xlim(0.0, 1.0)
    axis.set_ylim(0.0, 1.0)
    label_axes(axis, title=title, xlabel="fraction of pixels perturbed")
    axis.legend(fontsize=7, loc="best")


def faithfulness_curves_figure(
    deletion: Mapping[str, np.ndarray | Sequence[Sequence[float]]],
    insertion: Mapping[str, np.ndarray | Sequence[Sequence[float]]],
) -> Figure:
    """Mean deletion and insertion curves per layer (shaded: +- one standard deviation).

    The fraction axis is taken as evenly spaced from 0 to 1 over each curve's points;
    the legend gives the area under each mean curve (trapezoid rule).

    Args:
        deletion: layer name -> ``(N, S + 1)`` deletion curves (target probability).
        insertion: layer name -> ``(N, S + 1)`` insertion curves.

    Returns:
        A ``9`` by ``3.4`` inch figure with two panels.
    """
    panels = {}
    for label, curves in (("deletion", deletion), ("insertion", insertion)):
        if not curves:
            raise ConfigurationError(f"Expected argument `{label}` to hold at least one layer")
        arrays = {name: np.asarray(values, dtype=np.float64) for name, values in curves.items()}
        for name, values in arrays.items():
            if values.ndim != 2 or values.shape[1] < 2:
                raise ConfigurationError(
                    f"Expected `{label}[{name!r}]` to have shape (N, steps + 1) but got "
                    f"{values.shape}"
                )
        panels[label] = arrays
    width, height = 9.0, 3.4
    figure = new_figure(width, height)
    numbers = text_width(figure, ["0.0"], 10)
    left, gap = TICKS + numbers + LABEL_PAD + LINE + 0.05, TICKS + numbers + 0.35
    bottom = TICKS + LINE + LABEL_PAD + LINE + 0.05
    panel = (width - left - 0.2 - gap) / 2
    axes = [
        axes_at(figure, left + i * (panel + gap), bottom, panel, height - bottom - TITLE)
        for i in (0, 1)
    ]
    _curve_panel(axes[0], panels["deletion"], "Deletion (lower area = more faithful)")
    _curve_panel(axes[1], panels["insertion"], "Insertion (higher area = more faithful)")
    label_axes(axes[0], ylabel="target-class probability", numbers=numbers)
    return figure
