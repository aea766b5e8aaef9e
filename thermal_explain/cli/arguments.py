"""argparse that reports usage errors on one line (status 2) instead of usage + traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single stderr line naming the fix."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}; see '{self.prog} --help'", file=sys.stderr)
        sys.exit(2)


def add_image_source(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--image_path`` or ``--image_dir`` (exactly one), and ``--pattern`` for the folder.

    Args:
        parser: the command's parser.
        purpose: what the images are for, e.g. ``"analyze"`` ("one image to analyze").
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image_path", help=f"one image to {purpose}")
    source.add_argument("--image_dir", help=f"folder of images to {purpose}")
    parser.add_argument(
        "--pattern",
        default="*.jpg",
        help="glob under --image_dir: *.jpg, */*.jpg (class folders), **/*.png",
    )
