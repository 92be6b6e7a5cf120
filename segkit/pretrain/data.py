"""ImageFolder classification data (`<split>/<class>/<image>`, any format PIL or OpenCV reads) and its loaders.

JPEGs are decoded with torchvision.io.decode_jpeg (libjpeg-turbo straight into a uint8 tensor):
benchmarks/bench_cls_loader.py measured it faster than PIL both for the decode alone and for the
whole train pipeline, whose v2 transforms then run on tensors. Other formats go through PIL, and
what PIL cannot read through OpenCV. Every image comes out RGB: grayscale, palette, RGBA and CMYK
are converted.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from yacs.config import CfgNode

from ..config import ConfigError
from ..data.build import worker_kwargs
from ..data.labels import cached_per_file, read_header
from ..data import iteration_batches, worker_init_fn
from ..data.samplers import InferenceSampler
from ..utils.comm import get_rank, get_world_size, per_process_batch
from ..utils.images import IMAGE_EXTENSIONS
from .demo import ensure_demo_cls_dataset
from .transforms import build_cls_transforms

try:  # torchvision 0.29 deprecates its decoders in favour of TorchCodec; PIL takes over once they are gone
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # pragma: no cover - depends on the installed torchvision
    decode_jpeg = None

logger = logging.getLogger("segkit")

_JPEG_MAGIC = b"\xff\xd8\xff"


class UnreadableImageError(RuntimeError):
    """No decoder could read an image file; the message names the file."""


def _decode_pil(data: bytes) -> torch.Tensor:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        # convert('RGB') covers L, LA, P, RGBA and CMYK; 16/32-bit grayscale needs scaling first.
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            arr = (255.0 * arr / max(float(arr.max()), 1.0)).astype(np.uint8)
            rgb = np.repeat(arr[:, :, None], 3, axis=2)
        else:
            rgb = np.array(im.convert("RGB"))  # a writable copy: torch.from_numpy shares it
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


def _decode_cv2(data: bytes) -> torch.Tensor:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV could not decode the data")
    if bgr.dtype != np.uint8:  # e.g. 16-bit PNG/TIFF or float EXR
        bgr = cv2.normalize(bgr.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)


def read_image_rgb(path: str) -> torch.Tensor:
    """Decode `path` to a uint8 RGB tensor [3, H, W]; raises UnreadableImageError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UnreadableImageError(f"cannot read image file {path}: {e}") from e
    errors = []
    if decode_jpeg is not None and data.startswith(_JPEG_MAGIC):
        try:
            with warnings.catch_warnings():  # its deprecation notice fires on every call; the choice is deliberate
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        except (RuntimeError, ValueError) as e:  # e.g. a JPEG variant libjpeg rejects: let PIL try
            errors.append(f"torchvision: {e}")
    for name, decode in (("PIL", _decode_pil), ("OpenCV", _decode_cv2)):
        try:
            img = decode(data)
            if img.shape[1] == 0 or img.shape[2] == 0:
                raise ValueError(f"empty image {tuple(img.shape)}")
            return img
        except Exception as e:  # decoders raise many types; all mean "not readable by this one"
            errors.append(f"{name}: {e}")
    raise UnreadableImageError(f"cannot decode image file {path} ({'; '.join(errors)})")


def scan_image_folder(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted class names, [(path, class index)]) of `root/<class>/**/<image>`."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"no class folders in {root} (expected {root}/<class>/<image>)")
    samples = []
    for idx, cls in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, cls), followlinks=True):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.lower().endswith(IMAGE_EXTENSIONS):
                    samples.append((os.path.join(dirpath, fn), idx))
    if not samples:
        raise FileNotFoundError(f"no images under {root} (suffixes {', '.join(IMAGE_EXTENSIONS)})")
    return classes, samples


def _header(path: str) -> list[int]:
    """[width, height] from the header; a file of a format PIL does not know (EXR, HDR) passes when OpenCV
    knows its signature (decoding it is left to the loader)."""
    import cv2
    from PIL import Image

    try:
        return read_header(path)
    except OSError:
        if os.path.splitext(path)[1].lower() not in Image.registered_extensions() and cv2.haveImageReader(path):
            return [0, 0]
        raise


