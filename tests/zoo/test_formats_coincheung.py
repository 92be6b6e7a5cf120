"""CoinCheung/BiSeNet release files: bare state_dicts of the training models (auxiliary heads included)."""
from __future__ import annotations

import pytest
import torch

from segkit.zoo.formats import FORMATS, FormatError, detect_format
from tests.zoo.formats_synthetic import load_through_detection, synthetic_state_dict


@pytest.mark.parametrize("variant", ["bisenetv1", "bisenetv2"])
@pytest.mark.parametrize("num_classes", [19, 171])  # Cityscapes; COCO-Stuff's released models
def test_files_detect_convert_and_load(variant, num_classes):
    record = FORMATS[f"coincheung:{variant}"]
    load_through_detection(synthetic_state_dict(record, num_classes), record, num_classes)


def test_v1_backbone_goes_through_the_resnet_converter():
    record = FORMATS["coincheung:bisenetv1"]
    sd = synthetic_state_dict(record)
    sd["cp.resnet.layer3.0.downsample.1.running_mean"] = torch.full((256,), 7.0)
    converted = load_through_detection(sd, record, 19)
    assert converted["backbone.layer3.0.downsample.conv.bn.running_mean"].eq(7.0).all()


def test_v2_booster_heads_are_renamed_by_stride():
    # The official aux2..aux5_4 predict from strides 4..32: segkit's aux4..aux32 (aux4 is a name on both sides).
    record = FORMATS["coincheung:bisenetv2"]
    sd = synthetic_state_dict(record)
    sd["aux4.conv_out.1.bias"] = torch.full((19,), 16.0)
    sd["aux2.conv_out.1.bias"] = torch.full((19,), 4.0)
    converted = load_through_detection(sd, record, 19)
    assert converted["aux16.classifier.bias"].eq(16.0).all() and converted["aux4.classifier.bias"].eq(4.0).all()


def test_an_inference_only_file_is_refused_naming_the_heads():
    sd = {k: v for k, v in synthetic_state_dict(FORMATS["coincheung:bisenetv1"]).items()
          if not k.startswith(("conv_out16.", "conv_out32."))}
    with pytest.raises(FormatError, match=r"closest: coincheung:bisenetv1 .*missing \(14\): conv_out16"):
        detect_format(sd)
