#!/usr/bin/env python
"""Images/s per data-loading worker of the classification train pipeline on generated 500x375 JPEGs.

    python benchmarks/bench_cls_loader.py [--config-file configs/imagenet/resnet50d.yaml] [--images 200] [--workers 2]
    python benchmarks/bench_cls_loader.py --images 0 --train-model resnet50 --train-size 224 --batch 32

Prints: decode-only rates (PIL vs torchvision.io.decode_jpeg, which segkit uses), then the full train
pipeline (decode + RandomResizedCrop + flip + the config's RandAugment/jitter/lighting/erasing + normalise)
in one process, i.e. per worker, with each decoder; with --workers N also a DataLoader with N workers.
A loader keeps up when workers x images/s per worker exceeds the training images/s, which
--train-model measures: forward + backward + SGD step of a zoo classifier on random batches (CUDA with
channels_last and bf16 autocast when a GPU is present, else CPU float32 with torch's default threads).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from segkit.config import get_cls_cfg, load_cfg  # noqa: E402
from segkit.pretrain.data import ImageFolder, _decode_pil, read_image_rgb  # noqa: E402
from segkit.pretrain.transforms import build_cls_transforms  # noqa: E402
from segkit.models.classifier import create_classifier  # noqa: E402


def make_jpegs(root: str, count: int, seed: int = 0) -> None:
    """Photo-like 500x375 JPEGs (smooth gradients + texture + noise, quality 90), two classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(count):
        folder = os.path.join(root, "train", f"class{i % 2}")
        os.makedirs(folder, exist_ok=True)
        f = rng.uniform(0.01, 0.05, 3)
        img = np.stack([127 + 100 * np.sin(f[c] * xx + f[(c + 1) % 3] * yy + rng.uniform(0, 6)) for c in range(3)], -1)
        img += rng.normal(0, 20, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def rate(fn, n: int) -> float:
    fn(0)  # warm up
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def train_rate(name: str, size: int, batch: int, iters: int) -> tuple[float, str]:
    """Training images/s of classifier `name` (after one warm-up step)."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = create_classifier(name, num_classes=1000).to(device)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if cuda:
        torch.cuda.synchronize()
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    return batch * iters / (time.perf_counter() - t0), where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", help="classification config whose train transforms to time")
    parser.add_argument("--images", type=int, default=200, help="generated JPEGs (each pass reads all)")
    parser.add_argument("--workers", type=int, default=0, help="also time a DataLoader with this many workers")
    parser.add_argument("--train-model", default="", help="also time training steps of this zoo classifier")
    parser.add_argument("--train-size", type=int, default=224, help="input side for --train-model")
    parser.add_argument("--batch", type=int, default=32, help="batch for --train-model")
    parser.add_argument("--iters", type=int, default=3, help="timed steps for --train-model")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides")
    args = parser.parse_args()
    if args.train_model:
        ips, where = train_rate(args.train_model, args.train_size, args.batch, args.iters)
        print(f"training {args.train_model} at {args.train_size} px, batch {args.batch} ({where}): {ips:.1f} images/s")
    if args.images <= 0:
        return
    torch.set_num_threads(1)  # a worker is one process on one core
    cfg = load_cfg(args.config_file or None, args.opts, defaults=get_cls_cfg)
    tf = build_cls_transforms(cfg, train=True)
    print(f"config: {args.config_file or 'defaults'}  train size {cfg.INPUT.TRAIN_SIZE}  "
          f"RandAugment N={cfg.INPUT.RAND_AUGMENT_N} M={cfg.INPUT.RAND_AUGMENT_M} p={cfg.INPUT.RAND_AUGMENT_PROB}  "
          f"jitter {cfg.INPUT.COLOR_JITTER}  lighting {cfg.INPUT.PCA_LIGHTING}  erase {cfg.INPUT.RANDOM_ERASE_PROB}")
    with tempfile.TemporaryDirectory() as tmp:
        make_jpegs(tmp, args.images)
        ds = ImageFolder(os.path.join(tmp, "train"), tf)
        paths = [p for p, _ in ds.samples]
        blobs = [open(p, "rb").read() for p in paths]
        n = len(paths)
        print(f"{n} JPEGs 500x375, mean {sum(map(len, blobs)) / n / 1024:.0f} KiB")
        print(f"decode only   PIL            {rate(lambda i: _decode_pil(blobs[i % n]), n):7.1f} images/s")
        print(f"decode only   torchvision    {rate(lambda i: read_image_rgb(paths[i % n]), n):7.1f} images/s  (file read included)")
        pil_pipe = rate(lambda i: tf(_decode_pil(open(paths[i % n], "rb").read())), n)
        tv_pipe = rate(lambda i: ds[i % n], n)
        print(f"train pipeline PIL decode    {pil_pipe:7.1f} images/s per worker")
        print(f"train pipeline segkit (tv)   {tv_pipe:7.1f} images/s per worker")
        if args.workers > 0:
            loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=args.workers)
            next(iter(loader))
            t0, seen = time.perf_counter(), 0
            for images, _ in loader:
                seen += images.shape[0]
            print(f"DataLoader {args.workers} workers          {seen / (time.perf_counter() - t0):7.1f} images/s")


if __name__ == "__main__":
    main()
