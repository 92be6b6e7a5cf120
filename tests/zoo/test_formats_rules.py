"""segkit.zoo.formats.rules: the renaming rules the official-format converters are written in."""
from __future__ import annotations

import pytest
import torch

from segkit.zoo.formats.rules import (add_bn_counters, conv_bn, convert_with, ddr_head, preact, pyramid_pooling,
                                      residual_block)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _state(*keys: str) -> dict[str, torch.Tensor]:
    return {k: torch.full((1,), float(i)) for i, k in enumerate(keys)}


def _renamed(state: dict[str, torch.Tensor], rules) -> dict[str, str]:
    """official key -> segkit key, through the values (each is distinct)."""
    out = convert_with(state, rules)
    by_value = {float(v): k for k, v in out.items()}
    return {k: by_value[float(v)] for k, v in state.items()}


def test_convert_with_drops_then_renames_by_the_first_fully_matching_rule():
    state = _state("stem.weight", "stem.bias", "aux.loss_weight", "head.conv.weight")
    rules = [(r"stem\.(weight|bias)", r"backbone.conv1.\1"), (r"head\..*", "wrong"), (r"head\.conv\.weight", "c")]
    out = convert_with(state, rules, drop=[r"aux\..*"])
    assert list(out) == ["backbone.conv1.weight", "backbone.conv1.bias", "wrong"]  # the first rule that fits wins
    assert torch.equal(out["backbone.conv1.bias"], state["stem.bias"])
    # A rule must match the whole key: "stem.weight_ema" fits none and is refused with the count.
    with pytest.raises(ValueError, match=r"no conversion rule for 2 official keys, e.g. \['stem.weight_ema', 'x'\]"):
        convert_with(_state("stem.weight", "stem.weight_ema", "x"), rules)


def test_two_official_keys_onto_one_segkit_key_is_an_error():
    with pytest.raises(ValueError, match="two source keys map to 'same'"):
        convert_with(_state("a", "b"), [(r"[ab]", "same")])


def test_bn_counters_are_added_where_missing_and_kept_where_present():
    # bn's own counter comes first: a 0 added after its running_var would replace it.
    state = {"abn.weight": torch.ones(2), "abn.running_var": torch.ones(2),
             "bn.num_batches_tracked": torch.tensor(7), "bn.running_var": torch.ones(2)}
    out = add_bn_counters(state)
    assert list(out) == ["abn.weight", "abn.running_var", "abn.num_batches_tracked", "bn.num_batches_tracked",
                         "bn.running_var"]
    assert out["abn.num_batches_tracked"].dtype == torch.long and int(out["abn.num_batches_tracked"]) == 0
    assert int(out["bn.num_batches_tracked"]) == 7


def test_conv_bn_and_preact_and_ddr_head():
    state = _state("conv.weight", "conv.bias", *(f"bn.{p}" for p in BN))
    names = _renamed(state, conv_bn(r"conv", r"bn", "layer"))
    assert names["conv.bias"] == "layer.conv.bias" and names["bn.running_var"] == "layer.bn.running_var"
    assert _renamed(_state("u.0.weight", "u.2.weight"), preact(r"u", "v")) == {"u.0.weight": "v.0.weight",
                                                                             "u.2.weight": "v.2.weight"}
    head = _state("h.bn1.weight", "h.conv1.weight", "h.bn2.running_mean", "h.conv2.weight", "h.conv2.bias")
    assert _renamed(head, ddr_head(r"h", "seghead")) == {
        "h.bn1.weight": "seghead.conv.0.weight", "h.conv1.weight": "seghead.conv.2.weight",
        "h.bn2.running_mean": "seghead.classifier.0.running_mean", "h.conv2.weight": "seghead.classifier.2.weight",
        "h.conv2.bias": "seghead.classifier.2.bias"}


@pytest.mark.parametrize("bottleneck,layers", [(False, ["conv1", "conv2"]), (True, ["body.0", "body.1", "body.2"])])
def test_residual_block_into_basic_block_or_bottleneck(bottleneck, layers):
    keys = [f"layer1.0.conv{i}.weight" for i in range(1, len(layers) + 1)]
    keys += [f"layer1.0.bn{i}.running_mean" for i in range(1, len(layers) + 1)]
    keys += ["layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight"]
    names = _renamed(_state(*keys), residual_block(r"layer1\.0", "stage1.0", bottleneck))
    assert [names[f"layer1.0.conv{i}.weight"] for i in range(1, len(layers) + 1)] == [
        f"stage1.0.{layer}.conv.weight" for layer in layers]
    assert names[f"layer1.0.bn{len(layers)}.running_mean"] == f"stage1.0.{layers[-1]}.bn.running_mean"
    assert names["layer1.0.downsample.0.weight"] == "stage1.0.shortcut.conv.weight"
    assert names["layer1.0.downsample.1.weight"] == "stage1.0.shortcut.bn.weight"


@pytest.mark.parametrize("parallel", [False, True])
def test_pyramid_pooling_numbers_scales_from_zero(parallel):
    keys = ["spp.scale1.1.weight", "spp.scale4.3.weight", "spp.scale0.0.bias", "spp.compression.2.weight",
            "spp.shortcut.0.running_var"]
    keys += ["spp.scale_process.0.weight"] if parallel else ["spp.process1.0.weight", "spp.process4.2.weight"]
    names = _renamed(_state(*keys), pyramid_pooling(r"spp", "pool", parallel))
    assert names["spp.scale1.1.weight"] == "pool.scales.0.1.weight"
    assert names["spp.scale4.3.weight"] == "pool.scales.3.3.weight"
    assert names["spp.scale0.0.bias"] == "pool.scale0.0.bias" and names["spp.compression.2.weight"] == "pool.compression.2.weight"
    if parallel:
        assert names["spp.scale_process.0.weight"] == "pool.process.0.weight"
    else:
        assert names["spp.process1.0.weight"] == "pool.process.0.0.weight"
        assert names["spp.process4.2.weight"] == "pool.process.3.2.weight"
