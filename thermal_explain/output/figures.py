"""300-DPI matplotlib overlay figures (title, image, colorbar), rendered fast.

A fresh 300-DPI figure per image spends most of its time laying out and drawing parts
that never change (axes box, colorbar, ticks, label) and in slow PNG compression. Here one
matplotlib figure is built per image-box size and drawn once; its pixels are kept. Per
image only the title is drawn again (``draw_artist`` on the restored background) and the
overlay, resized to the image box's exact pixel size, is copied into that box. The file
is then PNG-encoded with fast zlib settings and tagged 300 DPI.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text

from thermal_explain.output.render import encode_png

FIGURE_DPI = 300

_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Arial Unicode MS",
)

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
    """A drawn figure for one image-box size: background pixels and where the image goes."""

    canvas: FigureCanvasAgg
    title: Text
    background: object
    box: tuple[int, int, int, int]


class FigureRenderer:
    """Renders overlay figures at ``dpi`` with a colorbar of the given lookup table.

    Not thread-safe: use one renderer per thread or process.

    Args:
        lut: ``(256, 3)`` uint8 RGB colormap table (the colorbar shows it on 0..1).
        dpi: figure resolution.
        image_inches: length of the image box's longer side.
        cache_size: how many figure sizes are kept drawn (least recently used dropped).
    """

    def __init__(
        self,
        lut: np.ndarray,
        *,
        dpi: int = FIGURE_DPI,
        image_inches: float = 3.2,
        cache_size: int = 4,
    ) -> None:
        self.dpi = dpi
        self._colormap = ListedColormap(np.asarray(lut, dtype=np.float64) / 255.0)
        self._long_side = max(16, round(image_inches * dpi))
        self._cache_size = max(1, cache_size)
        self._templates: OrderedDict[tuple[int, int], _Template] = OrderedDict()
        self._fonts = _title_fonts()

    def render(self, overlay: np.ndarray, title: str) -> np.ndarray:
        """The figure's pixels as ``(H, W, 3)`` uint8 RGB for an RGB ``overlay``."""
        template = self._template(_box_size(overlay.shape[:2], self._long_side))
        template.canvas.restore_region(template.background)
        template.title.set_text(title)
        template.canvas.figure.draw_artist(template.title)
        pixels = cv2.cvtColor(np.asarray(template.canvas.buffer_rgba()), cv2.COLOR_RGBA2RGB)
        left, top, right, bottom = template.box
        size = (right - left, bottom - top)
        shrinking = size[0] < overlay.shape[1]
        method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        pixels[top:bottom, left:right] = cv2.resize(overlay, size, interpolation=method)
        return pixels

    def render_png(self, overlay: np.ndarray, title: str) -> bytes:
        """The figure as PNG bytes tagged with the renderer's DPI."""
        return encode_png(self.render(overlay, title), dpi=self.dpi)

    def _template(self, box_size: tuple[int, int]) -> _Template:
        template = self._templates.get(box_size)
        if template is None:
            template = self._build(box_size)
            self._templates[box_size] = template
            while len(self._templates) > self._cache_size:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(box_size)
        return template

    def _build(self, box_size: tuple[int, int]) -> _Template:
        """Lay out title band, image box and colorbar in whole pixels and draw it once."""
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
        mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=self._colormap)
        colorbar = figure.colorbar(mappable, cax=bar_axes)
        colorbar.set_label("Grad-CAM activation", fontsize=7)
        colorbar.ax.tick_params(labelsize=6, length=2, width=0.5)
        colorbar.outline.set_linewidth(0.5)
        title = figure.text(
            (margin + box_width / 2) / width,
            1.0 - (0.08 * dpi) / height,
            "",
            ha="center",
            va="top",
            fontsize=8,
            family=self._fonts,
        )
        canvas.draw()
        background = canvas.copy_from_bbox(figure.bbox)
        canvas_height = canvas.get_width_height()[1]
        extent = image_axes.get_window_extent()
        left, right = round(extent.x0), round(extent.x1)
        top, bottom = canvas_height - round(extent.y1), canvas_height - round(extent.y0)
        return _Template(canvas, title, background, (left, top, right, bottom))


def _box_size(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``(width, height)`` of the image box: the image's aspect, longer side ``long_side``."""
    height, width = shape
    if width >= height:
        return long_side, max(8, round(long_side * height / width))
    return max(8, round(long_side * width / height)), long_side


def _title_fonts() -> list[str]:
    """DejaVu Sans plus any installed font that covers Chinese, as fallbacks."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[name for name in _CJK_FONTS if name in installed]]
