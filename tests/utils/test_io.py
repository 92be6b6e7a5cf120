"""Atomic writes leave whole files and folders only; an unwritable output path is one error naming it."""
from __future__ import annotations

import os
import re
import stat

import pytest

from segkit.utils.io import (UnwritablePathError, atomic_folder, atomic_write_text, build_folder_once,
                             check_not_input, check_writable)


def test_atomic_write_leaves_no_temporary(tmp_path):
    atomic_write_text(str(tmp_path / "a" / "f.txt"), "x")
    assert os.listdir(tmp_path / "a") == ["f.txt"] and (tmp_path / "a" / "f.txt").read_text() == "x"


def test_a_writable_path_passes_and_creates_its_folder_only(tmp_path):
    check_writable(str(tmp_path / "new" / "m.json"), "--out")
    check_writable(str(tmp_path / "pred"), "--save-pred", folder=True)
    assert os.listdir(tmp_path / "new") == [] and os.listdir(tmp_path / "pred") == []


def test_unwritable_paths_name_the_flag_and_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UnwritablePathError, match=rf"cannot write --out {blocker}/m.json: {blocker} is a file"):
        check_writable(str(blocker / "m.json"), "--out")
    with pytest.raises(ValueError, match=rf"--save-pred {blocker} is a file, not a folder"):
        check_writable(str(blocker), "--save-pred", folder=True)
    with pytest.raises(OSError, match=rf"--out {tmp_path} is a folder: give a file path"):
        check_writable(str(tmp_path), "--out")


def test_an_output_that_is_its_input_is_refused_naming_both_flags(tmp_path, monkeypatch):
    src = tmp_path / "cp" / "m.pth"
    src.parent.mkdir()
    src.write_bytes(b"checkpoint")
    os.symlink(src, tmp_path / "link.pth")
    monkeypatch.chdir(tmp_path)
    # The same file by its path, another spelling of it, a link to it, and both missing but equal paths.
    for out, given in ((str(src), str(src)), ("cp/../cp/m.pth", str(src)), ("link.pth", "cp/m.pth"),
                       ("new/x.pth", "./new/x.pth")):
        with pytest.raises(ValueError, match=rf"^--out {re.escape(out)} is the same file as --weights: writing it "
                                             rf"would overwrite the input; give --out another path$"):
            check_not_input(out, "--out", given, "--weights")
    for out in ("cp/other.pth", "m.pth", str(tmp_path / "cp")):  # another file, a missing one, the input's folder
        check_not_input(out, "--out", str(src), "--weights")
    assert src.read_bytes() == b"checkpoint"


def _fill(folder, text="new") -> None:
    os.makedirs(os.path.join(folder, "train"))
    open(os.path.join(folder, "train", "a.txt"), "w").write(text)
    os.makedirs(os.path.join(folder, "val"))


def test_atomic_folder_becomes_the_path_or_leaves_nothing(tmp_path):
    with atomic_folder(str(tmp_path / "set")) as folder:
        assert not os.path.exists(tmp_path / "set")  # nothing at the path while it is being filled
        _fill(folder)
    assert os.listdir(tmp_path) == ["set"] and (tmp_path / "set" / "train" / "a.txt").read_text() == "new"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "set").st_mode) == 0o777 & ~umask  # as os.makedirs leaves a folder
    with pytest.raises(RuntimeError):
        with atomic_folder(str(tmp_path / "broken")) as folder:
            _fill(folder)
            raise RuntimeError("killed half way")
    assert os.listdir(tmp_path) == ["set"]


def test_atomic_folder_fills_what_an_existing_folder_lacks_and_keeps_the_rest(tmp_path):
    (tmp_path / "set" / "train").mkdir(parents=True)
    (tmp_path / "set" / "train" / "a.txt").write_text("first")  # another writer's finished part
    with atomic_folder(str(tmp_path / "set")) as folder:
        _fill(folder, "second")
    assert (tmp_path / "set" / "train" / "a.txt").read_text() == "first"
    assert sorted(os.listdir(tmp_path / "set")) == ["train", "val"] and os.listdir(tmp_path) == ["set"]


def test_build_folder_once_builds_only_what_is_not_complete(tmp_path):
    root = str(tmp_path / "set")
    calls = []

    def build(folder: str) -> None:
        calls.append(folder)
        _fill(folder)

    def complete(path: str) -> bool:
        return os.path.isdir(os.path.join(path, "val"))

    os.makedirs(root)  # an empty folder, not complete: filled
    assert build_folder_once(root, build, complete)
    assert not build_folder_once(root, build, complete) and len(calls) == 1
    assert sorted(os.listdir(tmp_path)) == ["set", "set.lock"] and sorted(os.listdir(root)) == ["train", "val"]
    assert calls[0] != root  # built elsewhere, then moved: never half a folder at root
