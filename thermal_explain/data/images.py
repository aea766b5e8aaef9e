"""The one image reader of the project, and model-input preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from thermal_explain.checks import expect
from thermal_explain.errors import ImageReadError

if TYPE_CHECKING:  # torch loads only with the preprocessing below: writer workers stay light
    pass


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


_JPEG_START = b"\xff\xd8"


_JPEG_SCAN = b"\xff\xda"


_JPEG_END = b"\xff\xd9"


def read_image(path: str | Path) -> np.ndarray:
    """Read any supported image as ``(H, W, 3)`` uint8 RGB.

    Handles non-ASCII paths, 8/16-bit grayscale, RGBA and any size. 16-bit and float
    images are min-max scaled to 0..255 (thermal sensors store raw counts). A JPEG cut
    short (no end marker after its last scan) is rejected rather than half-decoded.

    Raises:
        ImageReadError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    return picture_to_rgb(decode_file(path), path)


def picture_to_rgb(image: np.ndarray, path: str | Path) -> np.ndarray:
    """A decoded image (any depth and channel count) as ``(H, W, 3)`` uint8 RGB.

    Raises:
        ImageReadError: an unsupported layout (``path`` names the file).
    """
    if image.dtype != np.uint8:
        image = _scale_to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageReadError(
            f"cannot use image '{path}': unsupported layout {image.shape}; save it as "
            "grayscale, RGB or RGBA"
        )
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` shrunk (area averaging) so its longest side is at most ``side`` pixels.

    An image that fits already is returned as it is, never enlarged.
    """
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """Read a region mask as ``(H, W)`` bool for ``size = (H, W)``.

    Any non-zero pixel (in any colour channel) is part of the region; in an RGBA mask a
    fully transparent pixel never is. A mask of another size is resized with
    nearest-neighbour interpolation.

    Raises:
        ConfigurationError: ``size`` is not two positive integers.
        ImageReadError: the file is missing or cannot be decoded.
    """
    height, width = _check_size(size)
    mask = decode_file(Path(path))
    if mask.ndim == 3:
        region = np.any(mask[:, :, :3] != 0, axis=2)
        if mask.shape[2] == 4:
            region &= mask[:, :, 3] != 0
    else:
        region = mask != 0
    if region.shape != (height, width):
        resized = cv2.resize(
            region.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        )
        region = resized != 0
    return region


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Return ``size`` as two positive ints or raise ConfigurationError."""
    ok = len(size) == 2 and all(int(value) == value and value > 0 for value in size)
    expect(ok, "size", "(height, width), two positive integers", size)
    return int(size[0]), int(size[1])


def decode_file(path: Path) -> np.ndarray:
    """Decode a file as stored (any depth and channel count); raise ImageReadError."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ImageReadError(f"cannot read image '{path}': {reason}") from error
    if data.size == 0:
        raise ImageReadError(f"cannot read image '{path}': the file is empty")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else "decoder error"
        raise ImageReadError(f"cannot decode image '{path}': {detail}") from error
    if image is None or image.size == 0:
        raise ImageReadError(
            f"cannot decode image '{path}'; check that it is a complete JPEG, PNG, BMP or TIFF file"
        )
    if _is_truncated_jpeg(data):
        raise ImageReadError(
            f"cannot decode image '{path}': the JPEG data ends early (truncated file)"
        )
    return image


def _is_truncated_jpeg(data: np.ndarray) -> bool:
    """True for JPEG bytes with no end-of-image marker after the last start-of-scan."""
    raw = data.tobytes()
    if not raw.startswith(_JPEG_START):
        return False
    last_scan = raw.rfind(_JPEG_SCAN)
    return last_scan >= 0 and raw.find(_JPEG_END, last_scan) < 0


def _scale_to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale a 16-bit or float image to uint8 (a constant image becomes zeros)."""
    values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)
