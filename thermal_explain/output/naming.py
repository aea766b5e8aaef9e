"""Safe output file names and the output folder layout.

Names are built from the input's stem, the layer and the class; every part is sanitized
so nothing is ever written outside ``output_dir``.

Same-stem inputs (``icas/001.jpg`` and ``normal/001.jpg``): a stem shared by two or more
different paths is disambiguated as ``<stem>_<parent folder>_<8 hex digits>``, the digits
being a hash of the absolute path. The rule is deterministic: with the run's full path
list given up front (``all_paths``), every colliding input is renamed, independent of
processing order, and a unique stem stays plain so the contract's names hold. Names
already given in an earlier run (read back from the journal) are kept, so a resumed run
writes to the same files. Without the full list a collision is only seen when the second
path arrives, so that path (not the first) gets the suffix.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath

HEATMAP_DIR = "gradcam_heatmaps"
OVERLAY_DIR = "overlay_images"
FEATURE_DIR = "feature_maps"
JOURNAL_DIR = ".journal"
RESULTS_FILE = "analysis_results.json"
REPORT_FILE = "summary_report.txt"

HEATMAP_SUFFIX = "_heatmap.png"
OVERLAY_SUFFIX = "_overlay.png"
FIGURE_SUFFIX = "_overlay_plt.png"
FEATURE_SUFFIX = ".npy"

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{digit}" for digit in range(10)}
    | {f"LPT{digit}" for digit in range(10)}
)
_FORBIDDEN = frozenset('<>:"/\\|?*')
_REPEATS = re.compile(r"_{2,}")
_DOTS = re.compile(r"\.{2,}")


def sanitize_component(text: str, *, max_bytes: int = 80, fallback: str = "image") -> str:
    """Turn any text into one safe file-name component.

    Path separators, Windows-reserved characters, whitespace, control and format characters
    become ``_``; runs of dots collapse (no ``..``); leading/trailing dots, spaces and ``_``
    go; Windows device names (``CON``, ``LPT1``) get a ``_`` prefix; letters of any script
    (Chinese included) are kept. Longer than ``max_bytes`` in UTF-8: cut and suffixed with a
    hash of the full text so distinct long names stay distinct.
    """
    normal = unicodedata.normalize("NFC", text)
    chars = ["_" if _is_unsafe(char) else char for char in normal]
    cleaned = _REPEATS.sub("_", _DOTS.sub(".", "".join(chars))).strip(" ._")
    if not cleaned:
        cleaned = fallback
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = f"_{cleaned}"
    if len(cleaned.encode("utf-8")) > max_bytes:
        digest = _digest(normal)
        head = cleaned.encode("utf-8")[: max(1, max_bytes - len(digest) - 1)]
        cleaned = f"{head.decode('utf-8', errors='ignore').rstrip(' ._')}_{digest}"
    return cleaned


@lru_cache(maxsize=256)  # every image names the same few layers and classes
def layer_token(layer: str) -> str:
    """``backbone.layer4.1.conv2`` -> ``backbone_layer4_1_conv2`` (sanitized)."""
    return sanitize_component(layer.replace(".", "_"), max_bytes=80, fallback="layer")


@lru_cache(maxsize=256)
def class_token(label: str) -> str:
    """The upper-cased, sanitized ``<CLASS>`` part of a file name."""
    return sanitize_component(label.upper(), max_bytes=48, fallback="CLASS")


@dataclass(frozen=True)
class OutputNames:
    """Paths of one image-layer's outputs, relative to ``output_dir`` (POSIX form)."""

    heatmap: str
    overlay: str
    figure: str
    feature_map: str


def output_names(stem: str, layer: str, label: str) -> OutputNames:
    """The contract's file names for an already-safe ``stem``, a layer and a class label."""
    base = f"{stem}_{layer_token(layer)}_{class_token(label)}"
    return OutputNames(
        heatmap=f"{HEATMAP_DIR}/{base}{HEATMAP_SUFFIX}",
        overlay=f"{OVERLAY_DIR}/{base}{OVERLAY_SUFFIX}",
        figure=f"{OVERLAY_DIR}/{base}{FIGURE_SUFFIX}",
        feature_map=f"{FEATURE_DIR}/{base}{FEATURE_SUFFIX}",
    )


def inside(root: Path, relative: str) -> Path:
    """Join ``relative`` to ``root``, refusing a name that could leave ``root``: absolute,
    with a drive, or with an empty, ``.`` or ``..`` component. The check reads the text
    only, so a subfolder the user linked to another disk is written through."""
    parts = relative.replace("\\", "/").split("/")
    rooted = relative.startswith(("/", "\\")) or bool(os.path.splitdrive(relative)[0])
    if rooted or os.path.isabs(relative) or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"output name {relative!r} escapes the output folder")
    return root / relative


def path_key(path: str) -> str:
    """A normalized absolute form of ``path`` used to compare and hash input paths."""
    return os.path.normcase(os.path.abspath(path))


class NameResolver:
    """Assigns each input path a safe, unique, deterministic output stem (see module doc)."""

    def __init__(
        self,
        all_paths: Iterable[str] | None = None,
        claimed: Mapping[str, str] | None = None,
    ) -> None:
        self._assigned: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        for path, stem in (claimed or {}).items():
            self._take(path_key(path), stem)
        groups: dict[str, set[str]] = {}
        for path in all_paths or ():
            groups.setdefault(_fold(_base_stem(path)), set()).add(path_key(path))
        self._colliding = {fold for fold, keys in groups.items() if len(keys) > 1}

    def stem_for(self, path: str) -> str:
        """The output stem of ``path`` (the same answer every time for the same path)."""
        key = path_key(path)
        if key in self._assigned:
            return self._assigned[key]
        base = _base_stem(path)
        owner = self._owners.get(_fold(base))
        if _fold(base) in self._colliding or (owner is not None and owner != key):
            parent = sanitize_component(PurePath(path).parent.name, max_bytes=32, fallback="root")
            base = f"{base}_{parent}_{_digest(key)}"
        self._take(key, base)
        return base

    def _take(self, key: str, stem: str) -> None:
        self._assigned[key] = stem
        self._owners.setdefault(_fold(stem), key)


def _base_stem(path: str) -> str:
    return sanitize_component(PurePath(path).stem)


def _fold(stem: str) -> str:
    """Case-folded stem: ``A.jpg`` and ``a.jpg`` collide on case-insensitive file systems."""
    return stem.casefold()


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def _is_unsafe(char: str) -> bool:
    return char in _FORBIDDEN or unicodedata.category(char)[0] in "CZ"
