"""Convert a torchvision or timm state_dict into a segkit classifier state_dict.

    python tools/convert_weights.py --from timm --model resnet50d --src resnet50d.pth --dst segkit_resnet50d.pth

The result loads with `create_classifier(NAME).load_state_dict(torch.load(DST, weights_only=True))`;
its `backbone.*` part is what MODEL.BACKBONE.WEIGHTS expects after `--backbone-only`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.models.convert import SOURCES, available_conversions, convert_state_dict  # noqa: E402
from segkit.utils.checkpoint import load_checkpoint, save_state, strip_prefix  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.io import check_not_input, check_writable  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", choices=SOURCES, help="library the source state_dict comes from")
    parser.add_argument("--model", help="model name (the same in the source library and in segkit)")
    parser.add_argument("--src", type=Path, help="source .pth (a state_dict, or a checkpoint holding 'state_dict')")
    parser.add_argument("--dst", type=Path, help="where to write segkit's state_dict")
    parser.add_argument("--backbone-only", action="store_true", help="write only backbone.* keys, without the prefix")
    parser.add_argument("--list", action="store_true", help="list the supported (source, model) pairs and exit")
    args = parser.parse_args(argv)
    if not args.list:
        missing = [f"--{n}" for n in ("from", "model", "src", "dst") if getattr(args, "source" if n == "from" else n) is None]
        if missing:
            parser.error(f"missing {', '.join(missing)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: convert(args))


def convert(args: argparse.Namespace) -> None:
    if args.list:
        for source, name in available_conversions():
            print(f"{source:12s} {name}")
        return
    check_not_input(str(args.dst), "--dst", str(args.src), "--src")
    check_writable(str(args.dst), "--dst")
    state = load_checkpoint(str(args.src))
    try:
        converted = convert_state_dict(args.source, args.model, state)
    except ValueError as err:
        raise ValueError(f"{args.src}: {err}") from None
    if args.backbone_only:
        converted = strip_prefix(converted, "backbone.")
    save_state(str(args.dst), converted)
    print(f"wrote {len(converted)} tensors for segkit '{args.model}' to {args.dst}")


if __name__ == "__main__":
    sys.exit(main())
