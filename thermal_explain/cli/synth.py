"""``thermal-explain synth``: write a synthetic thermal-face data set with lesion masks."""

from __future__ import annotations

import sys

from thermal_explain.cli.arguments import OneLineParser
from thermal_explain.data.realistic import (
    DEFAULT_LESION_STRENGTH,
    GROUP_PATTERN,
    IMAGES_PER_SUBJECT,
    make_realistic_dataset,
)
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
        "--realistic",
        action="store_true",
        help="several grayscale images per subject with per-subject variation (head, pose, "
        "natural left-right differences, hair, glasses, sensor non-uniformity); file names "
        "carry the subject",
    )
    parser.add_argument(
        "--images_per_subject",
        type=int,
        default=None,
        help=f"with --realistic: images of each subject ({IMAGES_PER_SUBJECT})",
    )
    parser.add_argument(
        "--lesion_strength",
        type=float,
        default=None,
        help=f"with --realistic: peak cooling of a lesion in degrees C ({DEFAULT_LESION_STRENGTH}:"
        " visible on close look, not dominant)",
    )
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
    realistic_only = {"--images_per_subject": args.images_per_subject}
    realistic_only["--lesion_strength"] = args.lesion_strength
    given = [name for name, value in realistic_only.items() if value is not None]
    if given and not args.realistic:
        print(f"error: {', '.join(given)} needs --realistic", file=sys.stderr)
        return 2
    if args.realistic and (args.temperatures is not None or args.lesion_polarity != "either"):
        print(
            "error: --realistic writes 8-bit pictures with cold lesions; drop --temperatures "
            "and --lesion_polarity, or --realistic",
            file=sys.stderr,
        )
        return 2
    try:
        common = (args.out, args.n, args.size, args.seed, args.icas_fraction, args.ext)
        if args.realistic:
            strength = args.lesion_strength
            dataset = make_realistic_dataset(
                *common,
                args.images_per_subject or IMAGES_PER_SUBJECT,
                DEFAULT_LESION_STRENGTH if strength is None else strength,
            )
        else:
            dataset = make_synthetic_dataset(
                *common, lesion_polarity=args.lesion_polarity, temperatures=args.temperatures
            )
    except ThermalExplainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name}: {count}" for name, count in dataset.counts.items())
    table = dataset.image_dir.parent / LESION_TABLE
    sides = f", lesion sides in {table}" if table.exists() else ""
    print(
        f"wrote {len(dataset.paths)} images ({counts}) to {dataset.image_dir}; "
        f"lesion masks in {dataset.mask_dir}{sides}"
    )
    if args.realistic:
        subjects = len(set(dataset.subjects))
        print(f"{subjects} subjects; split by subject with --data.group_pattern '{GROUP_PATTERN}'")
    return 0
