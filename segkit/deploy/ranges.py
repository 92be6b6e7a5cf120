"""Why a static INT8 model loses accuracy: how far each activation's range moves from one image to the next.

Static INT8 (`quantize_int8`) gives every tensor one range, the widest the calibration images reach. An image
whose activations in a tensor are many times smaller than that range is represented there by a few of the
256 levels, and the error grows from layer to layer. `activation_spread` runs an fp32 ONNX file on some
inputs and keeps, for every float tensor, the largest |value| of each input; a tensor's spread is the ratio of
the largest of those maxima to the smallest. Spreads of a few are what 8 bits absorb; spreads in the tens mean
the images with small activations lose accuracy, whatever the calibration (RESULTS.md, "What does a lossy
runtime cost in mIoU", has a model of each kind).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .runtime import INPUT_NAME, create_session

# onnxruntime's debugging helper appends this to each intermediate tensor it makes a graph output.
_SAVED = "_ReshapedSavedOutput"


@dataclass(frozen=True)
class TensorSpread:
    """One tensor of the graph: the op that writes it and the largest |value| it holds for each input."""

    name: str
    op_type: str
    maxima: np.ndarray  # [inputs]

    @property
    def spread(self) -> float:
        """Largest per-input maximum over the smallest non-zero one (1.0 for a tensor that is always 0)."""
        nonzero = self.maxima[self.maxima > 0]
        return float(nonzero.max() / nonzero.min()) if nonzero.size else 1.0


def activation_spread(fp32_path: str, inputs: Iterable[np.ndarray], threads: int | None = None) -> list[TensorSpread]:
    """Every float tensor of the fp32 ONNX file `fp32_path` written by a node, in graph order, with its
    per-input maximum |value| over `inputs` (model inputs [N,3,H,W])."""
    import onnx  # the optional "deploy" extra, as the rest of segkit.deploy imports it where used
    from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

    graph = onnx.load(fp32_path, load_external_data=False).graph
    op_of = {out: node.op_type for node in graph.node for out in node.output}
    maxima: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        every_output = os.path.join(tmp, "every_output.onnx")
        modify_model_output_intermediate_tensors(fp32_path, every_output)
        session = create_session(every_output, threads=threads)
        names = [o.name for o in session.get_outputs()]
        for x in inputs:
            # A graph output comes twice: as itself and as a saved copy.
            outputs = session.run(None, {INPUT_NAME: x})
            values = {name.removesuffix(_SAVED): value for name, value in zip(names, outputs)}
            for name, value in values.items():
                if np.issubdtype(value.dtype, np.floating) and value.size:
                    maxima.setdefault(name, []).append(float(np.abs(value).max()))
    if not maxima:
        raise ValueError(f"no input reached {fp32_path}: give at least one")
    order = [out for node in graph.node for out in node.output if out in maxima]
    return [TensorSpread(name, op_of[name], np.array(maxima[name])) for name in order]


def widest_spreads(spreads: list[TensorSpread], top: int) -> list[TensorSpread]:
    """The `top` tensors of widest spread, in graph order."""
    chosen = {id(s) for s in sorted(spreads, key=lambda s: -s.spread)[:top]}
    return [s for s in spreads if id(s) in chosen]
