"""What every tool does around its body: user errors become one line and exit code 1."""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from typing import Callable

from yacs.config import CfgNode

from .comm import cleanup
from .logger import log_to_files

# Bad configs, paths, labels and checkpoints raise these with a message naming the culprit; a traceback
# would only bury it. SEGKIT_TRACEBACK=1 shows the traceback anyway, for debugging segkit itself.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, FloatingPointError)


def run_tool(body: Callable[[], int | None], extra_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run `body`; print `error: ...` and return 1 on a user error; always leave the process group.

    The exit code is what `body` returns when it returns an int (a checker reporting problems), else 0;
    a SystemExit raised by `body` (a training run stopped by a signal: segkit.engine.EXIT_PREEMPTED) keeps its code.
    """
    try:
        result = body()
    except USER_ERRORS + extra_errors as e:
        if os.environ.get("SEGKIT_TRACEBACK"):
            raise
        message = user_message(e)
        print(f"error: {message}", file=sys.stderr)
        log_to_files(f"error: {message}")
        return 1
    except SystemExit:  # a deliberate exit with its own code (a preempted training run), logged by its raiser
        raise
    except BaseException:
        log_to_files("run ended by an unexpected error:\n" + traceback.format_exc().rstrip())
        raise
    finally:
        cleanup()
    return result if isinstance(result, int) else 0


def user_message(error: BaseException) -> str:
    """The message of a user error, without what wraps it.

    An error raised in a DataLoader worker reaches the main process as the same type with the worker's
    whole traceback as its message ("Caught X in DataLoader worker process 0. Original Traceback ...");
    its last line is the error itself.
    """
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)  # KeyError quotes
    if "Original Traceback (most recent call last)" in message:
        last = message.strip().splitlines()[-1]
        kind = type(error).__name__
        message = last.split(": ", 1)[1] if ": " in last and kind in last.split(": ", 1)[0] else last
    return message


# What --weights takes in every tool (resolved by segkit.zoo).
WEIGHTS_HELP = ("a checkpoint (segkit's, or an official PIDNet/DDRNet/STDC/BiSeNet/mmseg file) or zoo:NAME "
                "(python tools/zoo.py list)")


def add_config_args(parser: argparse.ArgumentParser, from_weights: bool = False) -> None:
    """--config-file and the trailing KEY VALUE overrides every config-driven tool takes.

    `from_weights`: the tool also takes --weights, which may carry the config (a segkit checkpoint, zoo:NAME),
    so --config-file is optional; when given it wins and must build the model the weights belong to.
    """
    if from_weights:
        parser.add_argument("--config-file", default=None,
                            help="YAML config (may inherit with _BASE_); default: the config the --weights carry")
    else:
        parser.add_argument("--config-file", required=True, help="YAML config (may inherit with _BASE_)")
    parser.add_argument("opts", nargs="*", help="config overrides as KEY VALUE pairs, anywhere on the line")


def add_inference_args(parser: argparse.ArgumentParser) -> None:
    """The inference-mode flags shared by tools/evaluate.py and tools/predict.py."""
    parser.add_argument("--slide", action="store_true", default=None, help="sliding windows of TEST.CROP_SIZE")
    parser.add_argument("--msc", action="store_true", default=None, help="multi-scale over TEST.SCALES (or --scales)")
    parser.add_argument("--flip", action="store_true", default=None, help="add horizontally flipped views")
    parser.add_argument("--scales", type=_float_list, default=None, metavar="S [S ...]",
                        help="scales of multi-scale inference (implies --msc)")


def check_runtime_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Runtime flags that would be ignored without a word are refused: --threads sets onnxruntime's and
    OpenVINO's threads, not PyTorch's; --int8-ops chooses what an INT8 model quantizes."""
    if args.threads is not None and args.runtime in ("torch", "fused", "compile"):
        parser.error(f"--threads sets onnxruntime's threads; --runtime {args.runtime} runs PyTorch, whose threads "
                     "OMP_NUM_THREADS sets")
    if args.int8_ops and not args.precision.startswith("int8"):
        parser.error(f"--int8-ops chooses what --precision int8 or int8+bf16 quantizes; --precision {args.precision} "
                     "quantizes nothing")


def int8_op_types(text: str) -> list[str]:
    """"Conv,MatMul" -> ["Conv", "MatMul"] (--int8-ops); an entry that is no ONNX operator name (e.g. a config
    key) is refused. One comma-separated value: a list argument would swallow the KEY VALUE overrides after it."""
    names = [n.strip() for n in text.split(",")]
    bad = [n for n in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", n)]
    if bad:
        raise argparse.ArgumentTypeError(f"not ONNX operator types: {', '.join(map(repr, bad))} (e.g. Conv,MatMul)")
    return names


INT8_OPS_HELP = ("operator types an INT8 model quantizes, e.g. Conv or Conv,MatMul (default: every type "
                 "onnxruntime quantizes; Conv alone keeps fusion arithmetic in float: RESULTS.md)")


def add_runtime_args(parser: argparse.ArgumentParser, runtimes: tuple[str, ...], precisions: tuple[str, ...],
                     calib_images: int, default: str | None = "auto") -> None:
    """The runtime flags of tools/evaluate.py and tools/predict.py (choices and the --calib-images default from
    segkit.deploy, which sits above this module). `default` None: the tool decides (evaluate.py runs torch for
    --weights, so its metrics are the model's own)."""
    parser.add_argument("--runtime", default=default, choices=("auto", *runtimes),
                        help="auto: the fastest exact runtime (onnxruntime on a CPU when installed); torch runs the "
                             "model exactly as the trainer evaluates it" + ("" if default else " (the default)"))
    parser.add_argument("--precision", default=precisions[0], choices=precisions,
                        help=f"{precisions[0]} is exact; the others are lossy and run only when asked for "
                             "(bf16, int8+bf16: OpenVINO; int8: OpenVINO or onnxruntime)")
    parser.add_argument("--calib-images", type=int, default=calib_images,
                        help="DATASET.TRAIN_SPLIT images that calibrate --precision int8 from a checkpoint")
    parser.add_argument("--int8-ops", type=int8_op_types, default=None, metavar="OP[,OP]", help=INT8_OPS_HELP)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime / OpenVINO threads")


# --split of tools/evaluate.py and tools/predict.py: the choice and the DATASET key naming that split.
SPLIT_KEYS = {"val": "VAL_SPLIT", "test": "TEST_SPLIT"}


def dataset_split(cfg: CfgNode, choice: str) -> str:
    """The split a --split choice names in `cfg`: DATASET.VAL_SPLIT for "val", DATASET.TEST_SPLIT for "test"."""
    return getattr(cfg.DATASET, SPLIT_KEYS[choice])


LIST_FLAGS = ("--scales",)
_CONFIG_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*")


def parse_tool_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse flags and KEY VALUE overrides in any order.

    A list flag (--scales 0.5 1.0 1.5) takes only the numbers that follow it, so an override or another
    flag after it is not swallowed.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in LIST_FLAGS:
            j = i + 1
            while j < len(args) and _is_number(args[j]):
                j += 1
            if j == i + 1:
                parser.error(f"{args[i]} needs at least one number")
            if j < len(args) and not args[j].startswith("-") and not _CONFIG_KEY.fullmatch(args[j]):
                # neither a number, a flag nor a KEY: most likely a mistyped scale, which would otherwise
                # surface later as "an odd number of overrides"
                parser.error(f"{args[i]} takes numbers; {args[j]!r} is not one (nor a config KEY)")
            out.append(f"{args[i]}={','.join(args[i + 1:j])}")
            i = j
        else:
            out.append(args[i])
            i += 1
    return parser.parse_intermixed_args(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None
