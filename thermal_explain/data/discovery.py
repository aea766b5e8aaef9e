"""Finding the newest checkpoint and a data set under a folder (for ``quickstart``)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from thermal_explain.data.images import IMAGE_SUFFIXES

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")
SKIPPED_FOLDERS = frozenset({".venv", "venv", "__pycache__", "site-packages", "node_modules"})
OUTPUT_FOLDERS = frozenset(
    {"gradcam_heatmaps", "overlay_images", "feature_maps", "plots", "tensorboard", "lightning_logs"}
)


@dataclass(frozen=True)
class DataSet:
    """A folder of images and the glob that selects them (``*/*.jpg`` for class folders)."""

    image_dir: Path
    pattern: str
    count: int


def _walk(
    root: Path, skipped: frozenset[str] = SKIPPED_FOLDERS
) -> Iterator[tuple[Path, list[str]]]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in skipped and not d.startswith("."))
        yield Path(folder), files


def find_newest_checkpoint(root: Path) -> Path | None:
    """The most recently modified ``.pth``/``.pt``/``.ckpt`` under ``root``; ``None`` if none.

    ``best_*`` files win over others of the same run folder only by being newer, so a finished
    run's best checkpoint is chosen over an older run's last one.
    """
    candidates = [
        folder / name
        for folder, files in _walk(root)
        for name in files
        if name.lower().endswith(CHECKPOINT_SUFFIXES)
    ]
    return max(candidates, key=lambda path: (path.stat().st_mtime, path.name), default=None)


def find_dataset(root: Path) -> DataSet | None:
    """The folder with the most images in class sub-folders (else directly) under ``root``."""
    best: DataSet | None = None
    for folder, files in _walk(root, SKIPPED_FOLDERS | OUTPUT_FOLDERS):
        suffixes = Counter(
            Path(name).suffix.lower() for name in files if name.lower().endswith(IMAGE_SUFFIXES)
        )
        if not suffixes:
            continue
        suffix, count = suffixes.most_common(1)[0]
        parent = folder.parent
        if folder != root and _is_class_folder(folder):
            candidate = DataSet(parent, f"*/*{suffix}", _count_images(parent, suffix))
        else:
            candidate = DataSet(folder, f"*{suffix}", count)
        if best is None or candidate.count > best.count:
            best = candidate
    return best


def _is_class_folder(folder: Path) -> bool:
    siblings = [p for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return len(siblings) >= 2


def _count_images(parent: Path, suffix: str) -> int:
    return sum(1 for _ in parent.glob(f"*/*{suffix}"))
