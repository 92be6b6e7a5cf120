"""Reading label files and checking their values, with a per-file histogram cache.

Labels may be single-channel values, indexed (palette-mode) PNGs read as their indices, or RGB colour
PNGs decoded through DATASET.PALETTE. Every label of a split is histogrammed once while indexing (cached
per file by mtime and size), so a value that is neither a class nor ignored is an error naming the file
before training starts.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from ..utils.io import atomic_write_json, cache_dir
from ..utils.progress import progress


def is_palette_png(path: str) -> bool:
    # OpenCV expands indexed PNGs to colours; their indices are the labels, so they go through PIL.
    if not path.lower().endswith(".png"):
        return False
    from PIL import Image

    with Image.open(path) as im:
        return im.mode == "P"


class LabelReader:
    """Stored label file -> 2-D array of raw values (colour labels: index into `palette`)."""

    def __init__(self, palette: Sequence[Sequence[int]] = (), pil_palette: bool = False) -> None:
        self.pil_palette = pil_palette
        keys = np.array([(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in palette], dtype=np.int64)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def __call__(self, path: str) -> np.ndarray:
        if path.endswith(".mat"):
            return read_mat_label(path)
        if self.pil_palette:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode == "P":
                    return np.asarray(im)
        lab = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if lab is None:
            raise OSError(f"cannot read label {path}")
        if lab.ndim == 3:
            return self._decode_colours(lab[..., :3], path)
        return lab

    def _decode_colours(self, bgr: np.ndarray, path: str) -> np.ndarray:
        if not len(self.keys):
            raise ValueError(f"label {path} is a colour image but DATASET.PALETTE is empty: declare the class colours")
        key = (bgr[..., 2].astype(np.int64) << 16) | (bgr[..., 1].astype(np.int64) << 8) | bgr[..., 0]
        pos = np.clip(np.searchsorted(self.keys, key), 0, len(self.keys) - 1)
        known = self.keys[pos] == key
        if not known.all():
            bad = np.unique(key[~known])[:10]
            colours = [((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255) for k in bad]
            raise ValueError(f"label {path}: colours not in DATASET.PALETTE (RGB): {colours}")
        return self.order[pos].astype(np.uint8 if len(self.keys) <= 256 else np.uint16)


class MissingPackageError(ValueError):
    """A package the files need is not installed: one error for the whole run, not one per unreadable file
    (`cached_per_file` re-raises it instead of recording it against every file)."""


def read_mat_label(path: str, key: str = "S") -> np.ndarray:
    """The label map `key` of a MATLAB file (COCO-Stuff 10k's official annotations hold it as "S")."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise MissingPackageError(f"reading {path} (a COCO-Stuff 10k .mat label) needs scipy, not installed: "
                                  'pip install -e ".[data]"') from None
    try:
        data = loadmat(path, variable_names=[key])
    except (ValueError, TypeError, NotImplementedError) as e:
        raise OSError(f"cannot read label {path}: not a MATLAB v5 file ({e})") from e
    if key not in data:
        raise ValueError(f"label {path} holds no '{key}' array")
    return np.ascontiguousarray(data[key]).astype(np.uint16 if data[key].max() > 255 else np.uint8)


def _cache_path(kind: str, paths: Sequence[str]) -> str:
    digest = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:16]
    return cache_dir(f"{kind}-{digest}.json")


