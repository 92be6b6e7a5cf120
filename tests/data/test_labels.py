import os
import sys

import cv2
import numpy as np
import pytest

from segkit.data.base import Sample
from segkit.data.base import check_label_values
from segkit.data.labels import LabelReader, label_histograms, read_mat_label
from segkit.data.folder import FolderDataset
from tests.data.test_folder import folder_cfg, write_pair


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))


def test_colour_labels_decode_to_palette_indices(tmp_path):
    palette = [[10, 20, 30], [200, 0, 0]]
    rgb = np.array(palette, np.uint8)[np.array([[0, 1], [1, 1]])]
    path = str(tmp_path / "c.png")
    cv2.imwrite(path, rgb[..., ::-1])
    np.testing.assert_array_equal(LabelReader(palette)(path), [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="DATASET.PALETTE is empty"):
        LabelReader()(path)
    with pytest.raises(OSError, match="missing.png"):
        LabelReader()(str(tmp_path / "missing.png"))


def test_histograms_cached_atomically_and_errors_collected(tmp_path):
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    cv2.imwrite(a, np.array([[0, 0, 3]], np.uint8))
    (tmp_path / "b.png").write_bytes(b"no png")
    errors: list[str] = []
    assert label_histograms([a, b], LabelReader(), errors=errors) == [{0: 2, 3: 1}, None]
    assert len(errors) == 1 and "b.png" in errors[0]
    assert [f for f in os.listdir(tmp_path / "cache") if f.startswith("labels-")]
    assert not [f for f in os.listdir(tmp_path / "cache") if ".tmp" in f]  # written through utils.io
    reads = []

    def reader(path):
        reads.append(path)
        return LabelReader()(path)

    # Only the file that could not be read is read again; the other comes from the cache.
    assert label_histograms([a, b], reader, errors=[]) == [{0: 2, 3: 1}, None]
    assert reads == [b]


def test_check_sees_a_changed_label_despite_the_cache(tmp_path):
    write_pair(tmp_path, "train", "x", np.zeros((4, 4), np.uint8))
    FolderDataset(folder_cfg(tmp_path), "train")
    assert os.listdir(tmp_path / "cache")
    write_pair(tmp_path, "train", "x", np.full((5, 4), 6, np.uint8))
    with pytest.raises(ValueError, match=r"x\.png: \[6\]"):
        FolderDataset(folder_cfg(tmp_path), "train")


def test_check_label_values_names_files_and_values(tmp_path):
    write_pair(tmp_path, "train", "x", np.zeros((2, 2), np.uint8))
    ds = FolderDataset(folder_cfg(tmp_path, CHECK_LABELS=False), "train")
    ds.samples = [Sample("i", f"l{i}.png", str(i)) for i in range(12)]
    with pytest.raises(ValueError, match=r"(?s)12 label file\(s\).*l0\.png: \[7\].*and 2 more files"):
        check_label_values(ds, [{0: 1, 7: 2}] * 12)
    check_label_values(ds, [{0: 1, 255: 3}] * 12)


HINT = 'pip install -e ".[data]"'


@pytest.fixture
def no_scipy(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    for name in ("scipy", "scipy.io"):
        monkeypatch.setitem(sys.modules, name, None)


def test_reading_a_mat_label_names_scipy_and_the_extra(tmp_path, no_scipy):
    path = tmp_path / "a.mat"
    path.write_bytes(b"")
    with pytest.raises(ValueError) as err:
        read_mat_label(str(path))
    message = str(err.value)
    assert "needs scipy" in message and message.endswith(HINT) and "\n" not in message


def test_a_scan_with_an_error_list_raises_it_once(tmp_path, no_scipy):
    paths = []
    for i in range(3):
        (tmp_path / f"{i}.mat").write_bytes(b"")
        paths.append(str(tmp_path / f"{i}.mat"))
    errors: list[str] = []
    with pytest.raises(ValueError, match="needs scipy"):
        label_histograms(paths, LabelReader(), use_cache=False, workers=1, errors=errors)
    assert errors == []  # not recorded as three unreadable files
