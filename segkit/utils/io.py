"""Atomic file writes: a reader (another rank, a resumed run, a user) never sees half a file or folder."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on failure removed.

    The temporary name is `<path>.tmp.<pid>`, so concurrent writers never share one and a file left by a
    killed process is recognisable (see `checkpoint.remove_stale_temporaries`).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str, write: Callable[[str], Any]) -> None:
    """Call `write(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def atomic_write_text(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_json(path: str, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) across processes of this machine.

    On systems without fcntl (Windows) it is a no-op; writers there still rely on atomic renames.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_folder(path: str) -> Iterator[str]:
    """Yield a fresh folder beside `path` to fill; on success it becomes `path`, on failure it is removed.

    A missing or empty `path` is replaced by one rename. A `path` with content (a folder another process
    finished meanwhile, or one a user began) gets the entries it lacks or has as empty folders, and keeps the rest.
    """
    path = os.path.abspath(path)
    # Named like `atomic_path`'s files; made by makedirs, so the folder gets the umask's permissions where
    # tempfile.mkdtemp would leave it readable by its owner alone.
    tmp = f"{path}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed process that had this id
    os.makedirs(tmp)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:  # `path` is there with content (or, on Windows, there at all)
            if not os.path.isdir(path):
                raise
            for name in os.listdir(tmp):
                target = os.path.join(path, name)
                try:
                    os.rename(os.path.join(tmp, name), target)
                except OSError:
                    if not os.path.exists(target):
                        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(path: str, force: bool, flag: str) -> None:
    """Make way for a tool that writes the folder `path` (named by `flag` in messages): an existing one is an
    error unless `force`, then removed; a place that cannot be written is an error before any work."""
    if os.path.exists(path):
        if not force:
            raise ValueError(f"{path} exists; pass --force to regenerate")
        shutil.rmtree(path)
    check_writable(path, flag)  # the generators build beside it first, then rename


def build_folder_once(path: str, build: Callable[[str], Any], complete: Callable[[str], bool] = os.path.exists) -> bool:
    """Unless `complete(path)`, fill a new folder with `build(folder)` and make it `path` (`atomic_folder`);
    returns whether this call built it.

    Processes doing it together (torchrun ranks, tools started side by side) take a file lock beside `path`:
    one builds, the others wait and then find it complete. A killed build leaves no half folder at `path`
    that a later run would take for complete.
    """
    if complete(path):
        return False
    with file_lock(os.path.abspath(path) + ".lock"):
        if complete(path):  # another process finished it while this one waited
            return False
        with atomic_folder(path) as folder:
            build(folder)
    return True


def cache_dir(*parts: str) -> str:
    """segkit's cache folder ($SEGKIT_CACHE, default ~/.cache/segkit), joined with `parts`."""
    base = os.environ.get("SEGKIT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "segkit"))
    return os.path.join(base, *parts)


class UnwritablePathError(OSError, ValueError):
    """An output path that cannot be written; a ValueError too, so tools report it in one line."""


def check_writable(path: str, what: str, folder: bool = False) -> None:
    """Raise UnwritablePathError naming `what` and `path` unless a file can be written at `path` (with
    `folder`: inside the folder `path`).

    Tools call it before the work whose result goes there, so a bad --out fails at once rather than after
    an evaluation or an export. Missing folders are created (an empty folder loses nothing); no file is
    left behind.
    """
    path = os.path.abspath(path)
    if folder and os.path.isfile(path):
        raise UnwritablePathError(f"{what} {path} is a file, not a folder")
    if not folder and os.path.isdir(path):
        raise UnwritablePathError(f"{what} {path} is a folder: give a file path")
    target = path if folder else os.path.dirname(path)
    ancestor = target
    while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):  # makedirs would only say "File exists"
        raise UnwritablePathError(f"cannot write {what} {path}: {ancestor} is a file, not a folder")
    try:
        os.makedirs(target, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".segkit-write-check-"):
            pass
        if not folder and os.path.exists(path) and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise UnwritablePathError(f"cannot write {what} {path}: {e.strerror or e}") from e


def check_not_input(path: str, what: str, source: str, source_what: str) -> None:
    """Raise UnwritablePathError naming both flags and the path when the output `path` is the input `source`.

    A tool would otherwise overwrite its own input without a word (OUT = CKPT turns a checkpoint into its
    export). Links and other spellings of one file count as the same file when both exist.
    """
    try:
        same = os.path.samefile(path, source)
    except OSError:  # one of them does not exist (yet): compare the paths
        same = os.path.normcase(os.path.realpath(path)) == os.path.normcase(os.path.realpath(source))
    if same:
        raise UnwritablePathError(f"{what} {path} is the same file as {source_what}: writing it would overwrite "
                                  f"the input; give {what} another path")
