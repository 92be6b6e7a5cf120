"""mmsegmentation's FCN / PSPNet / DeepLabV3+ R50-D8 Cityscapes checkpoints: detection, conversion, strict load.

The manifests list every key and shape of mmseg's models (written from mmseg's own model code); a synthetic
checkpoint of those shapes, wrapped as mmseg saves it, must be detected as its model, convert and load strictly
into the model of the record's config, at 19 classes and at another class count. That the converted weights
compute mmseg's outputs was checked against mmseg itself (to 0 difference), outside the repository; the spot
checks below pin the keys whose shapes alone cannot tell them apart.
"""
from __future__ import annotations

import pytest
import torch

from segkit.config import load_cfg
from segkit.models.heads.aspp import ImagePooling
from segkit.models.segmentors.base import output_align_corners
from segkit.zoo.formats import FORMATS, PROTOCOLS, FormatError, detect_format, load_manifest
from segkit.zoo.formats.mmseg import ASPP_POOL_INDEX
from tests.zoo.formats_synthetic import load_through_detection, records, segkit_model, synthetic_state_dict

VARIANTS = ["fcn_r50_d8", "pspnet_r50_d8", "deeplabv3plus_r50_d8"]


def _published(variant: str, num_classes: int = 19) -> dict:
    """A checkpoint as mmseg saves it: {"meta": ..., "state_dict": ...}."""
    sd = synthetic_state_dict(FORMATS[f"mmseg:{variant}"], num_classes)
    return {"meta": {"mmseg_version": "0.5.0", "CLASSES": [str(i) for i in range(num_classes)]}, "state_dict": sd}


def test_one_record_per_published_model():
    assert sorted(r.variant for r in records("mmseg")) == sorted(VARIANTS)
    for variant in VARIANTS:
        manifest = load_manifest(FORMATS[f"mmseg:{variant}"].manifest)
        assert manifest.class_dim_keys == {
            "decode_head.conv_seg.weight", "decode_head.conv_seg.bias",
            "auxiliary_head.conv_seg.weight", "auxiliary_head.conv_seg.bias",
        }
        assert manifest.keys["backbone.stem.0.weight"] == (32, 3, 3, 3)  # ResNetV1c's deep stem


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("num_classes", [19, 11])
def test_files_detect_convert_and_load(variant, num_classes):
    published = _published(variant, num_classes)
    converted = load_through_detection(published, FORMATS[f"mmseg:{variant}"], num_classes)
    # Renaming only: each official tensor lands once, untouched.
    sd = published["state_dict"]
    assert len(converted) == len(sd) and {id(v) for v in converted.values()} == {id(v) for v in sd.values()}


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
    record = FORMATS[f"mmseg:{variant}"]
    sd = synthetic_state_dict(record)
    assert record.convert(sd)[segkit] is sd[official]


def test_the_image_pooling_branch_is_where_the_rules_put_it():
    model = segkit_model(FORMATS["mmseg:deeplabv3plus_r50_d8"], 19)
    assert isinstance(model.aspp.branches[ASPP_POOL_INDEX], ImagePooling)
    # mmseg concatenates image pooling first: the 3x3 bottleneck's input channels must come in that order.
    assert model.aspp.pool_first


def test_a_key_of_another_model_is_refused_by_name():
    record = FORMATS["mmseg:fcn_r50_d8"]
    sd = synthetic_state_dict(record)
    sd["decode_head.psp_modules.0.1.conv.weight"] = sd.pop("decode_head.convs.1.conv.weight")
    with pytest.raises(ValueError, match=r"no conversion rule for 1 official keys.*psp_modules\.0\.1\.conv\.weight"):
        record.convert(sd)
    with pytest.raises(FormatError, match=r"closest: mmseg:fcn_r50_d8 .*missing \(1\): decode_head\.convs\.1\.conv"):
        detect_format(sd)


def test_a_partial_checkpoint_is_refused_naming_the_keys():
    sd = synthetic_state_dict(FORMATS["mmseg:deeplabv3plus_r50_d8"])
    for key in ("decode_head.c1_bottleneck.conv.weight", "auxiliary_head.conv_seg.bias"):
        del sd[key]
    with pytest.raises(FormatError, match=r"closest: mmseg:deeplabv3plus_r50_d8 .*missing \(2\): "
                                          r"decode_head\.c1_bottleneck\.conv\.weight, auxiliary_head\.conv_seg\.bias"):
        detect_format(sd)


@pytest.mark.parametrize("variant", VARIANTS)
def test_config_runs_mmseg_whole_image_protocol(variant):
    protocol = PROTOCOLS[f"{variant}_cityscapes"]
    assert protocol.config == FORMATS[f"mmseg:{variant}"].config
    cfg = load_cfg(f"configs/{protocol.config}")
    # mmseg normalises RGB 0..255 by mean 123.675/116.28/103.53, std 58.395/57.12/57.375: the same on 0..1.
    assert [v * 255 for v in cfg.INPUT.MEAN] == pytest.approx([123.675, 116.28, 103.53])
    assert [v * 255 for v in cfg.INPUT.STD] == pytest.approx([58.395, 57.12, 57.375])
    assert tuple(cfg.INPUT.MEAN) == pytest.approx(protocol.mean) and tuple(cfg.INPUT.STD) == pytest.approx(protocol.std)
    assert (cfg.TEST.SCALE, cfg.TEST.FLIP, cfg.TEST.MSC, cfg.TEST.SLIDE) == (protocol.scale, protocol.flip, False, False)
    assert output_align_corners(cfg) is protocol.output_align_corners is cfg.MODEL.ALIGN_CORNERS is False
    assert cfg.TEST.SIZE_DIVISOR == 1  # mmseg's whole-image inference pads nothing


def test_a_file_without_batch_counters_still_converts_and_loads():
    """Files written before PyTorch 0.4.1 (and by some trainers) lack num_batches_tracked: they still fit."""
    from segkit.zoo.formats import FORMATS, convert_official, detect_format, load_manifest

    record = FORMATS["mmseg:fcn_r50_d8"]
    manifest = load_manifest(record.manifest)
    sd = {k: torch.zeros(shape) for k, shape in manifest.keys.items() if not k.endswith("num_batches_tracked")}
    detection = detect_format(sd)
    assert detection.format is record and detection.num_classes == 19
    converted = convert_official(sd, detection)
    assert sum(k.endswith("num_batches_tracked") for k in converted) == \
        sum(k.endswith("num_batches_tracked") for k in manifest.keys) > 0
