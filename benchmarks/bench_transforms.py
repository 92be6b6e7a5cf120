#!/usr/bin/env python
"""Cost of the full train transform against decoding the PNG it comes from (target: <= 30%).

    python benchmarks/bench_transforms.py [--repeats 30] [--threads 1] [--config-file C] [KEY VALUE ...]

A 2048x1024 demo street scene is written as a PNG; then, median of the repeats, (a) cv2.imread of it and
(b) the dataset's train path after decoding: label table lookup, SegTrainTransform (scale, crop, flip,
jitter, normalisation) with the config's INPUT values, and the tensor conversion of image and label.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from segkit.config.loader import load_cfg  # noqa: E402
from segkit.data.cityscapes import label_id_to_train_id  # noqa: E402
from segkit.data.demo import render_scene  # noqa: E402
from segkit.data.seg_transforms import SegTrainTransform  # noqa: E402


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (a loader worker uses 1)")
    parser.add_argument("--config-file", default=None,
                        help="a segmentation config whose INPUT values are timed (default: the defaults)")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides (INPUT.*)")
    args = parser.parse_intermixed_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(1)  # as in a DataLoader worker
    cfg = load_cfg(args.config_file, args.opts)
    image, label_ids = render_scene(np.random.default_rng(0), 1024, 2048)
    lut = label_id_to_train_id(cfg.DATASET.IGNORE_INDEX).astype(np.uint8)
    transform = SegTrainTransform.from_config(cfg)
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "scene_leftImg8bit.png")
        cv2.imwrite(path, image)  # default PNG settings, like the Cityscapes files
        size_mb = os.path.getsize(path) / 2**20

        def train_path():
            img, lab = transform(image, cv2.LUT(label_ids, lut))
            return torch.from_numpy(img), torch.from_numpy(lab.astype(np.int64))

        train_path()  # warm-up: first-call allocations
        # Alternate the two so that load from other processes hits both alike.
        pairs = [(timed_ms(lambda: cv2.imread(path, cv2.IMREAD_COLOR)), timed_ms(train_path))
                 for _ in range(args.repeats)]
    decode, cost = (float(np.median(x)) for x in zip(*pairs))
    i = cfg.INPUT
    print(f"image 2048x1024 PNG ({size_mb:.1f} MiB), crop {i.CROP_SIZE}, scale {i.SCALE_RANGE}, jitter "
          f"{i.BRIGHTNESS}/{i.CONTRAST}/{i.SATURATION} ({i.JITTER}), OpenCV threads {args.threads}, median of {args.repeats}")
    print(f"cv2.imread decode:     {decode:7.2f} ms")
    print(f"train transform:       {cost:7.2f} ms")
    print(f"ratio transform/decode: {cost / decode:.1%} (target <= 30%)")


if __name__ == "__main__":
    main()
