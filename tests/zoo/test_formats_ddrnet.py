"""Official DDRNet Cityscapes files: the network with its auxiliary head under "model.", the loss weights beside."""
from __future__ import annotations

import pytest
import torch

from segkit.zoo.formats import FORMATS, FormatError, detect_format
from tests.zoo.formats_synthetic import load_through_detection, synthetic_state_dict


@pytest.mark.parametrize("variant", ["ddrnet_23_slim", "ddrnet_23"])
@pytest.mark.parametrize("num_classes", [19, 11])
def test_files_detect_convert_and_load(variant, num_classes):
    record = FORMATS[f"ddrnet:{variant}"]
    published = {f"model.{k}": v for k, v in synthetic_state_dict(record, num_classes).items()}
    published["loss.criterion.weight"] = torch.rand(num_classes)
    converted = load_through_detection(published, record, num_classes)
    assert converted["aux.classifier.2.weight"].shape[0] == num_classes


def test_a_file_without_the_auxiliary_head_is_refused_naming_it():
    sd = {k: v for k, v in synthetic_state_dict(FORMATS["ddrnet:ddrnet_23"]).items() if not k.startswith("seghead_extra.")}
    with pytest.raises(FormatError, match=r"closest: ddrnet:ddrnet_23 .*missing \(11\): seghead_extra.bn1.weight"):
        detect_format(sd)
