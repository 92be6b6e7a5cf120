"""segkit.utils.images: every listed suffix is one OpenCV reads, and every folder reader takes the same list."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.data import folder
from segkit.pretrain import data as cls_data
from segkit.utils.images import IMAGE_EXTENSIONS

# OpenCV writes most formats itself; these it reads but writes only in a narrower form than a small colour image.
_WRITTEN_BY_PIL = {".pgm": "L", ".pbm": "1", ".jp2": "RGB"}


def _write(path: str, ext: str) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = (0, 128, 255)
    if ext in _WRITTEN_BY_PIL:
        Image.fromarray(image).convert(_WRITTEN_BY_PIL[ext]).save(path)
    else:
        assert cv2.imwrite(path, image), f"OpenCV could not write {ext}"


@pytest.mark.parametrize("ext", IMAGE_EXTENSIONS)
def test_every_listed_suffix_is_read_by_cv2_imread(tmp_path, ext):
    path = str(tmp_path / f"image{ext}")
    _write(path, ext)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (64, 64, 3)


def test_suffixes_are_lower_case_and_unique():
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    assert len(set(IMAGE_EXTENSIONS)) == len(IMAGE_EXTENSIONS)


def test_segmentation_folders_and_classification_folders_take_every_suffix(tmp_path):
    names = [f"x{i}{ext.upper() if i % 2 else ext}" for i, ext in enumerate(IMAGE_EXTENSIONS)]  # any case
    for d in ("seg", "cls/a"):
        (tmp_path / d).mkdir(parents=True)
        for name in names + ["notes.txt"]:
            (tmp_path / d / name).write_bytes(b"")  # listing reads names, not contents
    seg = folder.paired_samples(str(tmp_path / "seg"), None)  # the folder dataset's images, paired by suffix
    _, cls = cls_data.scan_image_folder(str(tmp_path / "cls"))
    assert sorted(s.image for s in seg) == sorted(str(tmp_path / "seg" / n) for n in names)
    assert sorted(p for p, _ in cls) == sorted(str(tmp_path / "cls" / "a" / n) for n in names)
