"""Export a segmentor to ONNX and prove the file computes what the model computes.

`export_onnx` writes eval-mode logits with dynamic batch, height and width, input "images" [N,3,H,W]
and output "logits" [N,C,H,W], from the model with Conv+BN folded (see `exportable.py`). The file
only lands at its path after onnxruntime has matched PyTorch on two further input sizes
(`parity.check_parity`); otherwise a `ParityError` names the sizes and the differences.

Exporter: the torch.export-based one (dynamo). Tracing with TorchScript bakes every shape-dependent
Python branch of the trace size into the graph without a word, and fails on adaptive pooling at
dynamic sizes; torch.export records such branches as guards on symbolic sizes and refuses code whose
result depends on data. Capture runs non-strict only, so a failure is that capture's own error and not
a fallback's. The sizes the guards allow are stored in the file's metadata and the runtime refuses
others: a minimum where a deep feature map must not collapse to 1x1 (e.g. height >= 65), and a maximum
where the trace input was so small that a pooled map was 1 pixel and got specialised. Tracing at the
Cityscapes size keeps the latter away (capture runs on fake tensors, so the size costs nothing).
"""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils._sympy.numbers import int_oo  # torch.export's unbounded size

from ..utils.io import atomic_path
from .exportable import make_exportable
from .parity import ParityError, ParityResult, check_parity
from .runtime import EXPORT_PACKAGES, INPUT_NAME, MAX_SIZE_KEY, MIN_SIZE_KEY, OUTPUT_NAME, require_packages

logger = logging.getLogger("segkit")

DEFAULT_OPSET = 20  # the exporter's own default in torch 2.14; run and quantized by onnxruntime 1.32 here
EXPORT_SIZE = (1024, 2048)  # trace input (batch 2: a batch of 1 would be specialised away)
CHECK_SIZES = ((193, 301), (360, 482))  # neither a multiple of the trace size nor of the network stride


class ExportError(RuntimeError):
    """The model could not be exported; the message names the module at fault."""


class _ModuleTracker:
    """Forward hooks that keep the stack of modules being executed, by qualified name.

    When capture fails inside a forward, the post-hooks of the modules on the way out never run, so
    the stack's top is the innermost module that was executing.
    """

    def __init__(self, model: nn.Module) -> None:
        self.stack: list[str] = []
        self.handles = []
        for name, module in model.named_modules():
            label = f"{name or '<root>'} ({type(module).__name__})"
            self.handles.append(module.register_forward_pre_hook(self._enter(label, root=not name)))
            self.handles.append(module.register_forward_hook(self._leave()))

    def _enter(self, label: str, root: bool):
        def hook(module, args):
            if root:
                self.stack.clear()  # a new attempt starts from the top
            self.stack.append(label)
        return hook

    def _leave(self):
        def hook(module, args, output):
            if self.stack:
                self.stack.pop()
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and its causes, outermost first."""
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _root_cause(error: BaseException) -> str:
    # The exporters wrap the telling error in generic ones ("Failed to convert the exported program").
    root = _chain(error)[-1]
    text = str(root).strip()
    return f"{type(root).__name__}: {text.splitlines()[0] if text else ''}"


def _failed_node(error: BaseException) -> tuple[str, str] | None:
    """(module, op) of the graph node the ONNX translation failed on, from the translator's frames.

    Capture has finished by then, so the hooks say nothing; the node (a torch.fx.Node carrying
    `nn_module_stack` metadata) is a local of the frame that raised.
    """
    found = None
    for e in _chain(error):
        tb = e.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, torch.fx.Node) and value.meta.get("nn_module_stack"):
                    path, cls = list(value.meta["nn_module_stack"].values())[-1]
                    cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
                    found = (f"{path} ({cls_name.rsplit('.', 1)[-1]})", str(value.target))
            tb = tb.tb_next
    return found


def capture(model: nn.Module, sample: torch.Tensor) -> torch.export.ExportedProgram:
    """torch.export of `model` with dynamic batch/height/width; an ExportError names the failing module."""
    dynamic = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    tracker = _ModuleTracker(model)
    try:
        return torch.export.export(model, (sample,), dynamic_shapes=(dynamic,), strict=False)
    except Exception as e:  # the exporter raises many unrelated types; every one means "not exportable"
        where = tracker.stack[-1] if tracker.stack else f"<root> ({type(model).__name__})"
        raise ExportError(f"{type(model).__name__} cannot be exported: torch.export failed inside module "
                          f"{where}: {_root_cause(e)}") from e
    finally:
        tracker.remove()


def input_size_range(program: torch.export.ExportedProgram) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The smallest and largest (height, width) the captured graph's guards allow (largest None: unbounded)."""
    user_inputs = set(program.graph_signature.user_inputs)
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs)
    lows, highs = [], []
    for dim in node.meta["val"].shape[2:]:
        if isinstance(dim, int):
            lows.append(dim)
            highs.append(dim)
        else:
            bounds = program.range_constraints[dim.node.expr]
            lows.append(int(bounds.lower))
            highs.append(None if bounds.upper == int_oo else int(bounds.upper))
    return (lows[0], lows[1]), None if None in highs else (highs[0], highs[1])


