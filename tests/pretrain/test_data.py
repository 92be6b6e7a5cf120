import os

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.pretrain.data import ImageFolder, UnreadableImageError, read_image_rgb, scan_image_folder
from segkit.pretrain.demo import DEMO_CLASSES, make_demo_cls_dataset


def _save(path, arr, mode=None, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(path, **kw)
    return str(path)


def test_grayscale_becomes_rgb(tmp_path):
    gray = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (8, 1))
    for name in ("g.png", "g.jpg"):
        img = read_image_rgb(_save(tmp_path / name, gray))
        assert img.dtype == torch.uint8 and img.shape == (3, 8, 16)
        assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    png = read_image_rgb(str(tmp_path / "g.png"))
    assert torch.equal(png[0], torch.from_numpy(gray))  # lossless: exact values


def test_cmyk_rgba_palette_and_16bit_become_rgb(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = 200, 50
    cmyk = read_image_rgb(_save(tmp_path / "c.jpg", rgb, mode="CMYK", quality=98))
    assert cmyk.shape == (3, 8, 8)
    assert abs(int(cmyk[0, 4, 4]) - 200) <= 6 and abs(int(cmyk[1, 4, 4]) - 50) <= 6 and int(cmyk[2, 4, 4]) <= 6
    rgba = read_image_rgb(_save(tmp_path / "a.png", np.dstack([rgb, np.full((8, 8), 255, np.uint8)])))
    assert torch.equal(rgba, torch.from_numpy(rgb).permute(2, 0, 1))
    pal = read_image_rgb(_save(tmp_path / "p.gif", rgb, mode="P"))
    assert pal.shape == (3, 8, 8) and abs(int(pal[0, 0, 0]) - 200) <= 8  # palette quantisation
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    img16 = read_image_rgb(_save(tmp_path / "d.png", deep))
    assert img16.shape == (3, 8, 8) and int(img16[0, 7, 7]) == 255 and int(img16[0, 0, 0]) == 0


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("b_dog", "a_cat"):
        for i in range(3):
            _save(tmp_path / "train" / cls / f"{i}.jpg", rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    (tmp_path / "train" / "a_cat" / "notes.txt").write_text("not an image")
    return tmp_path / "train"


def test_scan_sorts_classes_and_ignores_non_images(tmp_path):
    classes, samples = scan_image_folder(str(_folder(tmp_path)))
    assert classes == ["a_cat", "b_dog"]
    assert len(samples) == 6 and [t for _, t in samples] == [0, 0, 0, 1, 1, 1]
    ds = ImageFolder(str(tmp_path / "train"))
    img, target = ds[4]
    assert img.shape == (3, 12, 10) and target == 1 and ds.num_classes == 2
    with pytest.raises(FileNotFoundError, match="no class folders"):
        scan_image_folder(str(tmp_path / "train" / "a_cat"))


def test_val_classes_must_match_train(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ValueError, match="class folders differ"):
        ImageFolder(str(root), classes=["a_cat", "b_dog", "c_cow"])


def _jpeg_cut_short(path):
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a copy that stopped early: no end-of-image marker


def test_every_unreadable_file_is_named_at_indexing(tmp_path):
    root = _folder(tmp_path)
    (root / "a_cat" / "1.jpg").write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    _jpeg_cut_short(root / "b_dog" / "2.jpg")
    with pytest.raises(UnreadableImageError) as raised:
        ImageFolder(str(root))
    message = str(raised.value)
    assert message.startswith(f"2 unreadable or truncated image(s) in {root}")
    assert f"{root / 'a_cat' / '1.jpg'}: not an image or unreadable" in message
    assert f"{root / 'b_dog' / '2.jpg'} is truncated: its JPEG data ends early" in message
    assert "DATASET.SKIP_UNREADABLE True" in message


def test_unreadable_files_are_left_out_with_skip_unreadable(tmp_path, segkit_log):
    root = _folder(tmp_path)
    (root / "a_cat" / "1.jpg").write_bytes(b"truncated")
    ds = ImageFolder(str(root), skip_unreadable=True)
    assert ds.dropped == [str(root / "a_cat" / "1.jpg")] and len(ds) == 5
    assert "leaving out 1 unreadable or truncated image(s)" in segkit_log.text and "1.jpg" in segkit_log.text


def test_a_body_that_does_not_decode_is_skipped_and_counted(tmp_path, monkeypatch):
    # A header that passes and data no decoder reads: only the read finds out.
    root = _folder(tmp_path)
    ds = ImageFolder(str(root), skip_unreadable=True)
    bad = ds.samples[1][0]
    real = read_image_rgb

    def read(path):
        if path == bad:
            raise UnreadableImageError(f"cannot decode image file {path}")
        return real(path)

    monkeypatch.setattr("segkit.pretrain.data.read_image_rgb", read)
    img, target = ds[1]  # replaced by the next file, a_cat/2.jpg
    assert img.shape == (3, 12, 10) and target == 0
    assert ds.num_skipped == 1
    ds[0]
    assert ds.num_skipped == 1
    strict = ImageFolder(str(root))
    with pytest.raises(UnreadableImageError, match="1.jpg"):
        strict[1]


def test_demo_generator_layout(tmp_path):
    make_demo_cls_dataset(str(tmp_path), train_per_class=8, val_per_class=2, size=24, classes=("circle", "checker"))
    classes, samples = scan_image_folder(str(tmp_path / "train"))
    assert classes == ["checker", "circle"] and len(samples) == 16
    assert any(p.endswith(".png") for p, _ in samples) and any(p.endswith(".jpg") for p, _ in samples)
    assert read_image_rgb(samples[0][0]).shape == (3, 24, 24)
    with pytest.raises(ValueError, match="demo classes"):
        make_demo_cls_dataset(str(tmp_path / "x"), classes=("circle", "hexagon"))
    assert len(DEMO_CLASSES) == 10
