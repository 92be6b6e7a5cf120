"""Evaluate a segmentor on a dataset: this rank's share of the images, one confusion matrix, all-reduced."""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from yacs.config import CfgNode

from ..data import build_test_loader
from ..utils.amp import autocast_dtype
from ..utils.comm import all_reduce_sum
from .export import save_prediction
from .inference import default_stride, inference
from .metrics import compute_metrics, confusion_matrix

logger = logging.getLogger("segkit")


def resolve_mode(
    cfg: CfgNode, *, slide: bool | None = None, msc: bool | None = None, flip: bool | None = None,
    scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The inference mode: explicit arguments win, None falls back to TEST.* (`scales` implies msc)."""
    slide = cfg.TEST.SLIDE if slide is None else slide
    flip = cfg.TEST.FLIP if flip is None else flip
    if scales:
        msc = True if msc is None else msc
    msc = cfg.TEST.MSC if msc is None else msc
    if msc:
        used = [float(s) for s in (scales or cfg.TEST.SCALES)]
    else:
        used = [float(cfg.TEST.SCALE)]
    crop = [int(c) for c in cfg.TEST.CROP_SIZE] if slide else None
    stride = None
    if slide:
        stride = [int(s) for s in cfg.TEST.STRIDE] if cfg.TEST.STRIDE else list(default_stride(crop))
    return {"scales": used, "flip": bool(flip), "slide": bool(slide), "crop_size": crop, "stride": stride,
            "batch_size": int(cfg.TEST.BATCH_SIZE)}


def evaluate_dataset(
    model: nn.Module,
    dataset: Dataset,
    cfg: CfgNode,
    device: torch.device | str,
    *,
    slide: bool | None = None,
    msc: bool | None = None,
    flip: bool | None = None,
    scales: Sequence[float] | None = None,
    save_pred_dir: str | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on `dataset` ({"mIoU","mAcc","aAcc","per_class","mode","num_images"}, percent).

    In a distributed run each rank evaluates its share and the confusion matrices are summed, so the
    result equals a single-process run exactly. A dataset without labels (`has_labels` False) gets no
    metrics: predictions are saved (when `save_pred_dir`) and the result holds the mode only.
    """
    device = torch.device(device)
    if isinstance(model, nn.parallel.DistributedDataParallel):
        # Ranks see different numbers of images: no collective may hide inside the forward pass.
        model = model.module
    mode = resolve_mode(cfg, slide=slide, msc=msc, flip=flip, scales=scales)
    num_classes = int(getattr(dataset, "num_classes", cfg.MODEL.NUM_CLASSES))
    ignore_index = int(getattr(dataset, "ignore_index", cfg.DATASET.IGNORE_INDEX))
    has_labels = bool(getattr(dataset, "has_labels", True))
    if save_pred_dir is None and not has_labels:
        logger.warning("the dataset has no labels and no prediction folder is given: nothing to evaluate or save")

    # Batch 1 over this rank's shard (indices rank::world, no padding: each image counted once).
    loader = build_test_loader(cfg, dataset=dataset)
    export_kwargs = {
        "palette": getattr(dataset, "palette", None),
        "train_id_to_label_id": getattr(dataset, "train_id_to_label_id", None),
    }
    amp_dtype = autocast_dtype(cfg.TEST.AMP, cfg.SOLVER.AMP.DTYPE, device)

    was_training = model.training
    model.eval()
    conf = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device)
    count = torch.zeros((), dtype=torch.int64, device=device)
    start = time.perf_counter()
    try:
        for item in loader:
            image = item["image"].to(device, non_blocking=True)
            label = item["label"][0]
            pred = inference(
                model, image, num_classes=num_classes, scales=mode["scales"], flip=mode["flip"],
                slide=mode["slide"], crop_size=mode["crop_size"], stride=mode["stride"],
                batch_size=mode["batch_size"], out_size=tuple(label.shape[-2:]), return_probs=False,
                align_corners=bool(cfg.MODEL.ALIGN_CORNERS), size_divisor=int(cfg.TEST.SIZE_DIVISOR),
                autocast_dtype=amp_dtype,
            )
            if has_labels:
                conf += confusion_matrix(pred, label.to(device, non_blocking=True), num_classes, ignore_index)
            if save_pred_dir:
                save_prediction(pred.cpu().numpy(), item["name"][0], save_pred_dir,
                                image_path=item["path"][0], **export_kwargs)
            count += 1
    finally:
        model.train(was_training)
    all_reduce_sum(conf)
    all_reduce_sum(count)
    elapsed = time.perf_counter() - start
    num_images = int(count.item())
    if num_images != len(dataset):
        raise RuntimeError(f"evaluated {num_images} images, the dataset has {len(dataset)}")
    logger.info("evaluated %d images in %.1f s (mode %s)", num_images, elapsed, mode)
    if save_pred_dir:
        logger.info("predictions written to %s", save_pred_dir)
    if not has_labels:
        logger.info("the split has no labels: metrics skipped")
        return {"mode": mode, "num_images": num_images}
    class_names = list(getattr(dataset, "class_names", [str(i) for i in range(num_classes)]))
    metrics = compute_metrics(conf, class_names)
    metrics["mode"] = mode
    metrics["num_images"] = num_images
    return metrics
