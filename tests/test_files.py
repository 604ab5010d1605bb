"""vinpaint.files: the one crash-safe write every part uses, and its one permission rule."""
from __future__ import annotations

import errno
import os
import stat

import pytest

from vinpaint.engine import make_config
from vinpaint.files import FILE_MODE, FOLDER_MODE, atomic_write, atomic_write_text, replacing, temp_sibling


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_every_write_gets_the_mode_a_plain_open_would_give(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    make_config("tiny").save(tmp_path / "work" / "config.json")       # a work directory's config
    make_config("tiny").save(tmp_path / "OUT.config.json")            # the one beside an output
    assert _mode(tmp_path / "atomic.txt") == _mode(plain) == FILE_MODE
    assert _mode(tmp_path / "work" / "config.json") == _mode(tmp_path / "OUT.config.json") == FILE_MODE
    folder = temp_sibling(tmp_path / "frames", folder=True)
    assert _mode(folder) == FOLDER_MODE


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")

    def full_disk(f) -> None:
        f.write(b"new, half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic_write(target, full_disk)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)  # the error names the file the user asked for
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_replacing_renames_only_on_success(tmp_path):
    target = tmp_path / "clip.mkv"
    with replacing(target, ".mkv") as temp:
        assert temp.name.startswith(".clip.mkv.") and temp.name.endswith(".partial.mkv")
        temp.write_bytes(b"video")
        assert not target.exists()
    assert target.read_bytes() == b"video"
    with pytest.raises(RuntimeError):
        with replacing(target) as temp:
            temp.write_bytes(b"broken")
            raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]
