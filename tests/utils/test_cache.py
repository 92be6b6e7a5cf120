"""segkit.utils.cache: the cache's parts and sizes, and cleaning by age."""
from __future__ import annotations

import os
import time

import pytest

from segkit.utils.cache import DAY_S, cache_files, cache_summary, clean_cache, format_size


def _file(path, size, age_days=0.0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)
    t = time.time() - age_days * DAY_S
    os.utime(path, (t, t))
    return str(path)


def test_parts_sizes_and_cleaning_by_age(tmp_path):
    old = _file(tmp_path / "onnx" / "bisenetv1-aaa.onnx", 3000, age_days=30)
    new = _file(tmp_path / "onnx" / "bisenetv1-bbb.onnx", 2000)
    _file(tmp_path / "labels-0123.json", 10, age_days=10)
    writing = _file(tmp_path / "onnx" / f"x.onnx.tmp.{os.getpid()}", 5, age_days=30)  # a live writer's
    files = cache_files(str(tmp_path))
    assert [(g, n, size) for g, n, size, _ in cache_summary(files)] == [("onnx", 3, 5005), ("labels", 1, 10)]
    assert [f.path for f in clean_cache(str(tmp_path), older_than_days=7, dry_run=True)] == [
        old, str(tmp_path / "labels-0123.json")]
    assert os.path.exists(old)  # a dry run removes nothing
    clean_cache(str(tmp_path), older_than_days=7)
    assert sorted(os.listdir(tmp_path / "onnx")) == sorted([os.path.basename(new), os.path.basename(writing)])
    assert not (tmp_path / "labels-0123.json").exists()
    clean_cache(str(tmp_path))
    assert os.listdir(tmp_path / "onnx") == [os.path.basename(writing)]
    with pytest.raises(ValueError, match="--older-than must be >= 0 days, got -1"):
        clean_cache(str(tmp_path), older_than_days=-1)


def test_empty_folders_go_and_a_missing_cache_is_empty(tmp_path):
    _file(tmp_path / "zoo" / "w.pth", 1, age_days=2)
    clean_cache(str(tmp_path))
    assert os.listdir(tmp_path) == []
    assert cache_files(str(tmp_path / "absent")) == []


def test_format_size():
    assert [format_size(n) for n in (5, 1500, 305_000_000, 2_000_000_000_000)] == ["5 B", "1.5 kB", "305.0 MB",
                                                                                    "2000.0 GB"]
