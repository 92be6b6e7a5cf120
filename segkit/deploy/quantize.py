"""Static INT8 quantization of an exported segmentor with onnxruntime (QDQ format), calibrated on images.

Calibration sees exactly what the model sees at evaluation: each image is normalised with INPUT.MEAN/STD
and handed to `segkit.evaluation.inference` in the config's mode (TEST.SCALE or SCALES, SLIDE, FLIP,
padding to TEST.SIZE_DIVISOR), with a stand-in model that records every batch it is given. So the
activation ranges come from the scales, crops and paddings of real use, by the code of real use.

Settings are onnxruntime's advice for x86 CPUs with VNNI (AVX-512 VNNI or AVX-VNNI, every server CPU
since 2019): uint8 activations, int8 weights per output channel (segmentation heads lose mIoU with one
scale per tensor), MinMax ranges.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from yacs.config import CfgNode

from ..data import build_dataset
from ..data.seg_transforms import normalise, normalise_luts
from ..evaluation import InferenceMode, inference
from ..utils.io import atomic_path, cache_dir as segkit_cache_dir
from .runtime import INPUT_NAME, OnnxLoadError, create_session, require_packages

logger = logging.getLogger("segkit")


def _model_input(image: Any, luts: Sequence[np.ndarray]) -> torch.Tensor:
    """A dataset image as the normalised float [3,H,W] tensor evaluation feeds to `inference`."""
    if isinstance(image, torch.Tensor) and image.dtype.is_floating_point and image.dim() == 3 and image.shape[0] == 3:
        return image.float()  # the output of the eval transform: normalised already
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        return torch.from_numpy(normalise(np.ascontiguousarray(array), luts))  # BGR as cv2.imread gives it
    if np.issubdtype(array.dtype, np.floating) and array.ndim == 3 and array.shape[0] == 3:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    raise ValueError(f"calibration images must be normalised float [3,H,W] or BGR uint8 [H,W,3], got "
                     f"{array.dtype} {list(array.shape)}")


class _InputRecorder:
    """Stands in for the model inside `inference`: keeps each batch it gets, answers with zero logits."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.batches: list[np.ndarray] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.float().contiguous().numpy().copy())
        return x.new_zeros((x.shape[0], self.num_classes, *x.shape[-2:]))


def calibration_indices(length: int, num_images: int) -> list[int]:
    """`num_images` indices spread evenly over a dataset of `length` (all of them when it is smaller)."""
    if length == 0:
        raise ValueError("the calibration dataset is empty")
    if num_images < 1:
        raise ValueError(f"the number of calibration images must be positive, got {num_images}")
    return sorted({int(round(i)) for i in np.linspace(0, length - 1, min(num_images, length))})


def held_out_indices(length: int, num_calibration: int, num_images: int = 4) -> list[int]:
    """Up to `num_images` indices, evenly spread, of the images `calibration_indices(length, num_calibration)`
    leaves out (none when calibration takes every image)."""
    used = set(calibration_indices(length, num_calibration))
    rest = [i for i in range(length) if i not in used]
    return [rest[i] for i in calibration_indices(len(rest), num_images)] if rest else []


def calibration_inputs(dataset: Sequence[dict], cfg: CfgNode, num_images: int,
                       mode: InferenceMode | None = None) -> Iterator[np.ndarray]:
    """Model inputs [N,3,H,W] of `num_images` images of `dataset`, one image at a time (memory stays flat)."""
    return model_inputs(dataset, cfg, calibration_indices(len(dataset), num_images), mode)


def model_inputs(dataset: Sequence[dict], cfg: CfgNode, indices: Sequence[int],
                 mode: InferenceMode | None = None) -> Iterator[np.ndarray]:
    """The model inputs [N,3,H,W] of the images `indices` of `dataset`, one image at a time.

    `dataset[i]["image"]` is the eval transform's normalised float [3,H,W] (`build_dataset(..., train=False)`)
    or a BGR uint8 [H,W,3] image, normalised here with INPUT.MEAN/STD. `mode`: the views the model is run
    on, by default the config's TEST settings.
    """
    mode = mode or InferenceMode.from_config(cfg)
    luts = normalise_luts(cfg.INPUT.MEAN, cfg.INPUT.STD)
    for index in indices:
        recorder = _InputRecorder(int(cfg.MODEL.NUM_CLASSES))
        inference(recorder, _model_input(dataset[index]["image"], luts), mode, return_probs=False)
        yield from recorder.batches


def int8_agreement(fp32_path: str, int8_path: str, inputs: Iterable[np.ndarray]) -> tuple[float, float, int]:
    """(argmax agreement, max |logit difference|, number of inputs) of the INT8 file against the fp32 file it
    was quantized from, both in onnxruntime: what the quantization changed, on images of real use."""
    fp32, int8 = create_session(fp32_path), create_session(int8_path)
    same = total = count = 0
    max_diff = 0.0
    for x in inputs:
        a, b = (session.run(None, {INPUT_NAME: x})[0] for session in (fp32, int8))
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += a.shape[0] * a.shape[2] * a.shape[3]
        max_diff = max(max_diff, float(np.abs(a - b).max()))
        count += x.shape[0]
    if not count:
        raise ValueError("int8_agreement: no inputs to compare on")
    return same / total, max_diff, count


