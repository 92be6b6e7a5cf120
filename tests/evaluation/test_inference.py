import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segkit.evaluation.inference import InferenceMode, default_stride, inference, window_starts

C = 5


class PointwiseNet(nn.Module):
    """Logits are a fixed per-pixel affine map of the input: the answer is known anywhere, at any size."""

    def __init__(self, num_classes: int = C):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return self.conv(x)


class StrideNet(nn.Module):
    """Spatial context and a stride of 32: refuses inputs that are not a multiple of 32."""

    def __init__(self, num_classes: int = C, symmetric: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, num_classes, 3, padding=1)
        if symmetric:  # kernels mirror-symmetric: the net commutes with a horizontal flip
            with torch.no_grad():
                for conv in (self.conv1, self.conv2):
                    conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)

    def forward(self, x):
        h, w = x.shape[-2:]
        assert h % 32 == 0 and w % 32 == 0, f"input {h}x{w} not a multiple of 32"
        y = torch.relu(self.conv1(x))
        y = F.avg_pool2d(y, 4) + F.interpolate(F.avg_pool2d(y, 32), scale_factor=8, mode="nearest")
        return F.interpolate(self.conv2(y), size=(h, w), mode="bilinear", align_corners=False)


def _reference(model, image, scales, flip, out_size):
    """Average of softmax(resize(logits)) over the views, written out directly."""
    total = 0
    n = 0
    for s in scales:
        size = (int(image.shape[-2] * s + 0.5), int(image.shape[-1] * s + 0.5))
        x = F.interpolate(image, size=size, mode="bilinear", align_corners=False) if s != 1 else image
        for f in ([False, True] if flip else [False]):
            z = model(x.flip(-1) if f else x)
            z = z.flip(-1) if f else z
            total = total + F.interpolate(z, size=out_size, mode="bilinear", align_corners=False).softmax(1)
            n += 1
    return (total / n)[0]


@pytest.mark.parametrize("length,crop,stride", [(100, 32, 21), (97, 40, 40), (31, 64, 43), (64, 64, 43), (129, 64, 1)])
def test_window_placement_covers_every_pixel(length, crop, stride):
    starts = window_starts(length, crop, stride)
    covered = torch.zeros(max(length, crop), dtype=torch.bool)
    for s in starts:
        covered[s:s + crop] = True
    assert covered[:length].all()
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert starts[-1] == max(length - crop, 0)  # last window flush with the border (or the padded image)
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError, match="stride"):
        window_starts(100, 32, 40)


def test_default_stride_is_two_thirds():
    assert default_stride((1024, 1024)) == (683, 683)
    assert default_stride([768, 1536]) == (512, 1024)


@pytest.mark.parametrize(
    "size,crop,stride", [((37, 53), (16, 24), (11, 13)), ((20, 30), (32, 48), None), ((33, 65), (33, 20), (7, 20))]
)
def test_slide_averages_to_whole_for_pointwise_model(size, crop, stride):
    # Any pixel left uncovered or counted wrongly would break the equality (odd sizes, crop > image).
    model = PointwiseNet().eval()
    image = torch.randn(1, 3, *size)
    whole = inference(model, image, InferenceMode(size_divisor=1))
    slid = inference(model, image, InferenceMode(slide=True, crop_size=crop, stride=stride, batch_size=3, size_divisor=1))
    torch.testing.assert_close(slid, whole, rtol=1e-5, atol=1e-6)


def test_slide_with_one_window_equals_whole_image():
    model = StrideNet().eval()
    image = torch.randn(3, 64, 96)
    whole = inference(model, image)
    slid = inference(model, image, InferenceMode(slide=True, crop_size=(64, 96), stride=(40, 40)))
    torch.testing.assert_close(slid, whole)
    # An image smaller than the crop is one window of the image's size (padded to the divisor only).
    small = torch.randn(3, 50, 70)
    torch.testing.assert_close(
        inference(model, small, InferenceMode(slide=True, crop_size=(64, 96))), inference(model, small), rtol=0, atol=0
    )


