#!/usr/bin/env python
"""Report or clean segkit's cache ($SEGKIT_CACHE, default ~/.cache/segkit).

    python tools/cache.py info                              # size per part: onnx/, labels, headers, ...
    python tools/cache.py clean [--older-than DAYS] [--dry-run]

The cache holds ONNX exports of models that ran with runtime auto (one per set of weights), the per-file
indexes of datasets and zoo checkpoints (zoo/); they are rebuilt or downloaded again when needed, so
cleaning only costs the next run that work. `clean` without --older-than empties it; with it, it removes
what was not used for DAYS days. Files a running process is writing are left alone, and so are the zoo
files placed by hand (those a web page hands out, which segkit cannot fetch again): remove them yourself.
Only the files segkit writes are counted and removed; anything else in $SEGKIT_CACHE is left alone and counted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from tabulate import tabulate  # noqa: E402

from segkit.utils.cache import DAY_S, cache_files, cache_summary, clean_cache, format_size, other_files  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.io import cache_dir  # noqa: E402
from segkit.zoo import ENTRIES, cached_path  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="size and age of each part of the cache")
    clean = sub.add_parser("clean", help="remove cached files (all, or those unused for --older-than days)")
    clean.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="only files unused this long")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    return p.parse_args(argv)


def info() -> None:
    root, files = cache_dir(), cache_files()
    now = time.time()
    rows = [(g, n, format_size(size), f"{(now - oldest) / DAY_S:.1f}") for g, n, size, oldest in cache_summary(files)]
    if rows:
        print(tabulate(rows, headers=["part", "files", "size", "oldest use (days)"], tablefmt="github",
                       disable_numparse=True, colalign=("left", "right", "right", "right")))
    print(f"{root}: {len(files)} files, {format_size(sum(f.size for f in files))}"
          + ("" if files else " (empty)") + "; `python tools/cache.py clean [--older-than DAYS]` removes them")
    _report_others()


def _report_others() -> None:
    others = other_files()
    if others:
        print(f"left alone: {len(others)} file(s) or folder(s) in {cache_dir()} that segkit did not write")


def clean(args: argparse.Namespace) -> None:
    by_hand = [cached_path(e) for e in ENTRIES.values() if not e.direct]
    removed = clean_cache(older_than_days=args.older_than, dry_run=args.dry_run, keep=by_hand)
    verb = "would remove" if args.dry_run else "removed"
    age = f" unused for {args.older_than:g} days" if args.older_than is not None else ""
    print(f"{verb} {len(removed)} file(s){age}, {format_size(sum(f.size for f in removed))}, from {cache_dir()}")
    kept = [path for path in by_hand if os.path.isfile(path)]
    if kept:
        print(f"kept {len(kept)} zoo file(s) placed by hand, which segkit cannot download again: {', '.join(kept)}")
    _report_others()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(info if args.command == "info" else lambda: clean(args))


if __name__ == "__main__":
    sys.exit(main())