def _translate(program: torch.export.ExportedProgram, sample: torch.Tensor, path: str, opset: int,
               model_name: str, metadata: Mapping[str, str]) -> None:
    low, high = input_size_range(program)
    try:
        onnx_program = torch.onnx.export(program, (sample,), None, dynamo=True, input_names=[INPUT_NAME],
                                         output_names=[OUTPUT_NAME], opset_version=opset, verbose=False)
    except Exception as e:  # as above: any failure of translation means the graph has no ONNX form
        node = _failed_node(e)
        where = f"op {node[1]} in module {node[0]}" if node else "an op of an unidentified module"
        raise ExportError(f"{model_name} cannot be translated to ONNX opset {opset}: {where} has no ONNX "
                          f"form: {_root_cause(e)}") from e
    onnx_program.model.metadata_props.update(metadata)
    onnx_program.model.metadata_props[MIN_SIZE_KEY] = f"{low[0]},{low[1]}"
    if high is not None:
        onnx_program.model.metadata_props[MAX_SIZE_KEY] = f"{high[0]},{high[1]}"
    onnx_program.save(path, external_data=False)  # one self-contained file (segmentors stay far below 2 GB)


def export_onnx(
    model: nn.Module,
    path: str,
    *,
    opset: int = DEFAULT_OPSET,
    export_size: Sequence[int] = EXPORT_SIZE,
    check_sizes: Sequence[Sequence[int]] = CHECK_SIZES,
    num_classes: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[ParityResult]:
    """Export `model`'s eval-mode logits to `path` and verify the file against the model.

    metadata: key-value strings stored in the file (tools/export_onnx.py stores the config, `CONFIG_KEY`).

    The file is written beside `path` and moved there only when onnxruntime agrees with PyTorch at
    every size of `check_sizes` (see `check_parity`); an ExportError names a module that cannot be
    exported, a ParityError the sizes and differences where the file disagrees. Returns the
    per-size parity figures.
    """
    if opset < 18:
        raise ValueError(f"opset {opset} is too old for the torch.export-based exporter (18 or newer)")
    # Checked before capture: _translate takes any failure of the exporter for the model's, so a missing
    # onnxscript would read as "<model> cannot be translated to ONNX".
    require_packages(EXPORT_PACKAGES, "ONNX export (torch.onnx writes through onnxscript, onnxruntime checks the file)")
    device = next(model.parameters(), torch.empty(0)).device
    if device.type != "cpu":
        raise ValueError(f"export_onnx needs the model on the CPU (it is on {device}): call model.cpu() first")
    was_training = model.training
    model.eval()
    try:
        results = _export_checked(model, path, opset, export_size, check_sizes, num_classes, dict(metadata or {}))
    finally:
        model.train(was_training)
    for r in results:
        logger.info("%s parity: %s", type(model).__name__, r.describe())
    return results


def _export_checked(model: nn.Module, path: str, opset: int, export_size: Sequence[int],
                    check_sizes: Sequence[Sequence[int]], num_classes: int | None,
                    metadata: dict[str, str]) -> list[ParityResult]:
    name = type(model).__name__
    sample = torch.randn(2, 3, int(export_size[0]), int(export_size[1]))
    with torch.no_grad():
        program = capture(make_exportable(model), sample)
    with atomic_path(path) as tmp:
        _translate(program, sample, tmp, opset, name, metadata)
        results = check_parity(model, tmp, check_sizes, num_classes=num_classes)
        failed = [r for r in results if not r.ok]
        if failed:
            raise ParityError(f"{name}: the exported graph disagrees with PyTorch, nothing written to {path}: "
                              + "; ".join(r.describe() for r in failed))
    return results
