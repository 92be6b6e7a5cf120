import numpy as np

from segkit.data import build_dataset
from segkit.data.ade20k import CLASS_NAMES, PALETTE, ade_table
from tests.data.tiny import write_tiny_dataset


def test_table_over_every_official_value():
    table = ade_table(ignore_index=255)
    assert table[0] == 255  # "other objects"
    assert (table[1:151] == np.arange(150)).all()
    assert (table[151:] == -1).all()


def test_classes_and_palette():
    assert len(CLASS_NAMES) == 150 and CLASS_NAMES[:3] == ["wall", "building", "sky"] and CLASS_NAMES[-1] == "flag"
    assert len(set(CLASS_NAMES)) == 150 and len(set(PALETTE)) == 150


def test_discovery_and_ignore(tmp_path):
    cfg = write_tiny_dataset("ade20k", tmp_path / "ADEChallengeData2016")
    val = build_dataset(cfg, "val", train=False)
    assert [s.name for s in val.samples] == ["ADE_val_00000000", "ADE_val_00000001"]
    assert all("/annotations/validation/" in s.label for s in val.samples)
    label = val[0]["label"].numpy()
    assert set(np.unique(label)) <= {255, 0, 1, 74, 149} and (label == 255).any()
    assert not build_dataset(cfg, "test", train=False).has_labels
