#!/usr/bin/env python
"""The published checkpoints segkit runs by name.

    python tools/zoo.py list [--format github]          every entry: model, dataset, published mIoU and protocol,
                                                        parameters, licence, whether the file is in the cache
    python tools/zoo.py show NAME                        the whole record: file URL, checksum, classes, cache path
    python tools/zoo.py download NAME                    fetch the file into the segkit cache ($SEGKIT_CACHE/zoo)
    python tools/zoo.py convert NAME --src FILE --out OUT.pth
                                                        convert a file taken by hand (e.g. from Google Drive) into
                                                        a segkit checkpoint that carries its config

Any tool then runs an entry by name (`--weights zoo:NAME`) or OUT.pth alone (`--weights OUT.pth`).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.io import check_not_input, check_writable  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402
from segkit.zoo import convert_entry_file, describe_entry, ensure_file, get_entry, zoo_table  # noqa: E402
from segkit.zoo.formats import FormatError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the table of every entry")
    listing.add_argument("--format", default="simple", help="tabulate table format (github: the README's)")
    for name, text in (("show", "the whole record of one entry"), ("download", "fetch an entry's file")):
        sub.add_parser(name, help=text).add_argument("name", help="entry name (tools/zoo.py list)")
    convert = sub.add_parser("convert", help="convert a file taken by hand into a segkit checkpoint")
    convert.add_argument("name", help="entry name (tools/zoo.py list)")
    convert.add_argument("--src", required=True, help="the published file")
    convert.add_argument("--out", required=True, help="the segkit checkpoint to write")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: COMMANDS[args.command](args))


def list_entries(args: argparse.Namespace) -> None:
    print(zoo_table(args.format))


def show(args: argparse.Namespace) -> None:
    print(describe_entry(get_entry(args.name)))


def download(args: argparse.Namespace) -> None:
    setup_logger()
    print(ensure_file(get_entry(args.name)))


def convert(args: argparse.Namespace) -> None:
    """The file converted, checked by a strict load into the entry's model, written with the entry's config."""
    logger = setup_logger()
    entry = get_entry(args.name)
    # Checked before the conversion, which loads and converts the whole file.
    check_not_input(args.out, "--out", args.src, "--src")
    check_writable(args.out, "--out")
    try:
        state = convert_entry_file(entry, args.src, args.out)
    except FormatError as e:  # the format check names the keys, not the file they came from
        raise FormatError(f"--src {args.src}: {e}") from None
    logger.info("wrote %s: zoo:%s as a segkit checkpoint (%d tensors) carrying configs/%s; run it with "
                "--weights %s", args.out, entry.name, len(state), entry.config, args.out)


COMMANDS = {"list": list_entries, "show": show, "download": download, "convert": convert}

if __name__ == "__main__":
    sys.exit(main())
