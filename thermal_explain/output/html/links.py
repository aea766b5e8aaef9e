"""Relative, URL-quoted links between the files of an output folder.

Records hold absolute paths; a report must use paths relative to ``output_dir`` so the
folder can be zipped and moved. A path that no longer lies under ``output_dir`` (the folder
was moved between a run and its resume) is found again by its folder and file name.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path, PurePath
from urllib.parse import quote

from thermal_explain.output.naming import path_key, sanitize_component


def output_file(path: object, root: Path) -> str | None:
    """``path`` as a POSIX path relative to ``root``, or ``None`` when no such file is there.

    Args:
        path: an absolute or ``root``-relative path from a record (anything else is ``None``).
        root: the absolute output folder.
    """
    if not isinstance(path, str) or not path:
        return None
    base = os.fspath(root)
    if not os.path.isabs(path):
        relative = path
    elif path.startswith(base + os.sep):
        relative = path[len(base) + 1 :]
    else:  # written before the folder was moved: same sub-folder and name
        relative = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
    relative = posixpath.normpath(relative.replace(os.sep, "/"))
    if relative.startswith("../") or not os.path.isfile(os.path.join(base, relative)):
        return None
    return relative


def href(relative: str, depth: int = 0) -> str:
    """The URL of the ``root``-relative file ``relative`` from a page ``depth`` folders down.

    Every character outside the unreserved set is percent-encoded (UTF-8), so ``#``, ``%``,
    quotes, spaces and Chinese characters in file names link correctly.
    """
    return "../" * depth + quote(relative, safe="/")


def page_id(image_path: str) -> str:
    """A stable, unique, file-name-safe id of an input image (its stem and a path hash)."""
    stem = sanitize_component(PurePath(image_path).stem, max_bytes=60)
    digest = hashlib.blake2s(
        path_key(image_path).encode("utf-8", "surrogatepass"), digest_size=4
    ).hexdigest()
    return f"{stem}_{digest}"


def display_name(image_path: str, root: str | None = None) -> str:
    """The image's path relative to the common input folder ``root``, else its file name."""
    if root:
        try:
            return PurePath(image_path).relative_to(root).as_posix()
        except ValueError:
            pass
    return PurePath(image_path).name


def common_folder(paths: list[str]) -> str | None:
    """The deepest folder holding every path (``None`` for no path or no common folder)."""
    folders = [os.path.dirname(path) for path in paths if path]
    if not folders:
        return None
    try:
        return os.path.commonpath(folders) or None
    except ValueError:
        return None


def short_layer(name: str) -> str:
    """``backbone.layer4.1.conv2`` -> ``layer4.1.conv2`` (for narrow headers)."""
    return name.removeprefix("backbone.")
