"""Writing temperatures as files the readers take back, and the table of lesion sides.

Formats (by suffix), each read back by :func:`thermal_explain.data.thermal.read_input`:

- ``.npy``: float32 degrees Celsius (NaN where unknown);
- ``.tif`` / ``.tiff`` / ``.png``: single-channel 16-bit centi-Kelvin (``T = v / 100 -
  273.15``, read with ``--temperature_scale centikelvin``), 0.01-degree steps.

The lesion table (``lesions.csv``) names each synthetic face's lesion side, left and right
as in the asymmetry split (the image's left half is ``left``), so a readout can be checked
against it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.errors import ConfigurationError, ThermalExplainError

TEMPERATURE_FORMATS = {"npy": ".npy", "tiff": ".tif"}
"""``--temperatures`` choices of ``thermal-explain synth`` and the suffix each writes."""

LESION_TABLE = "lesions.csv"
LESION_COLUMNS = ("image", "class", "lesion_side", "lesion_polarity")

_KELVIN = 273.15


def write_temperatures(path: str | Path, celsius: np.ndarray) -> Path:
    """Write ``(H, W)`` degrees Celsius as ``.npy`` floats or 16-bit centi-Kelvin TIFF/PNG.

    Raises:
        ConfigurationError: another suffix, or temperatures a 16-bit file cannot hold
            (below -273.15 C or above 382.2 C, or not finite).
    """
    path = Path(path)
    values = np.asarray(celsius, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "wb") as handle:  # open() handles any Unicode path
            np.save(handle, values)
        return path
    if suffix not in (".tif", ".tiff", ".png"):
        raise ConfigurationError(
            f"cannot write temperatures as '{path.name}'; use .npy (degrees) or .tif/.png "
            "(16-bit centi-Kelvin)"
        )
    counts = np.round((values.astype(np.float64) + _KELVIN) * 100.0)
    if not np.isfinite(counts).all() or counts.min() < 0 or counts.max() > 65535:
        raise ConfigurationError(
            f"cannot write '{path.name}' as 16-bit centi-Kelvin: temperatures must be finite "
            "and within -273.15..382.2 C; write .npy instead"
        )
    ok, encoded = cv2.imencode(suffix, counts.astype(np.uint16))
    if not ok:
        raise ThermalExplainError(f"cannot encode '{path.name}' as 16-bit {suffix}")
    path.write_bytes(encoded.tobytes())
    return path


def lesion_side(mask: np.ndarray) -> str | None:
    """``left`` or ``right``: the image half that holds the mask's centre of mass."""
    columns = np.nonzero(np.asarray(mask) != 0)[1]
    if columns.size == 0:
        return None
    return "left" if columns.mean() < (mask.shape[1] - 1) / 2 else "right"


def write_lesion_table(path: str | Path, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write ``lesions.csv`` (:data:`LESION_COLUMNS`; empty cells for faces without a lesion)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LESION_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) or "" for key in LESION_COLUMNS})
    return path


def read_lesion_table(path: str | Path) -> dict[str, str]:
    """Image file name -> lesion side (``left``/``right``) of the faces that have one."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["image"]: row["lesion_side"] for row in csv.DictReader(handle) if row["lesion_side"]
        }
