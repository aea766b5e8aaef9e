"""The one image reader of the project, and model-input preprocessing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from thermal_explain.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Read any supported image as ``(H, W, 3)`` uint8 RGB.

    Handles non-ASCII paths, 8/16-bit grayscale, RGBA and any size. 16-bit and float
    images are min-max scaled to 0..255 (thermal sensors store raw counts).

    Raises:
        ImageReadError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"cannot read image '{path}': {error.strerror or error}") from error
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageReadError(
            f"cannot decode image '{path}'; check that it is a JPEG, PNG, BMP or TIFF file"
        )
    if image.dtype != np.uint8:
        image = _scale_to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _scale_to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale a 16-bit or float image to uint8 (a constant image becomes zeros)."""
    values = image.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)
