"""Per-rank append-only journals of finished records (JSON lines, fsync per commit).

A journal line is ``{"stem": <output stem or null>, "record": <analysis record>}``; the
stem lets a resumed run reuse the names an input got before. Each rank appends to its own file
(``output_dir/.journal/rank<k>.jsonl``), so DDP ranks never share a file. A process killed
mid-write leaves at most one partial last line: readers skip it, and the next writer cuts
it off before appending.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from thermal_explain.output.naming import JOURNAL_DIR
from thermal_explain.output.records import STATUS_OK

log = logging.getLogger(__name__)

_RANK_FILE = re.compile(r"rank(\d+)\.jsonl")


def journal_path(output_dir: str | Path, rank: int) -> Path:
    """Where rank ``rank`` journals its records."""
    return Path(output_dir) / JOURNAL_DIR / f"rank{rank}.jsonl"


def journal_files(output_dir: str | Path) -> list[Path]:
    """Every rank journal under ``output_dir``, in rank order."""
    folder = Path(output_dir) / JOURNAL_DIR
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), entry)
        for entry in folder.iterdir()
        if (match := _RANK_FILE.fullmatch(entry.name)) and entry.is_file()
    ]
    return [entry for _, entry in sorted(found)]


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """The entries of one journal; a truncated or garbled line is skipped (and logged)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if number < len(lines):
                log.warning("skipping unreadable line %d of journal %s", number, path)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("record"), dict):
            entries.append(entry)
    return entries


def read_all(output_dir: str | Path) -> list[dict[str, Any]]:
    """The entries of every rank journal, rank by rank."""
    return [entry for path in journal_files(output_dir) for entry in read_journal(path)]


def succeeded_paths(entries: Iterable[dict[str, Any]]) -> set[str]:
    """Image paths of ``entries`` (as :func:`read_all` gives them) with a successful record."""
    return {
        entry["record"]["image_path"]
        for entry in entries
        if entry["record"].get("status") == STATUS_OK
        and isinstance(entry["record"].get("image_path"), str)
    }


def claimed_stems(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Image path -> the output stem an earlier run gave it (names stay stable on resume)."""
    return {
        entry["record"]["image_path"]: entry["stem"]
        for entry in entries
        if isinstance(entry.get("stem"), str)
        and entry["stem"]
        and isinstance(entry["record"].get("image_path"), str)
    }


class JournalWriter:
    """Appends entries to one journal; each :meth:`append` is flushed and fsynced."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[bytes] | None = None

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        """Write ``entries`` as JSON lines and make them durable before returning."""
        if not entries:
            return
        handle = self._open()
        handle.write(b"".join(_encode(entry) for entry in entries))
        handle.flush()
        os.fsync(handle.fileno())

    def close(self) -> None:
        """Close the file (appending again reopens it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut_partial_line(self.path)
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
        return self._handle


def cut_partial_line(path: Path) -> None:
    """Drop an unterminated last line (left by a killed process) so appends start clean."""
    try:
        with open(path, "r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            keep = _last_newline_end(handle, size)
            handle.truncate(keep)
    except FileNotFoundError:
        return


def _last_newline_end(handle: IO[bytes], size: int) -> int:
    """Offset just past the last newline before ``size`` (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - 65536)
        handle.seek(start)
        block = handle.read(position - start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        position = start
    return 0


def _encode(entry: dict[str, Any]) -> bytes:
    text = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def remove_journals(output_dir: str | Path, ranks: Iterable[int] | None = None) -> None:
    """Delete the journals of ``ranks`` (all of them when ``None``)."""
    wanted = None if ranks is None else set(ranks)
    for path in journal_files(output_dir):
        match = _RANK_FILE.fullmatch(path.name)
        if match and (wanted is None or int(match.group(1)) in wanted):
            path.unlink(missing_ok=True)
