"""Colormap lookup tables from OpenCV or matplotlib colormap names."""

from __future__ import annotations

import difflib
from functools import lru_cache

import cv2
import numpy as np

from thermal_explain.errors import ConfigurationError

DEFAULT_COLORMAP = "jet"

_OPENCV_PREFIX = "COLORMAP_"
_OPENCV = {
    attribute[len(_OPENCV_PREFIX) :].lower(): getattr(cv2, attribute)
    for attribute in dir(cv2)
    if attribute.startswith(_OPENCV_PREFIX)
}


def get_colormap(name: str) -> np.ndarray:
    """A ``(256, 3)`` uint8 RGB lookup table for a colormap name.

    OpenCV names (``jet``, ``turbo``, ``inferno``, ``hot``, ... any case) are tried first, so
    the overlays match OpenCV's ``applyColorMap``; then matplotlib names (``viridis``,
    ``coolwarm``, ``RdBu_r``, ...; exact case first, then case-insensitive).

    Raises:
        ConfigurationError: the name is not a known colormap.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"Expected argument `colormap` to be a colormap name such as jet, but got {name!r}"
        )
    return _table(name.strip()).copy()


def colormap_names() -> list[str]:
    """Every accepted colormap name (OpenCV names, then matplotlib names)."""
    return sorted(_OPENCV) + sorted(set(_matplotlib_names()) - set(_OPENCV))


@lru_cache(maxsize=32)
def _table(name: str) -> np.ndarray:
    code = _OPENCV.get(name.lower())
    if code is not None:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        return np.ascontiguousarray(cv2.applyColorMap(ramp, code)[:, 0, ::-1])
    colormap = _matplotlib_colormap(name)
    if colormap is None:
        raise ConfigurationError(_unknown_message(name))
    rgba = colormap(np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255.0).astype(np.uint8)


def _matplotlib_names() -> list[str]:
    import matplotlib

    return list(matplotlib.colormaps)


def _matplotlib_colormap(name: str) -> object | None:
    import matplotlib

    if name in matplotlib.colormaps:
        return matplotlib.colormaps[name]
    matches = [known for known in matplotlib.colormaps if known.lower() == name.lower()]
    return matplotlib.colormaps[matches[0]] if matches else None


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), [n.lower() for n in colormap_names()], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"unknown colormap {name!r}{hint}; set `colormap` to an OpenCV or matplotlib "
        "colormap name, e.g. jet, turbo, inferno, hot, viridis, magma, coolwarm"
    )