def test_flip_of_symmetric_model_changes_nothing():
    model = StrideNet(symmetric=True).eval()
    image = torch.randn(1, 3, 64, 128)
    plain = inference(model, image)
    torch.testing.assert_close(inference(model, image, InferenceMode(flip=True)), plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(inference(model, image.flip(-1)), plain.flip(-1), rtol=1e-5, atol=1e-6)
    # The net is not symmetric without the constraint, so the test can fail.
    other = StrideNet().eval()
    assert not torch.allclose(inference(other, image, InferenceMode(flip=True)), inference(other, image))


def test_msc_at_scale_one_equals_single_scale():
    model = StrideNet().eval()
    image = torch.randn(1, 3, 70, 90)
    single = inference(model, image)
    torch.testing.assert_close(inference(model, image, InferenceMode(scales=[1.0])), single, rtol=0, atol=0)
    assert not torch.allclose(inference(model, image, InferenceMode(scales=[0.5, 1.0])), single)


def test_msc_flip_matches_direct_average():
    model = PointwiseNet().eval()
    image = torch.randn(1, 3, 40, 56)
    scales = [0.5, 0.75, 1.25]
    got = inference(model, image, InferenceMode(scales=scales, flip=True, size_divisor=1), out_size=(30, 44))
    want = _reference(model, image, scales, True, (30, 44))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.shape == (C, 30, 44)
    torch.testing.assert_close(got.sum(0), torch.ones(30, 44))
    labels = inference(model, image, InferenceMode(scales=scales, flip=True, size_divisor=1), out_size=(30, 44),
                       return_probs=False)
    assert torch.equal(labels, want.argmax(0))


@pytest.mark.parametrize("kw", [{}, {"slide": True, "crop_size": (256, 384)}, {"scales": [0.5, 0.75], "flip": True}])
def test_sizes_not_multiple_of_stride(kw):
    # 1000x600 and odd sizes go through a stride-32 net in every mode (StrideNet asserts the padding).
    model = StrideNet().eval()
    image = torch.randn(3, 600, 1000) if not kw else torch.randn(3, 301, 517)
    out = inference(model, image, InferenceMode(**kw), num_classes=C, return_probs=False)
    assert out.shape == image.shape[-2:]


def test_batches_are_bounded_and_do_not_change_the_result():
    model = PointwiseNet().eval()
    image = torch.randn(1, 3, 45, 70)
    kw = dict(slide=True, crop_size=(16, 16), scales=[1.0, 1.5], flip=True, size_divisor=1)
    ref = inference(model, image, InferenceMode(batch_size=1, **kw))
    n_windows = len(model.calls)
    model.calls.clear()
    got = inference(model, image, InferenceMode(batch_size=4, **kw))
    assert max(c[0] for c in model.calls) == 4
    assert sum(c[0] for c in model.calls) == n_windows
    torch.testing.assert_close(got, ref)


def test_bad_arguments_are_named():
    model = PointwiseNet().eval()
    with pytest.raises(ValueError, match="crop_size"):
        inference(model, torch.randn(3, 8, 8), InferenceMode(slide=True))
    with pytest.raises(ValueError, match="num_classes"):
        inference(model, torch.randn(3, 8, 8), num_classes=19)
    with pytest.raises(ValueError, match="eval mode"):
        inference(PointwiseNet().train(), torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="one image"):
        inference(model, torch.randn(2, 3, 8, 8))


def test_a_plain_callable_is_run_where_the_image_is():
    net = PointwiseNet().eval()
    image = torch.randn(1, 3, 21, 34)
    seen = []

    def runtime(x):  # an exported model: a function of the batch, no parameters, no eval mode
        seen.append(x.device)
        with torch.no_grad():
            return net(x)

    mode = InferenceMode(scales=[1.0, 0.5], flip=True, slide=True, crop_size=16, stride=11)
    assert torch.equal(inference(runtime, image, mode, return_probs=False), inference(net, image, mode, return_probs=False))
    assert set(seen) == {image.device}


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.int32])
def test_argmax_classes_equals_torch_argmax_ties_included(dtype):
    from segkit.evaluation.inference import argmax_classes

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (19, 33, 47), generator=g).float()  # many ties: the first maximum must win
    labels = argmax_classes(scores, dtype)
    assert labels.dtype == dtype and torch.equal(labels.long(), scores.argmax(0))
    one = torch.randn(1, 5, 6)
    assert torch.equal(argmax_classes(one), torch.zeros(5, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[C,H,W\]"):
        argmax_classes(torch.zeros(1, 2, 3, 4))


class GlobalContextNet(PointwiseNet):
    """Per-pixel logits plus a term from the image mean: padding the input would change every pixel."""

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return self.conv(x) + self.conv(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])


def test_windows_larger_than_the_image_are_clamped_to_it_as_mmseg_does():
    # The demo case: a crop taller and wider than the image. Zero-padding to the crop (the old behaviour)
    # shifted the image mean and every logit; a clamped window sees exactly the image.
    model = GlobalContextNet().eval()
    image = torch.randn(1, 3, 40, 60)
    whole = inference(model, image, InferenceMode(size_divisor=1))
    model.calls.clear()
    slid = inference(model, image, InferenceMode(slide=True, crop_size=(64, 96), stride=(32, 48), size_divisor=1))
    assert model.calls == [(1, 3, 40, 60)]
    torch.testing.assert_close(slid, whole, rtol=0, atol=0)
    # Taller than the image only: windows slide along the width at the image's full height.
    model.calls.clear()
    inference(model, image, InferenceMode(slide=True, crop_size=(64, 32), stride=(64, 20), size_divisor=1, batch_size=1))
    assert model.calls == [(1, 3, 40, 32)] * 3


class OwnArgmaxNet(PointwiseNet):
    """A model that computes its own labels (as the exported runtimes do), marked so its use shows."""

    def __init__(self, num_classes: int = C):
        super().__init__(num_classes)
        self.num_classes = num_classes
        self.label_calls: list[tuple[int, ...]] = []

    def predict_labels(self, x):
        self.label_calls.append(tuple(x.shape))
        return self.conv(x).argmax(1).int()


@pytest.mark.parametrize("mode, out_size, own", [
    (InferenceMode(), None, True),
    (InferenceMode(scales=(0.5,)), None, False),
    (InferenceMode(flip=True), None, False),
    (InferenceMode(scales=(1.0, 1.0)), None, False),
    (InferenceMode(slide=True, crop_size=16), None, False),
    (InferenceMode(), (42, 68), False),
])
def test_labels_of_one_whole_view_at_the_input_size_come_from_the_model(mode, out_size, own):
    model = OwnArgmaxNet().eval()
    image = torch.randn(1, 3, 21, 34)  # padded to 32x64 for the model, cropped back
    labels = inference(model, image, mode, num_classes=C, out_size=out_size, return_probs=False,
                       label_dtype=torch.uint8)
    expected = inference(model, image, mode, num_classes=C, out_size=out_size).argmax(0)
    assert labels.dtype == torch.uint8 and torch.equal(labels.long(), expected)
    assert model.label_calls == ([(1, 3, 32, 64)] if own else [])


def test_own_labels_of_another_class_count_are_refused():
    with pytest.raises(ValueError, match="predicts 5 classes, expected num_classes=7"):
        inference(OwnArgmaxNet().eval(), torch.randn(3, 8, 8), num_classes=7, return_probs=False)


@pytest.mark.parametrize("opts, message", [
    (["TEST.SCALE", "-0.5"], "TEST.SCALE must be positive, got -0.5"),
    (["TEST.MSC", "True", "TEST.SCALES", "[1.0, 0.0]"], "TEST.SCALES must be a non-empty list of positive scales, got [1.0, 0.0]"),
    (["TEST.MSC", "True", "TEST.SCALES", "[]"], "TEST.SCALES must be a non-empty list of positive scales, got []"),
    (["TEST.BATCH_SIZE", "0"], "TEST.BATCH_SIZE must be >= 1, got 0"),
    (["TEST.SIZE_DIVISOR", "0"], "TEST.SIZE_DIVISOR must be >= 1, got 0"),
    (["TEST.SLIDE", "True", "TEST.STRIDE", "[0, 0]"], "TEST.STRIDE must be (height, width), integers >= 1, got [0, 0]"),
    (["TEST.SLIDE", "True", "TEST.CROP_SIZE", "[32]"], "TEST.CROP_SIZE must be (height, width), integers >= 1, got [32]"),
])
def test_bad_test_settings_are_config_errors_naming_the_key(opts, message):
    from segkit.config import ConfigError, load_cfg

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        InferenceMode.from_config(load_cfg(None, opts))


def test_test_settings_the_mode_does_not_read_are_not_refused():
    from segkit.config import load_cfg

    cfg = load_cfg(None, ["TEST.STRIDE", "[0, 0]", "TEST.SCALES", "[-1.0]"])  # no slide, no TEST.MSC
    assert InferenceMode.from_config(cfg).scales == (1.0,)
    assert InferenceMode.from_config(cfg, scales=[0.5, 1.0]).scales == (0.5, 1.0)  # explicit scales replace TEST.SCALES
    with pytest.raises(ValueError, match="size_divisor must be >= 1, got 0"):  # built from arguments: named too
        InferenceMode(size_divisor=0)
