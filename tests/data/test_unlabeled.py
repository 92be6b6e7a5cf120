"""Unlabelled images: weak and strong views of one crop, the sources DATASET.UNLABELED names, the loader."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from segkit.data import build_unlabeled_dataset, build_unlabeled_loader
from segkit.data import unlabeled as unlabeled_module
from segkit.data.unlabeled import strong_photometric, unlabeled_samples

from .test_subset import write_folder_dataset


@pytest.fixture
def cfg(tmp_path):
    c = write_folder_dataset(tmp_path / "data", n_train=6, n_val=2)
    c.DATASET.UNLABELED = "split:val"
    c.INPUT.SCALE_RANGE = [0.5, 0.75]  # crops larger than the rescaled image: padding appears
    return c


def test_weak_and_strong_views_share_the_crop_and_differ_only_in_colour(cfg, monkeypatch):
    ds = build_unlabeled_dataset(cfg)
    assert len(ds) == 2
    np.random.seed(0)
    item = ds[0]
    assert item["image"].shape == item["image_strong"].shape == (3, 16, 16)
    assert item["valid"].dtype == torch.bool and 0 < item["valid"].sum() < 256
    # Padding is the mean colour in the weak view (0 after normalisation).
    assert torch.allclose(item["image"][:, ~item["valid"]], torch.zeros(1), atol=0.02)
    # The strong view is perturbed (each perturbation has its probability; this seed draws some) ...
    assert not torch.equal(item["image"], item["image_strong"])
    # Without the photometric perturbations, the strong view is the weak one exactly.
    monkeypatch.setattr(unlabeled_module, "STRONG_JITTER_PROB", 0.0)
    monkeypatch.setattr(unlabeled_module, "GREY_PROB", 0.0)
    monkeypatch.setattr(unlabeled_module, "BLUR_PROB", 0.0)
    np.random.seed(1)
    plain = ds[1]
    assert torch.equal(plain["image"], plain["image_strong"])


def test_strong_photometric_keeps_the_crop_size_and_sometimes_greys():
    img = np.zeros((20, 20, 3), np.uint8)
    img[:, 10:] = (0, 0, 255)  # red right half
    seen_grey = seen_changed = False
    for seed in range(20):
        np.random.seed(seed)
        out = strong_photometric(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        seen_grey |= bool((out[..., 0] == out[..., 2]).all() and out[:, 15, 2].max() > 0)
        seen_changed |= not np.array_equal(out, img)
    assert seen_grey and seen_changed


def test_unlabeled_sources_and_their_errors(cfg, tmp_path):
    assert [s.label for s in unlabeled_samples(cfg)] == [None, None]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.jpg"), np.full((8, 8, 3), 50 * i, np.uint8))
    (folder / "city").mkdir()
    cv2.imwrite(str(folder / "city" / "g0.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    cfg.DATASET.UNLABELED = str(folder)
    assert [s.name for s in unlabeled_samples(cfg)] == ["f0", "f1", "f2", "g0"]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    cfg.DATASET.UNLABELED = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no images OpenCV can read in .*empty or its sub-folders"):
        unlabeled_samples(cfg)
    cfg.DATASET.UNLABELED = "train_rest"
    with pytest.raises(ValueError, match=r"'train_rest' needs DATASET\.TRAIN_SUBSET"):
        unlabeled_samples(cfg)
    cfg.DATASET.UNLABELED = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="neither 'train_rest', 'split:NAME' nor a folder"):
        unlabeled_samples(cfg)
    cfg.DATASET.UNLABELED, cfg.DATASET.TRAIN_SUBSET = "split:train", 0.5
    with pytest.raises(ValueError, match="use 'train_rest'"):
        unlabeled_samples(cfg)
    # A split inside a joined training split is as much the labelled subset's.
    cfg.DATASET.UNLABELED, cfg.DATASET.TRAIN_SPLIT = "split:val", "train+val"
    with pytest.raises(ValueError, match=r"split val is in DATASET.TRAIN_SPLIT 'train\+val'\); use 'train_rest'"):
        unlabeled_samples(cfg)
    cfg.DATASET.TRAIN_SPLIT = "train"
    cfg.DATASET.UNLABELED = ""
    with pytest.raises(ValueError, match="SEMI.ENABLED needs DATASET.UNLABELED"):
        unlabeled_samples(cfg)


def test_unlabeled_loader_takes_its_own_batch_size_and_resumes_exactly(cfg):
    cfg.SEMI.IMS_PER_BATCH = 4
    ds = build_unlabeled_dataset(cfg)
    stream = build_unlabeled_loader(cfg, ds)
    batches = [next(stream) for _ in range(3)]
    assert batches[0]["image"].shape == (4, 3, 16, 16) and batches[0]["valid"].shape == (4, 16, 16)
    resumed = next(build_unlabeled_loader(cfg, ds, start_iter=2))
    assert torch.equal(resumed["image_strong"], batches[2]["image_strong"])
    cfg.SEMI.IMS_PER_BATCH = 3
    cfg.SOLVER.IMS_PER_BATCH = 2
    assert next(build_unlabeled_loader(cfg, ds))["image"].shape[0] == 3


def test_split_images_of_every_registered_dataset_serve_as_unlabelled(tiny_dataset):
    # The test splits of the tiny datasets have no labels at all; images are all that is read.
    tiny_dataset.DATASET.UNLABELED = "split:test"
    ds = build_unlabeled_dataset(tiny_dataset)
    assert len(ds) == 2
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["valid"].any()
