"""``thermal-explain synth``: write a synthetic thermal-face data set with lesion masks."""

from __future__ import annotations

import sys

from thermal_explain.cli.arguments import OneLineParser
from thermal_explain.data.synthetic import (
    IMAGE_EXTENSIONS,
    LESION_POLARITIES,
    make_synthetic_dataset,
)
from thermal_explain.data.temperature_files import LESION_TABLE, TEMPERATURE_FORMATS
from thermal_explain.errors import ThermalExplainError


def main(argv: list[str] | None = None) -> int:
    """``thermal-explain synth``: write a synthetic data set; returns the exit status."""
    parser = OneLineParser(
        prog="thermal-explain synth",
        description="Write synthetic thermal faces (ICAS with lesion masks, and normal).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, default=400, help="number of faces")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--icas_fraction", type=float, default=0.5, help="fraction of ICAS faces")
    parser.add_argument("--ext", default="png", choices=IMAGE_EXTENSIONS, help="image format")
    parser.add_argument(
        "--lesion_polarity",
        default="either",
        choices=LESION_POLARITIES,
        help="lesions warmer or cooler at random (either), or all cold, or all warm",
    )
    parser.add_argument(
        "--temperatures",
        default=None,
        choices=tuple(TEMPERATURE_FORMATS),
        help="write the measured temperatures instead of pictures: npy (float degrees C) or "
        "tiff (16-bit centi-Kelvin; read with --temperature_scale centikelvin)",
    )
    args = parser.parse_args(argv)
    try:
        dataset = make_synthetic_dataset(
            args.out,
            args.n,
            args.size,
            args.seed,
            args.icas_fraction,
            args.ext,
            lesion_polarity=args.lesion_polarity,
            temperatures=args.temperatures,
        )
    except ThermalExplainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name}: {count}" for name, count in dataset.counts.items())
    print(
        f"wrote {len(dataset.paths)} images ({counts}) to {dataset.image_dir}; "
        f"lesion masks in {dataset.mask_dir}, lesion sides in "
        f"{dataset.image_dir.parent / LESION_TABLE}"
    )
    return 0
