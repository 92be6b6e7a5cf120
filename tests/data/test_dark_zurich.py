import numpy as np

from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES
from tests.data.tiny import write_tiny_dataset


def test_only_val_is_labelled(tmp_path):
    cfg = write_tiny_dataset("dark_zurich", tmp_path / "dz")
    val = build_dataset(cfg, "val", train=False)
    assert val.has_labels and val.class_names == CLASS_NAMES
    assert [s.name for s in val.samples] == ["GOPR0356_frame_val0", "GOPR0356_frame_val1"]
    assert all(s.label.endswith("_gt_labelIds.png") and "/gt/val/night/GOPR0356/" in s.label for s in val.samples)
    assert set(np.unique(val[0]["label"].numpy())) <= {255, 0, 8, 10}  # 0 -> ignore, 7 road, 21 vegetation, 23 sky
    for split in ("train", "test"):  # released without labels: not an inconsistency to report
        unlabelled = build_dataset(cfg, split, train=False, strict=False)
        assert not unlabelled.has_labels and not unlabelled.expects_labels
