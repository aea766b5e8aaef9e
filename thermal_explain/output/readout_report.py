"""The report's section on the left-right thermal readout (``thermal_asymmetry``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thermal_explain.metrics.summaries import thermal_asymmetry_summary

_UNITS = {"celsius": "C", "intensity": "gray levels"}


def readout_section(
    ok: Sequence[Mapping[str, Any]], class_names: Sequence[str], table: Any
) -> list[str]:
    """Distribution of ``delta`` (left - right) per class, and the images over the threshold.

    Args:
        ok: successful records.
        class_names: class order.
        table: ``table(header, rows) -> lines``, the report's table layout.
    """
    rows = thermal_asymmetry_summary(ok, class_names)
    if not rows:
        return []
    first = next((r for r in ok if isinstance(r.get("thermal_asymmetry"), Mapping)), {}).get(
        "thermal_asymmetry", {}
    )
    fraction = first.get("region_fraction")
    where = f"top {fraction:.0%} of the {first.get('map')} map" if fraction else "attended region"
    header = [
        "class", "units", "n", "mean", "std", "min", "median", "max", "mean |delta|",
        "colder left", "colder right", "flagged",
    ]  # fmt: skip
    lines = []
    for row in rows:
        delta = row["delta"]
        flagged = str(row["flagged"]) if "flagged" in row else "-"
        lines.append(
            [
                row["class"],
                _UNITS.get(row["units"], row["units"]),
                str(row["images"]),
                f"{delta['mean']:+.3f}",
                f"{delta['std']:.3f}",
                *(f"{delta[key]:+.3f}" for key in ("min", "median", "max")),
                f"{row['mean_abs_delta']:.3f}",
                str(row["colder_left"]),
                str(row["colder_right"]),
                flagged,
            ]
        )
    notes = [
        f"Left-right thermal readout ({where}; delta = left - right, by true class, else "
        "predicted):",
        *table(header, lines),
    ]
    thresholds = sorted({row["threshold"] for row in rows if "threshold" in row})
    if thresholds:
        limit = ", ".join(f"{value:g}" for value in thresholds)
        notes.append(
            f"  flagged: |delta| above {limit} C (healthy faces are symmetric to within a few "
            "tenths of a degree)"
        )
    if any(row["units"] == "intensity" for row in rows):
        notes.append(
            "  (gray levels of pictures: only meaningful when brighter means warmer; "
            "read temperatures for degrees)"
        )
    return [*notes, ""]
