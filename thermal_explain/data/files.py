"""Finding image files, labelling them from class folders, and locating their masks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from thermal_explain.checks import expect
from thermal_explain.errors import ConfigurationError

PATTERN_HINT = "e.g. '*/*.jpg' for class folders, '**/*.png' for any depth"


def check_pattern(pattern: object) -> None:
    """A non-empty glob, else a one-line error with examples."""
    expect(
        isinstance(pattern, str) and bool(pattern.strip()),
        "pattern",
        "a non-empty glob",
        pattern,
        PATTERN_HINT,
    )


def find_images(
    image_dir: str | Path | None = None,
    pattern: str = "*.jpg",
    image_path: str | Path | None = None,
    exclude: Sequence[str | Path] = (),
) -> list[Path]:
    """The image files to process, sorted.

    Either one file (``image_path``) or every file under ``image_dir`` matching the glob
    ``pattern`` (``*/*.jpg`` spans class folders, ``**`` any depth). Matching ignores
    letter case (``*.jpg`` finds ``FACE.JPG``) and skips hidden files and folders (names
    starting with ``.``) and anything inside the ``exclude`` folders (a run's own
    ``output_dir`` inside the image folder is never read back as input). A symbolic link
    that leads nowhere (dangling, or a loop) is listed like a file, so the run records
    why it cannot be read instead of losing it.

    Raises:
        ConfigurationError: not exactly one of ``image_path``/``image_dir``, a missing
            file or folder, a bad pattern, or a pattern that matches no files.
    """
    if (image_path is None) == (image_dir is None):
        which = "both were given" if image_path is not None else "neither was given"
        raise ConfigurationError(
            f"pass exactly one of --image_path (one file) or --image_dir (a folder); {which}"
        )
    if image_path is not None:
        path = Path(image_path)
        if path.is_dir():
            raise ConfigurationError(
                f"image_path '{path}' is a folder; pass it with --image_dir (and --pattern)"
            )
        if not path.is_file():
            raise ConfigurationError(
                f"image_path '{path}' does not exist; pass an existing image file with --image_path"
            )
        return [path]
    root = Path(image_dir)
    if not root.exists():
        raise ConfigurationError(
            f"image_dir '{root}' does not exist; pass an existing folder with --image_dir"
        )
    if not root.is_dir():
        raise ConfigurationError(
            f"image_dir '{root}' is a file, not a folder; pass it with --image_path instead"
        )
    check_pattern(pattern)
    try:
        matches = root.glob(_case_insensitive(pattern))
        skipped = [os.path.realpath(folder) for folder in exclude]
        paths = sorted(
            path
            for path in matches
            if (path.is_file() or _is_broken_link(path))
            and not _is_hidden(path, root)
            and not _inside_any(path, skipped)
        )
    except (NotImplementedError, ValueError) as error:
        raise ConfigurationError(
            f"pattern '{pattern}' is not a relative glob ({error}); {PATTERN_HINT}"
        ) from error
    if not paths:
        raise ConfigurationError(
            f"pattern '{pattern}' matched no files in '{root}'; check --pattern ({PATTERN_HINT})"
        )
    return paths


def infer_class_names(paths: Sequence[str | Path], root: str | Path) -> list[str] | None:
    """Sorted first-level sub-folder names of ``root`` holding the images.

    Returns ``None`` unless every image lies inside a sub-folder of ``root`` (an image
    directly in ``root``, or outside it, has no class folder).
    """
    names: set[str] = set()
    for path in paths:
        relative = _relative(path, root)
        if relative is None or len(relative.parts) < 2:
            return None
        names.add(relative.parts[0])
    return sorted(names) or None


def label_index(path: str | Path, root: str | Path, class_names: Sequence[str] | None) -> int:
    """Class index of an image from its folders, ``-1`` when unknown.

    The image's first-level sub-folder of ``root`` decides; failing that (e.g. ``root``
    is itself one class folder such as ``data/icas``) the nearest parent folder whose
    name matches a class name. Names match exactly first, then ignoring case.
    """
    if not class_names:
        return -1
    exact = {name: index for index, name in reversed(list(enumerate(class_names)))}
    folded = {name.casefold(): index for index, name in reversed(list(enumerate(class_names)))}

    def match(folder: str) -> int:
        if folder in exact:
            return exact[folder]
        return folded.get(folder.casefold(), -1)

    relative = _relative(path, root)
    if relative is not None and len(relative.parts) >= 2:
        index = match(relative.parts[0])
        if index >= 0:
            return index
    for parent in Path(os.path.abspath(path)).parents:
        index = match(parent.name)
        if index >= 0:
            return index
    return -1


class MaskLookup:
    """Image path -> its mask under ``mask_dir``, which mirrors one of the image folders.

    ``image_roots``: the folders the images come from (the first that holds an image
    decides); an image under none of them maps to ``mask_dir/<stem>.png``.
    """

    def __init__(self, mask_dir: str | Path, image_roots: Sequence[str | Path | None] = ()) -> None:
        self.mask_dir = Path(mask_dir)
        self.image_roots = [Path(root) for root in image_roots if root is not None]

    def __call__(self, image_path: str | Path) -> Path:
        for root in self.image_roots:
            if _relative(image_path, root) is not None:
                return mask_path_for(image_path, root, self.mask_dir)
        return mask_path_for(image_path, None, self.mask_dir)


def mask_path_for(
    image_path: str | Path, image_dir: str | Path | None, mask_dir: str | Path
) -> Path:
    """The mask of an image: ``mask_dir`` mirrors ``image_dir``, with ``<stem>.png``.

    ``image_dir/icas/p1.jpg`` -> ``mask_dir/icas/p1.png``; an image outside ``image_dir``
    (or without one) maps to ``mask_dir/<stem>.png``.
    """
    image_path = Path(image_path)
    relative = None if image_dir is None else _relative(image_path, image_dir)
    folder = relative.parent if relative is not None else Path()
    return Path(mask_dir) / folder / f"{image_path.stem}.png"


def _case_insensitive(pattern: str) -> str:
    """Rewrite a glob so letters outside ``[...]`` match either case (``a`` -> ``[aA]``)."""
    out: list[str] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "[":
            start = position + 1
            start += pattern.startswith("!", start)
            start += pattern.startswith("]", start)
            close = pattern.find("]", start)
            if close < 0:
                out.append("[[]")
                position += 1
                continue
            out.append(pattern[position : close + 1])
            position = close + 1
            continue
        lower, upper = char.lower(), char.upper()
        out.append(f"[{lower}{upper}]" if lower != upper and len(upper) == 1 else char)
        position += 1
    return "".join(out)


def _is_broken_link(path: Path) -> bool:
    """A symbolic link whose target is missing or loops (``is_file`` says ``False``)."""
    return path.is_symlink() and not path.is_dir()


def _inside_any(path: Path, folders: Sequence[str]) -> bool:
    """Whether ``path``'s folder lies in one of ``folders`` (real paths, symlinks resolved)."""
    if not folders:
        return False
    parent = os.path.realpath(path.parent)
    return any(parent == folder or parent.startswith(folder + os.sep) for folder in folders)


def _is_hidden(path: Path, root: Path) -> bool:
    relative = _relative(path, root)
    parts = relative.parts if relative is not None else (path.name,)
    return any(part.startswith(".") for part in parts)


def _relative(path: str | Path, root: str | Path) -> Path | None:
    """``path`` relative to ``root`` (lexically, then as absolute paths), else ``None``."""
    try:
        return Path(path).relative_to(root)
    except ValueError:
        pass
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return None
