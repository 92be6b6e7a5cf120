"""tools/cache.py: the size report and the clean command."""
from __future__ import annotations

import os

from tests.utils.test_cache import ONNX_A, _file
from tools.cache import main


def test_info_then_clean_older_than(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    _file(tmp_path / "onnx" / ONNX_A, 2_000_000, age_days=40)
    _file(tmp_path / "headers-0000000000000077.json", 500)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "| onnx    |       1 | 2.0 MB |" in out and "headers" in out
    assert f"{tmp_path}: 2 files, 2.0 MB" in out
    assert main(["clean", "--older-than", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 file(s) unused for 30 days, 2.0 MB, from {tmp_path}"
    assert os.listdir(tmp_path) == ["headers-0000000000000077.json"]
    assert main(["clean", "--older-than", "-2"]) == 1
    assert capsys.readouterr().err.strip() == "error: --older-than must be >= 0 days, got -2.0"


def test_clean_keeps_the_zoo_files_placed_by_hand(tmp_path, monkeypatch, capsys):
    from segkit.zoo import ENTRIES, cached_path

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    by_hand = next(e for e in ENTRIES.values() if not e.direct)
    fetched = next(e for e in ENTRIES.values() if e.direct)
    for entry in (by_hand, fetched):
        _file(cached_path(entry), 1000)
    assert main(["clean"]) == 0
    out = capsys.readouterr().out
    assert os.path.isfile(cached_path(by_hand)) and not os.path.exists(cached_path(fetched))
    assert "removed 1 file(s)" in out and "kept 1 zoo file(s) placed by hand" in out and cached_path(by_hand) in out


def test_clean_removes_only_what_segkit_wrote_and_counts_the_rest(tmp_path, monkeypatch, capsys):
    # SEGKIT_CACHE pointed at a folder of the user's: their files and folders stay, whatever their names.
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    theirs = [_file(tmp_path / "thesis.tex", 10), _file(tmp_path / "onnx" / "deployed.onnx", 10),
              _file(tmp_path / "photos" / "a.jpg", 10)]
    _file(tmp_path / "onnx" / ONNX_A, 1000)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}: 1 files, 1.0 kB" in out
    assert f"left alone: 3 file(s) or folder(s) in {tmp_path} that segkit did not write" in out
    assert main(["clean", "--dry-run"]) == 0
    assert capsys.readouterr().out == (f"would remove 1 file(s), 1.0 kB, from {tmp_path}\nleft alone: 3 file(s) or "
                                       f"folder(s) in {tmp_path} that segkit did not write\n")
    assert main(["clean"]) == 0
    assert "removed 1 file(s)" in capsys.readouterr().out
    assert all(os.path.isfile(p) for p in theirs) and os.listdir(tmp_path / "onnx") == ["deployed.onnx"]


def test_a_cache_that_is_a_file_is_one_error_line(tmp_path, monkeypatch, capsys):
    blocker = _file(tmp_path / "cache", 1)
    monkeypatch.setenv("SEGKIT_CACHE", blocker)
    for command in (["info"], ["clean", "--dry-run"]):
        assert main(command) == 1
        assert capsys.readouterr().err == f"error: the segkit cache {blocker} (SEGKIT_CACHE) is a file, not a folder\n"
