"""Official STDC-Seg files: duplicate stage entries, the ImageNet classifier and unused detail heads dropped."""
from __future__ import annotations

import pytest
import torch

from segkit.zoo.formats import FORMATS
from tests.zoo.formats_synthetic import load_through_detection, synthetic_state_dict


@pytest.mark.parametrize("backbone", ["stdc1", "stdc2"])
@pytest.mark.parametrize("num_classes", [19, 11])
def test_files_detect_convert_and_load(backbone, num_classes):
    record = FORMATS[f"stdc:{backbone}"]
    converted = load_through_detection(synthetic_state_dict(record, num_classes), record, num_classes)
    assert not any(k.startswith(("cp.", "conv_out")) for k in converted)


def test_stages_and_heads_land_where_segkit_keeps_them():
    record = FORMATS["stdc:stdc2"]  # stages of 4, 5 and 3 modules: features 2-5, 6-10, 11-13
    sd = synthetic_state_dict(record)
    sd["cp.backbone.features.10.conv_list.3.bn.bias"] = torch.full((64,), 3.0)
    sd["cp.backbone.features.11.avd_layer.1.weight"] = torch.full((512,), 5.0)
    sd["conv_out_sp8.conv_out.weight"] = torch.full((1, 64, 1, 1), 8.0)
    converted = load_through_detection(sd, record, 19)
    assert converted["backbone.layer3.4.steps.2.bn.bias"].eq(3.0).all()
    assert converted["backbone.layer4.0.avd.bn.weight"].eq(5.0).all()
    assert converted["detail.classifier.weight"].eq(8.0).all()
    # The heads' in-place ABN norms store no counter: it starts at 0.
    assert converted["head.conv.bn.num_batches_tracked"].item() == 0
