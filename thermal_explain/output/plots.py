"""Summary plots of an analysis run, as matplotlib figures and PNG files.

Each ``*_figure(...)`` builds a :class:`~matplotlib.figure.Figure` from plain data (lists,
arrays, tensors converted by the caller); :func:`figure_to_array` draws it once, and the
same pixels go to a PNG (:func:`write_png`) and to TensorBoard.

Figures are created without ``pyplot`` (an Agg canvas of their own), so drawing is
thread-safe, never opens a window and leaves no global figure behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from thermal_explain.errors import ConfigurationError
from thermal_explain.output.render import encode_png, write_file

__all__ = [
    "activation_area_figure",
    "class_mean_heatmap_figure",
    "confidence_histogram_figure",
    "faithfulness_curves_figure",
    "figure_to_array",
    "write_png",
]

DEFAULT_DPI = 120


def _new_figure(
    width: float, height: float, dpi: int = DEFAULT_DPI, layout: str | None = None
) -> Figure:
    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


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
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


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
    figure = _new_figure(3.2 * len(class_names), 3.0)
    axes = figure.subplots(1, len(class_names), squeeze=False)[0]
    edges = np.linspace(0.0, 1.0, bins + 1)
    for index, (axis, name) in enumerate(zip(axes, class_names, strict=True)):
        chosen = values[classes == index]
        axis.hist(chosen, bins=edges, color=f"C{index % 10}", edgecolor="white")
        mean = f", mean {chosen.mean():.2f}" if chosen.size else ""
        axis.set_title(f"{name} (n={chosen.size}{mean})", fontsize=9)
        axis.set_xlim(0.0, 1.0)
        axis.set_xlabel("confidence")
    axes[0].set_ylabel("images")
    figure.tight_layout()
    return figure


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
    figure = _new_figure(max(4.0, 1.4 * len(names)), 3.2)
    axis = figure.subplots()
    axis.boxplot(data, showmeans=True)
    axis.set_xticks(range(1, len(names) + 1), [_short_layer(name) for name in names])
    axis.tick_params(axis="x", labelsize=8, labelrotation=20)
    axis.set_ylim(0.0, 1.0)
    axis.set_ylabel("activation area")
    axis.set_title("Share of the image each layer's map activates (>= 0.5)", fontsize=9)
    figure.tight_layout()
    return figure


def _short_layer(name: str) -> str:
    """``backbone.layer4.1.conv2`` -> ``layer4.1.conv2`` for axis labels."""
    return name.removeprefix("backbone.")


# --------------------------------------------------------------------------- class means


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
    rows, cols = maps.shape[:2]
    width, height = 2.0 * cols + 0.8, 2.0 * rows + 0.3
    figure = _new_figure(width, height)
    # Fixed margins in inches, not a layout engine: laying out costs more than drawing.
    left, right, top, bottom = 0.3 / width, 1.0 - 0.75 / width, 1.0 - 0.3 / height, 0.1 / height
    axes = figure.subplots(
        rows,
        cols,
        squeeze=False,
        gridspec_kw={
            "left": left,
            "right": right,
            "top": top,
            "bottom": bottom,
            "wspace": 0.08,
            "hspace": 0.08,
        },
    )
    colorbar_axis = figure.add_axes(
        (right + 0.12 / width, bottom + 0.1 * (top - bottom), 0.12 / width, 0.8 * (top - bottom))
    )
    image = None
    for row in range(rows):
        for col in range(cols):
            axis = axes[row][col]
            image = axis.imshow(maps[row, col], cmap=cmap, vmin=0.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(_short_layer(layer_names[col]), fontsize=8)
            if col == 0:
                axis.set_ylabel(class_names[row], fontsize=9)
    figure.colorbar(image, cax=colorbar_axis, label="mean activation")
    return figure


# --------------------------------------------------------------------------- faithfulness


def _curve_panel(axis: object, curves: Mapping[str, np.ndarray], title: str) -> None:
    for index, (name, values) in enumerate(curves.items()):
        fractions = np.linspace(0.0, 1.0, values.shape[1])
        mean = np.nanmean(values, axis=0)
        spread = np.nanstd(values, axis=0)
        area = float(((mean[1:] + mean[:-1]) / 2 * np.diff(fractions)).sum())
        color = f"C{index % 10}"
        axis.plot(fractions, mean, color=color, label=f"{_short_layer(name)} (AUC {area:.3f})")
        axis.fill_between(fractions, mean - spread, mean + spread, color=color, alpha=0.15)
    axis.set_xlim(0.0, 1.0)
    axis.set_ylim(0.0, 1.0)
    axis.set_xlabel("fraction of pixels perturbed")
    axis.set_title(title, fontsize=9)
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
    figure = _new_figure(9.0, 3.4)
    left, right = figure.subplots(1, 2)
    _curve_panel(left, panels["deletion"], "Deletion (lower area = more faithful)")
    _curve_panel(right, panels["insertion"], "Insertion (higher area = more faithful)")
    left.set_ylabel("target-class probability")
    figure.tight_layout()
    return figure
