"""Zoo files in the segkit cache: downloaded once, checksum-verified, written atomically.

The file lands at $SEGKIT_CACHE/zoo/<entry name>/<published file name>. A file the source serves only
through a web page (Google Drive) is never fetched: the error says where to get it and where to put it
(or how to convert it). torch.hub's `download_url_to_file` is not used: it does not compare the bytes
received with the announced Content-Length, so a connection cut short would pass for a whole file
wherever the source publishes no checksum.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from ..utils.io import atomic_path, cache_dir
from .entries import ZooEntry

logger = logging.getLogger("segkit")

CHUNK = 1 << 20
TIMEOUT_S = 30.0


class DownloadError(FileNotFoundError):
    """A zoo file that is not in the cache and could not be fetched or verified; the message names the URL and
    the way by hand. A FileNotFoundError, so every tool reports it as one line."""


def cached_path(entry: ZooEntry) -> str:
    """Where the entry's file lives in the cache (whether or not it is there)."""
    return cache_dir("zoo", entry.name, entry.filename)


def by_hand(entry: ZooEntry, where: bool = True) -> str:
    """The sentence that tells a user how to take the entry's file without segkit downloading it (`where`:
    naming the URL, when the message has not already)."""
    source = f" from {entry.url}{f' ({entry.note})' if entry.note else ''}" if where else ""
    return (f"download {entry.filename}{source} and either place it at {cached_path(entry)} or run "
            f"`python tools/zoo.py convert {entry.name} --src FILE --out OUT.pth` and pass OUT.pth as the weights")


def ensure_file(entry: ZooEntry) -> str:
    """The path of the entry's file in the cache, downloading it first when it is missing."""
    path = cached_path(entry)
    if os.path.isfile(path):
        return path
    if not entry.direct:
        raise DownloadError(f"zoo:{entry.name} is not in the cache and {entry.url} is a web page segkit does "
                            f"not download from: {by_hand(entry)}")
    try:
        download_file(entry.url, path, entry.sha256)
    except DownloadError as e:
        raise DownloadError(f"zoo:{entry.name}: {e}; to take the file by hand, {by_hand(entry, where=False)}") from None
    return path


def download_file(url: str, path: str, sha256_prefix: str | None = None, timeout: float = TIMEOUT_S) -> None:
    """Fetch `url` to `path` through a temporary file; `path` appears only when every byte is in and, with
    `sha256_prefix`, the file's SHA-256 starts with it. Any failure raises DownloadError naming the URL."""
    logger.info("downloading %s to %s", url, path)
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(path) as tmp:
            expected = int(response.headers.get("Content-Length") or -1)
            with open(tmp, "wb") as f, tqdm(total=expected if expected > 0 else None, unit="B", unit_scale=True,
                                            disable=None, desc=os.path.basename(path)) as bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected >= 0 and received != expected:
                raise DownloadError(f"download of {url} broke off after {received} of {expected} bytes")
            actual = digest.hexdigest()
            if sha256_prefix and not actual.startswith(sha256_prefix.lower()):
                raise DownloadError(f"{url} does not have the published checksum: SHA-256 {actual[:16]}..., "
                                    f"expected a prefix {sha256_prefix}")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
    except http.client.HTTPException as e:  # e.g. IncompleteRead of a chunked response cut short
        raise DownloadError(f"download of {url} broke off after {received} bytes ({type(e).__name__})") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"could not download {url} (offline or unreachable: {reason})") from None
    logger.info("verified %s (%d bytes%s)", path, received,
                f", SHA-256 prefix {sha256_prefix}" if sha256_prefix else "")


def sha256_of(path: str) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
