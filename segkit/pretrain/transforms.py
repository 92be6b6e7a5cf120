"""Classification transforms on uint8 RGB tensors, built from torchvision.transforms.v2.

Train: RandomResizedCrop, flip, RandAugment (N ops, magnitude M, each applied with a probability),
colour jitter, then float, PCA lighting noise, normalisation and random erasing.
Val: resize the short side to VAL_SIZE / CROP_PCT, centre crop VAL_SIZE.
"""
from __future__ import annotations

import math

import torch
import torchvision.transforms.v2 as T
from torch import nn
from yacs.config import CfgNode

# AlexNet's PCA of ImageNet RGB pixels on a 0..1 scale (eigenvalues and eigenvectors as columns).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

_INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


class PCALighting(nn.Module):
    """AlexNet lighting noise: add eigvec @ (alpha * eigval), alpha ~ N(0, alpha_std), to every pixel.

    Works on float images in 0..1 (before normalisation), where the ImageNet PCA was computed.
    """

    def __init__(self, alpha_std: float, eigval=IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC) -> None:
        super().__init__()
        self.alpha_std = float(alpha_std)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32), persistent=False)
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.alpha_std <= 0:
            return img
        if not img.is_floating_point():
            raise TypeError(f"PCALighting expects a float image in 0..1, got {img.dtype}")
        alpha = torch.randn(3) * self.alpha_std
        rgb = self.eigvec @ (alpha * self.eigval)
        return img + rgb.to(img.dtype).view(3, 1, 1)

    def extra_repr(self) -> str:
        return f"alpha_std={self.alpha_std}"


MAX_MAGNITUDE = 10  # RandAugment's M scale


def rand_augment(num_ops: int, magnitude: int, prob: float, interpolation=T.InterpolationMode.BILINEAR) -> nn.Module:
    """RandAugment with a probability per operation.

    v2.RandAugment applies all `num_ops` ops unconditionally; N independent single-op draws,
    each kept with probability `prob`, give the per-op probability of the EfficientNet recipe.
    """
    if num_ops <= 0:
        return T.Identity()
    if not 0 < magnitude <= MAX_MAGNITUDE:
        raise ValueError(f"INPUT.RAND_AUGMENT_M must be in 1..{MAX_MAGNITUDE}, got {magnitude}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"INPUT.RAND_AUGMENT_PROB must be in 0..1, got {prob}")
    # M on the paper's (and timm's) 0..10 scale: M 9 rotates up to 27 degrees. torchvision's default 31 bins
    # would read it on 0..30, a third of the strength the recipes quoting "M=9" were measured with.
    kw = dict(magnitude=magnitude, num_magnitude_bins=MAX_MAGNITUDE + 1, interpolation=interpolation)
    one = lambda: T.RandAugment(num_ops=1, **kw)  # noqa: E731
    if prob >= 1.0:
        return T.RandAugment(num_ops=num_ops, **kw)
    return T.Compose([T.RandomApply([one()], p=prob) for _ in range(num_ops)])


def _interpolation(name: str) -> T.InterpolationMode:
    if name not in _INTERPOLATIONS:
        raise ValueError(f"INPUT.INTERPOLATION must be one of {sorted(_INTERPOLATIONS)}, got '{name}'")
    return _INTERPOLATIONS[name]


def val_resize_size(val_size: int, crop_pct: float) -> int:
    """Short side before the centre crop: 224 / 0.875 = 256."""
    if not 0 < crop_pct <= 1:
        raise ValueError(f"INPUT.CROP_PCT must be in (0, 1], got {crop_pct}")
    return int(math.floor(val_size / crop_pct))


def build_cls_transforms(cfg: CfgNode, train: bool) -> T.Compose:
    """The train or val pipeline of a classification config (segkit.config.get_cls_cfg)."""
    inp = cfg.INPUT
    interp = _interpolation(inp.INTERPOLATION)
    tail = [T.ToDtype(torch.float32, scale=True)]
    if not train:
        resize = val_resize_size(inp.VAL_SIZE, inp.CROP_PCT)
        head = [T.Resize(resize, interpolation=interp, antialias=True), T.CenterCrop(inp.VAL_SIZE)]
        return T.Compose(head + tail + [T.Normalize(inp.MEAN, inp.STD)])

    ops: list[nn.Module] = [
        T.RandomResizedCrop(
            inp.TRAIN_SIZE, scale=tuple(inp.RRC_SCALE), ratio=tuple(inp.RRC_RATIO), interpolation=interp, antialias=True
        )
    ]
    if inp.FLIP_PROB > 0:
        ops.append(T.RandomHorizontalFlip(inp.FLIP_PROB))
    if inp.RAND_AUGMENT_N > 0:
        ops.append(rand_augment(inp.RAND_AUGMENT_N, inp.RAND_AUGMENT_M, inp.RAND_AUGMENT_PROB, interp))
    if inp.COLOR_JITTER > 0:
        cj = inp.COLOR_JITTER
        ops.append(T.ColorJitter(brightness=cj, contrast=cj, saturation=cj))
    ops += tail
    if inp.PCA_LIGHTING > 0:
        ops.append(PCALighting(inp.PCA_LIGHTING))
    ops.append(T.Normalize(inp.MEAN, inp.STD))
    if inp.RANDOM_ERASE_PROB > 0:
        if inp.RANDOM_ERASE_MODE not in ("pixel", "const"):
            raise ValueError(f"INPUT.RANDOM_ERASE_MODE must be 'pixel' or 'const', got '{inp.RANDOM_ERASE_MODE}'")
        value = "random" if inp.RANDOM_ERASE_MODE == "pixel" else 0.0
        ops.append(T.RandomErasing(p=inp.RANDOM_ERASE_PROB, scale=tuple(inp.RANDOM_ERASE_SCALE), value=value))
    return T.Compose(ops)
