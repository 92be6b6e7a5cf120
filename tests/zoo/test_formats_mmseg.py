"""mmsegmentation's FCN / PSPNet / DeepLabV3+ R50-D8 checkpoints: manifest-driven conversion into segkit's models.

The manifests list every key and shape of mmseg's models (written from mmseg's own model code); a synthetic
checkpoint of those shapes, wrapped as mmseg saves it, must convert and load strictly into the model of the
record's config, at 19 classes and at another class count. Tensors live on the meta device: shapes only.
That the converted weights compute mmseg's outputs was checked against mmseg itself (to 0 difference),
outside the repository; the spot checks below pin the keys whose shapes alone cannot tell them apart.
"""
from __future__ import annotations

import json
import os

import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.zoo.formats.base import FormatError
from segkit.zoo.formats.mmseg import ASPP_POOL_INDEX, RECORDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = os.path.join(ROOT, "segkit", "zoo", "manifests")
RECORD = {r.variant: r for r in RECORDS}


def _manifest(record) -> dict:
    with open(os.path.join(MANIFESTS, record.manifest), encoding="utf-8") as f:
        return json.load(f)


def _checkpoint(record, num_classes: int = 19) -> dict:
    """A checkpoint as mmseg saves it: {"meta": ..., "state_dict": ...}, shapes from the manifest."""
    manifest = _manifest(record)
    sd = {}
    for key, shape in manifest["keys"].items():
        if key in manifest["class_dim_keys"]:
            shape = [num_classes] + shape[1:]
        sd[key] = torch.empty(shape, device="meta", dtype=torch.long if key.endswith("num_batches_tracked") else None)
    return {"meta": {"mmseg_version": "0.5.0", "CLASSES": [str(i) for i in range(num_classes)]}, "state_dict": sd}


def _model(record, num_classes: int = 19):
    cfg = load_cfg(os.path.join(ROOT, "configs", record.config), ["MODEL.NUM_CLASSES", str(num_classes)])
    with torch.device("meta"):
        return build_model(cfg)


def test_one_record_per_published_model():
    assert sorted(RECORD) == ["deeplabv3plus_r50_d8", "fcn_r50_d8", "pspnet_r50_d8"]
    for record in RECORDS:
        assert record.name == "mmseg"
        assert os.path.isfile(os.path.join(ROOT, "configs", record.config)), record.config
        manifest = _manifest(record)
        assert manifest["class_dim_keys"] == [
            "decode_head.conv_seg.weight", "decode_head.conv_seg.bias",
            "auxiliary_head.conv_seg.weight", "auxiliary_head.conv_seg.bias",
        ]
        assert manifest["keys"]["backbone.stem.0.weight"] == [32, 3, 3, 3]  # ResNetV1c's deep stem


@pytest.mark.parametrize("variant", sorted(RECORD))
@pytest.mark.parametrize("num_classes", [19, 11])
def test_synthetic_checkpoint_loads_strictly(variant, num_classes):
    record = RECORD[variant]
    sd = _checkpoint(record, num_classes)["state_dict"]
    converted = record.convert(sd)
    model = _model(record, num_classes)
    model.load_state_dict(converted, strict=True)  # every key, every shape
    # Renaming only: each official tensor lands once, untouched.
    assert len(converted) == len(sd) and {id(v) for v in converted.values()} == {id(v) for v in sd.values()}


def _renamed(record, key: str) -> str:
    sd = _checkpoint(record)["state_dict"]
    converted = record.convert(sd)
    return next(k for k, v in converted.items() if v is sd[key])


