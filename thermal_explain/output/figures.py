"""300-DPI matplotlib overlay figures (title, image, colorbar), rendered fast.

A fresh 300-DPI figure per image spends most of its time laying out and drawing parts that
never change (axes box, colorbar, ticks, label) and encoding a 1.5-megapixel PNG. Here
matplotlib lays out and draws one figure per image-box size, once; its pixels are kept.
Per image, the overlay is resized into the image box the way matplotlib's ``imshow``
resamples it (see :func:`box_interpolation`) and the title lines are pasted in: matplotlib
draws each title line once and it is reused while it repeats (the layer line for every image,
the prediction line for every layer of an image), since drawing text glyph by glyph is the
slowest part left; a prediction line that changes only in its digits is composed from drawings
of the digits (:mod:`thermal_explain.output.title_lines`). The pixels go to the fast PNG
encoder tagged 300 DPI. The result matches the plain matplotlib rendering of the same figure
(``imshow`` and a full draw) pixel for pixel, up to resampling rounding where the image is
smoothed. One renderer serves every thread of a process (:func:`shared_figure_renderer`).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from thermal_explain.output.figure_parts import (
    TITLE_LINES,
    ThreadPixels,
    TitleBand,
    shared_renderer,
    title_fonts,
)
from thermal_explain.output.png import encode_png
from thermal_explain.output.title_lines import TitleLineCache

FIGURE_DPI = 300


# Labels in scripts the installed fonts lack render as boxes; do not flood the log for it.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)


def figure_title(
    layer: str,
    predicted_label: str,
    confidence: float,
    target_label: str | None = None,
    true_label: str | None = None,
) -> str:
    """Two title lines: the layer, then the prediction with its confidence."""
    line = f"Predicted: {predicted_label} ({confidence:.1%})"
    if target_label is not None and target_label != predicted_label:
        line += f" | explains: {target_label}"
    if true_label is not None:
        line += f" | true: {true_label}"
    return f"Grad-CAM {layer}\n{line}"


@dataclass
class _Template:
    """A figure drawn once for one image-box size, and where the per-image parts go.

    ``pixels`` holds the drawn figure as RGB and is never changed: every thread renders into
    a copy of its own, overwriting the title rows and the image box from image to image.
    """

    canvas: FigureCanvasAgg
    title: TitleBand
    box: tuple[int, int, int, int]
    pixels: np.ndarray


class FigureRenderer:
    """Renders overlay figures at ``dpi`` with a colorbar of the given lookup table.

    Thread-safe: threads share what matplotlib drew (the figure of each size, the title lines),
    drawn under a lock, and each renders into pixels of its own, so one renderer per process
    (:func:`shared_figure_renderer`) draws every figure size and title line once.

    Args:
        lut: ``(256, 3)`` uint8 RGB colormap table (the colorbar shows it on 0..1).
        dpi: figure resolution.
        image_inches: length of the image box's longer side.
        cache_size: how many figure sizes are kept drawn (least recently used dropped).
        colorbar_label: the colorbar's label.
    """

    def __init__(
        self,
        lut: np.ndarray,
        *,
        dpi: int = FIGURE_DPI,
        image_inches: float = 3.2,
        cache_size: int = 4,
        colorbar_label: str = "Grad-CAM activation",
    ) -> None:
        self.dpi = dpi
        self.colorbar_label = colorbar_label
        self._colormap = ListedColormap(np.asarray(lut, dtype=np.float64) / 255.0)
        self._long_side = max(16, round(image_inches * dpi))
        self._cache_size = max(1, cache_size)
        self._templates: OrderedDict[tuple[int, int], _Template] = OrderedDict()
        self._lines = TitleLineCache()
        self._fonts = title_fonts()
        self._lock = threading.Lock()
        self._pixels = ThreadPixels(self._cache_size)

    def render(self, overlay: np.ndarray, title: str) -> np.ndarray:
        """The figure's pixels as a new ``(H, W, 3)`` uint8 RGB array for an RGB ``overlay``."""
        return self._draw(overlay, title).copy()

    def render_png(self, overlay: np.ndarray, title: str) -> bytes:
        """The figure as PNG bytes tagged with the renderer's DPI."""
        return encode_png(self._draw(overlay, title), dpi=self.dpi)

    def _draw(self, overlay: np.ndarray, title: str) -> np.ndarray:
        """This thread's pixels of the figure of this size, with this image and title."""
        box_size = _box_size(overlay.shape[:2], self._long_side)
        with self._lock:
            template = self._template(box_size)
            lines = template.title.lines_of(title, template.canvas, self._lines, box_size)
        pixels = self._pixels.copy_of(template, template.pixels)
        template.title.paste(pixels, lines)
        left, top, right, bottom = template.box
        _resize_into(overlay, pixels[top:bottom, left:right])
        return pixels

    def _template(self, box_size: tuple[int, int]) -> _Template:
        template = self._templates.get(box_size)
        if template is None:
            template = self._build(box_size)
            self._templates[box_size] = template
            while len(self._templates) > self._cache_size:
                evicted, _ = self._templates.popitem(last=False)
                for index in range(TITLE_LINES):
                    self._lines.drop((evicted, index))
        else:
            self._templates.move_to_end(box_size)
        return template

    def _build(self, box_size: tuple[int, int]) -> _Template:
        """Draw the figure without image and title once; keep its pixels and title band."""
        canvas, image_axes, title = self._layout(box_size)
        canvas.draw()
        height = canvas.get_width_height()[1]
        extent = image_axes.get_window_extent()
        left, right = round(extent.x0), round(extent.x1)
        top, bottom = height - round(extent.y1), height - round(extent.y0)
        title.keep_background(canvas, top)
        pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        return _Template(canvas, title, (left, top, right, bottom), pixels)

    def _layout(self, box_size: tuple[int, int]) -> tuple[FigureCanvasAgg, Axes, TitleBand]:
        """Title band, image box and colorbar in whole pixels (nothing drawn yet)."""
        box_width, box_height = box_size
        dpi = self.dpi
        margin, title_band = round(0.12 * dpi), round(0.5 * dpi)
        gap, bar_width, bar_labels = round(0.15 * dpi), round(0.16 * dpi), round(0.62 * dpi)
        width = max(margin + box_width + gap + bar_width + bar_labels, round(3.2 * dpi))
        height = title_band + box_height + margin
        figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
        canvas = FigureCanvasAgg(figure)

        def area(left: int, bottom: int, w: int, h: int) -> list[float]:
            return [left / width, bottom / height, w / width, h / height]

        image_axes = figure.add_axes(area(margin, margin, box_width, box_height))
        image_axes.set_axis_off()
        bar_axes = figure.add_axes(area(margin + box_width + gap, margin, bar_width, box_height))
        self._colorbar(figure, bar_axes)
        title = TitleBand(figure, (margin + box_width / 2) / width, self._fonts)
        return canvas, image_axes, title

    def _colorbar(self, figure: Figure, axes: Axes) -> None:
        """The colormap on 0..1 with its label, drawn in ``axes``."""
        mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=self._colormap)
        colorbar = figure.colorbar(mappable, cax=axes)
        colorbar.set_label(self.colorbar_label, fontsize=7)
        colorbar.ax.tick_params(labelsize=6, length=2, width=0.5)
        colorbar.outline.set_linewidth(0.5)


