"""`segkit.Predictor`: one image in, its label map out, as evaluation would predict it.

    predictor = Predictor.from_config("configs/cityscapes/bisenetv1_r18.yaml", "model_final.pth")
    predictor = Predictor.from_checkpoint("output/run/model_final.pth")  # the config it carries
    predictor = Predictor.from_pretrained("pidnet_s_cityscapes")        # a zoo entry (python tools/zoo.py list)
    image = cv2.imread("frame.png")                     # BGR uint8 [H,W,3], as OpenCV reads it
    labels = predictor(image)                            # uint8 [H,W] train ids at the input size
    cv2.imwrite("overlay.png", predictor.overlay(image, labels))

The image is normalised with INPUT.MEAN/STD and predicted by `segkit.evaluation.inference` in the
config's mode (TEST.SCALE or MSC over TEST.SCALES, SLIDE, FLIP; arguments override), so the Predictor
and the evaluation loop agree pixel for pixel on the same runtime. The runtime is the fast path by
default (see `fastpath.py`); weights ending in .onnx run that file with onnxruntime (or OpenVINO).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from yacs.config import CfgNode

from ..data import dataset_classes
from ..data.seg_transforms import normalise, normalise_luts
from ..evaluation import InferenceMode, colorize, inference
from ..evaluation.prediction_files import OVERLAY_ALPHA, overlay
from ..evaluation.inference import Model
from ..zoo import load_model_for_inference, resolve_config
from ..utils.comm import check_device
from .fastpath import build_runtime
from .quantize import DEFAULT_CALIB_IMAGES, dataset_calibration


def config_runtime(
    cfg: CfgNode,
    model: torch.nn.Module | None,
    runtime: str = "auto",
    *,
    device: str | torch.device = "cpu",
    onnx_path: str | None = None,
    precision: str = "fp32",
    calib_images: int = DEFAULT_CALIB_IMAGES,
    int8_ops: Sequence[str] | None = None,
    threads: int | None = None,
    mode: InferenceMode | None = None,
) -> Model:
    """`build_runtime` for the model of `cfg` (or the ONNX file `onnx_path`): its output checked against
    MODEL.NUM_CLASSES, an INT8 model calibrated on `calib_images` images of DATASET.TRAIN_SPLIT (read only when
    one is built) in the inference `mode` it will run (default: the config's). What the Predictor and
    tools/evaluate.py run."""
    return build_runtime(model, runtime, device=device, onnx_path=onnx_path, precision=precision,
                         num_classes=int(cfg.MODEL.NUM_CLASSES), threads=threads,
                         calibration=dataset_calibration(cfg, calib_images, mode=mode), int8_ops=int8_ops)


class Predictor:
    """BGR uint8 [H,W,3] -> train ids [H,W] (uint8; int32 beyond 256 classes) at the input size.

    model: any runtime of `build_runtime` (or an eval-mode segmentor); device: where inputs go for a
    PyTorch runtime (an ONNX runtime takes them on the CPU). mode: an `InferenceMode` (default: the
    config's TEST settings on `device`). Class names and palette come from DATASET.NAME; its files are not needed.
    """

    def __init__(self, cfg: CfgNode, model: Model, *, device: str | torch.device = "cpu",
                 mode: InferenceMode | None = None) -> None:
        self.cfg = cfg
        self.model = model
        self.device = check_device(device)
        self.mode = mode or InferenceMode.from_config(cfg, device=self.device)
        self.num_classes = int(cfg.MODEL.NUM_CLASSES)
        self.class_names, self.palette = dataset_classes(cfg)
        self._luts = normalise_luts(cfg.INPUT.MEAN, cfg.INPUT.STD)

    @classmethod
    def from_config(
        cls,
        config_file: str | None,
        weights: str,
        device: str = "cpu",
        runtime: str = "auto",
        opts: Sequence[str] = (),
        *,
        precision: str = "fp32",
        calib_images: int = DEFAULT_CALIB_IMAGES,
        int8_ops: Sequence[str] | None = None,
        threads: int | None = None,
        slide: bool | None = None,
        msc: bool | None = None,
        flip: bool | None = None,
        scales: Sequence[float] | None = None,
    ) -> "Predictor":
        """The Predictor of a config (with `opts` as KEY VALUE overrides) and weights: a checkpoint (segkit's or
        an official format), zoo:NAME or a .onnx file. `config_file` None takes the config the weights carry.

        runtime: "auto" (the fastest exact one on `device`) or one of "torch", "fused", "compile", "onnx",
        "openvino". precision: "fp32" (exact) or a lossy one asked for by name, "bf16", "int8" or
        "int8+bf16" (see `segkit.deploy.fastpath`); int8 from a checkpoint is calibrated on `calib_images`
        images of DATASET.TRAIN_SPLIT, quantizing the operator types `int8_ops` (None: all; e.g. ["Conv"]).
        threads: onnxruntime/OpenVINO threads (None: their default).
        slide/msc/flip/scales override TEST.SLIDE/MSC/FLIP/SCALES as in tools/evaluate.py.
        """
        cfg = resolve_config(config_file, weights, opts)
        check_device(device)  # before the weights are read or exported
        # The mode first: a bad value fails before any export, and INT8 is calibrated on its views.
        mode = InferenceMode.from_config(cfg, slide=slide, msc=msc, flip=flip, scales=scales, device=device)
        if weights.endswith(".onnx"):
            model, onnx_path = None, weights
        else:
            model, onnx_path = load_model_for_inference(cfg, weights), None
        runner = config_runtime(cfg, model, runtime, device=device, onnx_path=onnx_path, precision=precision,
                                calib_images=calib_images, int8_ops=int8_ops, threads=threads, mode=mode)
        return cls(cfg, runner, device=device, mode=mode)

    @classmethod
    def from_checkpoint(cls, weights: str, device: str = "cpu", runtime: str = "auto", opts: Sequence[str] = (),
                        **kwargs) -> "Predictor":
        """The Predictor of a checkpoint alone, with the config it carries (a segkit checkpoint, one of
        `tools/zoo.py convert`, or an official file of a zoo entry); arguments as in `from_config`."""
        return cls.from_config(None, weights, device, runtime, opts, **kwargs)

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", runtime: str = "auto", opts: Sequence[str] = (),
                        **kwargs) -> "Predictor":
        """The Predictor of zoo entry `name` (python tools/zoo.py list), with its config and published protocol;
        the file is downloaded into the segkit cache when it is missing."""
        return cls.from_config(None, f"zoo:{name}", device, runtime, opts, **kwargs)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            got = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"Predictor expects a BGR uint8 image [H,W,3] (as cv2.imread gives it), got {got}")
        x = torch.from_numpy(normalise(np.ascontiguousarray(image), self._luts)).to(self.device)
        labels = inference(self.model, x, self.mode, num_classes=self.num_classes, return_probs=False,
                           label_dtype=torch.uint8 if self.num_classes <= 256 else torch.int32)
        return labels.cpu().numpy()  # made narrow on the device: no int64 map crosses to the host

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """BGR uint8 [H,W,3] of a label map, in the dataset's palette (OpenCV order, like the input)."""
        return np.ascontiguousarray(colorize(labels, self.palette)[..., ::-1])

    def overlay(self, image: np.ndarray, labels: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
        """The colour map blended over the BGR image with weight `alpha` (that of the prediction writer)."""
        if image.shape[:2] != labels.shape[:2]:
            raise ValueError(f"labels {list(labels.shape[:2])} do not match the image {list(image.shape[:2])}")
        return overlay(image, self.colorize(labels), alpha)
