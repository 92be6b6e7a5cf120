import numpy as np

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.data.camvid import CAMVID_CLASSES, CAMVID_PALETTE, CamVidDataset
from tests.data.test_folder import write_pair


def test_camvid_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    lab = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_pair(tmp_path, "train", "0001TP_006690", lab)
    cfg = get_cfg()
    cfg.DATASET.NAME = "camvid"
    cfg.DATASET.ROOT = str(tmp_path)
    ds = build_dataset(cfg, "train", train=False)
    assert ds.class_names == list(CAMVID_CLASSES) and ds.num_classes == 11
    assert ds.palette[0] == (128, 128, 128) and len(ds.palette) == 11
    assert ds.train_id_to_label_id is None  # labels are stored as train ids
    expected = lab.astype(np.int64)
    expected[expected == 11] = 255  # void
    np.testing.assert_array_equal(ds[0]["label"].numpy(), expected)


def test_config_keys_override_the_preset():
    cfg = get_cfg()
    assert CamVidDataset.declared_classes(cfg) == (list(CAMVID_CLASSES), [list(c) for c in CAMVID_PALETTE])
    cfg.DATASET.CLASS_NAMES = ["a", "b"]
    cfg.DATASET.PALETTE = [[1, 2, 3], [4, 5, 6]]
    assert CamVidDataset.declared_classes(cfg) == (["a", "b"], [[1, 2, 3], [4, 5, 6]])
