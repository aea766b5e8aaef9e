"""300-DPI figures of temperature inputs: the original in degrees beside the overlay.

Left, the temperatures in a thermal palette (``inferno``) with a colorbar in degrees
Celsius; right, the Grad-CAM overlay with its own colorbar; the title above both. As in
:mod:`thermal_explain.output.figures`, the static parts (boxes, colorbars, ticks, labels)
are drawn once per image size and temperature range and their pixels kept; per image
only the title is drawn again and the two images are copied into their boxes. With a
fixed ``--temperature_range`` every image shares one drawn figure.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text

from thermal_explain.data.thermal import window_temperatures
from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figures import FIGURE_DPI, _title_fonts
from thermal_explain.output.render import colorize, encode_png

THERMAL_PALETTE = "inferno"
"""Palette of the temperatures in the figure (dark = cold, bright = warm)."""

Box = tuple[int, int, int, int]


@dataclass
class _Template:
    canvas: FigureCanvasAgg
    title: Text
    background: object
    boxes: tuple[Box, Box]


class ThermalFigureRenderer:
    """Renders two-panel temperature figures at ``dpi``; not thread-safe.

    Args:
        lut: ``(256, 3)`` uint8 RGB colormap of the heatmaps (their colorbar shows 0..1).
        dpi: figure resolution.
        image_inches: length of each image box's longer side.
        cache_size: how many (size, range) figures are kept drawn.
    """

    def __init__(
        self,
        lut: np.ndarray,
        *,
        dpi: int = FIGURE_DPI,
        image_inches: float = 2.6,
        cache_size: int = 4,
    ) -> None:
        self.dpi = dpi
        self._heat = ListedColormap(np.asarray(lut, dtype=np.float64) / 255.0)
        self._palette_lut = get_colormap(THERMAL_PALETTE)
        self._palette = ListedColormap(self._palette_lut.astype(np.float64) / 255.0)
        self._long_side = max(16, round(image_inches * dpi))
        self._cache_size = max(1, cache_size)
        self._templates: OrderedDict[tuple[object, ...], _Template] = OrderedDict()
        self._fonts = _title_fonts()

    def render(
        self,
        celsius: np.ndarray,
        window: tuple[float, float],
        overlay: np.ndarray,
        title: str,
    ) -> np.ndarray:
        """The figure's ``(H, W, 3)`` uint8 RGB pixels.

        Args:
            celsius: ``(h, w)`` degrees Celsius (NaN drawn as the cold end).
            window: the degrees at the two ends of the palette.
            overlay: ``(h, w, 3)`` uint8 RGB Grad-CAM overlay.
            title: the figure's title (two lines).
        """
        low, high = float(window[0]), float(window[1])
        box = _box_size(overlay.shape[:2], self._long_side)
        key = (box, round(low, 2), round(high, 2))
        template = self._template(key, box, (low, high))
        template.canvas.restore_region(template.background)
        template.title.set_text(title)
        template.canvas.figure.draw_artist(template.title)
        pixels = cv2.cvtColor(np.asarray(template.canvas.buffer_rgba()), cv2.COLOR_RGBA2RGB)
        thermal = colorize(window_temperatures(celsius, (low, high)), self._palette_lut)
        for (left, top, right, bottom), image in zip(
            template.boxes, (thermal, overlay), strict=True
        ):
            size = (right - left, bottom - top)
            method = cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_LINEAR
            pixels[top:bottom, left:right] = cv2.resize(image, size, interpolation=method)
        return pixels

    def render_png(
        self, celsius: np.ndarray, window: tuple[float, float], overlay: np.ndarray, title: str
    ) -> bytes:
        """The figure as PNG bytes tagged with the renderer's DPI."""
        return encode_png(self.render(celsius, window, overlay, title), dpi=self.dpi)

    def _template(
        self, key: tuple[object, ...], box: tuple[int, int], window: tuple[float, float]
    ) -> _Template:
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._build(box, window)
            while len(self._templates) > self._cache_size:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return template

    def _build(self, box: tuple[int, int], window: tuple[float, float]) -> _Template:
        """Title band over [temperatures | degrees bar | overlay | activation bar], drawn once."""
        box_width, box_height = box
        dpi = self.dpi
        margin, title_band = round(0.12 * dpi), round(0.55 * dpi)
        gap, bar_width, bar_labels = round(0.12 * dpi), round(0.14 * dpi), round(0.62 * dpi)
        panel = box_width + gap + bar_width + bar_labels
        width = margin + 2 * panel + margin
        height = title_band + box_height + margin
        figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
        canvas = FigureCanvasAgg(figure)

        def area(left: int, w: int) -> list[float]:
            return [left / width, margin / height, w / width, box_height / height]

        panels = (
            (margin, self._palette, Normalize(*window), "Temperature (°C)"),
            (margin + panel, self._heat, Normalize(0.0, 1.0), "Grad-CAM activation"),
        )
        image_axes = []
        for left, colormap, norm, label in panels:
            axes = figure.add_axes(area(left, box_width))
            axes.set_axis_off()
            image_axes.append(axes)
            bar_axes = figure.add_axes(area(left + box_width + gap, bar_width))
            colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=bar_axes)
            colorbar.set_label(label, fontsize=7)
            colorbar.ax.tick_params(labelsize=6, length=2, width=0.5)
            colorbar.outline.set_linewidth(0.5)
        title = figure.text(
            0.5, 1.0 - (0.08 * dpi) / height, "", ha="center", va="top", fontsize=8,
            family=self._fonts,
        )  # fmt: skip
        canvas.draw()
        background = canvas.copy_from_bbox(figure.bbox)
        canvas_height = canvas.get_width_height()[1]
        boxes = []
        for axes in image_axes:
            extent = axes.get_window_extent()
            boxes.append(
                (
                    round(extent.x0),
                    canvas_height - round(extent.y1),
                    round(extent.x1),
                    canvas_height - round(extent.y0),
                )
            )
        return _Template(canvas, title, background, (boxes[0], boxes[1]))


def _box_size(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    """``(width, height)`` of an image box: the image's aspect, longer side ``long_side``."""
    height, width = shape[0], shape[1]
    if width >= height:
        return long_side, max(8, round(long_side * height / width))
    return max(8, round(long_side * width / height)), long_side


_local = threading.local()


def thermal_figure_png(
    celsius: np.ndarray,
    window: tuple[float, float],
    overlay: np.ndarray,
    title: str,
    lut: np.ndarray,
) -> bytes:
    """A temperature figure as PNG, from a renderer kept per thread (and heatmap colormap)."""
    key = np.ascontiguousarray(lut).tobytes()
    renderers: dict[bytes, ThermalFigureRenderer] = _local.__dict__.setdefault("renderers", {})
    renderer = renderers.get(key)
    if renderer is None:
        renderers.clear()  # one colormap's figures per thread at a time keeps memory flat
        renderer = renderers[key] = ThermalFigureRenderer(lut)
    return renderer.render_png(celsius, window, overlay, title)
