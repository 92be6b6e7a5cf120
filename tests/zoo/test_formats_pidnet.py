"""Official PIDNet files: "model."-wrapped, loss weights beside them (Cityscapes), CamVid's class order."""
from __future__ import annotations

import pytest
import torch

from segkit.zoo.formats import FORMATS, FormatError, detect_format, unwrap
from segkit.zoo.formats.pidnet import CAMVID_ORDER
from tests.zoo.formats_synthetic import load_through_detection, synthetic_state_dict


def _published(sd: dict, cityscapes: bool) -> dict:
    """As tools/train.py saves FullModel: the network under "model.", the loss modules' class weights beside it."""
    out = {f"model.{k}": v for k, v in sd.items()}
    if cityscapes:
        out.update({"sem_loss.criterion.weight": torch.rand(19), "sb_loss.criterion.weight": torch.rand(19)})
    return out


@pytest.mark.parametrize("variant", ["pidnet_s", "pidnet_m", "pidnet_l"])
def test_cityscapes_files_detect_convert_and_load(variant):
    record = FORMATS[f"pidnet:{variant}"]
    load_through_detection(_published(synthetic_state_dict(record), cityscapes=True), record, 19)


@pytest.mark.parametrize("variant", ["pidnet_s", "pidnet_m"])
def test_camvid_files_come_in_segkit_class_order(variant):
    record = FORMATS[f"pidnet:{variant}"]
    sd = synthetic_state_dict(record, num_classes=11)
    sd["final_layer.conv2.bias"] = torch.arange(11.0)  # class i of the official order (Bicyclist, Building, ...)
    sd["seghead_p.conv2.bias"] = torch.arange(11.0)
    converted = load_through_detection(_published(sd, cityscapes=False), record, 11)
    # segkit's order Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist
    # is the official order's Sky (9), Building (1), Pole (3), Road (6), Sidewalk (7), Tree (10), ...
    assert converted["head.classifier.2.bias"].tolist() == [9, 1, 3, 6, 7, 10, 8, 4, 2, 5, 0] == list(CAMVID_ORDER)
    assert converted["aux_p.classifier.2.bias"].tolist() == list(CAMVID_ORDER)


def test_other_class_counts_keep_their_order():
    record = FORMATS["pidnet:pidnet_s"]
    sd = synthetic_state_dict(record, num_classes=7)
    sd["final_layer.conv2.bias"] = torch.arange(7.0)
    assert load_through_detection(sd, record, 7)["head.classifier.2.bias"].tolist() == list(range(7))


def test_sizes_are_told_apart():
    # S and M share every key and differ in widths; the M file must not pass as S or as L.
    sd = synthetic_state_dict(FORMATS["pidnet:pidnet_m"])
    assert detect_format(sd).format.variant == "pidnet_m"


def test_an_unknown_root_key_beside_model_is_named():
    published = _published(synthetic_state_dict(FORMATS["pidnet:pidnet_s"]), cityscapes=True)
    published["optimizer_state.step"] = torch.zeros(1)
    with pytest.raises(FormatError, match="closest: pidnet:pidnet_s .*unexpected"):
        detect_format(unwrap(published))
