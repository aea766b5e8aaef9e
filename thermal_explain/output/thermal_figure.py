"""300-DPI figures of temperature inputs: the original in degrees beside the overlay.

Left, the temperatures in a thermal palette (``inferno``) with a colorbar in degrees
Celsius; right, the Grad-CAM overlay with its own colorbar; the title above both. As in
:mod:`thermal_explain.output.figures`, matplotlib draws the figure once per image size, and
the rest from it: the degrees colorbar once per temperature range (each image has its own
unless ``--temperature_range`` fixes one; only that colorbar's strip is drawn again), each
title line once (lines that differ in digits only are composed). Per image the two images
are copied into their boxes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colorbar import Colorbar
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from thermal_explain.data.thermal import window_temperatures
from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.figure_parts import (
    TITLE_LINES,
    ThreadPixels,
    TitleBand,
    shared_renderer,
    title_fonts,
)
from thermal_explain.output.figures import FIGURE_DPI
from thermal_explain.output.render import colorize, encode_png
from thermal_explain.output.title_lines import TitleLineCache

THERMAL_PALETTE = "inferno"
"""Palette of the temperatures in the figure (dark = cold, bright = warm)."""

RANGE_CACHE_SIZE = 8
"""Degrees colorbars (one per image size and temperature range) a renderer keeps drawn."""

Box = tuple[int, int, int, int]
"""``(left, top, right, bottom)`` in pixels."""


@dataclass
class _Template:
    """The figure of one image size drawn once, and where the per-image parts go.

    ``strip`` is the box that holds the degrees colorbar with its ticks and label, redrawn
    per temperature range over ``strip_background``; ``pixels`` is never changed.
    """

    canvas: FigureCanvasAgg
    title: TitleBand
    degrees: Colorbar
    strip: Box
    strip_background: object
    boxes: tuple[Box, Box]
    pixels: np.ndarray


class ThermalFigureRenderer:
    """Renders two-panel temperature figures at ``dpi``; thread-safe like ``FigureRenderer``.

    Args:
        lut: ``(256, 3)`` uint8 RGB colormap of the heatmaps (their colorbar shows 0..1).
        dpi: figure resolution.
        image_inches: length of each image box's longer side.
        cache_size: how many image sizes are kept drawn.
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
        self._templates: OrderedDict[tuple[int, int], _Template] = OrderedDict()
        self._strips: OrderedDict[tuple[tuple[int, int], float, float], np.ndarray]
        self._strips = OrderedDict()
        self._lines = TitleLineCache()
        self._fonts = title_fonts()
        self._lock = threading.Lock()
        self._pixels = ThreadPixels(self._cache_size)

    def render(
        self,
        celsius: np.ndarray,
        window: tuple[float, float],
        overlay: np.ndarray,
        title: str,
    ) -> np.ndarray:
        """The figure's pixels as a new ``(H, W, 3)`` uint8 RGB array.

        Args:
            celsius: ``(h, w)`` degrees Celsius (NaN drawn as the cold end).
            window: the degrees at the two ends of the palette.
            overlay: ``(h, w, 3)`` uint8 RGB Grad-CAM overlay.
            title: the figure's title (two lines).
        """
        return self._draw(celsius, window, overlay, title).copy()

    def render_png(
        self, celsius: np.ndarray, window: tuple[float, float], overlay: np.ndarray, title: str
    ) -> bytes:
        """The figure as PNG bytes tagged with the renderer's DPI."""
        return encode_png(self._draw(celsius, window, overlay, title), dpi=self.dpi)

    def _draw(
        self, celsius: np.ndarray, window: tuple[float, float], overlay: np.ndarray, title: str
    ) -> np.ndarray:
        """This thread's pixels of the figure, drawn in place (see :meth:`render`)."""
        low, high = float(window[0]), float(window[1])
        box = _box_size(overlay.shape[:2], self._long_side)
        with self._lock:
            template = self._template(box)
            strip = self._strip(box, template, (round(low, 2), round(high, 2)))
            lines = template.title.lines_of(title, template.canvas, self._lines, box)
        pixels = self._pixels.copy_of(template, template.pixels)
        template.title.paste(pixels, lines)
        left, top, right, bottom = template.strip
        pixels[top:bottom, left:right] = strip
        thermal = colorize(window_temperatures(celsius, (low, high)), self._palette_lut)
        for (left, top, right, bottom), image in zip(
            template.boxes, (thermal, overlay), strict=True
        ):
            size = (right - left, bottom - top)
            method = cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_LINEAR
            pixels[top:bottom, left:right] = cv2.resize(image, size, interpolation=method)
        return pixels

    def _template(self, box: tuple[int, int]) -> _Template:
        template = self._templates.get(box)
        if template is None:
            template = self._templates[box] = self._build(box)
            while len(self._templates) > self._cache_size:
                evicted, _ = self._templates.popitem(last=False)
                for index in range(TITLE_LINES):
                    self._lines.drop((evicted, index))
                for key in [key for key in self._strips if key[0] == evicted]:
                    del self._strips[key]
        else:
            self._templates.move_to_end(box)
        return template

    def _strip(
        self, box: tuple[int, int], template: _Template, window: tuple[float, float]
    ) -> np.ndarray:
        """The degrees colorbar's strip for ``window``, drawn by matplotlib once per range."""
        key = (box, *window)
        strip = self._strips.get(key)
        if strip is not None:
            self._strips.move_to_end(key)
            return strip
        canvas = template.canvas
        canvas.restore_region(template.strip_background)
        template.degrees.mappable.set_clim(*window)
        canvas.figure.draw_artist(template.degrees.ax)
        left, top, right, bottom = template.strip
        strip = self._strips[key] = np.asarray(canvas.buffer_rgba())[
            top:bottom, left:right, :3
        ].copy()
        while len(self._strips) > RANGE_CACHE_SIZE:
            self._strips.popitem(last=False)
        return strip

    def _build(self, box: tuple[int, int]) -> _Template:
        """Draw the figure of this image size once, its degrees colorbar left out."""
        canvas, image_axes, degrees, title = self._layout(box)
        height = canvas.get_width_height()[1]
        boxes = [_pixel_box(axes, height) for axes in image_axes]
        pad = round(0.1 * self.dpi)  # the end tick labels stand out of the colorbar
        strip = (boxes[0][2], boxes[0][1] - pad, boxes[1][0], height)
        degrees.ax.set_visible(False)
        canvas.draw()
        degrees.ax.set_visible(True)
        left, top, right, bottom = strip
        strip_background = canvas.copy_from_bbox(
            Bbox.from_extents(left, height - bottom, right, height - top)
        )
        title.keep_background(canvas, strip[1])
        pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        return _Template(
            canvas, title, degrees, strip, strip_background, (boxes[0], boxes[1]), pixels
        )

    def _layout(
        self, box: tuple[int, int], window: tuple[float, float] = (0.0, 1.0)
    ) -> tuple[FigureCanvasAgg, list[Axes], Colorbar, TitleBand]:
        """Title band over [temperatures | degrees bar | overlay | activation bar]."""
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
        image_axes, colorbars = [], []
        for left, colormap, norm, label in panels:
            axes = figure.add_axes(area(left, box_width))
            axes.set_axis_off()
            image_axes.append(axes)
            bar_axes = figure.add_axes(area(left + box_width + gap, bar_width))
            colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=bar_axes)
            colorbar.set_label(label, fontsize=7)
            colorbar.ax.tick_params(labelsize=6, length=2, width=0.5)
            colorbar.outline.set_linewidth(0.5)
            colorbars.append(colorbar)
        title = TitleBand(figure, 0.5, self._fonts)
        return canvas, image_axes, colorbars[0], title


def _pixel_box(axes: Axes, height: int) -> Box:
    """``axes``' box in whole pixels, rows counted from the top."""
    extent = axes.get_window_extent()
    return (
        round(extent.x0),
        height - round(extent.y1),
        round(extent.x1),
        height - round(extent.y0),
    )


def _box_size(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    """``(width, height)`` of an image box: the image's aspect, longer side ``long_side``."""
    height, width = shape[0], shape[1]
    if width >= height:
        return long_side, max(8, round(long_side * height / width))
    return max(8, round(long_side * width / height)), long_side


def thermal_figure_png(
    celsius: np.ndarray,
    window: tuple[float, float],
    overlay: np.ndarray,
    title: str,
    lut: np.ndarray,
) -> bytes:
    """A temperature figure as PNG, from this process's renderer for the heatmap colormap."""
    renderer = shared_renderer(ThermalFigureRenderer, lut)
    return renderer.render_png(celsius, window, overlay, title)
