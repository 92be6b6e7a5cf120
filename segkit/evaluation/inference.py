"""Inference on one image: whole image or sliding windows, over several scales, with flip.

Every view (one scale, flipped or not) yields logits for the whole (scaled) image; they are resized
back to the output size (bilinear), turned into softmax probabilities, and the probabilities of all
views are averaged; the prediction is their argmax. Windows and views go through the network in
mini-batches of `batch_size` and are added into running sums, so memory depends on the batch size
and the image size, never on the number of windows. When the labels of one whole view at the output size
are all that is asked for and the model computes its own argmax (`predict_labels`, as the exported
runtimes do), the labels come from it: the same argmax, without the logits crossing into PyTorch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ConfigError
from ..utils.amp import autocast
from ..utils.amp import autocast_dtype as amp_dtype_for

# A segmentor in eval mode, or any callable mapping a normalised [N,3,H,W] batch to logits [N,C,H,W].
Model = Callable[[torch.Tensor], torch.Tensor]


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of sliding windows along one axis: every `stride`, the last one flush with the border.

    A length up to `crop` gets a single window at 0 (the caller clamps the window to the image).
    """
    if crop <= 0 or stride <= 0:
        raise ValueError(f"crop ({crop}) and stride ({stride}) must be positive")
    if stride > crop:
        raise ValueError(f"stride {stride} larger than crop {crop} would leave pixels uncovered")
    if length <= crop:
        return [0]
    n = math.ceil((length - crop) / stride) + 1
    return sorted({min(i * stride, length - crop) for i in range(n)})


def default_stride(crop_size: Sequence[int]) -> tuple[int, int]:
    """2/3 of the crop, rounded up, so neighbouring windows overlap by a third."""
    return tuple(max(1, math.ceil(c * 2 / 3)) for c in crop_size)  # type: ignore[return-value]


def _pair(v: int | Sequence[int] | None, name: str) -> tuple[int, int] | None:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return None
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or (height, width), got {v!r}")
    return (int(v[0]), int(v[1]))


def _pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    # Zero after normalisation is the dataset mean, the most neutral filler.
    ph, pw = height - x.shape[-2], width - x.shape[-1]
    return F.pad(x, (0, pw, 0, ph)) if ph > 0 or pw > 0 else x


def _pad_to_multiple(x: torch.Tensor, divisor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _pad_to(x, math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor)


def _forward(model: Model, x: torch.Tensor, divisor: int, autocast_dtype: torch.dtype | None) -> torch.Tensor:
    """Float32 logits of a batch at its own size; the batch is zero-padded to a multiple of `divisor` first."""
    h, w = x.shape[-2:]
    x = _pad_to_multiple(x, divisor)
    with autocast(x.device, autocast_dtype):
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 4:
        raise TypeError("the model must be in eval mode and return logits [N,C,H,W] (Segmentor contract)")
    if logits.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"the model returned logits of size {tuple(logits.shape[-2:])} "
                         f"for input {tuple(x.shape[-2:])}")
    return logits[..., :h, :w].float()


