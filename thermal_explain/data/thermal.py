"""Temperature inputs: radiometric FLIR JPEGs, scaled 16-bit exports and float arrays.

Thermal cameras store temperatures; a picture of them is only a palette rendering. This
module reads what a file holds and says what it read (``kind``):

- ``flir_radiometric``: a JPEG whose APP1 segments carry FLIR's raw sensor values and
  camera constants, converted to degrees Celsius by ``flyr`` (the ``flir`` extra);
- ``temperature_array``: a float TIFF or ``.npy`` array in degrees Celsius, or a
  single-channel 16-bit TIFF/PNG (or integer ``.npy``) converted with a
  :class:`TemperatureScale` (``centikelvin``, ``celsius_x100``, ``linear:A,B``);
- ``image``: anything else, read as a picture (a 16-bit image without a scale too).

Non-finite temperatures (NaN, infinity) are kept as NaN and left out of every statistic.
No torch here: writer worker processes import this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from thermal_explain.checks import expect
from thermal_explain.data.flir import claims_flir, read_flir
from thermal_explain.data.images import decode_file, picture_to_rgb
from thermal_explain.errors import ImageReadError

INPUT_IMAGE = "image"
INPUT_FLIR = "flir_radiometric"
INPUT_ARRAY = "temperature_array"

CELSIUS = "celsius"
INTENSITY = "intensity"

PLAUSIBLE_CELSIUS: tuple[float, float] = (-50.0, 150.0)
"""Temperatures outside this range mean a wrong ``temperature_scale`` (one warning a run)."""

POLARITIES = ("none", "cold", "warm")
"""``lesion_polarity``: draw asymmetry maps on both sides, the colder one, or the warmer one."""

READOUT_FRACTION = 0.1
"""Share of the half-width map the left-right readout takes as the attended region."""

READOUT_THRESHOLD = 0.4
"""Left-right difference in degrees Celsius the readout flags: healthy faces stay below it
(Gratt and Sickles, 1995; Uematsu et al., 1988; see docs/architecture.md)."""

_SCALES = {"centikelvin": (0.01, -273.15), "celsius_x100": (0.01, 0.0)}
_SCALE_HELP = "centikelvin, celsius_x100 or linear:A,B (T = A * value + B)"


@dataclass(frozen=True)
class TemperatureScale:
    """How the integer values of an export become degrees Celsius: ``T = factor * v + offset``.

    Attributes:
        name: ``centikelvin``, ``celsius_x100`` or ``linear:A,B`` (how it is written).
        factor: degrees per count.
        offset: degrees at count zero.
    """

    name: str
    factor: float
    offset: float

    @classmethod
    def parse(cls, value: object) -> TemperatureScale | None:
        """A scale from its name (``None`` or ``"none"``: no scale, 16-bit files are pictures).

        Raises:
            ConfigurationError: an unknown name or a malformed ``linear:A,B``.
        """
        if value is None or isinstance(value, TemperatureScale):
            return value
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text in ("", "none"):
            return None
        if text in _SCALES:
            return cls(text, *_SCALES[text])
        if text is not None and text.startswith("linear:"):
            parts = text[len("linear:") :].split(",")
            numbers = [_float(part) for part in parts] if len(parts) == 2 else []
            if len(numbers) == 2 and all(v is not None for v in numbers) and numbers[0] != 0:
                factor, offset = float(numbers[0]), float(numbers[1])  # type: ignore[arg-type]
                return cls(f"linear:{factor:g},{offset:g}", factor, offset)
        expect(
            False, "temperature_scale", _SCALE_HELP, value, "e.g. --temperature_scale centikelvin"
        )
        raise AssertionError  # unreachable

    def to_celsius(self, counts: np.ndarray) -> np.ndarray:
        """``(H, W)`` integer counts -> float32 degrees Celsius."""
        return (counts.astype(np.float64) * self.factor + self.offset).astype(np.float32)

    def __str__(self) -> str:
        return self.name


def check_temperature_range(value: object) -> tuple[float, float] | None:
    """A temperature window ``(low, high)`` in degrees Celsius (``None``: per-image stretch).

    Raises:
        ConfigurationError: not two finite numbers with ``low < high``.
    """
    if value is None:
        return None
    numbers = list(value) if isinstance(value, (list, tuple)) else []
    numbers = [_float(item) for item in numbers]
    ok = len(numbers) == 2 and None not in numbers and numbers[0] < numbers[1]  # type: ignore[operator]
    expect(
        ok,
        "temperature_range",
        "two temperatures LOW HIGH in degrees Celsius with LOW < HIGH",
        list(value) if isinstance(value, tuple) else value,
        "e.g. --temperature_range 28 38",
    )
    return float(numbers[0]), float(numbers[1])  # type: ignore[arg-type]


@dataclass(frozen=True)
class ThermalInput:
    """One input file as read.

    Attributes:
        kind: ``image``, ``flir_radiometric`` or ``temperature_array``.
        pixels: ``(H, W, 3)`` uint8 RGB for a picture; ``(H, W)`` float32 degrees Celsius
            (NaN where the file held no finite value) for a temperature input.
    """

    kind: str
    pixels: np.ndarray

    @property
    def is_temperature(self) -> bool:
        return self.kind != INPUT_IMAGE

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def units(self) -> str:
        """``celsius`` for temperatures, ``intensity`` (gray level 0-255) for pictures."""
        return CELSIUS if self.is_temperature else INTENSITY

    def flipped(self) -> ThermalInput:
        """The input mirrored left-right."""
        return ThermalInput(self.kind, np.ascontiguousarray(self.pixels[:, ::-1]))

    def signal(self) -> np.ndarray:
        """``(H, W)`` float32 values the left-right readout compares: degrees Celsius for a
        temperature input, the gray level (0-255) of a picture."""
        if self.is_temperature:
            return self.pixels
        return cv2.cvtColor(self.pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)

    def statistics(self) -> dict[str, Any] | None:
        """The record's ``temperature`` entry (``None`` for a picture).

        ``min``, ``max``, ``mean`` over the finite pixels, ``units``; ``non_finite_pixels``
        when some were left out; ``warning`` when the values leave the plausible range.
        """
        if not self.is_temperature:
            return None
        finite = np.isfinite(self.pixels)
        values = self.pixels[finite].astype(np.float64)
        stats: dict[str, Any] = {
            "min": round(float(values.min()), 3),
            "max": round(float(values.max()), 3),
            "mean": round(float(values.mean()), 3),
            "units": CELSIUS,
        }
        missing = int(finite.size - finite.sum())
        if missing:
            stats["non_finite_pixels"] = missing
        if not plausible(stats):
            low, high = PLAUSIBLE_CELSIUS
            stats["warning"] = (
                f"temperatures outside {low:g}..{high:g} C; check --temperature_scale"
            )
        return stats

    def display(self, window: tuple[float, float] | None = None) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB to draw on: the picture, or the temperatures in gray
        (through ``window``, else stretched from their minimum to their maximum)."""
        if not self.is_temperature:
            return self.pixels
        gray = np.round(window_temperatures(self.pixels, window) * 255.0).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)

    def display_range(self, window: tuple[float, float] | None = None) -> tuple[float, float]:
        """The degrees that :meth:`display` maps to black and white."""
        if window is not None:
            return window
        low, high = _finite_range(self.pixels)
        return (low, high) if high > low else (low, low + 1.0)


