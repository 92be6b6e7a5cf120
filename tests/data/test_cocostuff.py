import numpy as np
import pytest

from segkit.data import build_dataset
from segkit.data.cocostuff import CLASS_NAMES, COCO_STUFF_LABELS, PALETTE, table_10k, table_164k
from tests.data.tiny import write_tiny_dataset

# The eleven COCO thing ids (stored as id - 1) that COCO-Stuff never annotates (CoinCheung/BiSeNet lib/data/coco.py).
UNANNOTATED = [11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90]


def test_164k_table_over_every_official_id():
    table = table_164k(ignore_index=255)
    for value in range(182):
        expected = -1 if value in UNANNOTATED else value - sum(u < value for u in UNANNOTATED)
        assert table[value] == expected, value
    assert table[255] == 255 and (table[182:255] == -1).all() and (table[256:] == -1).all()
    # Two fixed points of the published table (mmsegmentation's clsID_to_trID): 12 -> 11 and 181 -> 170.
    assert table[12] == 11 and table[181] == 170 and table[0] == 0


def test_10k_table_is_the_164k_table_shifted_by_one():
    t10, t164 = table_10k(ignore_index=200), table_164k(ignore_index=200)
    assert t10[0] == 200 and (t10[1:183] == t164[:182]).all() and (t10[183:] == -1).all()


def test_classes_and_palette():
    assert len(COCO_STUFF_LABELS) == 182 and len(CLASS_NAMES) == 171
    assert [i for i, n in enumerate(COCO_STUFF_LABELS) if n is None] == UNANNOTATED
    assert CLASS_NAMES[:3] == ["person", "bicycle", "car"] and CLASS_NAMES[80] == "banner" and CLASS_NAMES[-1] == "wood"
    assert len(set(PALETTE)) == 171 and (0, 0, 0) not in PALETTE


def test_164k_discovery(tmp_path):
    cfg = write_tiny_dataset("cocostuff164k", tmp_path / "coco")
    train = build_dataset(cfg, "train", train=False)
    assert all("/images/train2017/" in s.image and "/annotations/train2017/" in s.label for s in train.samples)
    assert not build_dataset(cfg, "test", train=False).has_labels  # test2017: images only
    assert len(build_dataset(cfg, "val2017", train=False)) == 2  # the official folder name works too
    label = train[0]["label"].numpy()
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4, 170, 255} and (label == 255).any()
    (tmp_path / "coco" / "annotations" / "val2017" / "0000000va1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"label of .*0000000va1.jpg not found"):
        build_dataset(cfg, "val", train=False)


def test_10k_discovery_and_mat_labels(tmp_path):
    cfg = write_tiny_dataset("cocostuff10k", tmp_path / "coco10k")
    val = build_dataset(cfg, "val", train=False)  # 'val' names the official test list
    assert [s.name for s in val.samples] == ["COCO_test2014_000000000", "COCO_test2014_000000001"]
    assert val.has_labels and val.samples[0].label.endswith(".mat")
    label = val[0]["label"].numpy()
    # Stored 0, 1, 2, 13, 182 -> ignore, person 0, bicycle 1, stop sign 11, wood 170.
    assert set(np.unique(label)) <= {255, 0, 1, 11, 170} and {0, 170, 255} <= set(np.unique(label))
    with pytest.raises(FileNotFoundError, match="imageLists/nope.txt"):
        build_dataset(cfg, "nope", train=False)


def test_reindexing_reads_no_file_until_one_changes(tmp_path, monkeypatch):
    # 118k COCO labels: the headers and value histograms of an index are cached per file (mtime, size).
    import os
    import time

    from segkit.data import labels
    from segkit.data.labels import LabelReader
    from tests.data.tiny import write_label

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    cfg = write_tiny_dataset("cocostuff164k", tmp_path / "coco")
    build_dataset(cfg, "train", train=False)
    read, headers = [], []
    call, header = LabelReader.__call__, labels.read_header
    monkeypatch.setattr(LabelReader, "__call__", lambda self, p: read.append(p) or call(self, p))
    monkeypatch.setattr(labels, "read_header", lambda p: headers.append(p) or header(p))
    ds = build_dataset(cfg, "train", train=False)
    assert read == [] and headers == []
    changed = ds.samples[1].label
    time.sleep(0.01)
    write_label(tmp_path / changed, np.full((20, 36), 255))
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    build_dataset(cfg, "train", train=False)
    assert read == [changed] and headers == [changed]