def unreadable_images(paths: list[str], workers: int = 4) -> tuple[list[str], list[str]]:
    """(paths, reasons naming them) of the files whose header is unreadable or whose data ends early (PNG, JPEG).

    The header scan of the segmentation datasets (segkit.data.labels), cached per file by mtime and size,
    so a re-index of an unchanged folder reads nothing.
    """
    reasons: list[str] = []
    sizes = cached_per_file("cls-headers", paths, _header, workers=workers, errors=reasons, desc="file check")
    return [p for p, size in zip(paths, sizes) if size is None], sorted(reasons)


# How many bad files an error lists one by one (the count covers the rest).
LISTED_BAD_FILES = 50


class ImageFolder(Dataset):
    """Items are (transformed image, class index); classes are the sorted sub-folder names.

    Every file's header is checked when the folder is indexed (cached): a truncated or unreadable file
    stops the run before training with one error naming every such file, or with `skip_unreadable` is
    left out with a warning naming them (`dropped`). A file whose header passes but whose data does not
    decode is, with `skip_unreadable`, replaced by the next readable one and counted in `num_skipped`
    (shared memory, so DataLoader workers' skips are seen by the main process); otherwise it raises
    UnreadableImageError naming the file.
    """

    def __init__(
        self,
        root: str,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        skip_unreadable: bool = False,
        classes: list[str] | None = None,
    ) -> None:
        self.root = root
        found, self.samples = scan_image_folder(root)
        if classes is not None and found != list(classes):
            # Val must index classes as train does, or every label would be wrong.
            missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
            raise ValueError(f"{root}: class folders differ from the training set's (missing {missing[:5]}, extra {extra[:5]})")
        self.dropped = self._check_files(root, skip_unreadable)
        self.classes = found
        self.class_to_idx = {c: i for i, c in enumerate(found)}
        self.targets = [t for _, t in self.samples]
        self.transform = transform
        self.skip_unreadable = skip_unreadable
        self._skipped = torch.zeros(1, dtype=torch.int64).share_memory_()

    def _check_files(self, root: str, skip_unreadable: bool) -> list[str]:
        bad, reasons = unreadable_images([p for p, _ in self.samples])
        if not bad:
            return []
        listed = "\n".join(reasons[:LISTED_BAD_FILES])
        more = f"\n... and {len(bad) - LISTED_BAD_FILES} more" if len(bad) > LISTED_BAD_FILES else ""
        if not skip_unreadable:
            raise UnreadableImageError(f"{len(bad)} unreadable or truncated image(s) in {root} (fix or remove them, "
                                       f"or set DATASET.SKIP_UNREADABLE True to leave them out):\n{listed}{more}")
        logger.warning("leaving out %d unreadable or truncated image(s) of %s (DATASET.SKIP_UNREADABLE):\n%s%s",
                       len(bad), root, listed, more)
        dropped = set(bad)
        self.samples = [s for s in self.samples if s[0] not in dropped]
        if not self.samples:
            raise UnreadableImageError(f"no readable image in {root}")
        return bad

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_skipped(self) -> int:
        """Reads of unreadable files replaced so far (over all workers; one file may count once per read)."""
        return int(self._skipped.item())

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(len(self.samples)):
            path, target = self.samples[(index + attempt) % len(self.samples)]
            try:
                img = read_image_rgb(path)
            except UnreadableImageError as e:
                if not self.skip_unreadable:
                    raise
                self._skipped += 1
                logger.warning("skipping unreadable image (DATASET.SKIP_UNREADABLE): %s", e)
                continue
            return (self.transform(img) if self.transform is not None else img), target
        raise UnreadableImageError(f"no readable image in {self.root}")


