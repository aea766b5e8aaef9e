"""Radiometric FLIR JPEGs: spotting them, and their temperatures through ``flyr``.

A FLIR camera's JPEG shows a palette rendering; its APP1 segments (``FLIR`` records)
hold the raw sensor values and the camera's Planck and atmosphere constants, which ``flyr``
(the ``flir`` extra) turns into degrees Celsius. No torch here.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from thermal_explain.errors import ImageReadError

FLIR_EXTRA_HINT = "pip install thermal-explain[flir]"

_FLIR_MAGIC = b"FLIR\x00"
_HEADER_BYTES = 1 << 18


def claims_flir(path: Path) -> bool:
    """Whether a JPEG carries a FLIR APP1 segment before its first scan."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except OSError:
        return False  # the picture reader says why
    if not head.startswith(b"\xff\xd8"):
        return False
    position = 2
    while position + 4 <= len(head) and head[position] == 0xFF:
        marker = head[position + 1]
        if marker == 0xDA:  # start of scan: no more metadata
            return False
        length = int.from_bytes(head[position + 2 : position + 4], "big")
        payload = head[position + 4 : position + 4 + len(_FLIR_MAGIC)]
        if marker == 0xE1 and payload == _FLIR_MAGIC:
            return True
        position += 2 + max(length, 2)
    return False


def read_flir(path: Path) -> np.ndarray:
    """The temperatures of a radiometric FLIR JPEG, ``(H, W)`` float32 degrees Celsius."""
    try:
        import flyr
    except ImportError as error:
        raise ImageReadError(
            f"'{path.name}' is a radiometric FLIR JPEG; reading its temperatures needs the "
            f"flyr package: {FLIR_EXTRA_HINT}"
        ) from error
    try:
        data = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            celsius = np.asarray(flyr.unpack(io.BytesIO(data)).celsius, dtype=np.float32)
    except Exception as error:  # flyr raises many kinds on malformed files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ImageReadError(
            f"cannot read the temperatures of FLIR JPEG '{path}': its FLIR metadata is "
            f"malformed or unsupported (flyr: {reason}); export it again from the camera "
            "software, or as a temperature TIFF"
        ) from error
    return celsius
