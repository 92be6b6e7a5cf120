import pytest
import torch
import torchvision.transforms.v2 as T

from segkit.config import get_cls_cfg
from segkit.pretrain.transforms import IMAGENET_EIGVEC, PCALighting, build_cls_transforms, rand_augment, val_resize_size


def _img(h=375, w=500):
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8)


def test_val_resizes_short_side_then_centre_crops():
    cfg = get_cls_cfg()
    assert val_resize_size(224, 0.875) == 256
    tf = build_cls_transforms(cfg, train=False)
    resize = tf.transforms[0]
    assert isinstance(resize, T.Resize) and resize.size == [256]
    assert tuple(resize(_img()).shape) == (3, 256, 341)  # short side 256, aspect kept
    out = tf(_img())
    assert out.dtype == torch.float32 and tuple(out.shape) == (3, 224, 224)
    cfg.INPUT.VAL_SIZE, cfg.INPUT.CROP_PCT = 48, 1.0
    assert tuple(build_cls_transforms(cfg, train=False)(_img(40, 90)).shape) == (3, 48, 48)
    with pytest.raises(ValueError, match="CROP_PCT"):
        val_resize_size(224, 1.5)


def test_val_is_normalised_centre():
    cfg = get_cls_cfg()
    cfg.INPUT.VAL_SIZE, cfg.INPUT.CROP_PCT = 4, 0.5  # resize 16x8 -> 8 short side, centre crop 4
    img = torch.zeros(3, 8, 16, dtype=torch.uint8)
    img[:, 2:6, 6:10] = 255
    out = build_cls_transforms(cfg, train=False)(img)
    expect = (1.0 - torch.tensor(cfg.INPUT.MEAN)) / torch.tensor(cfg.INPUT.STD)
    assert torch.allclose(out[:, 1, 1], expect, atol=1e-5)


def test_train_pipeline_with_every_augmentation():
    cfg = get_cls_cfg()
    cfg.INPUT.TRAIN_SIZE = 32
    cfg.INPUT.RAND_AUGMENT_N, cfg.INPUT.RAND_AUGMENT_M, cfg.INPUT.RAND_AUGMENT_PROB = 2, 9, 0.5
    cfg.INPUT.COLOR_JITTER, cfg.INPUT.PCA_LIGHTING, cfg.INPUT.RANDOM_ERASE_PROB = 0.4, 0.1, 1.0
    tf = build_cls_transforms(cfg, train=True)
    names = [type(t).__name__ for t in tf.transforms]
    assert names[0] == "RandomResizedCrop" and tf.transforms[0].scale == (0.08, 1.0)
    assert {"RandomHorizontalFlip", "ColorJitter", "PCALighting", "Normalize", "RandomErasing"} <= set(names)
    for _ in range(3):
        out = tf(_img(60, 80))
        assert out.dtype == torch.float32 and tuple(out.shape) == (3, 32, 32) and torch.isfinite(out).all()


def test_rand_augment_probability_per_op():
    img = _img(16, 16)
    assert torch.equal(rand_augment(3, 9, 0.0)(img), img)  # every op skipped
    assert isinstance(rand_augment(2, 9, 1.0), T.RandAugment)
    comp = rand_augment(2, 9, 0.5)
    assert len(comp.transforms) == 2 and all(t.p == 0.5 for t in comp.transforms)
    with pytest.raises(ValueError, match=r"RAND_AUGMENT_M must be in 1\.\.10, got 11"):
        rand_augment(2, 11, 0.5)


def test_rand_augment_magnitude_is_on_the_papers_0_to_10_scale():
    """M 9 rotates by 27 degrees as in timm and the paper (9/10 of 30), not torchvision's default 9/30."""
    ra = rand_augment(1, 9, 1.0)

    def strength(op: str) -> float:  # torchvision's table of op -> (magnitudes of the bins, signed)
        return float(ra._AUGMENTATION_SPACE[op][0](ra.num_magnitude_bins, 32, 32)[ra.magnitude])

    assert strength("Rotate") == pytest.approx(27.0) and strength("ShearX") == pytest.approx(0.27)
    assert strength("Brightness") == pytest.approx(0.81)


def test_pca_lighting_adds_one_colour_offset_along_eigvecs():
    torch.manual_seed(0)
    img = torch.rand(3, 5, 6)
    out = PCALighting(0.1)(img)
    delta = out - img
    assert torch.allclose(delta, delta[:, :1, :1].expand_as(delta), atol=1e-6)  # same RGB shift everywhere
    vec = torch.tensor(IMAGENET_EIGVEC)
    coeff = torch.linalg.solve(vec, delta[:, 0, 0])  # = alpha * eigval, small for alpha_std 0.1
    assert coeff.abs().max() < 0.2175 and delta.abs().max() > 0
    assert torch.equal(PCALighting(0.0)(img), img)
    with pytest.raises(TypeError):
        PCALighting(0.1)(torch.zeros(3, 2, 2, dtype=torch.uint8))


def test_bad_interpolation_names_the_key():
    cfg = get_cls_cfg()
    cfg.INPUT.INTERPOLATION = "lanczos"
    with pytest.raises(ValueError, match="INPUT.INTERPOLATION"):
        build_cls_transforms(cfg, train=True)