def _read_cache(cache_file: str) -> dict:
    try:
        with open(cache_file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def cached_per_file(kind: str, paths: Sequence[str], compute: Callable[[str], Any], use_cache: bool = True,
                    workers: int = 4, errors: list[str] | None = None, desc: str = "") -> list[Any]:
    """`compute(path)` for every file, cached by (mtime, size) in a JSON per `kind` and path list.

    A re-index of unchanged files reads nothing. A file `compute` cannot read (OSError / ValueError)
    raises, or with an `errors` list is recorded there and gives None. Results must be JSON values.
    """
    paths = [os.path.abspath(p) for p in paths]
    cache_file = _cache_path(kind, paths)
    cache = _read_cache(cache_file) if use_cache else {}

    def one(path: str) -> Any:
        st = os.stat(path)
        hit = cache.get(path)
        if hit and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2]
        try:
            return compute(path)
        except MissingPackageError:
            raise
        except (OSError, ValueError) as e:
            if errors is None:
                raise
            errors.append(str(e))
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool:  # cv2 decodes and file reads release the GIL
        results = list(progress(pool.map(one, paths), desc or kind, total=len(paths), unit="file", every_s=15.0))
    if use_cache:
        new = {p: [os.stat(p).st_mtime_ns, os.stat(p).st_size, r] for p, r in zip(paths, results) if r is not None}
        if new != cache:
            try:
                atomic_write_json(cache_file, new, indent=None)  # concurrent ranks never read half a file
            except OSError:
                pass  # a read-only home only costs the next index a rescan
    return results


def label_histograms(paths: Sequence[str], reader: Callable[[str], np.ndarray], use_cache: bool = True,
                     workers: int = 4, errors: list[str] | None = None) -> list[dict[int, int] | None]:
    """Per label file, {raw value: pixel count} (see `cached_per_file` for caching and errors)."""

    def histogram(path: str) -> dict[str, int]:
        counts = np.bincount(reader(path).ravel())
        return {str(v): int(counts[v]) for v in np.flatnonzero(counts)}  # JSON keys are strings

    hists = cached_per_file("labels", paths, histogram, use_cache, workers, errors, desc="label check")
    return [None if h is None else {int(k): v for k, v in h.items()} for h in hists]


# The last bytes of a complete file: PNG ends with its IEND chunk, JPEG with the EOI marker.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def read_header(path: str) -> list[int]:
    """[width, height] from the file header, without decoding pixels; a file cut short is an error.

    Truncation is found from the file's end (PNG's IEND chunk, JPEG's EOI marker): OpenCV decodes a cut
    JPEG into a half-grey image with only a warning, which would train on garbage.
    """
    from PIL import Image, UnidentifiedImageError

    if path.endswith(".mat"):  # no header to peek at: the (small) array itself gives the size
        height, width = read_mat_label(path).shape[:2]
        return [int(width), int(height)]
    try:
        with Image.open(path) as im:
            width, height = im.size
            fmt = im.format
    except (UnidentifiedImageError, OSError) as e:
        raise OSError(f"cannot read image header of {path}: not an image or unreadable ({e.__class__.__name__})") from e
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 32))
        tail = f.read()
    if (fmt == "PNG" and not tail.endswith(_PNG_END)) or (fmt == "JPEG" and b"\xff\xd9" not in tail[-16:]):
        raise OSError(f"{path} is truncated: its {fmt} data ends early")
    return [int(width), int(height)]


def check_files(samples: Sequence[Any], workers: int = 4, errors: list[str] | None = None) -> None:
    """Every image and label header readable and complete, each label the size of its image.

    Raises one error naming the first files at fault, or with an `errors` list records every problem there.
    """
    paths = [s.image for s in samples] + [s.label for s in samples if s.label is not None]
    found: list[str] = []
    sizes = dict(zip(paths, cached_per_file("headers", paths, read_header, workers=workers, errors=found,
                                            desc="file check")))
    for s in samples:
        if s.label is not None and sizes.get(s.image) and sizes.get(s.label) and sizes[s.image] != sizes[s.label]:
            (iw, ih), (lw, lh) = sizes[s.image], sizes[s.label]
            found.append(f"label {s.label} is {lw}x{lh} but image {s.image} is {iw}x{ih} (width x height)")
    if errors is not None:
        errors.extend(found)
    elif found:
        more = f"\n... and {len(found) - 5} more" if len(found) > 5 else ""
        raise ValueError(f"{len(found)} problem(s) with the dataset's files (tools/check_dataset.py lists them all):\n"
                         + "\n".join(found[:5]) + more)
