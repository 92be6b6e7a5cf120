import re

import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_backbone, build_model, create_classifier, load_initial_weights


def _cfg(*opts):
    return load_cfg(None, ["MODEL.NUM_CLASSES", "3", *opts])


def _built(*opts):
    cfg = _cfg(*opts)
    return load_initial_weights(build_model(cfg), cfg)


def test_class_layer_keys_are_those_that_follow_the_class_count():
    from segkit.models import class_layer_keys

    keys = class_layer_keys(_cfg("MODEL.NAME", "pidnet", "MODEL.VARIANT", "pidnet_s"))
    assert keys == ["head.classifier.2.weight", "head.classifier.2.bias", "aux_p.classifier.2.weight",
                    "aux_p.classifier.2.bias"]


def test_model_weights_of_another_class_count_keep_fresh_class_layers(tmp_path):
    torch.manual_seed(0)
    cityscapes = build_model(_cfg("MODEL.NUM_CLASSES", "19", "MODEL.BACKBONE.NAME", "resnet18"))
    path = tmp_path / "city.pth"
    torch.save(cityscapes.state_dict(), path)
    model = _built("MODEL.BACKBONE.NAME", "resnet18", "MODEL.WEIGHTS", str(path))  # 3 classes, strict
    theirs, ours = cityscapes.state_dict(), model.state_dict()
    fresh = {k for k in ours if ours[k].shape != theirs[k].shape}
    assert fresh and all(k.endswith(("classifier.weight", "classifier.bias")) for k in fresh)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k not in fresh)


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


def test_backbone_weights_on_a_model_without_zoo_backbone_are_refused_before_any_file_is_read(tmp_path):
    path = str(tmp_path / "absent.pth")  # no file: the model cannot take backbone weights, whatever they hold
    with pytest.raises(ValueError, match="MODEL.BACKBONE.WEIGHTS .*absent.pth.* is set but model 'pidnet' does not"):
        build_model(_cfg("MODEL.NAME", "pidnet", "MODEL.BACKBONE.WEIGHTS", path))


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
    with pytest.raises(ValueError, match="MODEL.OUTPUT_ALIGN_CORNERS True is set but model 'fcn'"):
        build_model(cfg)


# A model-specific key away from its default for a model that would ignore it (and build as if it were unset).
HEAD_KEYS = {
    "MODEL.HEAD_CHANNELS": "64", "MODEL.AUX_CHANNELS": "32", "MODEL.FCN_NUM_CONVS": "1",
    "MODEL.FCN_CONCAT_INPUT": "False", "MODEL.PPM_BINS": "[1, 2]", "MODEL.DEEPLAB_STYLE": "mmseg",
    "MODEL.ASPP_RATES": "[3, 6]", "MODEL.ASPP_CHANNELS": "32", "MODEL.ASPP_SEPARABLE": "False",
    "MODEL.DECODER_LOW_CHANNELS": "16",
}
# The head keys each model reads; AUX_CHANNELS only with an aux head (DeepLabV3+: DEEPLAB_STYLE mmseg).
HEAD_KEYS_READ = {
    "fcn": {"MODEL.HEAD_CHANNELS", "MODEL.AUX_CHANNELS", "MODEL.FCN_NUM_CONVS", "MODEL.FCN_CONCAT_INPUT"},
    "pspnet": {"MODEL.HEAD_CHANNELS", "MODEL.AUX_CHANNELS", "MODEL.PPM_BINS"},
    "deeplabv3plus": {"MODEL.DEEPLAB_STYLE", "MODEL.ASPP_RATES", "MODEL.ASPP_CHANNELS", "MODEL.ASPP_SEPARABLE",
                      "MODEL.DECODER_LOW_CHANNELS"},
}
IGNORED_KEYS = [
    ("bisenetv1", "MODEL.VARIANT", "pidnet_s"),
    ("stdc", "MODEL.VARIANT", "ddrnet_23"),
    *[(model, key, value) for model in ("pidnet", "ddrnet", "bisenetv2")
      for key, value in (("MODEL.BACKBONE.FROZEN_STAGES", "1"), ("MODEL.BACKBONE.DROP_PATH_RATE", "0.2"),
                         ("MODEL.BACKBONE.OUTPUT_STRIDE", "8"))],
    *[(model, "MODEL.DROPOUT", "0.0") for model in ("stdc", "bisenetv1", "pidnet", "ddrnet")],
    *[(model, key, value) for model in ("pidnet", "ddrnet")
      for key, value in (("MODEL.BACKBONE.NAME", "resnet50"), ("MODEL.BACKBONE.WEIGHTS", "backbone.pth"))],
    # Each head key on a model without those heads, and on the models with other heads (PSPNet is built on FCN's
    # class but has no FCN decode head; tf-style DeepLabV3+ no aux head).
    *[(model, key, value) for model in ("bisenetv1", *HEAD_KEYS_READ)
      for key, value in HEAD_KEYS.items() if key not in HEAD_KEYS_READ.get(model, ())],
]