def _forward_labels(model: Any, x: torch.Tensor, divisor: int, num_classes: int | None,
                    dtype: torch.dtype) -> torch.Tensor:
    """Labels [H,W] of one image [1,3,H,W] by the model's own argmax (`predict_labels`), padded as `_forward` pads."""
    model_classes = getattr(model, "num_classes", None)
    if num_classes is not None and model_classes is not None and model_classes != num_classes:
        raise ValueError(f"the model predicts {model.num_classes} classes, expected num_classes={num_classes}")
    h, w = x.shape[-2:]
    padded = _pad_to_multiple(x, divisor)
    labels = model.predict_labels(padded)
    if labels.shape != (1, *padded.shape[-2:]):
        raise ValueError(f"predict_labels returned shape {tuple(labels.shape)} for input {tuple(padded.shape)}")
    return labels[0, :h, :w].to(dtype)


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def _slide_logits(
    model: Model, image: torch.Tensor, crop: tuple[int, int], stride: tuple[int, int],
    batch_size: int, divisor: int, autocast_dtype: torch.dtype | None,
) -> torch.Tensor:
    """Logits [1,C,H,W] of one view from overlapping windows, averaged by a count map.

    A window larger than the view is clamped to it, as mmsegmentation's slide inference does ("the small
    patch will be used to decode without padding"): zero-padding the view up to the window would feed the
    network a border of mean-grey it never saw in training (the demo model lost 10 mIoU that way).
    """
    h, w = image.shape[-2:]
    crop = (min(crop[0], h), min(crop[1], w))
    stride = (min(stride[0], crop[0]), min(stride[1], crop[1]))
    boxes = [(y, x) for y in window_starts(h, crop[0], stride[0]) for x in window_starts(w, crop[1], stride[1])]
    total: torch.Tensor | None = None
    count = torch.zeros((1, 1, h, w), device=image.device)
    for idx in _chunks(len(boxes), batch_size):
        batch = torch.cat([image[..., y:y + crop[0], x:x + crop[1]] for y, x in (boxes[i] for i in idx)])
        logits = _forward(model, batch, divisor, autocast_dtype)
        if total is None:
            total = logits.new_zeros((1, logits.shape[1], h, w))
        for j, i in enumerate(idx):
            y, x = boxes[i]
            total[..., y:y + crop[0], x:x + crop[1]] += logits[j:j + 1]
            count[..., y:y + crop[0], x:x + crop[1]] += 1
    assert total is not None
    return total.div_(count)


def _softmax_(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over classes in place: a view's logits are not needed afterwards, and at 2048x1024 with 19
    classes a fresh 160 MB tensor per view costs page faults that show in the evaluator's overhead."""
    logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=1, keepdim=True))


