"""The one inference loop over a dataset: this rank's images through `inference`, each result to consumers.

Consumers do the work per image (metrics, prediction files, ...) and summarise at the end; the loop only
runs the model, so evaluation, prediction export and any later consumer share one pass over the data.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from ..data import SegDataset, build_test_loader
from ..utils.comm import stopped_on_any
from ..utils.progress import progress
from .inference import InferenceMode, Model, inference

logger = logging.getLogger("segkit")


@dataclass(frozen=True)
class SampleInfo:
    """One image besides its prediction and label: `name` and `path` as the dataset yields them, and in
    `extras` every further key of the dataset's item (e.g. instance maps), batch dimension removed."""

    name: str
    path: str
    extras: Mapping[str, Any] = field(default_factory=dict)


class Consumer(Protocol):
    """What the loop feeds. `process` sees every image of this rank; `finish` runs on every rank after the
    last one (so it may all-reduce) and returns the entries it adds to the loop's result."""

    def process(self, pred: torch.Tensor, label: torch.Tensor, info: SampleInfo) -> None:
        """`pred`: [H,W] int64 train ids on the evaluation device; `label`: [H,W] int64 on the CPU."""

    def finish(self) -> dict[str, Any]:
        """Summaries over all ranks, e.g. {"mIoU": ...}; {} when there is nothing to report."""


@contextlib.contextmanager
def _eval_mode(model: Model) -> Iterator[Model]:
    """The model in eval mode for the loop, its mode restored after (a callable is used as it is)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        # Ranks see different numbers of images: no collective may hide inside the forward pass.
        model = model.module
    if not isinstance(model, nn.Module):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _unbatch(item: dict) -> tuple[torch.Tensor, torch.Tensor, SampleInfo]:
    extras = {k: v[0] for k, v in item.items() if k not in ("image", "label", "name", "path")}
    return item["image"], item["label"][0], SampleInfo(item["name"][0], item["path"][0], extras)


def inference_on_dataset(
    model: Model,
    dataset: SegDataset,
    cfg: CfgNode,
    device: torch.device | str,
    consumers: Sequence[Consumer],
    mode: InferenceMode | None = None,
    desc: str = "inference",
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run `model` over this rank's shard of `dataset` and feed every prediction to `consumers`.

    `should_stop`, asked before each image (a trainer's "was a stop signal received?"), ends the loop early;
    then every process raises segkit.utils.comm.StoppedEarly and no consumer finishes.

    `mode`: how each image is predicted (default: the config's TEST settings on `device`). Each image is predicted at its label's size
    and handed on at once, so memory does not grow with the dataset. Returns the consumers' entries plus
    "mode" and "num_images" (over all ranks, checked against the dataset's length).
    """
    device = torch.device(device)
    mode = mode or InferenceMode.from_config(cfg, device=device)
    # Batch 1 over this rank's shard (indices rank::world, no padding: each image counted once).
    loader = build_test_loader(cfg, dataset=dataset)
    count, stopped = 0, False
    start = time.perf_counter()
    with _eval_mode(model) as net:
        for item in progress(loader, f"{desc} {getattr(dataset, 'split', '')}".strip(), total=len(loader), unit="img"):
            if should_stop is not None and should_stop():
                stopped = True
                break
            image, label, info = _unbatch(item)
            pred = inference(net, image.to(device, non_blocking=True), mode, num_classes=dataset.num_classes,
                             out_size=tuple(label.shape[-2:]), return_probs=False)
            for consumer in consumers:
                consumer.process(pred, label, info)
            count += 1
    totals = torch.tensor([float(count)], dtype=torch.float64, device=device)
    stopped_on_any(stopped, totals)
    num_images = int(totals.item())
    if num_images != len(dataset):
        raise RuntimeError(f"evaluated {num_images} images, the dataset has {len(dataset)}")
    logger.info("ran inference on %d images in %.1f s (mode %s)", num_images, time.perf_counter() - start,
                mode.describe())
    result: dict[str, Any] = {}
    for consumer in consumers:
        result.update(consumer.finish())
    result.update(mode=mode.describe(), num_images=num_images)
    return result
