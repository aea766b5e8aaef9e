"""``thermal-explain quickstart``: find a checkpoint and data here, confirm, then analyze."""

from __future__ import annotations

import sys
from pathlib import Path

from thermal_explain.cli import analyze
from thermal_explain.cli.arguments import OneLineParser
from thermal_explain.data.discovery import find_dataset, find_newest_checkpoint
from thermal_explain.errors import ThermalExplainError


def main(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="thermal-explain quickstart",
        description="Find the newest checkpoint and a data set under --root, show them, and "
        "analyze after confirmation.",
    )
    parser.add_argument("--root", default=".", help="folder to search")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="run without asking (needed when stdin is not a terminal)",
    )
    parser.add_argument(
        "--output_dir", default="interpretability_analysis", help="folder of every output"
    )
    parser.add_argument(
        "--use_asymmetry",
        action="store_true",
        default=None,
        help="6-channel left/mirrored-right mode (default: as the checkpoint)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        raise ThermalExplainError(f"--root '{root}' is not a folder; pass an existing folder")
    checkpoint = find_newest_checkpoint(root)
    if checkpoint is None:
        raise ThermalExplainError(
            f"no checkpoint (.pth, .pt, .ckpt) found under '{root.resolve()}'; train one with "
            "'thermal-explain fit' or run 'thermal-explain analyze --model_path P ...'"
        )
    dataset = find_dataset(root)
    if dataset is None:
        raise ThermalExplainError(
            f"no images (.jpg, .png, .bmp, .tif) found under '{root.resolve()}'; run "
            "'thermal-explain analyze --image_dir D' with your data folder"
        )
    print(f"checkpoint: {checkpoint}")
    print(f"images:     {dataset.image_dir} ({dataset.pattern}, {dataset.count} files)")
    print(f"output:     {args.output_dir}")
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise ThermalExplainError(
                "nothing done: quickstart asks before running and stdin is not a terminal; "
                "pass --yes to run without asking"
            )
        answer = input("Run the analysis? [Y/n] ").strip().lower()
        if answer not in ("", "y", "yes"):
            print("nothing done")
            return 0
    forwarded = [
        "--model_path",
        str(checkpoint),
        "--image_dir",
        str(dataset.image_dir),
        "--pattern",
        dataset.pattern,
        "--output_dir",
        args.output_dir,
    ]
    if args.use_asymmetry:
        forwarded.append("--use_asymmetry")
    if args.quiet:
        forwarded.append("--quiet")
    return analyze.main(forwarded)
