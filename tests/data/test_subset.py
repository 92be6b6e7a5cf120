"""DATASET.TRAIN_SUBSET: a seeded, reproducible share of the training labels; the rest as unlabelled images."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from segkit.config import get_cfg
from segkit.data import build_dataset, split_samples, write_subset_lists
from segkit.data.base import Sample
from segkit.data.folder import list_file_samples
from segkit.data.unlabeled import unlabeled_samples


def write_folder_dataset(root, n_train: int = 12, n_val: int = 3):
    """A 'folder' dataset of 3 classes: n_train / n_val labelled 24x32 images, and a config reading it."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        os.makedirs(root / split)
        os.makedirs(root / f"{split}annot")
        for i in range(n):
            assert cv2.imwrite(str(root / split / f"{split}_{i:03d}.png"), rng.integers(0, 256, (24, 32, 3), np.uint8))
            assert cv2.imwrite(str(root / f"{split}annot" / f"{split}_{i:03d}.png"),
                               rng.integers(0, 3, (24, 32), np.uint8))
    cfg = get_cfg()
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.CLASS_NAMES = "folder", str(root), ["a", "b", "c"]
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.CROP_SIZE = [16, 16]
    cfg.SOLVER.IMS_PER_BATCH = 2
    return cfg


def _samples(n):
    return [Sample(f"img{i}.png", f"lab{i}.png", f"img{i}") for i in range(n)]


def test_split_is_reproducible_disjoint_complete_and_keeps_the_split_order():
    samples = _samples(367)  # CamVid's train split
    labelled, rest = split_samples(samples, 0.25, seed=0)
    again, _ = split_samples(samples, 0.25, seed=0)
    assert labelled == again
    assert len(labelled) == 92 and len(rest) == 275
    assert not {s.name for s in labelled} & {s.name for s in rest}
    assert sorted(labelled + rest, key=lambda s: int(s.name[3:])) == samples
    assert labelled == sorted(labelled, key=lambda s: int(s.name[3:]))
    assert split_samples(samples, 0.25, seed=1)[0] != labelled
    assert len(split_samples(_samples(3), 0.01, 0)[0]) == 1  # never empty


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_a_fraction_outside_the_open_interval_is_named(fraction):
    with pytest.raises(ValueError, match=r"DATASET\.TRAIN_SUBSET must be in \(0, 1\)"):
        split_samples(_samples(4), fraction, 0)


def test_build_dataset_trains_on_the_subset_only_and_train_rest_is_the_complement(tmp_path):
    cfg = write_folder_dataset(tmp_path / "data")
    cfg.DATASET.TRAIN_SUBSET, cfg.DATASET.UNLABELED = 0.25, "train_rest"
    train = build_dataset(cfg, "train")
    assert len(train) == 3 and len(train.label_histograms) == 3 and len(train.subset_rest) == 9
    whole = build_dataset(cfg, "train", train=False)
    index = {s.image: i for i, s in enumerate(whole.samples)}
    assert train.label_histograms == [whole.label_histograms[index[s.image]] for s in train.samples]
    cfg.SEED = 123  # the split does not follow the training seed
    rest = unlabeled_samples(cfg)
    assert len(rest) == 9 and all(s.label is None for s in rest)
    assert {s.image for s in rest} | {s.image for s in train.samples} == {s.image for s in whole.samples}
    assert not {s.image for s in rest} & {s.image for s in build_dataset(cfg, "train").samples}
    assert len(build_dataset(cfg, "val")) == 3  # other splits are untouched


def test_subset_lists_are_written_and_read_back_as_list_files(tmp_path):
    cfg = write_folder_dataset(tmp_path / "data")
    labelled, rest = split_samples(build_dataset(cfg, "train", train=False).samples, 0.25, 0)
    a, b = write_subset_lists(str(tmp_path), labelled, rest)
    back = list_file_samples(a, str(tmp_path))
    assert [(s.image, s.label) for s in back] == [(os.path.abspath(s.image), os.path.abspath(s.label)) for s in labelled]
    # The unlabelled list keeps the held-back labels (to score a teacher on those images) ...
    assert [(s.image, s.label) for s in list_file_samples(b, str(tmp_path))] == \
        [(os.path.abspath(s.image), os.path.abspath(s.label)) for s in rest]
    cfg.DATASET.LIST_FILE = os.path.abspath(b)  # as tools/evaluate.py reads it to score a teacher on those images
    scored = build_dataset(cfg, "val", train=False)
    assert [s.image for s in scored.samples] == [os.path.abspath(s.image) for s in rest] and scored.expects_labels
    # ... and images without labels are written as image lines.
    (tmp_path / "bare").mkdir()
    _, c = write_subset_lists(str(tmp_path / "bare"), labelled, [Sample(s.image, None, s.name) for s in rest])
    bare = list_file_samples(c, str(tmp_path))
    assert [(s.image, s.label) for s in bare] == [(os.path.abspath(s.image), None) for s in rest]
