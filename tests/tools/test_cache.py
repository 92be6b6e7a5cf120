"""tools/cache.py: the size report and the clean command."""
from __future__ import annotations

import os

from tests.utils.test_cache import _file
from tools.cache import main


def test_info_then_clean_older_than(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    _file(tmp_path / "onnx" / "m-1.onnx", 2_000_000, age_days=40)
    _file(tmp_path / "headers-77.json", 500)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "| onnx    |       1 | 2.0 MB |" in out and "headers" in out
    assert f"{tmp_path}: 2 files, 2.0 MB" in out
    assert main(["clean", "--older-than", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 file(s) unused for 30 days, 2.0 MB, from {tmp_path}"
    assert os.listdir(tmp_path) == ["headers-77.json"]
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
