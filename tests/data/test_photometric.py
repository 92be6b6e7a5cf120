import cv2
import numpy as np
import pytest

from segkit.data.photometric import photometric_distortion


def _image(seed=0):
    return np.random.default_rng(seed).integers(40, 215, (12, 20, 3), dtype=np.uint8)


def test_every_step_off_leaves_the_image_unchanged():
    image = _image()
    np.random.seed(0)
    np.testing.assert_array_equal(photometric_distortion(image, 0.0, 0.0, 0.0, 0.0), image)


def test_brightness_is_an_offset_of_up_to_x_times_255_half_the_time():
    image = _image()
    offsets = []
    for seed in range(200):
        np.random.seed(seed)
        out = photometric_distortion(image, 32 / 255, 0.0, 0.0, 0.0).astype(int)
        diff = out - image.astype(int)
        # The same offset everywhere (no pixel clips inside 40..215), truncated towards zero by the uint8 cast.
        assert len(np.unique(diff)) == 1 and abs(diff.flat[0]) <= 32
        offsets.append(int(diff.flat[0]))
    assert 70 < offsets.count(0) < 130  # the step is skipped about half the time (an applied one rounds to 0 rarely)
    assert max(offsets) >= 28 and min(offsets) <= -28  # and reaches +-32


def test_contrast_scales_values_and_saturation_acts_in_hsv():
    image = _image(1)
    factors = set()
    for seed in range(30):
        np.random.seed(seed)
        out = photometric_distortion(image, 0.0, 0.5, 0.0, 0.0).astype(float)
        ratio = out[image > 0] / image[image > 0]
        assert np.ptp(ratio[out[image > 0] < 255]) < 0.05 and 0.45 < ratio.mean() < 1.55
        factors.add(round(float(ratio.mean()), 2))
    assert 1.0 in factors and len(factors) > 5
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(float)
    strong = hsv[..., 1] > 100  # where the 8-bit saturation has the resolution to show one factor
    sat_factors = set()
    for seed in range(30):
        np.random.seed(seed)
        out_hsv = cv2.cvtColor(photometric_distortion(image, 0.0, 0.0, 0.5, 0.0), cv2.COLOR_BGR2HSV).astype(float)
        # Value (the max channel) survives the HSV round trip; saturation moves, by one factor.
        assert np.abs(out_hsv[..., 2] - hsv[..., 2]).max() <= 1
        ratio = out_hsv[..., 1][strong] / hsv[..., 1][strong]
        unclipped = out_hsv[..., 1][strong] < 255
        assert np.ptp(ratio[unclipped]) < 0.08 and 0.45 < ratio.mean() < 1.55
        sat_factors.add(round(float(np.median(ratio)), 1))
    assert 1.0 in sat_factors and len(sat_factors) > 4  # skipped sometimes, applied with many factors


def test_hue_shifts_by_whole_steps_within_the_range():
    image = np.zeros((4, 4, 3), np.uint8)
    image[...] = (0, 0, 200)  # pure red in BGR: hue 0, full saturation
    hues = set()
    for seed in range(60):
        np.random.seed(seed)
        out = cv2.cvtColor(photometric_distortion(image, 0.0, 0.0, 0.0, 0.1), cv2.COLOR_BGR2HSV)
        h = int(out[0, 0, 0])
        hues.add(h if h < 90 else h - 180)
    assert 0 in hues and 18 >= max(hues) >= 14 and -18 <= min(hues) <= -14 and len(hues) > 8


@pytest.mark.parametrize("seed", range(5))
def test_output_is_uint8_of_the_same_shape(seed):
    np.random.seed(seed)
    out = photometric_distortion(_image(seed), 32 / 255, 0.5, 0.5, 0.1)
    assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