def _reader(inputs: Iterator[np.ndarray], input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(inputs, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def quantize_int8(fp32_path: str, out_path: str, inputs: Iterator[np.ndarray], *, per_channel: bool = True,
                  reduce_range: bool = False, op_types: Sequence[str] | None = None) -> str:
    """Write the QDQ INT8 model of the fp32 file `fp32_path` to `out_path`, calibrated on `inputs`
    (e.g. `calibration_inputs(...)`). reduce_range: 7-bit weights, for x86 CPUs without VNNI.

    op_types: the operator types to quantize, e.g. ["Conv"]; None: every type onnxruntime quantizes. With
    convolutions only, the additions, products and sigmoids of fusion modules stay float: slower, but on
    OpenVINO it avoids the INT8 loss of PIDNet-S (RESULTS.md, "What does a lossy runtime cost in mIoU").

    The layer that writes the logits (the resize to the input size, in every segkit model) stays float: its
    output is the largest tensor of the network, and quantizing it cost time in both runtimes (512x1024,
    BiSeNetV1 / BiSeNetV2 / PIDNet-S: OpenVINO INT8+bf16 with the argmax 39 / 44 / 35 ms against 31 / 35 / 27;
    onnxruntime 135 / 138 / 91 against 120 / 127 / 78), besides rounding the logits once more.
    """
    # onnxruntime is the optional "deploy" extra: imported where it is used, so segkit.deploy imports without it.
    require_packages(("onnx", "onnxruntime"), f"INT8 quantization of {fp32_path}")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    create_session(fp32_path)  # a file onnxruntime cannot load fails here, naming the path
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference plus onnxruntime's graph simplification, which the quantizer asks for. A segkit
        # export is simplified by the exporter already (BiSeNetV1: the same 247 nodes, 62 QDQ pairs and
        # speed either way); a file from elsewhere may need it.
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        last_layers = output_nodes(prepared)
        with atomic_path(out_path) as tmp_out:
            quantize_static(prepared, tmp_out, _reader(inputs, INPUT_NAME), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, reduce_range=reduce_range,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            op_types_to_quantize=list(op_types) if op_types else None,
                            nodes_to_exclude=last_layers,
                            extra_options={
                                # Ranges merged every 16 batches: calibration memory stays flat in N.
                                "CalibMaxIntermediateOutputs": 16,
                                # A norm no conv precedes (BiSeNetV2's context embedding) stays in the
                                # graph; its weights are 1-D, so their channel axis is 0, not the default 1.
                                "QDQOpTypePerChannelSupportToAxis": {"BatchNormalization": 0},
                            })
    logger.info("wrote INT8 model %s (from %s)", out_path, fp32_path)
    return out_path


# What quantize_int8 does, as part of the cache key of cached_int8.
RECIPE = "qdq u8/s8 minmax per-channel, output layer float"


def output_nodes(path: str) -> list[str]:
    """Names of the nodes of an ONNX file that write its outputs."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    return [n.name for n in graph.node if n.name and outputs & set(n.output)]


@dataclass(frozen=True)
class Calibration:
    """What calibrates an INT8 model: `inputs()` yields model inputs [N,3,H,W]; `key` says what they are
    (data, split, count, inference mode), so a cached INT8 file is reused only for the same calibration."""

    key: str
    inputs: Callable[[], Iterator[np.ndarray]]


DEFAULT_CALIB_IMAGES = 100  # DATASET.TRAIN_SPLIT images that calibrate an INT8 model when no count is given


def dataset_calibration(cfg: CfgNode, num_images: int = DEFAULT_CALIB_IMAGES, split: str | None = None,
                        mode: InferenceMode | None = None) -> Calibration:
    """`num_images` images of DATASET.TRAIN_SPLIT (or `split`), preprocessed as evaluation preprocesses them in
    `mode` (default: the config's TEST settings), so the ranges come from the views the model will be run on."""
    split = split or cfg.DATASET.TRAIN_SPLIT
    mode = mode or InferenceMode.from_config(cfg)

    def inputs() -> Iterator[np.ndarray]:
        return calibration_inputs(build_dataset(cfg, split, train=False), cfg, num_images, mode)

    key = (f"{cfg.DATASET.NAME}|{os.path.abspath(cfg.DATASET.ROOT)}|{split}|{num_images}|{mode.describe()}|"
           f"{list(cfg.INPUT.MEAN)}|{list(cfg.INPUT.STD)}|{cfg.TEST.SIZE_DIVISOR}")
    return Calibration(key, inputs)


def is_quantized(path: str) -> bool:
    """Whether an ONNX file holds quantized operators (a QDQ or QOperator INT8 model)."""
    require_packages(("onnx",), f"reading {path}")
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file, or one cut short
        raise OnnxLoadError(f"cannot load ONNX file {path} ({os.path.getsize(path)} bytes): truncated or not an "
                            f"ONNX model ({type(e).__name__})") from None
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger")
               for n in model.graph.node)


def cached_int8(fp32_path: str, calibration: Calibration, cache_dir: str | None = None,
                op_types: Sequence[str] | None = None) -> str:
    """The INT8 model of `fp32_path` calibrated by `calibration`, quantizing `op_types` (None: every type, as in
    `quantize_int8`), quantized on the first call only."""
    ops = ",".join(op_types) if op_types else "all"
    # RECIPE: a file quantized by an earlier recipe is not reused.
    digest = hashlib.sha1(f"{os.path.abspath(fp32_path)}|{os.path.getmtime(fp32_path)}|{calibration.key}|{ops}|"
                          f"{RECIPE}".encode())
    stem = os.path.splitext(os.path.basename(fp32_path))[0]
    path = os.path.join(cache_dir or segkit_cache_dir("onnx"), f"{stem}-int8-{digest.hexdigest()[:12]}.onnx")
    if not os.path.isfile(path):
        logger.info("quantizing %s to INT8 once (%s operator types; cached at %s)", fp32_path, ops, path)
        quantize_int8(fp32_path, path, calibration.inputs(), op_types=op_types)
    return path
