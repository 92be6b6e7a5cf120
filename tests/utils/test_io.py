"""Atomic writes leave whole files only; an unwritable output path is one error naming it."""
from __future__ import annotations

import os
import re

import pytest

from segkit.utils.io import UnwritablePathError, atomic_write_text, check_not_input, check_writable


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
