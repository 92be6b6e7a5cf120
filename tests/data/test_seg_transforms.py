import cv2
import numpy as np
import pytest

from segkit.data.seg_transforms import SegEvalTransform, SegTrainTransform, normalise_luts, jitter_colours, normalise

PALETTE = np.array([[10, 200, 30], [250, 0, 120], [0, 90, 255], [128, 128, 128], [60, 30, 200]], np.uint8)


def block_scene(rng, h=96, w=160, block=12):
    """Label of random blocks, image painted from the label: colour = PALETTE[label] (BGR)."""
    small = rng.integers(0, len(PALETTE), (h // block + 1, w // block + 1)).astype(np.uint8)
    label = np.kron(small, np.ones((block, block), np.uint8))[:h, :w]
    return PALETTE[label], label


def identity_transform(crop=(64, 64), scale=(0.5, 2.0), flip=0.5, jitter=0.0):
    # mean 0 / std 1/255 makes the normalised image the uint8 values again.
    return SegTrainTransform(crop, scale, flip, jitter, jitter, jitter, [0, 0, 0], [1 / 255] * 3, ignore_index=255)


def interior(label):
    """Pixels whose 3x3 neighbourhood has a single label: there bilinear and nearest must agree exactly."""
    k = np.ones((3, 3), np.uint8)
    return (cv2.dilate(label, k) == label) & (cv2.erode(label, k) == label)


@pytest.mark.parametrize("seed", range(12))
def test_image_and_label_stay_aligned(seed):
    rng = np.random.default_rng(seed)
    image, label = block_scene(rng)
    np.random.seed(seed)
    t = identity_transform()
    out, lab = t(image, label)
    assert out.shape == (3, 64, 64) and out.dtype == np.float32 and lab.shape == (64, 64) and lab.dtype == np.uint8
    rgb = np.rint(out.transpose(1, 2, 0)).astype(np.int64)
    keep = interior(lab) & (lab != 255)
    assert keep.mean() > 0.2
    expected = PALETTE[lab[keep]][:, ::-1]  # output is RGB
    np.testing.assert_array_equal(rgb[keep], expected)
    # Padding: ignore in the label, the pad colour in the image.
    pad = cv2.erode((lab == 255).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (rgb[pad] == 0).all()


def test_flip_moves_image_and_label_together():
    image = np.zeros((32, 64, 3), np.uint8)
    label = np.zeros((32, 64), np.uint8)
    image[:, :20] = PALETTE[1]
    label[:, :20] = 1
    t = identity_transform(crop=(32, 64), scale=(1.0, 1.0), flip=1.0)
    out, lab = t(image, label)
    assert (lab[:, -20:] == 1).all() and (lab[:, :-20] == 0).all()
    np.testing.assert_array_equal(np.rint(out[:, :, -20:]).T[0, 0], PALETTE[1][::-1])


def test_labels_never_get_new_values_even_with_jitter():
    rng = np.random.default_rng(0)
    image, label = block_scene(rng)
    t = identity_transform(scale=(0.3, 3.0), jitter=0.4)
    for seed in range(20):
        np.random.seed(seed)
        _, lab = t(image, label)
        assert set(np.unique(lab)) <= set(np.unique(label)) | {255}


def test_small_image_is_padded_into_crop():
    image, label = block_scene(np.random.default_rng(1), h=20, w=30)
    t = identity_transform(crop=(64, 64), scale=(1.0, 1.0), flip=0.0)
    np.random.seed(0)
    out, lab = t(image, label)
    assert out.shape == (3, 64, 64)
    assert (lab != 255).sum() == 20 * 30


def test_jitter_identity_and_factors():
    image, _ = block_scene(np.random.default_rng(2))
    assert identity_transform(jitter=0.0).color_jitter(image) is image
    np.testing.assert_allclose(jitter_colours(image, 1.3, 1.0, 1.0), np.clip(image * 1.3, 0, 255), atol=1)
    grey = jitter_colours(image, 1.0, 1.0, 0.0)  # saturation 0: every pixel grey
    assert np.abs(grey.astype(int) - grey[..., :1].astype(int)).max() <= 1
    flat = jitter_colours(image, 1.0, 0.0, 1.0)  # contrast 0: the mean grey everywhere
    assert flat.std() < 1.0


def test_eval_transform_normalises_only():
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    label = np.zeros((7, 9), np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out, lab = SegEvalTransform(mean, std)(image, label)
    expected = (image[..., ::-1] / 255.0 - mean) / std
    np.testing.assert_allclose(out.transpose(1, 2, 0), expected, rtol=1e-5, atol=1e-5)
    assert lab is label


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="CROP_SIZE"):
        SegTrainTransform((0, 8), (1, 1), 0, 0, 0, 0, [0] * 3, [1] * 3)
    with pytest.raises(ValueError, match="SCALE_RANGE"):
        SegTrainTransform((8, 8), (2, 1), 0, 0, 0, 0, [0] * 3, [1] * 3)
    with pytest.raises(ValueError, match="STD"):
        normalise_luts([0, 0, 0], [1, 0, 1])
    assert normalise(np.zeros((2, 2, 3), np.uint8), normalise_luts([0] * 3, [1] * 3)).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="SCALE_STEP"):
        SegTrainTransform((8, 8), (1, 2), 0, 0, 0, 0, [0] * 3, [1] * 3, scale_step=-0.1)
    with pytest.raises(ValueError, match="CAT_MAX_RATIO"):
        SegTrainTransform((8, 8), (1, 2), 0, 0, 0, 0, [0] * 3, [1] * 3, cat_max_ratio=0.0)
    with pytest.raises(ValueError, match="INPUT.JITTER"):
        SegTrainTransform((8, 8), (1, 2), 0, 0, 0, 0, [0] * 3, [1] * 3, jitter_style="albumentations")
    with pytest.raises(ValueError, match="mmseg only"):
        SegTrainTransform((8, 8), (1, 2), 0, 0, 0, 0, [0] * 3, [1] * 3, hue=0.1)


def test_scale_step_draws_from_the_grid_only():
    # PIDNet's 0.5 + randint(0, 16) / 10: 17 scales from 0.5 to 2.1.
    t = SegTrainTransform((8, 8), (0.5, 2.1), 0, 0, 0, 0, [0] * 3, [1] * 3, scale_step=0.1)
    np.random.seed(0)
    drawn = {round(t.draw_scale(100, 100), 6) for _ in range(2000)}
    assert drawn == {round(0.5 + k / 10, 6) for k in range(17)}


def test_cover_crop_scales_up_instead_of_padding():
    # STDC-Seg: a 1024x2048 frame at scale 0.125 would be 128x256 inside a 512x1024 crop; it becomes the whole crop.
    image, label = block_scene(np.random.default_rng(3), h=64, w=128, block=8)
    padded = identity_transform(crop=(32, 64), scale=(0.125, 0.125), flip=0.0)
    covered = SegTrainTransform((32, 64), (0.125, 0.125), 0.0, 0, 0, 0, [0] * 3, [1 / 255] * 3, cover_crop=True)
    np.random.seed(0)
    assert (padded(image, label)[1] == 255).mean() > 0.9
    np.random.seed(0)
    assert covered.draw_scale(64, 128) == 0.5
    out, lab = covered(image, label)
    assert (lab != 255).all() and out.shape == (3, 32, 64)


def test_cat_max_ratio_redraws_windows_one_class_fills():
    # A frame that is class 1 except a 16-pixel-wide strip of class 2 on the left: most 16x16 windows hold class 1
    # alone; mmsegmentation's cat_max_ratio 0.75 redraws them (up to 10 times), so most crops show the strip.
    label = np.ones((16, 80), np.uint8)
    label[:, :16] = 2
    image = PALETTE[label]
    plain = identity_transform(crop=(16, 16), scale=(1.0, 1.0), flip=0.0)
    balanced = SegTrainTransform((16, 16), (1.0, 1.0), 0.0, 0, 0, 0, [0] * 3, [1 / 255] * 3, cat_max_ratio=0.75)
    np.random.seed(0)
    plain_hits = sum(2 in plain(image, label)[1] for _ in range(200))
    balanced_hits = sum(2 in balanced(image, label)[1] for _ in range(200))
    assert plain_hits < 80 and balanced_hits > 150  # expected about 50 and 180 of 200
    # Without labels (a validity mask), no redraws: the draws match the plain transform's.
    np.random.seed(1)
    a = plain.geometry(image, label)[0]
    np.random.seed(1)
    b = balanced.geometry(image, label, balance=False)[0]
    np.testing.assert_array_equal(a, b)


def test_bisenet_jitter_turns_contrast_about_grey_74():
    # CoinCheung/BiSeNet's contrast table: 74 + (v - 74) * rate; saturation towards the plain channel mean.
    image = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = jitter_colours(image, 1.0, 0.5, 1.0, style="bisenet")
    np.testing.assert_allclose(out, np.clip(74 + (image.astype(float) - 74) * 0.5, 0, 255), atol=1)
    grey = jitter_colours(image, 1.0, 1.0, 0.0, style="bisenet")
    np.testing.assert_allclose(grey[..., 0], image.mean(-1), atol=1)
    # Each step is clipped, as the reproduction's tables are: 230 brightened x1.4 is 255 before contrast 0.6
    # turns it about 74 (182), not 322 (222 unclipped).
    bright = np.full((2, 2, 3), 230, np.uint8)
    assert jitter_colours(bright, 1.4, 0.6, 1.0, style="bisenet")[0, 0, 0] == 182