def box_interpolation(source: tuple[int, int], box: tuple[int, int]) -> int:
    """The OpenCV interpolation that resamples like matplotlib's ``imshow`` by default.

    Matplotlib shows an image enlarged more than three times, or exactly once or twice,
    with nearest-neighbour sampling (pixel centres), and otherwise smooths it (a Hanning
    filter), which bilinear enlargement and area averaging for shrinking match within a
    few levels on images as smooth as overlays.

    Args:
        source: ``(height, width)`` of the image.
        box: ``(height, width)`` of the box it is drawn into.
    """

    def sharp(length: int, target: int) -> bool:
        return target > 3 * length or target in (length, 2 * length)

    if all(sharp(length, target) for length, target in zip(source, box, strict=True)):
        return cv2.INTER_NEAREST_EXACT
    return cv2.INTER_AREA if box[1] < source[1] else cv2.INTER_LINEAR


def _resize_into(image: np.ndarray, box: np.ndarray) -> None:
    """Draw ``image`` (H, W, 3) into the ``box`` view (h, w, 3) as :func:`box_interpolation` says.

    Enlarged with nearest neighbours, every image row becomes whole box rows: it is cheaper to
    widen the rows once and copy each to its box rows than to resample the box.
    """
    height, width = box.shape[:2]
    method = box_interpolation(image.shape[:2], (height, width))
    if method != cv2.INTER_NEAREST_EXACT:
        box[:] = cv2.resize(image, (width, height), interpolation=method)
        return
    wide = cv2.resize(image, (width, image.shape[0]), interpolation=method)
    box[:] = wide[_nearest_rows(image.shape[0], height)]


@lru_cache(maxsize=16)
def _nearest_rows(source: int, target: int) -> np.ndarray:
    """The source row of each of ``target`` rows, as OpenCV's exact nearest neighbour picks it."""
    rows = np.arange(source, dtype=np.float32).reshape(source, 1)
    picked = cv2.resize(rows, (1, target), interpolation=cv2.INTER_NEAREST_EXACT)
    return picked.reshape(target).astype(np.intp)


def _box_size(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``(width, height)`` of the image box: the image's aspect, longer side ``long_side``."""
    height, width = shape
    if width >= height:
        return long_side, max(8, round(long_side * height / width))
    return max(8, round(long_side * width / height)), long_side


def shared_figure_renderer(lut: np.ndarray) -> FigureRenderer:
    """This process's overlay-figure renderer for the colormap ``lut`` (default settings)."""
    return shared_renderer(FigureRenderer, lut)
