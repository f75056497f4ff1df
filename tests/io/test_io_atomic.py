"""Atomic writers: complete file or old file, never a half-written one, never a stray temp file."""

import json
from pathlib import Path

import pytest

from customvid.io import atomic_write, atomic_write_dir, write_json_atomic, write_text_atomic


def test_atomic_write_replaces_target_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible until the block succeeds
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_atomic_write_creates_parent_dirs(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    write_text_atomic(target, "hi")
    assert target.read_text() == "hi"


def test_write_json_atomic_roundtrip_and_unserialisable_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_json_atomic(target, {"fps": 8, "name": "é"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"fps": 8, "name": "é"}
    assert target.read_text(encoding="utf-8").endswith("\n")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text(encoding="utf-8"))["fps"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_atomic_write_dir_swaps_whole_directory(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_bytes(b"x")
    with atomic_write_dir(target) as tmp:
        (tmp / "new.png").write_bytes(b"y")
    assert [p.name for p in target.iterdir()] == ["new.png"]
    with pytest.raises(ValueError):
        with atomic_write_dir(target) as tmp:
            (tmp / "newer.png").write_bytes(b"z")
            raise ValueError
    assert [p.name for p in target.iterdir()] == ["new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
