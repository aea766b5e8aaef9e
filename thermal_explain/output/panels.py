"""Panels: an original and its overlays, captioned, under a title band.

Probe panels (validation probes in TensorBoard) are near-square grids whose header and
captions sit on white bands, sized to stay legible when the dashboard scales the image
(:mod:`thermal_explain.output.text`). The two-model comparison panels are strips drawn
with OpenCV's Hershey fonts (shrunk to fit, characters they cannot draw shown as ``?``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.data.images import read_image
from thermal_explain.output.render import blend, colorize, desaturate, encode_png, resize_map
from thermal_explain.output.render import write_file as write_bytes
from thermal_explain.output.text import (
    Line,
    caption_lines,
    common_prefix,
    font_sizes,
    header_lines,
    text_band,
)
from thermal_explain.types import FUSED, ExplainedImage

PANEL_HEIGHT = 224
"""Height in pixels of each tile of a comparison panel (the original's aspect is kept)."""

PROBE_HEIGHT = 160
"""Height in pixels of each tile of a probe panel (a grid about 480 px wide for 4 layers)."""

TITLE_LINE = 22
"""Height in pixels of one line of a title band."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def probe_panel(
    item: ExplainedImage,
    lut: np.ndarray,
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
    height: int = PROBE_HEIGHT,
) -> np.ndarray:
    """The input and its overlay per layer in a near-square grid under a header band.

    The header names the image, the true and predicted class and the confidence; each
    tile is captioned (the layer) on a white band below it, so text never sits on a map.
    The input is ``item.pixels`` when set (the model input as the model saw it), else the
    file at ``item.image_path``.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    source = item.pixels if item.pixels is not None else read_image(item.image_path)
    base = thumbnail(source, height)
    gray = desaturate(base)
    tiles = [base]
    for explanation in item.layers.values():
        heat = colorize(resize_map(explanation.display_map.numpy(), base.shape[:2]), lut)
        tiles.append(blend(gray, heat, original_alpha, heatmap_alpha))
    layers = [layer for layer in item.layers if layer != FUSED]
    prefix = common_prefix(layers)
    captions = ["input", *(layer.removeprefix(prefix) for layer in item.layers)]
    columns = grid_columns(len(tiles), base.shape[1], base.shape[0])
    width = columns * base.shape[1]
    header = header_lines(
        Path(item.image_path).name,
        item.predicted_label,
        item.confidence,
        item.true_label,
        None,
        width,
        target=item.target_label,
    )
    if prefix and prefix != "backbone.":
        header.append(Line(f"layers in {prefix.rstrip('.')}", size=font_sizes(width)[1]))
    return captioned_grid(tiles, captions, header, columns)


def grid_columns(count: int, tile_width: int, tile_height: int) -> int:
    """Columns that make a grid of ``count`` tiles closest to square (ties: more columns)."""

    def squareness(columns: int) -> float:
        rows = -(-count // columns)
        width, height = columns * tile_width, rows * tile_height * 1.2
        return min(width, height) / max(width, height)

    return max(range(1, count + 1), key=lambda columns: (squareness(columns), columns))


def captioned_grid(
    tiles: Sequence[np.ndarray],
    captions: Sequence[str],
    header: Sequence[Line],
    columns: int,
) -> np.ndarray:
    """Equal-size ``tiles`` in rows of ``columns``, each over its caption, under ``header``."""
    tile_width = tiles[0].shape[1]
    width = columns * tile_width
    size = font_sizes(width)[1]
    wrapped = [caption_lines(text, tile_width - 8, size) for text in captions]
    rows_of_text = max(len(lines) for lines in wrapped)
    cells = [
        np.concatenate(
            [
                tile,
                text_band(
                    tile_width,
                    [Line(text, size=size) for text in lines + [""] * (rows_of_text - len(lines))],
                    align="center",
                    uniform=True,
                ),
            ]
        )
        for tile, lines in zip(tiles, wrapped, strict=True)
    ]
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    rows = [
        np.concatenate(cells[start : start + columns], axis=1)
        for start in range(0, len(cells), columns)
    ]
    return np.concatenate([text_band(width, header), *rows], axis=0)


def comparison_panel(
    thumbnail_image: np.ndarray,
    map_a: np.ndarray,
    map_b: np.ndarray,
    lut: np.ndarray,
    title: Sequence[str],
    captions: Sequence[str] = ("original", "model A", "model B"),
    original_alpha: float = 0.3,
    heatmap_alpha: float = 0.7,
) -> np.ndarray:
    """original | model A overlay | model B overlay, under a title band.

    Args:
        thumbnail_image: ``(h, w, 3)`` uint8 RGB original, already at the tile size.
        map_a: ``(Ha, Wa)`` 0..1 map of model A (resized to the tile).
        map_b: ``(Hb, Wb)`` 0..1 map of model B.
        lut: ``(256, 3)`` uint8 RGB colormap table.
        title: lines of the title band (one line each, shrunk to fit).
        captions: the three tiles' captions.
        original_alpha: weight of the desaturated original in the overlays.
        heatmap_alpha: weight of the heatmap.

    Returns:
        ``(len(title) * 22 + h, 3 * w, 3)`` uint8 RGB.
    """
    size = thumbnail_image.shape[:2]
    gray = desaturate(thumbnail_image)
    tiles = [thumbnail_image]
    for values in (map_a, map_b):
        heat = colorize(resize_map(values, size), lut)
        tiles.append(blend(gray, heat, original_alpha, heatmap_alpha))
    return titled_strip(tiles, captions, title)


def write_comparison_panels(
    image_path: str,
    jobs: Sequence[tuple[Path, np.ndarray, np.ndarray, list[str], list[str]]],
    lut: np.ndarray,
) -> None:
    """Render and write one image's comparison panels ``(path, map_a, map_b, title, captions)``.

    Reads the original once for all of them; runs on a worker thread.

    Raises:
        OSError: a panel cannot be written.
    """
    original = thumbnail(read_image(image_path), PANEL_HEIGHT)
    for path, map_a, map_b, title, captions in jobs:
        panel = comparison_panel(original, map_a, map_b, lut, title, captions)
        write_bytes(os.fspath(path), encode_png(panel))


def titled_strip(
    tiles: Sequence[np.ndarray], captions: Sequence[str], title: Sequence[str]
) -> np.ndarray:
    """Equal-height ``tiles`` side by side, each captioned, under a white title band."""
    strip = np.concatenate(
        [caption(tile, text) for tile, text in zip(tiles, captions, strict=True)], axis=1
    )
    header = np.full((TITLE_LINE * len(title), strip.shape[1], 3), 255, dtype=np.uint8)
    for row, text in enumerate(title):
        line = drawable(text)
        scale = fit_text(line, strip.shape[1] - 12)
        baseline = TITLE_LINE * (row + 1) - 7
        cv2.putText(header, line, (6, baseline), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, strip], axis=0)


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``tile`` with ``text`` at its bottom left, white on a dark outline."""
    out = tile.copy()
    line = drawable(text)
    scale = fit_text(line, out.shape[1] - 8, 0.45)
    origin = (4, out.shape[0] - 6)
    cv2.putText(out, line, origin, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, line, origin, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def fit_text(text: str, width: int, scale: float = 0.5) -> float:
    """The largest font scale up to ``scale`` (at least 0.3) at which ``text`` fits ``width``."""
    while scale > 0.3:
        (text_width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        if text_width <= width:
            break
        scale -= 0.05
    return max(scale, 0.3)


def drawable(text: str) -> str:
    """``text`` with each character OpenCV's Hershey fonts cannot draw replaced by ``?``."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def thumbnail(image: np.ndarray, height: int = PANEL_HEIGHT) -> np.ndarray:
    """``image`` scaled to ``height`` rows, aspect kept."""
    scale = height / image.shape[0]
    width = max(1, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
