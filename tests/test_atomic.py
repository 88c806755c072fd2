import json
import os

import pytest

from fmnist.plumbing import atomic
from tests.helpers import ctrl_c


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_until_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    atomic.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_is_stable(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"b": 1.5, "a": {"z": 1, "y": 2}})
    atomic.write_json(tmp_path / "b.json", {"a": {"y": 2, "z": 1}, "b": 1.5})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": {"y": 2, "z": 1}, "b": 1.5}


def test_outputs_get_ordinary_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644


def test_a_ctrl_c_while_the_temporary_is_made_leaves_nothing_behind(tmp_path, monkeypatch):
    """The signal lands just after the temporary exists, before the caller holds its name: it is still removed."""
    import tempfile

    make = tempfile.mkstemp

    def make_then_ctrl_c(*args, **kwargs):
        made = make(*args, **kwargs)
        ctrl_c()
        return made

    monkeypatch.setattr(tempfile, "mkstemp", make_then_ctrl_c)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(tmp_path / "out" / "old.txt"):
            raise AssertionError("the block must not start")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["old.txt", "out"]
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
