"""r1repro/files.py: atomic writes land with the umask's default mode, and a failed write leaves the old
artifact and no temporary sibling behind."""

from __future__ import annotations

import json
import stat

import pytest

from r1repro.files import atomic_path, write_json_atomic, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_and_directory_get_the_mode_a_plain_open_and_mkdir_give(tmp_path):
    plain_file, plain_dir = tmp_path / "plain.txt", tmp_path / "plain_dir"
    with open(plain_file, "w") as f:
        f.write("x")
    plain_dir.mkdir()
    write_text_atomic(tmp_path / "atomic.txt", "x")
    with atomic_path(tmp_path / "atomic_dir", directory=True) as tmp:
        (tmp / "inside.txt").write_text("x")
    assert _mode(tmp_path / "atomic.txt") == _mode(plain_file)
    assert _mode(tmp_path / "atomic_dir") == _mode(plain_dir)


def test_an_error_inside_the_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "DONE.json"
    write_json_atomic(target, {"old": True})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a file")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DONE.json"]


def test_a_directory_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "traces"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "old_only.txt").write_text("old")
        (tmp / "shared.txt").write_text("old")
    with atomic_path(target, directory=True) as tmp:
        (tmp / "shared.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["shared.txt"]
    assert (target / "shared.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces"]  # no .tmp- / .old- siblings left


def test_a_failed_directory_write_leaves_the_old_directory(tmp_path):
    target = tmp_path / "traces"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(ValueError), atomic_path(target, directory=True) as tmp:
        (tmp / "a.txt").write_text("new")
        raise ValueError("bad shard")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces"]
