"""ImageNet backbones by name, through the libraries' own download functions (monkeypatched here to hand back
a generated state_dict: no network), converted exactly; offline is one clear error."""
import sys
import urllib.error

import pytest
import timm
import torch
import torchvision
from torchvision.models._api import WeightsEnum

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.models.convert import convert_state_dict
from segkit.utils.checkpoint import strip_prefix
from segkit.zoo import HubError, load_initial_weights, resolve_config
from segkit.zoo.hub import hub_state

CFG = ["MODEL.NAME", "bisenetv1", "MODEL.BACKBONE.NAME", "resnet18"]


def backbone_after(spec):
    cfg = load_cfg(None, [*CFG, "MODEL.BACKBONE.WEIGHTS", spec])
    return load_initial_weights(build_model(cfg), cfg).backbone.state_dict()


def test_timm_name_loads_through_timm_create_model(monkeypatch):
    real, calls = timm.create_model, []

    def create_model(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        torch.manual_seed(3)
        return real(name, pretrained=False, **kwargs)  # what the download would give: a state_dict of that model

    monkeypatch.setattr(timm, "create_model", create_model)
    got = backbone_after("timm:resnet18.a1_in1k")
    assert calls == [("resnet18.a1_in1k", True)]
    torch.manual_seed(3)
    expected = strip_prefix(convert_state_dict("timm", "resnet18", real("resnet18").state_dict()), "backbone.")
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)


def test_torchvision_name_loads_through_the_weights_enum(monkeypatch):
    torch.manual_seed(4)
    source = torchvision.models.resnet18().state_dict()
    seen = []

    def get_state_dict(self, *args, **kwargs):
        seen.append((self, kwargs.get("check_hash")))
        return source

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)
    got = backbone_after("torchvision:ResNet18_Weights.IMAGENET1K_V1")
    assert seen == [(torchvision.models.ResNet18_Weights.IMAGENET1K_V1, True)]
    expected = strip_prefix(convert_state_dict("torchvision", "resnet18", source), "backbone.")
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_offline_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(HubError) as err:
        backbone_after("torchvision:ResNet18_Weights.IMAGENET1K_V1")
    message = str(err.value)
    assert "\n" not in message and "could not fetch torchvision:ResNet18_Weights.IMAGENET1K_V1" in message
    assert "offline?" in message and "https://download.pytorch.org/models/resnet18" in message
    def unreachable(*args, **kwargs):
        raise OSError("cannot reach huggingface.co")

    monkeypatch.setattr(timm, "create_model", unreachable)
    with pytest.raises(HubError, match=r"could not fetch timm:resnet18 \(cannot reach huggingface.co\): offline\?"):
        backbone_after("timm:resnet18")


def test_bad_names_and_places_are_named():
    with pytest.raises(HubError, match="torchvision:ResNet18_Weights.NOPE: not a torchvision weights enum member"):
        backbone_after("torchvision:ResNet18_Weights.NOPE")
    cfg = load_cfg(None, [*CFG, "MODEL.WEIGHTS", "timm:resnet18"])
    with pytest.raises(ValueError, match="timm:resnet18 names ImageNet backbone weights: give it as MODEL.BACKBONE"):
        load_initial_weights(build_model(cfg), cfg)
    with pytest.raises(ValueError, match="names ImageNet backbone weights"):
        resolve_config(None, "timm:resnet18")


def test_timm_names_the_hub_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # its import then fails, as without the extra
    with pytest.raises(HubError) as err:
        hub_state("timm:resnet18")
    assert str(err.value) == 'timm:resnet18: weights need the timm package: pip install -e ".[hub]"'


def test_torchvision_is_segkit_itself(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(HubError, match=r"needs? the torchvision package: pip install -e \.$"):
        hub_state("torchvision:ResNet18_Weights.IMAGENET1K_V1")