@pytest.mark.parametrize("variant, official, segkit", [
    # Equal shapes, so only the names can put them in place.
    ("fcn_r50_d8", "backbone.stem.4.weight", "backbone.stem.conv2.bn.weight"),
    ("fcn_r50_d8", "backbone.layer3.0.downsample.1.running_var", "backbone.layer3.0.downsample.conv.bn.running_var"),
    ("fcn_r50_d8", "backbone.layer4.2.bn2.bias", "backbone.layer4.2.conv2.bn.bias"),
    ("fcn_r50_d8", "decode_head.convs.1.conv.weight", "decode_head.convs.1.conv.weight"),
    ("fcn_r50_d8", "auxiliary_head.conv_seg.bias", "aux.classifier.bias"),
    ("pspnet_r50_d8", "decode_head.psp_modules.2.1.conv.weight", "decode_head.ppm.stages.2.1.conv.weight"),
    ("deeplabv3plus_r50_d8", "decode_head.image_pool.1.conv.weight", f"aspp.branches.{ASPP_POOL_INDEX}.conv.conv.weight"),
    ("deeplabv3plus_r50_d8", "decode_head.aspp_modules.0.conv.weight", "aspp.branches.0.conv.weight"),
    ("deeplabv3plus_r50_d8", "decode_head.aspp_modules.3.pointwise_conv.bn.weight", "aspp.branches.3.pointwise.bn.weight"),
    ("deeplabv3plus_r50_d8", "decode_head.sep_bottleneck.1.depthwise_conv.conv.weight",
     "decoder.fuse.1.depthwise.conv.weight"),
])
def test_layers_of_equal_shape_keep_their_place(variant, official, segkit):
    assert _renamed(RECORD[variant], official) == segkit


def test_the_image_pooling_branch_is_where_the_rules_put_it():
    from segkit.models.heads.aspp import ImagePooling

    model = _model(RECORD["deeplabv3plus_r50_d8"])
    assert isinstance(model.aspp.branches[ASPP_POOL_INDEX], ImagePooling)
    # mmseg concatenates image pooling first: the 3x3 bottleneck's input channels must come in that order.
    assert model.aspp.pool_first


def test_a_key_of_another_model_is_refused_by_name():
    record = RECORD["fcn_r50_d8"]
    sd = dict(_checkpoint(record)["state_dict"])
    sd["decode_head.psp_modules.0.1.conv.weight"] = torch.empty(512, 2048, 1, 1, device="meta")
    with pytest.raises(FormatError, match=r"1 keys fit no rule.*psp_modules\.0\.1\.conv\.weight"):
        record.convert(sd)


def test_a_partial_checkpoint_fails_the_strict_load_naming_the_keys():
    record = RECORD["pspnet_r50_d8"]
    sd = dict(_checkpoint(record)["state_dict"])
    del sd["decode_head.bottleneck.bn.running_var"]
    with pytest.raises(RuntimeError, match=r"decode_head\.bottleneck\.bn\.running_var"):
        _model(record).load_state_dict(record.convert(sd), strict=True)


# Through the package API (segkit.zoo.formats: unwrap, detect_format, convert_official), from the other branch
# of the zoo work; skipped only while that API is not in this checkout.
try:
    from segkit.zoo.formats import convert_official, detect_format, unwrap
except ImportError:  # pragma: no cover - the API lands with the formats package
    detect_format = None

needs_api = pytest.mark.skipif(detect_format is None, reason="segkit.zoo.formats has no detect_format yet")


@needs_api
@pytest.mark.parametrize("variant", sorted(RECORD))
@pytest.mark.parametrize("num_classes", [19, 11])
def test_detected_and_converted_through_the_api(variant, num_classes):
    record = RECORD[variant]
    sd = unwrap(_checkpoint(record, num_classes))
    detection = detect_format(sd)
    assert (detection.format.name, detection.format.variant, detection.num_classes) == ("mmseg", variant, num_classes)
    _model(record, num_classes).load_state_dict(convert_official(sd, detection), strict=True)


@needs_api
def test_a_partial_checkpoint_is_refused_by_detection_naming_the_keys():
    sd = unwrap(_checkpoint(RECORD["deeplabv3plus_r50_d8"]))
    for key in ("decode_head.c1_bottleneck.conv.weight", "auxiliary_head.conv_seg.bias"):
        del sd[key]
    with pytest.raises(FormatError, match=r"c1_bottleneck\.conv\.weight"):
        detect_format(sd)
