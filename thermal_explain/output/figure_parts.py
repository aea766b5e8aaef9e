"""What the 300-DPI figure renderers share: title lines, per-thread pixels, one renderer a process.

A renderer draws with matplotlib only what changes rarely (a figure per size, a title line, a
colorbar per range), under its lock, and keeps the pixels; every thread then composes a figure
in pixels of its own (:class:`ThreadPixels`). :func:`shared_renderer` keeps one renderer per
process and colormap, so runs and threads of a process draw each part once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import TypeVar

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from thermal_explain.output.title_lines import TitleLineCache

TITLE_LINES = 2
"""Lines of a figure title; further lines are joined to the last one."""

TITLE_FONTSIZE = 8
"""Points of the title lines."""

SHARED_COLORMAPS = 2
"""Colormaps per renderer kind whose shared renderers a process keeps."""

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


class TitleBand:
    """The empty title lines of a figure, centred on ``x`` (a figure fraction), top down.

    Call :meth:`keep_background` once the figure is drawn; :meth:`draw_line` then draws
    one line's text and returns its pixel rows (line ``i`` owns the rows from its top to
    the next line's top, the last line those down to row ``bottom``).
    """

    def __init__(self, figure: Figure, x: float, fonts: Sequence[str]) -> None:
        dpi, height = figure.dpi, figure.bbox.height
        first, spacing = round(0.08 * dpi), round(1.2 * TITLE_FONTSIZE / 72 * dpi)
        self.lines: list[Text] = [
            figure.text(
                x,
                1.0 - (first + index * spacing) / height,
                "",
                ha="center",
                va="top",
                fontsize=TITLE_FONTSIZE,
                family=list(fonts),
            )
            for index in range(TITLE_LINES)
        ]
        self.rows: list[tuple[int, int]] = []
        self._background: object = None

    def keep_background(self, canvas: FigureCanvasAgg, bottom: int) -> None:
        """Note the rows of every line (the last ending at ``bottom``) and their background."""
        width, height = canvas.get_width_height()
        starts = [height - round(line.get_position()[1] * height) for line in self.lines]
        self.rows = list(zip([0, *starts[1:]], [*starts[1:], bottom], strict=True))
        self._background = canvas.copy_from_bbox(
            Bbox.from_extents(0, height - bottom, width, height)
        )

    def lines_of(
        self, title: str, canvas: FigureCanvasAgg, cache: TitleLineCache, key: Hashable
    ) -> list[np.ndarray]:
        """The pixel rows of each line of ``title``: from ``cache`` (context ``(key, line)``),
        else drawn on ``canvas``. Call it under the renderer's lock."""
        return [
            cache.get((key, index), text, partial(self.draw_line, canvas, index))
            for index, text in enumerate(split_title(title))
        ]

    def paste(self, pixels: np.ndarray, lines: Sequence[np.ndarray]) -> None:
        """Copy the rows of :meth:`lines_of` into a figure's ``pixels``."""
        for (top, bottom), rows in zip(self.rows, lines, strict=True):
            pixels[top:bottom] = rows

    def draw_line(self, canvas: FigureCanvasAgg, index: int, text: str) -> np.ndarray:
        """Line ``index`` showing ``text``, drawn by matplotlib, as new ``(rows, W, 3)`` pixels."""
        canvas.restore_region(self._background)
        line = self.lines[index]
        line.set_text(text)
        canvas.figure.draw_artist(line)
        top, bottom = self.rows[index]
        return np.asarray(canvas.buffer_rgba())[top:bottom, :, :3].copy()


def split_title(title: str) -> list[str]:
    """``title`` as exactly :data:`TITLE_LINES` lines (extra lines joined to the last)."""
    lines = title.split("\n")
    if len(lines) > TITLE_LINES:
        lines[TITLE_LINES - 1 :] = [" | ".join(lines[TITLE_LINES - 1 :])]
    return lines + [""] * (TITLE_LINES - len(lines))


def title_fonts() -> list[str]:
    """DejaVu Sans plus any installed font that covers Chinese, as fallbacks."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[name for name in _CJK_FONTS if name in installed]]


class ThreadPixels:
    """Each thread's own copy of a drawn figure's pixels, ``size`` figures kept per thread."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._local = threading.local()

    def copy_of(self, owner: object, pixels: np.ndarray) -> np.ndarray:
        """This thread's copy of ``pixels``, the drawing of ``owner`` (made on first use)."""
        copies: OrderedDict[int, tuple[object, np.ndarray]] | None
        copies = getattr(self._local, "copies", None)
        if copies is None:
            copies = self._local.copies = OrderedDict()
        kept = copies.get(id(owner))
        if kept is None or kept[0] is not owner:
            kept = copies[id(owner)] = (owner, pixels.copy())
            while len(copies) > self._size:
                copies.popitem(last=False)
        else:
            copies.move_to_end(id(owner))
        return kept[1]


Renderer = TypeVar("Renderer")
_SHARED: OrderedDict[tuple[object, bytes], object] = OrderedDict()
_SHARED_LOCK = threading.Lock()


def shared_renderer(kind: Callable[[np.ndarray], Renderer], lut: np.ndarray) -> Renderer:
    """This process's renderer ``kind(lut)`` for the colormap ``lut``, made on first use."""
    key = (kind, np.ascontiguousarray(lut, dtype=np.uint8).tobytes())
    with _SHARED_LOCK:
        renderer = _SHARED.get(key)
        if renderer is None:
            renderer = _SHARED[key] = kind(lut)
            same_kind = [entry for entry in _SHARED if entry[0] is kind]
            for entry in same_kind[: max(0, len(same_kind) - SHARED_COLORMAPS)]:
                del _SHARED[entry]
        else:
            _SHARED.move_to_end(key)
        return renderer  # type: ignore[return-value]
