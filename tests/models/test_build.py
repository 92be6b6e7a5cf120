import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_backbone, build_model, create_classifier, load_initial_weights


def _cfg(*opts):
    return load_cfg(None, ["MODEL.NUM_CLASSES", "3", *opts])


def _built(*opts):
    cfg = _cfg(*opts)
    return load_initial_weights(build_model(cfg), cfg)


@pytest.mark.parametrize("kind", ["export", "classifier"])
def test_backbone_weights_from_export_or_classifier(tmp_path, kind):
    clf = create_classifier("resnet18", num_classes=5)
    state = clf.backbone.state_dict() if kind == "export" else clf.state_dict()
    path = str(tmp_path / f"{kind}.pth")
    torch.save(state, path)
    model = _built("MODEL.BACKBONE.WEIGHTS", path)
    for k, v in clf.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_backbone_weights_of_another_architecture_fail(tmp_path):
    path = str(tmp_path / "r50.pth")
    torch.save(build_backbone("resnet50").state_dict(), path)
    with pytest.raises(ValueError, match="r50.pth"):
        _built("MODEL.BACKBONE.WEIGHTS", path)


def test_backbone_weights_on_a_model_without_zoo_backbone(tmp_path):
    path = str(tmp_path / "r18.pth")
    torch.save(build_backbone("resnet18").state_dict(), path)
    with pytest.raises(ValueError, match="no zoo backbone"):
        _built("MODEL.NAME", "pidnet", "MODEL.BACKBONE.WEIGHTS", path)


def test_unknown_model_name():
    with pytest.raises(KeyError, match="bisenetv9"):
        build_model(_cfg("MODEL.NAME", "bisenetv9"))


def test_backbone_weights_of_another_depth_are_an_error_unless_partial(tmp_path):
    path = str(tmp_path / "r34.pth")
    torch.save(create_classifier("resnet34", num_classes=5).state_dict(), path)
    with pytest.raises(ValueError, match=r"r34\.pth does not match the backbone resnet18: 0 missing keys \[\], "
                                         r"\d+ unexpected keys \['layer1\.2"):
        _built("MODEL.BACKBONE.WEIGHTS", path)
    model = _built("MODEL.BACKBONE.WEIGHTS", path, "MODEL.PARTIAL_WEIGHTS", "True")  # a deliberate partial load
    assert model.backbone.layer1[0].conv1.conv.weight.shape[0] == 64


def test_output_align_corners_is_refused_by_models_that_do_not_read_it():
    cfg = load_cfg("configs/cityscapes/fcn_r50_d8.yaml", ["MODEL.OUTPUT_ALIGN_CORNERS", "True"])
    with pytest.raises(ValueError, match="MODEL.OUTPUT_ALIGN_CORNERS is set but model 'fcn'"):
        build_model(cfg)
