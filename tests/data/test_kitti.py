import numpy as np

from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES, PALETTE, label_id_to_train_id, train_id_to_label_id
from tests.data.tiny import write_tiny_dataset


def test_cityscapes_label_ids_and_splits(tmp_path):
    cfg = write_tiny_dataset("kitti", tmp_path / "kitti")
    train, val = build_dataset(cfg, "train", train=False), build_dataset(cfg, "val", train=False)
    assert [s.image for s in train.samples] == [s.image for s in val.samples]  # no val split: training/ for both
    assert val.class_names == CLASS_NAMES and val.palette == PALETTE and (val.train_id_to_label_id == train_id_to_label_id()).all()
    official = label_id_to_train_id(255)
    assert (val.value_lut[:34] == official[:34]).all() and (val.value_lut[34:] == -1).all()
    # Stored 0 (unlabeled), 7 road, 8 sidewalk, 26 car, 33 bicycle.
    assert set(np.unique(val[0]["label"].numpy())) <= {255, 0, 1, 13, 18}
    test = build_dataset(cfg, "test", train=False)
    assert not test.has_labels and all("/testing/image_2/" in s.image for s in test.samples)
