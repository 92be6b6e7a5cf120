import numpy as np

from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES, PALETTE
from tests.data.tiny import write_tiny_dataset


def test_layout_and_train_ids(tmp_path):
    cfg = write_tiny_dataset("bdd100k", tmp_path / "bdd100k")
    val = build_dataset(cfg, "val", train=False)
    assert val.class_names == CLASS_NAMES and val.palette == PALETTE and val.train_id_to_label_id is None
    assert all("/labels/sem_seg/masks/val/" in s.label and "/images/10k/val/" in s.image for s in val.samples)
    table = val.value_lut
    assert (table[:19] == np.arange(19)).all() and table[255] == 255 and (table[19:255] == -1).all()
    assert set(np.unique(val[0]["label"].numpy())) <= {0, 1, 13, 18, 255}
    assert not build_dataset(cfg, "test", train=False).has_labels
