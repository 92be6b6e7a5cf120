import numpy as np
import pytest

from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES, PALETTE, train_id_to_label_id
from segkit.evaluation import evaluate_dataset, format_metrics_table
from tests.data.test_official import ConstantNet
from tests.data.tiny import write_anon, write_tiny_dataset


def test_conditions_and_groups(tmp_path):
    cfg = write_tiny_dataset("acdc", tmp_path / "acdc")
    val = build_dataset(cfg, "val", train=False)
    assert val.palette == PALETTE and (val.train_id_to_label_id == train_id_to_label_id()).all()
    # Stored Cityscapes ids 0 (unlabeled, ignored), 7 road, 11 building, 26 car.
    assert set(np.unique(val[0]["label"].numpy())) <= {255, 0, 2, 13} and (val[0]["label"] == 255).any()
    assert val.class_names == CLASS_NAMES and val.group_key == "condition" and val.groups == ["fog", "night"]
    assert [s.name for s in val.samples] == ["GOPR0475_frame_val_fog", "GOPR0475_frame_val_night"]
    assert all("/gt/" in s.label and s.label.endswith("_gt_labelIds.png") for s in val.samples)
    assert not build_dataset(cfg, "test", train=False).has_labels
    cfg.DATASET.CONDITIONS = ["night"]
    assert build_dataset(cfg, "val", train=False).groups == ["night"]
    cfg.DATASET.CONDITIONS = ["dusk"]
    with pytest.raises(ValueError, match=r"DATASET.CONDITIONS \['dusk'\] are not ACDC conditions"):
        build_dataset(cfg, "val", train=False)
    cfg.DATASET.CONDITIONS = ["snow"]
    with pytest.raises(FileNotFoundError, match="rgb_anon/snow/val"):
        build_dataset(cfg, "val", train=False)


def test_report_per_condition_and_overall(tmp_path):
    root = tmp_path / "acdc"
    rng = np.random.default_rng(0)
    # fog: all road (id 7); night: half road, half sky (id 23); rain: all sky. The model says road everywhere.
    half = np.full((4, 6), 7)
    half[:, 3:] = 23
    for condition, labels in (("fog", np.full((4, 6), 7)), ("night", half), ("rain", np.full((4, 6), 23))):
        write_anon(root, (condition, "val", "GOPR0001"), f"GOPR0001_frame_{condition}", (4, 6), labels, rng)
    cfg = write_tiny_dataset("acdc", tmp_path / "unused")
    cfg.DATASET.ROOT = str(root)
    val = build_dataset(cfg, "val", train=False)
    result = evaluate_dataset(ConstantNet(19, 0), val, cfg, "cpu")
    groups = result["per_group"]
    assert result["group_key"] == "condition" and list(groups) == ["fog", "night", "rain"]
    assert groups["fog"]["mIoU"] == 100.0 and groups["fog"]["num_images"] == 1
    assert groups["night"]["per_class"]["road"]["IoU"] == 50.0 and groups["night"]["per_class"]["sky"]["IoU"] == 0.0
    assert groups["rain"]["aAcc"] == 0.0
    # Overall: 36 road pixels right of 72; road IoU 36/72, sky IoU 0.
    assert result["per_class"]["road"]["IoU"] == 50.0 and result["aAcc"] == 50.0 and result["num_images"] == 3
    table = format_metrics_table(result)
    assert "| condition" in table and "| night" in table and "| all" in table
