"""Pixels placed straight into a matplotlib figure, without an Axes.

An ``imshow`` in an Axes costs the Axes (spines, tick machinery) and a float resampling
pass over every output pixel. :class:`RasterBox` instead scales an RGB image to a box given
in inches (nearest neighbour when enlarging, like ``imshow``'s default for maps enlarged
three times or more; area averaging when shrinking), frames it, and hands the pixels to the
renderer as they are: the same picture at a fraction of the cost. Boxes are laid out in
inches, so a figure drawn at another DPI keeps its layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from matplotlib.artist import Artist
from matplotlib.colors import Colormap

__all__ = ["RasterBox", "colorize_maps"]

PAPER = (255, 255, 255)


class RasterBox(Artist):
    """An ``(h, w, 3)`` uint8 RGB image drawn into ``box = (left, bottom, width, height)``.

    ``box`` is in inches from the figure's lower left corner. ``frame``: the RGB colour of
    a one-pixel border drawn over the box's edge, ``None`` for none.
    """

    def __init__(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        frame: tuple[int, int, int] | None = (0, 0, 0),
    ) -> None:
        super().__init__()
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (h, w, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
        self.rgb = rgb
        self.box = box
        self.frame = frame

    def pixels(self, dpi: float) -> tuple[int, int, np.ndarray]:
        """``(x, y, rgba)``: the box's lower left pixel and its ``(H, W, 4)`` content."""
        left, bottom, width, height = self.box
        x, y = round(left * dpi), round(bottom * dpi)
        columns = max(1, round((left + width) * dpi) - x)
        rows = max(1, round((bottom + height) * dpi) - y)
        source = self.rgb
        if source.shape[:2] != (rows, columns):
            shrinking = rows < source.shape[0] and columns < source.shape[1]
            method = cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST
            source = cv2.resize(source, (columns, rows), interpolation=method)
        rgba = np.empty((rows, columns, 4), np.uint8)
        rgba[..., :3] = source
        rgba[..., 3] = 255
        if self.frame is not None:
            for edge in (rgba[0], rgba[-1], rgba[:, 0], rgba[:, -1]):
                edge[:, :3] = self.frame
        return x, y, rgba

    def draw(self, renderer: object) -> None:
        if not self.get_visible():
            return
        x, y, rgba = self.pixels(self.figure.dpi)  # type: ignore[union-attr]
        gc = renderer.new_gc()  # type: ignore[attr-defined]
        renderer.draw_image(gc, x, y, rgba[::-1])  # type: ignore[attr-defined]
        gc.restore()
        self.stale = False


def colorize_maps(
    maps: np.ndarray | Sequence[np.ndarray], colormap: Colormap, empty: tuple[int, int, int] = PAPER
) -> np.ndarray:
    """``(..., H, W)`` maps in ``[0, 1]`` as ``(..., H, W, 3)`` uint8 RGB through ``colormap``.

    Values are quantized as ``imshow`` does with ``vmin=0, vmax=1``; NaN pixels (no image
    to average) get the ``empty`` colour.
    """
    values = np.asarray(maps, dtype=np.float64)
    rgb = colormap(np.clip(values, 0.0, 1.0), bytes=True)[..., :3].copy()
    rgb[np.isnan(values)] = empty
    return rgb
