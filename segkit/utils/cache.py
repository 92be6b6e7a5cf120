"""What segkit keeps in its cache folder ($SEGKIT_CACHE, default ~/.cache/segkit), and removing it.

The cache holds ONNX exports of models run with runtime auto (onnx/, tens of MB each), per-file header
and label-histogram indexes of datasets (headers-*.json, labels-*.json, cls-headers-*.json), zoo checkpoints
(zoo/) and whatever other parts of segkit store there. All of it is rebuilt or downloaded again on demand
except the zoo files a user placed by hand (those a web page hands out), which `clean_cache` keeps when its
caller names them in `keep`; `tools/cache.py` reports the cache's size and cleans it.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Collection

from .checkpoint import _process_alive
from .io import cache_dir

DAY_S = 86400.0


@dataclass(frozen=True)
class CacheFile:
    path: str
    group: str  # the folder under the cache root, or the file's kind ("labels" for labels-<digest>.json)
    size: int
    last_used: float  # the later of access and modification time (seconds since the epoch)


def _group(relative: str) -> str:
    parts = relative.split(os.sep)
    return parts[0] if len(parts) > 1 else parts[0].rsplit("-", 1)[0] if "-" in parts[0] else parts[0]


def _being_written(name: str) -> bool:
    # An atomic write in progress (segkit.utils.io.atomic_path) of a live process: not ours to delete.
    pid = name.rsplit(".tmp.", 1)[1] if ".tmp." in name else ""
    return pid.isdigit() and _process_alive(int(pid))


def cache_files(root: str | None = None) -> list[CacheFile]:
    """Every file under the cache folder (default segkit's), oldest use first."""
    root = root or cache_dir()
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # removed meanwhile
                continue
            found.append(CacheFile(path, _group(os.path.relpath(path, root)), st.st_size,
                                   max(st.st_atime, st.st_mtime)))
    return sorted(found, key=lambda f: f.last_used)


def cache_summary(files: list[CacheFile]) -> list[tuple[str, int, int, float]]:
    """(group, files, bytes, oldest last use) per group, largest first."""
    groups: dict[str, list[CacheFile]] = {}
    for f in files:
        groups.setdefault(f.group, []).append(f)
    rows = [(g, len(fs), sum(f.size for f in fs), min(f.last_used for f in fs)) for g, fs in groups.items()]
    return sorted(rows, key=lambda r: -r[2])


def clean_cache(root: str | None = None, older_than_days: float | None = None, dry_run: bool = False,
                keep: Collection[str] = ()) -> list[CacheFile]:
    """Remove the cache files not used for `older_than_days` days (None: all of them); returns them.

    Files being written by a live process and the paths in `keep` are left alone; folders left empty are removed.
    """
    root = root or cache_dir()
    if older_than_days is not None and older_than_days < 0:
        raise ValueError(f"--older-than must be >= 0 days, got {older_than_days}")
    cutoff = time.time() - older_than_days * DAY_S if older_than_days is not None else float("inf")
    kept = {os.path.abspath(p) for p in keep}
    doomed = [f for f in cache_files(root) if f.last_used < cutoff and not _being_written(os.path.basename(f.path))
              and os.path.abspath(f.path) not in kept]
    if dry_run:
        return doomed
    for f in doomed:
        try:
            os.remove(f.path)
        except FileNotFoundError:
            pass
    for dirpath, _, _ in sorted(os.walk(root), key=lambda d: -len(d[0])):  # deepest first
        if dirpath != root and not os.listdir(dirpath):
            shutil.rmtree(dirpath, ignore_errors=True)
    return doomed


def format_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
