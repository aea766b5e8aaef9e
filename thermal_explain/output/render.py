"""Pixel work for one map: resize, colorize, blend over the desaturated original, encode."""

from __future__ import annotations

import cv2
import numpy as np

from thermal_explain.output.png import encode_png

__all__ = ["blend", "colorize", "desaturate", "encode_png", "resize_map", "write_file"]


def resize_map(display_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 0..1 map to ``size`` = ``(height, width)`` (bilinear), clipped to 0..1."""
    height, width = size
    values = np.asarray(display_map, dtype=np.float32)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(values, 0.0, 1.0)


def colorize(map01: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map a 0..1 ``(H, W)`` map through a ``(256, 3)`` RGB table -> ``(H, W, 3)`` uint8 RGB.

    NaN counts as 0, values outside 0..1 are clipped, then rounded to one of 256 entries.
    """
    values = np.fmax(np.asarray(map01, dtype=np.float32), 0.0)  # fmax: NaN -> 0
    np.fmin(values, 1.0, out=values)
    indices = cv2.convertScaleAbs(values, alpha=255.0)
    table = np.ascontiguousarray(lut, dtype=np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.cvtColor(indices, cv2.COLOR_GRAY2RGB), table)


def desaturate(image: np.ndarray) -> np.ndarray:
    """The grayscale version of an RGB image, still 3 channels (``(H, W, 3)`` uint8)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def blend(
    background: np.ndarray, heatmap: np.ndarray, background_alpha: float, heatmap_alpha: float
) -> np.ndarray:
    """``background * background_alpha + heatmap * heatmap_alpha``, saturated to uint8."""
    return cv2.addWeighted(background, background_alpha, heatmap, heatmap_alpha, 0.0)


def write_file(path: str, data: bytes) -> None:
    """Write bytes to ``path`` (works for any Unicode path, unlike ``cv2.imwrite``)."""
    with open(path, "wb") as handle:
        handle.write(data)


def scale_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` scaled to ``height`` rows, aspect kept (the image itself at that height)."""
    scale = height / image.shape[0]
    if scale == 1.0:
        return image
    width = max(1, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