def check_cls_config(cfg: CfgNode, train: bool = True) -> None:
    """The input sizes, crop ranges and batch sizes of a classification config, each refused by name before
    any data is scanned: torch would fail on them only at the first batch (the val ones after a whole epoch),
    in its own words; and SOLVER.HEAD_LR_MULT, which pretraining has nothing to apply to.
    `train` False: only what evaluation reads (--eval-only)."""
    inp = cfg.INPUT
    sizes = {"INPUT.VAL_SIZE": inp.VAL_SIZE, "SOLVER.IMS_PER_BATCH": cfg.SOLVER.IMS_PER_BATCH}
    if train:
        sizes["INPUT.TRAIN_SIZE"] = inp.TRAIN_SIZE
    for key, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if cfg.DATALOADER.VAL_BATCH_SIZE < 0:  # 0 is valid: the per-process training batch
        raise ConfigError("DATALOADER.VAL_BATCH_SIZE must be >= 1 (or 0: the per-process training batch), "
                          f"got {cfg.DATALOADER.VAL_BATCH_SIZE}")
    # RandomResizedCrop draws the area fraction from RRC_SCALE and the log aspect ratio from RRC_RATIO.
    ranges = {"INPUT.RRC_SCALE": (inp.RRC_SCALE, 1.0), "INPUT.RRC_RATIO": (inp.RRC_RATIO, math.inf)} if train else {}
    for key, (value, top) in ranges.items():
        if len(value) != 2 or not 0 < value[0] <= value[1] <= top:
            bound = " <= 1" if top == 1.0 else ""
            raise ConfigError(f"{key} must be a range [lo, hi] with 0 < lo <= hi{bound}, got {list(value)}")
    # The shared SOLVER key multiplies the LR of the modules a segmentor marks as heads; a classifier marks
    # none, so any other value would silently train every parameter at BASE_LR.
    if train and cfg.SOLVER.HEAD_LR_MULT != 1.0:
        raise ConfigError(f"SOLVER.HEAD_LR_MULT {cfg.SOLVER.HEAD_LR_MULT}: a classifier has no head modules for it to "
                          "multiply; leave it at 1.0 in pretraining")


def build_cls_dataset(cfg: CfgNode, train: bool, classes: list[str] | None = None) -> ImageFolder:
    """The train or val ImageFolder of DATASET.ROOT with its transforms (val: indexed as `classes`)."""
    ds = cfg.DATASET
    ensure_demo_cls_dataset(cfg)  # a demo config's set generates itself on first use
    folder = os.path.join(ds.ROOT, ds.TRAIN_DIR if train else ds.VAL_DIR)
    dataset = ImageFolder(folder, build_cls_transforms(cfg, train=train), ds.SKIP_UNREADABLE, classes=classes)
    if dataset.num_classes != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but {folder} has {dataset.num_classes} "
                         "class folders")
    return dataset


def build_cls_train_loader(cfg: CfgNode, dataset: ImageFolder, device: torch.device, start_iter: int = 0) -> Iterator:
    """Endless batches of SOLVER.IMS_PER_BATCH / world size from iteration `start_iter` on: the training data
    rule segmentation follows too (`segkit.data.iteration_batches`), so a resumed run draws what an
    uninterrupted one would."""
    return iteration_batches(dataset, cfg.SOLVER.IMS_PER_BATCH, cfg.SEED, start_iter,
                             **worker_kwargs(cfg.DATALOADER.NUM_WORKERS), worker_init_fn=worker_init_fn,
                             pin_memory=cfg.DATALOADER.PIN_MEMORY and device.type == "cuda")


def build_cls_val_loader(cfg: CfgNode, dataset: ImageFolder, device: torch.device) -> DataLoader:
    """This rank's share of val (indices rank::world, no padding: every image counts once over ranks)."""
    sampler = InferenceSampler(len(dataset), get_rank(), get_world_size())
    batch = cfg.DATALOADER.VAL_BATCH_SIZE or per_process_batch(cfg.SOLVER.IMS_PER_BATCH)
    return DataLoader(dataset, batch_size=batch, sampler=sampler,
                      **worker_kwargs(cfg.DATALOADER.NUM_WORKERS),
                      pin_memory=cfg.DATALOADER.PIN_MEMORY and device.type == "cuda")
