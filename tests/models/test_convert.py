"""ResNet (-C, -D, SE) weight conversion from torchvision and timm: exact logits, the tool, clear errors."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from segkit.models.backbones import build_backbone
from segkit.models.classifier import create_classifier
from segkit.models.convert import available_conversions, convert_state_dict
from tools.convert_weights import main as convert_main

from .test_backbones import randomize_norms

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

SOURCES: dict[tuple[str, str], Callable[[], nn.Module]] = {
    ("torchvision", "resnet18"): lambda: torchvision.models.resnet18(),
    ("torchvision", "resnet50"): lambda: torchvision.models.resnet50(),
    ("timm", "resnet18"): lambda: timm.create_model("resnet18"),
    ("timm", "resnet50"): lambda: timm.create_model("resnet50"),
    ("timm", "resnet50c"): lambda: timm.create_model("resnet50c"),  # mmseg's ResNetV1c, randomly initialised
    ("timm", "resnet50d"): lambda: timm.create_model("resnet50d"),
    ("timm", "seresnet50"): lambda: timm.create_model("seresnet50"),
}


def _source(source: str, name: str) -> nn.Module:
    # Random weights and norm statistics: parity must not rest on identity norms.
    return randomize_norms(SOURCES[(source, name)]()).eval()


@pytest.mark.parametrize("source,name", sorted(SOURCES))
def test_logit_parity(source: str, name: str) -> None:
    ref = _source(source, name)
    model = create_classifier(name).eval()
    model.load_state_dict(convert_state_dict(source, name, ref.state_dict()))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert expected.abs().max() > 1e-2  # not a degenerate all-zero comparison
    assert (expected - got).abs().max().item() <= 1e-4


def test_tool_roundtrip(tmp_path) -> None:
    ref = _source("timm", "resnet18")
    src, dst, bb = tmp_path / "src.pth", tmp_path / "out" / "dst.pth", tmp_path / "bb.pth"
    torch.save(ref.state_dict(), src)
    assert convert_main(["--from", "timm", "--model", "resnet18", "--src", str(src), "--dst", str(dst)]) == 0
    model = create_classifier("resnet18").eval()
    model.load_state_dict(torch.load(dst, weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ref(x) - model(x)).abs().max().item() <= 1e-4
    convert_main(["--from", "timm", "--model", "resnet18", "--src", str(src), "--dst", str(bb), "--backbone-only"])
    build_backbone("resnet18", output_stride=16).load_state_dict(torch.load(bb, weights_only=True))


def test_mismatch_lists_keys_and_shapes(tmp_path, capsys) -> None:
    state = torchvision.models.resnet34().state_dict()
    with pytest.raises(ValueError, match=r"unexpected \(\d+\): backbone\.layer1\.2\.conv1"):
        convert_state_dict("torchvision", "resnet18", state)
    state = torchvision.models.resnet18().state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 1, 1)
    with pytest.raises(ValueError, match=r"layer2\.0\.conv1\.conv\.weight: got \(128, 64, 1, 1\), expected \(128, 64, 3, 3\)"):
        convert_state_dict("torchvision", "resnet18", state)
    del state["fc.bias"]
    with pytest.raises(ValueError, match=r"missing \(1\): fc\.bias"):
        convert_state_dict("torchvision", "resnet18", state)
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    assert convert_main(["--from", "torchvision", "--model", "resnet18", "--src", str(src), "--dst", str(tmp_path / "x.pth")]) == 1
    assert "bad.pth" in capsys.readouterr().err and not (tmp_path / "x.pth").exists()


def test_unknown_pairs_are_errors(tmp_path, capsys) -> None:
    with pytest.raises(KeyError, match="resnet50d"):
        convert_state_dict("torchvision", "resnet50d", {})  # torchvision has no ResNet-D
    assert convert_main(["--from", "timm", "--model", "resnet18", "--src", str(tmp_path / "nothing.pth"), "--dst", "x"]) == 1
    assert "nothing.pth" in capsys.readouterr().err
    pairs = set(available_conversions())
    assert {("torchvision", "resnet152"), ("timm", "resnet101d"), ("timm", "seresnet18")} <= pairs
    assert {("timm", "resnet50c"), ("timm", "resnet101c"), ("timm", "resnet152c")} <= pairs
    assert ("timm", "resnet18c") not in pairs  # timm has no basic-block -C model to convert from


def test_an_unwritable_dst_is_one_line_before_reading_the_source(tmp_path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    dst = blocker / "out.pth"
    assert convert_main(["--from", "timm", "--model", "resnet18", "--src", str(tmp_path / "absent.pth"),
                         "--dst", str(dst)]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write --dst {dst}: ")
