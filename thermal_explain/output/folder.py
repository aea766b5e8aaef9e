"""An output folder: made ready for writing, and cleared of this tool's earlier outputs.

Every run (analyze, the Python API, predict on every rank, compare) prepares its folder
here, so the same checks give the same one-line errors wherever a run starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from thermal_explain.errors import ThermalExplainError


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and prove it is writable; returns it as an absolute path.

    Raises:
        ThermalExplainError: ``path`` is a file, cannot be created, or cannot be written.
    """
    root = Path(os.path.abspath(os.fspath(path)))
    if root.exists() and not root.is_dir():
        raise ThermalExplainError(
            f"output_dir '{root}' is a file, not a folder; choose a folder with --output_dir"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise not_writable(root) from error
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        raise not_writable(root)
    probe = root / f".write-test-{secrets.token_hex(4)}"
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        probe.unlink()
    except OSError as error:
        raise not_writable(root) from error
    return root


def make_folder(root: Path, name: str) -> Path:
    """``root / name``, created when missing.

    Raises:
        ThermalExplainError: it cannot be created.
    """
    folder = root / name
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise ThermalExplainError(
            f"output_dir '{root}' is not writable: cannot create '{name}'; "
            "choose another --output_dir"
        ) from error
    return folder


def clear_outputs(
    root: Path,
    *,
    files: Iterable[str] = (),
    owned: Mapping[str, tuple[str, ...]] | None = None,
    trees: Iterable[str] = (),
) -> None:
    """Delete this tool's earlier outputs in ``root``; any other file stays.

    Args:
        root: the output folder.
        files: file names directly in ``root`` (and their leftover atomic-write temporaries).
        owned: ``{folder: suffixes}``: files ending with one of the suffixes in that folder.
        trees: sub-folders that belong to the tool entirely (e.g. ``tensorboard``).
    """
    for name in files:
        (root / name).unlink(missing_ok=True)
        for stray in root.glob(f".{name}.*.tmp"):
            stray.unlink(missing_ok=True)
    for folder, suffixes in (owned or {}).items():
        directory = root / folder
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.name.endswith(suffixes) and (entry.is_file() or entry.is_symlink()):
                entry.unlink(missing_ok=True)
    for name in trees:
        if (root / name).is_dir() and not (root / name).is_symlink():
            shutil.rmtree(root / name, ignore_errors=True)


def not_writable(path: Path) -> ThermalExplainError:
    """The one message for an output folder that cannot be written."""
    return ThermalExplainError(f"output_dir '{path}' is not writable; choose another --output_dir")