def argmax_classes(scores: torch.Tensor, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """argmax over dim 0 of scores [C,H,W] as `dtype`; the first maximum wins, as with torch.argmax.

    The maximum over the class planes first (a reduction over the outer dimension: elementwise sweeps over
    contiguous memory), then each class from the last to the first stamps its index where it reaches that
    maximum, so the lowest index wins a tie. On CPU (benchmarks/bench_argmax.py, 19 classes) this is about 4.7x
    faster than argmax across the strided class axis and 2.2x faster than permuting the classes innermost first
    (a copy of the whole score tensor).
    """
    if scores.dim() != 3:
        raise ValueError(f"expected scores [C,H,W], got shape {tuple(scores.shape)}")
    best = scores.amax(0)
    labels = torch.zeros(best.shape, dtype=dtype, device=scores.device)
    reached = torch.empty(best.shape, dtype=torch.bool, device=scores.device)
    for c in range(scores.shape[0] - 1, -1, -1):  # class 0 too: it must win its ties
        torch.eq(scores[c], best, out=reached)
        labels.masked_fill_(reached, c)
    return labels


def _check_size_pair(value: Any, key: str) -> None:
    """A TEST size key must be (height, width) of integers >= 1 (or one such integer); else a ConfigError naming it."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ConfigError(f"{key} must be (height, width), integers >= 1, got {value}")


def check_test_config(t: Any, *, slide: bool, msc: bool) -> None:
    """The TEST keys an inference mode reads, checked by name: InferenceMode's own checks cannot name the
    key, and the trainer builds its mode before training, so a bad value costs no training run."""
    # TEST.SCALE whatever TEST.MSC says: the validation pictures of a run predict at it.
    if not t.SCALE > 0:  # `not >` also refuses NaN
        raise ConfigError(f"TEST.SCALE must be positive, got {t.SCALE}")
    if msc and (not t.SCALES or not all(s > 0 for s in t.SCALES)):
        raise ConfigError(f"TEST.SCALES must be a non-empty list of positive scales, got {list(t.SCALES)}")
    for key in ("BATCH_SIZE", "SIZE_DIVISOR"):
        value = getattr(t, key)
        if value < 1:  # a divisor of 0 would divide by zero in the padding; a batch of 0 never runs
            raise ConfigError(f"TEST.{key} must be >= 1, got {value}")
    if slide:
        _check_size_pair(t.CROP_SIZE, "TEST.CROP_SIZE")
        if t.STRIDE:  # empty: the default stride
            _check_size_pair(t.STRIDE, "TEST.STRIDE")


def _scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))


@dataclass(frozen=True)
class InferenceMode:
    """How one image is predicted: the views (scales, each also mirrored with `flip`), whole image or
    sliding windows of `crop_size` every `stride` (default 2/3 of the crop), `batch_size` views or windows
    per forward pass, padding to a multiple of `size_divisor`, `align_corners` of the resizes, and the
    autocast dtype (None: float32). Built from the config (`from_config`) or from arguments; frozen, so one
    value describes a whole evaluation and can be logged and saved (`describe`)."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    slide: bool = False
    crop_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    batch_size: int = 4
    size_divisor: int = 32
    align_corners: bool = False
    autocast_dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the fields once, here
        set_(self, "scales", tuple(float(s) for s in self.scales))
        set_(self, "crop_size", _pair(self.crop_size, "crop_size"))
        set_(self, "stride", _pair(self.stride, "stride"))
        if not self.scales:
            raise ValueError("scales must not be empty")
        if any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be positive, got {list(self.scales)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.size_divisor < 1:
            raise ValueError(f"size_divisor must be >= 1, got {self.size_divisor}")
        if self.slide:
            if self.crop_size is None:
                raise ValueError("slide inference needs crop_size")
            if self.stride is None:
                set_(self, "stride", default_stride(self.crop_size))

    @classmethod
    def from_config(cls, cfg: Any, *, slide: bool | None = None, msc: bool | None = None,
                    flip: bool | None = None, scales: Sequence[float] | None = None,
                    device: torch.device | str | None = None) -> "InferenceMode":
        """The config's TEST settings; explicit arguments win (`scales` implies msc). `device`: where the model
        runs, for TEST.AMP (autocast on CUDA only). A bad TEST value is a ConfigError naming the key."""
        t = cfg.TEST
        slide = t.SLIDE if slide is None else slide
        if scales:
            msc = True if msc is None else msc
        msc = t.MSC if msc is None else msc
        check_test_config(t, slide=bool(slide), msc=bool(msc) and not scales)  # explicit scales replace TEST.SCALES
        used = [float(s) for s in (scales or t.SCALES)] if msc else [float(t.SCALE)]
        amp = amp_dtype_for(t.AMP, cfg.SOLVER.AMP.DTYPE, torch.device(device), key="TEST.AMP") if device is not None else None
        return cls(scales=tuple(used), flip=bool(t.FLIP if flip is None else flip), slide=bool(slide),
                   crop_size=tuple(t.CROP_SIZE) if slide else None,
                   stride=tuple(t.STRIDE) if slide and t.STRIDE else None, batch_size=int(t.BATCH_SIZE),
                   size_divisor=int(t.SIZE_DIVISOR), align_corners=bool(cfg.MODEL.ALIGN_CORNERS), autocast_dtype=amp)

    def describe(self) -> dict[str, Any]:
        """The views as plain JSON values (what metrics files record as "mode")."""
        return {"scales": list(self.scales), "flip": self.flip, "slide": self.slide,
                "crop_size": list(self.crop_size) if self.slide and self.crop_size else None,
                "stride": list(self.stride) if self.slide and self.stride else None, "batch_size": self.batch_size}


@torch.inference_mode()
def inference(
    model: Model,
    image: torch.Tensor,
    mode: InferenceMode = InferenceMode(),
    *,
    num_classes: int | None = None,
    out_size: Sequence[int] | None = None,
    return_probs: bool = True,
    label_dtype: torch.dtype = torch.int64,
) -> torch.Tensor:
    """Class probabilities [C,H',W'] (or labels [H',W'] with return_probs=False) of one normalised image.

    image: [3,H,W] or [1,3,H,W], moved to the model's device. `mode`: the views and how they run (see
    `InferenceMode`). out_size: (H', W') of the output, default the input size (pass the label's size).
    Inputs are padded with zeros to a multiple of the mode's `size_divisor` and the logits cropped back, so
    any size works. An nn.Module must be in eval mode and gets the image on its device; any other callable
    (an exported runtime) gets it where it is. `num_classes`: checked against the model's output.
    `label_dtype`: the dtype of the labels (uint8 saves a conversion when the caller narrows anyway).
    """
    scales, flip, slide, batch_size = mode.scales, mode.flip, mode.slide, mode.batch_size
    crop, step, divisor = mode.crop_size, mode.stride, mode.size_divisor
    align_corners, autocast_dtype = mode.align_corners, mode.autocast_dtype
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image [3,H,W] or [1,3,H,W], got shape {tuple(image.shape)}")
    is_module = isinstance(model, nn.Module)
    if is_module and model.training:
        raise ValueError("inference() needs the model in eval mode (call model.eval())")
    param = next(model.parameters(), None) if is_module else None
    if param is not None:
        image = image.to(param.device)
    h, w = image.shape[-2:]
    out_h, out_w = (int(out_size[0]), int(out_size[1])) if out_size is not None else (h, w)

    n_total = len(scales) * (2 if flip else 1)
    if (not return_probs and n_total == 1 and not slide and hasattr(model, "predict_labels")
            and _scaled_size(h, w, scales[0]) == (h, w) == (out_h, out_w)):
        return _forward_labels(model, image, divisor, num_classes, label_dtype)
    # Running sums of probabilities [1,C,H',W'], one for plain and one for mirrored views: resizing and
    # softmax commute with a horizontal flip, so mirrored views are flipped back once per image at the
    # end instead of once per view (on CPU a flip costs as much as the resize).
    sums: dict[bool, torch.Tensor] = {}

    def add_view(logits: torch.Tensor, flipped: bool) -> None:
        if num_classes is not None and logits.shape[1] != num_classes:
            raise ValueError(f"the model returned {logits.shape[1]} classes, expected num_classes={num_classes}")
        if logits.shape[-2:] != (out_h, out_w):
            logits = F.interpolate(logits, size=(out_h, out_w), mode="bilinear", align_corners=align_corners)
        if n_total == 1 and not return_probs:
            sums[flipped] = logits  # one view: the argmax of the logits is that of the probabilities
            return
        p = _softmax_(logits if logits.is_contiguous() else logits.contiguous())
        sums[flipped] = sums[flipped].add_(p) if flipped in sums else p

    for scale in scales:
        size = _scaled_size(h, w, scale)
        x = image if size == (h, w) else F.interpolate(image, size=size, mode="bilinear", align_corners=align_corners)
        views = [(x, False)] + ([(x.flip(-1), True)] if flip else [])
        if slide:
            for v, flipped in views:
                add_view(_slide_logits(model, v, crop, step, batch_size, divisor, autocast_dtype), flipped)
        else:
            # Views of one scale share a size, so they share a batch.
            for idx in _chunks(len(views), batch_size):
                logits = _forward(model, torch.cat([views[i][0] for i in idx]), divisor, autocast_dtype)
                for j, i in enumerate(idx):
                    add_view(logits[j:j + 1], views[i][1])

    total = sums.get(False)
    if True in sums:
        total = sums[True].flip(-1) if total is None else total.add_(sums[True].flip(-1))
    assert total is not None
    if not return_probs:
        return argmax_classes(total[0], label_dtype)
    return total[0].div_(n_total)