def plausible(stats: dict[str, Any]) -> bool:
    """Whether a ``temperature`` entry stays within :data:`PLAUSIBLE_CELSIUS`."""
    low, high = PLAUSIBLE_CELSIUS
    return low <= float(stats["min"]) and float(stats["max"]) <= high


def window_temperatures(
    celsius: np.ndarray, window: tuple[float, float] | None = None
) -> np.ndarray:
    """``(H, W)`` degrees -> float32 in 0..1: ``(T - low) / (high - low)``, clipped.

    With ``window = None`` the image's own finite minimum and maximum are used (a constant
    image gives zeros). Non-finite pixels become 0 (the cold end).
    """
    low, high = window if window is not None else _finite_range(celsius)
    if high <= low:
        return np.zeros(celsius.shape, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        scaled = (celsius.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def resize_finite(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W)`` float values to ``size = (height, width)``, NaN-aware.

    Area interpolation when shrinking, bilinear otherwise; each output pixel averages the
    finite inputs it covers and is NaN only where it covers none.
    """
    height, width = size
    if values.shape == (height, width):
        return values.astype(np.float32, copy=True)
    finite = np.isfinite(values)
    shrinking = height * width < values.size
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    filled = np.where(finite, values, 0.0).astype(np.float32)
    if finite.all():
        return cv2.resize(filled, (width, height), interpolation=method)
    total = cv2.resize(filled, (width, height), interpolation=method)
    weight = cv2.resize(finite.astype(np.float32), (width, height), interpolation=method)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 1e-6, total / np.maximum(weight, 1e-6), np.nan).astype(np.float32)


def read_input(path: str | Path, scale: TemperatureScale | str | None = None) -> ThermalInput:
    """Read a file as temperatures when it holds them, else as a picture.

    Args:
        path: a JPEG/PNG/BMP/TIFF image or a ``.npy`` array.
        scale: converts single-channel 16-bit images and integer arrays to degrees; without
            it a 16-bit image is read as a picture (``kind = "image"``).

    Raises:
        ImageReadError: the file cannot be read, holds no finite temperature, or is a FLIR
            JPEG whose temperatures cannot be read (malformed metadata, flyr missing).
        ConfigurationError: ``scale`` is not a valid scale.
    """
    path = Path(path)
    scale = TemperatureScale.parse(scale)
    if path.suffix.lower() == ".npy":
        return _checked(ThermalInput(INPUT_ARRAY, _read_array(path, scale)), path)
    if claims_flir(path):
        return _checked(ThermalInput(INPUT_FLIR, read_flir(path)), path)
    image = decode_file(path)
    plane = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    if plane.ndim == 2 and np.issubdtype(plane.dtype, np.floating):
        return _checked(ThermalInput(INPUT_ARRAY, plane.astype(np.float32)), path)
    if plane.ndim == 2 and plane.dtype.itemsize > 1 and scale is not None:
        return _checked(ThermalInput(INPUT_ARRAY, scale.to_celsius(plane)), path)
    return ThermalInput(INPUT_IMAGE, picture_to_rgb(image, path))


def read_display(path: str | Path, window: tuple[float, float] | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to draw maps on: the picture, or the temperatures in gray.

    A linear scale does not change a min-max stretched gray image, so none is needed here.
    """
    return read_input(path).display(window)


def _checked(source: ThermalInput, path: Path) -> ThermalInput:
    """Keep NaN for every non-finite pixel; refuse an input with no finite temperature."""
    pixels = source.pixels
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ImageReadError(
            f"cannot use temperatures of '{path}': expected a 2-D (height, width) array but "
            f"got shape {tuple(pixels.shape)}"
        )
    finite = np.isfinite(pixels)
    if not finite.any():
        raise ImageReadError(
            f"cannot use temperatures of '{path}': no pixel holds a finite value (all NaN or "
            "infinite); check the export"
        )
    if not finite.all():
        pixels = np.where(finite, pixels, np.nan).astype(np.float32)
    return ThermalInput(source.kind, pixels)


def _read_array(path: Path, scale: TemperatureScale | None) -> np.ndarray:
    """A ``.npy`` file as ``(H, W)`` float32 degrees (integers through ``scale`` if given)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ImageReadError(
            f"cannot read array '{path}': {reason}; save a 2-D array of degrees Celsius "
            "with numpy.save"
        ) from error
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ImageReadError(
            f"cannot use array '{path}': its values are {array.dtype}; save degrees Celsius "
            "as floats"
        )
    if array.ndim != 2:
        raise ImageReadError(
            f"cannot use array '{path}': expected a 2-D (height, width) array but got shape "
            f"{tuple(array.shape)}"
        )
    if np.issubdtype(array.dtype, np.integer) and scale is not None:
        return scale.to_celsius(array)
    return array.astype(np.float32)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())


def _float(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


__all__ = [
    "CELSIUS",
    "INPUT_ARRAY",
    "INPUT_FLIR",
    "INPUT_IMAGE",
    "INTENSITY",
    "PLAUSIBLE_CELSIUS",
    "POLARITIES",
    "READOUT_FRACTION",
    "READOUT_THRESHOLD",
    "TemperatureScale",
    "ThermalInput",
    "check_temperature_range",
    "plausible",
    "read_display",
    "read_input",
    "resize_finite",
    "window_temperatures",
]
