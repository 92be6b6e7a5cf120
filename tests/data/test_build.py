"""Every dataset registered in DATASETS, through `build_dataset` and the loaders, on its tiny generated set."""
import numpy as np
import pytest
import torch

from segkit.config import get_cfg
from segkit.data import (DATASETS, SegDataset, build_dataset, build_test_loader,
                         build_train_loader, collate, dataset_classes)


def test_registered_datasets_are_seg_datasets():
    assert {"cityscapes", "folder", "camvid"} <= set(DATASETS)
    assert all(issubclass(cls, SegDataset) for cls in DATASETS.values())


@pytest.mark.parametrize("split_key,labelled", [("TRAIN_SPLIT", True), ("VAL_SPLIT", True), ("TEST_SPLIT", None)])
def test_contract_is_declared(tiny_dataset, split_key, labelled):
    # None: either (COCO-Stuff 10k's test split is labelled), as long as the flag says which.
    ds = build_dataset(tiny_dataset, tiny_dataset.DATASET[split_key], train=False)
    assert isinstance(ds, SegDataset) and len(ds) == 2
    assert ds.has_labels is (labelled if labelled is not None else all(s.label for s in ds.samples))
    assert labelled is None or ds.expects_labels is labelled
    assert ds.num_classes == len(ds.class_names) > 0 and all(isinstance(n, str) for n in ds.class_names)
    assert len(ds.palette) == ds.num_classes and all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in ds.palette)
    assert ds.ignore_index == tiny_dataset.DATASET.IGNORE_INDEX
    table = ds.train_id_to_label_id
    assert table is None or (table.dtype == np.uint8 and table.shape == (256,))
    # The classes are declared by the config alone, as the instance has them.
    names, palette = dataset_classes(tiny_dataset)
    assert names == ds.class_names and palette == ds.palette


def test_items_follow_the_contract(tiny_dataset):
    ds = build_dataset(tiny_dataset, "val", train=False)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "label", "name", "path"}
        assert item["image"].dtype == torch.float32 and item["image"].shape[0] == 3
        assert item["label"].dtype == torch.int64 and item["label"].shape == item["image"].shape[1:]
        values = set(item["label"].unique().tolist())
        assert values <= set(range(ds.num_classes)) | {ds.ignore_index} and values - {ds.ignore_index}
        assert item["path"] == ds.samples[i].image and item["name"] == ds.samples[i].name
    unlabelled = build_dataset(tiny_dataset, tiny_dataset.DATASET.TEST_SPLIT, train=False)
    assert unlabelled.has_labels or all((unlabelled[i]["label"] == unlabelled.ignore_index).all() for i in range(len(unlabelled)))


def test_loaders(tiny_dataset):
    it = build_train_loader(tiny_dataset)
    for _ in range(3):  # more batches than one epoch of 2 images: the loader never ends
        batch = next(it)
        assert batch["image"].shape == (2, 3, 16, 16) and batch["label"].shape == (2, 16, 16)
        assert batch["label"].dtype == torch.int64 and len(batch["name"]) == 2
    loader = build_test_loader(tiny_dataset, "val")
    assert len(loader) == 2
    batch = next(iter(loader))
    assert batch["image"].shape[:2] == (1, 3) and batch["label"].shape[-2:] == batch["image"].shape[-2:]


def test_splits_joined_with_plus_are_one_dataset(tiny_dataset):
    d = tiny_dataset.DATASET
    if d.TRAIN_SPLIT == d.VAL_SPLIT:
        pytest.skip("this tiny set trains on its val split")
    if d.NAME == "kitti":  # train and val both read its one labelled folder: joining them is refused
        with pytest.raises(ValueError, match=r"cannot join split 'val' to 'train': 2 of its images are already"):
            build_dataset(tiny_dataset, "train+val", train=False)
        return
    joined = f"{d.TRAIN_SPLIT}+{d.VAL_SPLIT}"
    train, val = (build_dataset(tiny_dataset, s, train=False, check_labels=True) for s in (d.TRAIN_SPLIT, d.VAL_SPLIT))
    both = build_dataset(tiny_dataset, joined, train=False, check_labels=True)
    assert both.samples == train.samples + val.samples and both.split == joined
    assert both.has_labels and both.expects_labels
    assert both.label_histograms == train.label_histograms + val.label_histograms
    assert both.groups == (None if train.groups is None else train.groups + val.groups)
    item = both[len(train)]  # the first val image
    assert item["path"] == val.samples[0].image and torch.equal(item["label"], val[0]["label"])
    # As the training split it trains: train transforms (the tiny sets' 16x16 crop), batches from both splits.
    tiny_dataset.DATASET.TRAIN_SPLIT = joined
    assert build_dataset(tiny_dataset, joined)[len(train)]["image"].shape == (3, 16, 16)
    assert next(build_train_loader(tiny_dataset))["image"].shape == (2, 3, 16, 16)


@pytest.mark.parametrize("split", ["train+", "+val", "train+train", "train++val"])
def test_a_malformed_joined_split_is_named(split):
    with pytest.raises(ValueError, match=r"split '.*': join distinct split names with '\+'"):
        build_dataset(get_cfg(), split, train=False)


def test_collate_keeps_extra_keys():
    items = [{"image": torch.zeros(3, 2, 2), "label": torch.zeros(2, 2), "name": n, "path": "",
              "inst": torch.ones(2, 2)} for n in "ab"]
    batch = collate(items)
    assert batch["inst"].shape == (2, 2, 2) and batch["name"] == ["a", "b"]


def test_unknown_dataset_name():
    cfg = get_cfg()
    cfg.DATASET.NAME = "nope"
    with pytest.raises(KeyError, match="nope"):
        build_dataset(cfg, "train")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_list_file_is_refused_where_the_dataset_would_ignore_it(name):
    cfg = get_cfg()
    cfg.DATASET.NAME, cfg.DATASET.LIST_FILE, cfg.DATASET.ROOT = name, "/lists/val.txt", "/no/such/root"
    if name in ("folder", "camvid"):  # these read it: the next fault is the missing root
        with pytest.raises(FileNotFoundError, match="DATASET.ROOT"):
            build_dataset(cfg, "val")
    else:
        with pytest.raises(ValueError, match=f"DATASET.LIST_FILE .*/lists/val.txt.*'{name}'"):
            build_dataset(cfg, "val")


def test_more_workers_than_cpus_are_capped_with_one_line(monkeypatch, segkit_log):
    from segkit.data import build as build_module

    monkeypatch.setattr(build_module, "_capped", set())
    monkeypatch.setattr(build_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert build_module.usable_workers(8) == 2
    assert build_module.usable_workers(8) == 2  # said once
    assert build_module.usable_workers(2) == 2 and build_module.usable_workers(0) == 0
    assert segkit_log.messages == ["DATALOADER.NUM_WORKERS 8 capped at 2: this process may use 2 CPUs"]
    with pytest.raises(ValueError, match="DATALOADER.NUM_WORKERS must be >= 0, got -1"):
        build_module.usable_workers(-1)
