"""Journals survive a killed process; final files are replaced atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from thermal_explain.output import atomic
from thermal_explain.output.atomic import atomic_write_text
from thermal_explain.output.journal import (
    JournalWriter,
    journal_files,
    journal_path,
    read_all,
    read_journal,
    remove_journals,
)


def _entry(name: str) -> dict[str, object]:
    return {"stem": name, "record": {"image_path": f"{name}.jpg", "status": "ok"}}


def test_append_and_read_back(tmp_path: Path) -> None:
    writer = JournalWriter(journal_path(tmp_path, 0))
    writer.append([_entry("a"), _entry("b")])
    writer.append([_entry("患者")])
    writer.close()
    assert [e["stem"] for e in read_journal(journal_path(tmp_path, 0))] == ["a", "b", "患者"]


def test_truncated_last_line_is_skipped_and_cut_before_appending(tmp_path: Path) -> None:
    path = journal_path(tmp_path, 0)
    path.parent.mkdir(parents=True)
    whole = json.dumps(_entry("a")) + "\n"
    path.write_text(whole + json.dumps(_entry("b"))[:20], encoding="utf-8")
    assert [e["stem"] for e in read_journal(path)] == ["a"]
    writer = JournalWriter(path)
    writer.append([_entry("c")])
    writer.close()
    assert [e["stem"] for e in read_journal(path)] == ["a", "c"]
    assert path.read_text(encoding="utf-8").startswith(whole)


def test_garbled_middle_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    lines = [json.dumps(_entry("a")), "{not json", json.dumps(_entry("b")), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    assert [e["stem"] for e in read_journal(path)] == ["a", "b"]


def test_missing_journal_reads_empty(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "nothing.jsonl") == []
    assert read_all(tmp_path) == []


def test_rank_files_are_separate_and_ordered(tmp_path: Path) -> None:
    for rank in (10, 2, 0):
        writer = JournalWriter(journal_path(tmp_path, rank))
        writer.append([_entry(f"r{rank}")])
        writer.close()
    assert [p.name for p in journal_files(tmp_path)] == [
        "rank0.jsonl",
        "rank2.jsonl",
        "rank10.jsonl",
    ]
    assert [e["stem"] for e in read_all(tmp_path)] == ["r0", "r2", "r10"]
    remove_journals(tmp_path, [2])
    assert [p.name for p in journal_files(tmp_path)] == ["rank0.jsonl", "rank10.jsonl"]
    remove_journals(tmp_path)
    assert journal_files(tmp_path) == []


def test_atomic_write_replaces_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "analysis_results.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "新的")
    assert target.read_text(encoding="utf-8") == "新的"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis_results.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not a private temp file's 0600


def test_failed_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary_report.txt"
    atomic_write_text(target, "old")

    def broken_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary_report.txt"]
