"""What segkit keeps in its cache folder ($SEGKIT_CACHE, default ~/.cache/segkit), and removing it.

The cache holds ONNX exports of models run with runtime auto and their INT8 models (onnx/, tens of MB each),
per-file header and label-histogram indexes of datasets (headers-*.json, labels-*.json, cls-headers-*.json) and
zoo checkpoints (zoo/<entry>/<file>). All of it is rebuilt or downloaded again on demand except the zoo files a
user placed by hand (those a web page hands out), which `clean_cache` keeps when its caller names them in `keep`;
`tools/cache.py` reports the cache's size and cleans it.

Only the files segkit writes there are reported and removed: SEGKIT_CACHE may name a folder that holds other
files too (a home folder, by mistake even /), and those are not segkit's to delete.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from typing import Collection

from .checkpoint import _process_alive
from .io import cache_dir

DAY_S = 86400.0

# Every file segkit writes in the cache, by part, as a path relative to the cache root ("/"-separated):
# segkit.deploy.fastpath.cached_onnx_export (<model>-<20 hex>.onnx), segkit.deploy.quantize.cached_int8
# (<fp32 stem>-int8-<12 hex>.onnx), segkit.data.labels.cached_per_file (<kind>-<16 hex>.json, for the kinds
# written by segkit.data.labels and segkit.pretrain.data) and segkit.zoo.download.cached_path
# (zoo/<entry>/<its file>). tests/utils/test_cache.py checks these against the writers.
PATTERNS = {
    "zoo": re.compile(r"zoo/[^/]+/[^/]+"),
    "onnx": re.compile(r"onnx/[^/]+-(?:[0-9a-f]{20}|int8-[0-9a-f]{12})\.onnx"),
    "headers": re.compile(r"headers-[0-9a-f]{16}\.json"),
    "labels": re.compile(r"labels-[0-9a-f]{16}\.json"),
    "cls-headers": re.compile(r"cls-headers-[0-9a-f]{16}\.json"),
}
FOLDERS = ("onnx", "zoo")  # the only folders segkit makes in the cache root
TEMPORARY = re.compile(r"\.tmp\.\d+$")  # an atomic write's temporary (segkit.utils.io.atomic_path)


@dataclass(frozen=True)
class CacheFile:
    path: str
    group: str  # the part of the cache: onnx, zoo, headers, labels or cls-headers
    size: int
    last_used: float  # the later of access and modification time (seconds since the epoch)


def _part(relative: str) -> str | None:
    """The part of the cache a file at `relative` belongs to; None when segkit does not write such a file."""
    relative = TEMPORARY.sub("", relative)
    return next((part for part, pattern in PATTERNS.items() if pattern.fullmatch(relative)), None)


def _being_written(name: str) -> bool:
    # An atomic write in progress (segkit.utils.io.atomic_path) of a live process: not ours to delete.
    pid = name.rsplit(".tmp.", 1)[1] if ".tmp." in name else ""
    return pid.isdigit() and _process_alive(int(pid))


def _scan(root: str | None) -> tuple[str, list[CacheFile], list[str]]:
    """The cache root, segkit's files there (oldest use first) and the other files and folders it looked at.

    Only the root's own entries and segkit's folders are looked into: SEGKIT_CACHE=/ lists / and stops there.
    """
    root = root or cache_dir()
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValueError(f"the segkit cache {root} (SEGKIT_CACHE) is a file, not a folder")
    ours, others = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            others += [os.path.join(root, d) for d in sorted(dirnames) if d not in FOLDERS]
            dirnames[:] = [d for d in dirnames if d in FOLDERS]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            part = _part(os.path.relpath(path, root).replace(os.sep, "/"))
            if part is None:
                others.append(path)
                continue
            try:
                st = os.stat(path)
            except OSError:  # removed meanwhile
                continue
            ours.append(CacheFile(path, part, st.st_size, max(st.st_atime, st.st_mtime)))
    return root, sorted(ours, key=lambda f: f.last_used), others


def cache_files(root: str | None = None) -> list[CacheFile]:
    """The files segkit wrote in the cache folder (default segkit's), oldest use first."""
    return _scan(root)[1]


def other_files(root: str | None = None) -> list[str]:
    """The files and folders in the cache folder that segkit did not write (the root's folders are not
    looked into): left alone by `clean_cache`."""
    return _scan(root)[2]


def cache_summary(files: list[CacheFile]) -> list[tuple[str, int, int, float]]:
    """(group, files, bytes, oldest last use) per group, largest first."""
    groups: dict[str, list[CacheFile]] = {}
    for f in files:
        groups.setdefault(f.group, []).append(f)
    rows = [(g, len(fs), sum(f.size for f in fs), min(f.last_used for f in fs)) for g, fs in groups.items()]
    return sorted(rows, key=lambda r: -r[2])


def clean_cache(root: str | None = None, older_than_days: float | None = None, dry_run: bool = False,
                keep: Collection[str] = ()) -> list[CacheFile]:
    """Remove segkit's cache files not used for `older_than_days` days (None: all of them); returns them.

    Files segkit did not write (`other_files`), files being written by a live process and the paths in `keep`
    are left alone; segkit's folders left empty are removed.
    """
    if older_than_days is not None and older_than_days < 0:
        raise ValueError(f"--older-than must be >= 0 days, got {older_than_days}")
    root, files, _ = _scan(root)
    cutoff = time.time() - older_than_days * DAY_S if older_than_days is not None else float("inf")
    kept = {os.path.abspath(p) for p in keep}
    doomed = [f for f in files if f.last_used < cutoff and not _being_written(os.path.basename(f.path))
              and os.path.abspath(f.path) not in kept]
    if dry_run:
        return doomed
    for f in doomed:
        with contextlib.suppress(FileNotFoundError):
            os.remove(f.path)
    # rmdir, never rmtree: a folder that still holds anything (another user's file, a new write) stays.
    folders = {os.path.dirname(f.path) for f in doomed if f.group == "zoo"} | {os.path.join(root, d) for d in FOLDERS}
    for folder in sorted(folders, key=len, reverse=True):  # zoo/<entry> before zoo
        with contextlib.suppress(OSError):
            os.rmdir(folder)
    return doomed


def format_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