@pytest.mark.parametrize("model,key,value", IGNORED_KEYS, ids=[f"{m}-{k}" for m, k, _ in IGNORED_KEYS])
def test_model_specific_keys_are_refused_by_models_that_do_not_read_them(model, key, value):
    backbone = ["MODEL.BACKBONE.NAME", "stdc1"] if model == "stdc" else []
    with torch.device("meta"):
        build_model(_cfg("MODEL.NAME", model, *backbone))  # the model alone builds
        with pytest.raises(ValueError, match=rf"{key} .*{re.escape(value)}.* is set but model '{model}' does not read it"):
            build_model(_cfg("MODEL.NAME", model, *backbone, key, value))


@pytest.mark.parametrize("model,key,value", [
    ("pidnet", "MODEL.VARIANT", "pidnet_m"), ("bisenetv2", "MODEL.DROPOUT", "0.0"), ("fcn", "MODEL.DROPOUT", "0.0"),
    ("bisenetv1", "MODEL.BACKBONE.FROZEN_STAGES", "1"), ("fcn", "MODEL.BACKBONE.OUTPUT_STRIDE", "8"),
    ("stdc", "MODEL.BACKBONE.NAME", "stdc2"), ("bisenetv2", "MODEL.BACKBONE.NAME", "bisenetv2"),
    ("bisenetv2", "MODEL.BACKBONE.WEIGHTS", "backbone.pth"), ("deeplabv3plus", "MODEL.BACKBONE.WEIGHTS", "b.pth"),
    *[(model, key, HEAD_KEYS[key]) for model, keys in HEAD_KEYS_READ.items() for key in sorted(keys)],
])
def test_model_specific_keys_are_taken_by_models_that_read_them(model, key, value):
    def fingerprint(net):  # what a key can change at build time: modules and their settings, what trains
        return str(net), tuple(p.requires_grad for p in net.parameters())

    with torch.device("meta"):
        default = build_model(_cfg("MODEL.NAME", model))
        changed = build_model(_cfg("MODEL.NAME", model, key, value))
    if key != "MODEL.BACKBONE.WEIGHTS" and (model, value) != ("bisenetv2", "bisenetv2"):  # loaded later / named only
        assert fingerprint(changed) != fingerprint(default), "the key built the same model: not read"


def test_deeplab_reads_aux_channels_only_in_the_style_with_an_aux_head():
    def deeplab(*opts):
        with torch.device("meta"):
            return build_model(_cfg("MODEL.NAME", "deeplabv3plus", *opts))

    mmseg = deeplab("MODEL.DEEPLAB_STYLE", "mmseg", "MODEL.AUX_CHANNELS", "32")
    assert mmseg.aux.convs[0].conv.out_channels == 32
    with pytest.raises(ValueError, match="MODEL.AUX_CHANNELS 32 is set but model 'deeplabv3plus' does not read it"):
        deeplab("MODEL.DEEPLAB_STYLE", "tf", "MODEL.AUX_CHANNELS", "32")


def test_bisenetv2_takes_its_own_branches_name_only():
    with torch.device("meta"), pytest.raises(
            ValueError, match="MODEL.BACKBONE.NAME 'resnet50': bisenetv2 has its own fixed branches.*'bisenetv2'"):
        build_model(_cfg("MODEL.NAME", "bisenetv2", "MODEL.BACKBONE.NAME", "resnet50"))

