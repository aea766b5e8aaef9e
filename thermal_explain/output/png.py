"""A fast PNG encoder for the writer's images: one row filter, one deflate pass.

Every PNG the writer makes (heatmaps, overlays, 300-DPI figures, panels) is encoded here.
The settings were chosen by measurement on the outputs of a 224-px run (one core, against
libpng level 1 with the RLE strategy and the "up" filter, the previous settings): every row
is "up"-filtered (the difference to the row above; smooth heatmaps and the repeated rows of an
upscaled figure become runs of zeros) and compressed in one pass with ISA-L's deflate at level
1 when ``isal`` is installed (zlib level 1 otherwise). That encodes heatmaps and overlays about
four times faster and figures about six times faster, and the files are 20 to 50 % smaller.
"""

from __future__ import annotations

import struct
import zlib
from types import ModuleType

import numpy as np


def _deflate_module() -> ModuleType:
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps PNGs working
        return zlib
    return isal_zlib


DEFLATE: ModuleType = _deflate_module()
"""``isal.isal_zlib`` when installed, else the standard ``zlib`` (same API)."""

DEFLATE_LEVEL = 1
"""Compression level of every PNG (ISA-L: 0..3, zlib: 0..9; 1 is fast for both)."""

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (gray, RGB, RGBA)
_FILTER_UP = 2


def encode_png(pixels: np.ndarray, dpi: int | None = None, deflate: ModuleType = DEFLATE) -> bytes:
    """Encode an 8-bit image as PNG.

    Args:
        pixels: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA ``uint8``.
        dpi: adds a ``pHYs`` chunk so viewers and ``PIL`` report that resolution.
        deflate: the ``zlib``-like module that compresses (:data:`DEFLATE`).

    Returns:
        The PNG file's bytes.

    Raises:
        ValueError: not a non-empty 8-bit image of 1, 3 or 4 channels.
    """
    image = np.asarray(pixels)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2] if image.ndim == 3 else 0
    if image.dtype != np.uint8 or channels not in _COLOR_TYPES or 0 in image.shape:
        raise ValueError(
            f"expected a non-empty (H, W[, 1|3|4]) uint8 image, got {image.dtype} "
            f"of shape {tuple(np.shape(pixels))}"
        )
    height, width = image.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    chunks = [_chunk(b"IHDR", header, deflate)]
    if dpi is not None:
        per_metre = round(dpi / 0.0254)
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1), deflate))
    data = deflate.compress(filter_rows(image), DEFLATE_LEVEL)
    chunks += [_chunk(b"IDAT", data, deflate), _chunk(b"IEND", b"", deflate)]
    return _SIGNATURE + b"".join(chunks)


def filter_rows(image: np.ndarray) -> np.ndarray:
    """PNG scanlines with the "up" filter: each row minus the row above (modulo 256).

    Args:
        image: ``(H, W, C)`` uint8.

    Returns:
        ``(H, 1 + W * C)`` uint8: the filter-type byte, then the filtered row.
    """
    height = image.shape[0]
    rows = np.ascontiguousarray(image).reshape(height, -1)
    lines = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    lines[:, 0] = _FILTER_UP
    lines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=lines[1:, 1:])
    return lines


def _chunk(kind: bytes, body: bytes, deflate: ModuleType) -> bytes:
    checksum = deflate.crc32(body, deflate.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)
