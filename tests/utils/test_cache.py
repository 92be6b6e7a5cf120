"""segkit.utils.cache: the cache's parts and sizes, cleaning by age, and only ever segkit's own files."""
from __future__ import annotations

import os
import time

import pytest
import torch

from segkit.utils.cache import DAY_S, cache_files, cache_summary, clean_cache, format_size, other_files

# Names as segkit's writers give them (test_every_writer_of_the_cache_is_recognised checks the forms).
ONNX_A, ONNX_B = "bisenetv1-" + "a" * 20 + ".onnx", "bisenetv1-" + "b" * 20 + ".onnx"
LABELS = "labels-0123456789abcdef.json"


def _file(path, size, age_days=0.0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)
    t = time.time() - age_days * DAY_S
    os.utime(path, (t, t))
    return str(path)


def test_parts_sizes_and_cleaning_by_age(tmp_path):
    old = _file(tmp_path / "onnx" / ONNX_A, 3000, age_days=30)
    new = _file(tmp_path / "onnx" / ONNX_B, 2000)
    _file(tmp_path / LABELS, 10, age_days=10)
    writing = _file(tmp_path / "onnx" / f"{ONNX_A}.tmp.{os.getpid()}", 5, age_days=30)  # a live writer's
    files = cache_files(str(tmp_path))
    assert [(g, n, size) for g, n, size, _ in cache_summary(files)] == [("onnx", 3, 5005), ("labels", 1, 10)]
    assert [f.path for f in clean_cache(str(tmp_path), older_than_days=7, dry_run=True)] == [
        old, str(tmp_path / LABELS)]
    assert os.path.exists(old)  # a dry run removes nothing
    clean_cache(str(tmp_path), older_than_days=7)
    assert sorted(os.listdir(tmp_path / "onnx")) == sorted([os.path.basename(new), os.path.basename(writing)])
    assert not (tmp_path / LABELS).exists()
    clean_cache(str(tmp_path))
    assert os.listdir(tmp_path / "onnx") == [os.path.basename(writing)]
    with pytest.raises(ValueError, match="--older-than must be >= 0 days, got -1"):
        clean_cache(str(tmp_path), older_than_days=-1)


def test_empty_folders_go_and_a_missing_cache_is_empty(tmp_path, monkeypatch):
    from segkit.zoo import ENTRIES, cached_path

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    _file(cached_path(next(iter(ENTRIES.values()))), 1, age_days=2)
    _file(tmp_path / "onnx" / ONNX_A, 1)
    clean_cache(str(tmp_path))
    assert os.listdir(tmp_path) == []  # zoo/<entry>/, zoo/ and onnx/ are gone, the root stays
    assert cache_files(str(tmp_path / "absent")) == [] and other_files(str(tmp_path / "absent")) == []


def test_every_writer_of_the_cache_is_recognised(tmp_path, monkeypatch):
    from segkit.data.labels import cached_per_file
    from segkit.deploy import fastpath, quantize
    from segkit.zoo import ENTRIES, cached_path

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    data = _file(tmp_path / "data" / "a.png", 1)
    for kind in ("labels", "headers", "cls-headers"):  # the kinds of cached_per_file's callers
        cached_per_file(kind, [data], lambda path: 1)
    stub = lambda *args, **kwargs: _file(args[1], 1)  # noqa: E731 -- (model or fp32 file, path, ...)
    monkeypatch.setattr(fastpath, "export_onnx", stub)
    monkeypatch.setattr(quantize, "quantize_int8", stub)
    fp32 = fastpath.cached_onnx_export(torch.nn.Conv2d(3, 2, 1))
    quantize.cached_int8(fp32, quantize.Calibration("k", lambda: iter(())))
    quantize.cached_int8(_file(tmp_path / "mine.onnx", 1), quantize.Calibration("k", lambda: iter(())))
    for entry in ENTRIES.values():
        _file(cached_path(entry), 1)
    files = cache_files()
    assert sorted({f.group for f in files}) == ["cls-headers", "headers", "labels", "onnx", "zoo"]
    assert len(files) == 3 + 3 + len(ENTRIES) and other_files() == []


def test_files_segkit_did_not_write_are_left_alone_and_counted(tmp_path):
    theirs = [_file(tmp_path / "notes.txt", 1), _file(tmp_path / "labels-mine.json", 1),
              _file(tmp_path / "onnx" / "model.onnx", 1), _file(tmp_path / "onnx" / "x" / ONNX_A, 1),
              _file(tmp_path / "zoo" / "w.pth", 1), _file(tmp_path / "zoo" / "a" / "b" / "w.pth", 1),
              _file(tmp_path / "onnx" / f"model.onnx.tmp.{os.getpid() + 10**7}", 1)]
    _file(tmp_path / "projects" / "deep" / ONNX_A, 1)  # a folder of the user's is not looked into
    ours = _file(tmp_path / "onnx" / ONNX_A, 1)
    assert [f.path for f in cache_files(str(tmp_path))] == [ours]
    assert sorted(other_files(str(tmp_path))) == sorted(theirs + [str(tmp_path / "projects")])
    assert [f.path for f in clean_cache(str(tmp_path))] == [ours]
    assert all(os.path.exists(p) for p in theirs) and (tmp_path / "projects" / "deep" / ONNX_A).exists()


def test_a_cache_that_is_a_file_is_one_error_naming_it(tmp_path):
    blocker = _file(tmp_path / "cache", 1)
    for call in (cache_files, other_files, clean_cache):
        with pytest.raises(ValueError, match=rf"^the segkit cache {blocker} \(SEGKIT_CACHE\) is a file, not a folder$"):
            call(blocker)
    assert os.path.isfile(blocker)


def test_format_size():
    assert [format_size(n) for n in (5, 1500, 305_000_000, 2_000_000_000_000)] == ["5 B", "1.5 kB", "305.0 MB",
                                                                                    "2000.0 GB"]
