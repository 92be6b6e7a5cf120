"""segkit.zoo.formats: unwrapping, detection against the manifests, refusals that name the keys at fault."""
from __future__ import annotations

import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.zoo.formats import FORMATS, FormatError, convert_official, detect_format, load_manifest, unwrap
from tests.zoo.formats_synthetic import synthetic_state_dict

PIDNET_S = FORMATS["pidnet:pidnet_s"]


def test_every_record_has_its_manifest_and_a_distinct_name():
    assert {"coincheung:bisenetv1", "coincheung:bisenetv2", "pidnet:pidnet_s", "pidnet:pidnet_m", "pidnet:pidnet_l",
            "ddrnet:ddrnet_23_slim", "ddrnet:ddrnet_23", "stdc:stdc1", "stdc:stdc2"} <= set(FORMATS)
    for record in FORMATS.values():
        manifest = load_manifest(record.manifest)
        assert manifest.keys and manifest.class_dim_keys <= set(manifest.keys)


def test_unwrap_strips_the_wrappers_of_each_source():
    sd = {"a.weight": torch.ones(1), "b.bias": torch.ones(2)}
    assert unwrap(sd) == sd  # CoinCheung, STDC-Seg: bare
    assert unwrap({"state_dict": sd, "meta": {"CLASSES": []}}) == sd  # mmseg
    assert unwrap({f"module.{k}": v for k, v in sd.items()}) == sd  # DataParallel
    # The HRNet-based trainers (PIDNet, DDRNet): "model." and their loss modules' class weights beside it.
    wrapped = {f"model.{k}": v for k, v in sd.items()}
    assert unwrap({**wrapped, "sem_loss.criterion.weight": torch.ones(19), "loss.criterion.weight": torch.ones(19)}) == sd
    # Any other key beside the wrapped ones is kept, for detection to name.
    assert set(unwrap({**wrapped, "other.weight": torch.ones(1)})) == {*sd, "other.weight"}
    # A prefix that only some keys carry is no wrapper.
    few = {"model.x": torch.ones(1), "a": torch.ones(1), "b": torch.ones(1)}
    assert unwrap(few) == few


@pytest.mark.parametrize("bad, match", [
    ([1, 2], "expected a state_dict"),
    ({"state_dict": {}}, "expected a state_dict"),
    ({"model": {"a": torch.ones(1)}, "iteration": 3}, "not a state_dict: 2 entries"),
])
def test_unwrap_refuses_what_is_no_state_dict(bad, match):
    with pytest.raises(FormatError, match=match):
        unwrap(bad)


def test_detection_names_the_keys_that_do_not_fit():
    sd = synthetic_state_dict(PIDNET_S)
    del sd["layer1.0.conv1.weight"]
    sd["spp.scale0.2.weight"] = torch.rand(96, 512, 3, 3)
    sd["extra.weight"] = torch.rand(3)
    with pytest.raises(FormatError) as err:
        detect_format(sd)
    msg = str(err.value)
    assert "closest: pidnet:pidnet_s" in msg
    assert "missing (1): layer1.0.conv1.weight" in msg
    assert "unexpected (1): extra.weight" in msg
    assert "shape (1): spp.scale0.2.weight: (96, 512, 3, 3), expected (96, 512, 1, 1)" in msg
    # convert_official checks the manifest too, for a detection made from another file.
    with pytest.raises(FormatError, match="does not fit pidnet:pidnet_s: missing"):
        convert_official(sd, detect_format(synthetic_state_dict(PIDNET_S)))


def test_long_lists_of_misfits_are_cut_with_a_count():
    sd = {f"layer{i}.weight": torch.rand(1) for i in range(40)}
    with pytest.raises(FormatError, match=r"unexpected \(40\): layer0.weight, .*, \+35 more"):
        detect_format(sd)


def test_class_dims_are_free_but_must_agree():
    sd = synthetic_state_dict(PIDNET_S, num_classes=7)
    assert detect_format(sd).num_classes == 7
    sd["seghead_p.conv2.bias"] = torch.rand(5)
    sd["seghead_p.conv2.weight"] = torch.rand(5, 128, 1, 1)
    with pytest.raises(FormatError, match="class dimensions disagree"):
        detect_format(sd)
    sd["final_layer.conv2.weight"] = torch.rand(7, 64, 1, 1)  # a non-class dim still counts
    with pytest.raises(FormatError, match=r"final_layer.conv2.weight: \(7, 64, 1, 1\), expected \(19, 128, 1, 1\) \(class dim free\)"):
        detect_format(sd)


@pytest.mark.parametrize("config", ["cityscapes/pidnet_s.yaml", "cityscapes/bisenetv1_r18.yaml", "cityscapes/stdc1_seg50.yaml"])
def test_a_segkit_state_dict_is_not_taken_for_an_official_one(config):
    with torch.device("meta"):
        sd = build_model(load_cfg(f"configs/{config}")).state_dict()
    with pytest.raises(FormatError, match="in no known official format"):
        detect_format(unwrap(sd))

