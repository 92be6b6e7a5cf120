"""The bisenetv2 zoo backbone: its classifier trains both branches, and its export loads into the segmentor."""
from __future__ import annotations

import torch

from segkit.config import load_cfg
from segkit.models.backbones import build_backbone
from segkit.models.build import build_model, load_initial_weights
from segkit.models.classifier import create_classifier
from segkit.pretrain import export_backbone


def test_classifier_gives_every_backbone_parameter_a_gradient() -> None:
    model = create_classifier("bisenetv2", num_classes=10)
    assert model.fc.in_features == 1024
    with torch.no_grad():  # undo the zero-initialised residual norms, which block gradients at step 0 only
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.0)
    model(torch.randn(2, 3, 64, 64)).logsumexp(1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    # The context embedding's first norm feeds a conv and a second BN, whose batch mean cancels any shift:
    # its bias gets no gradient in training mode by construction (as in the public model).
    assert no_grad == ["backbone.semantic.ce.norm.bias"]  # the detail branch included: the head sees both


def test_segmentor_branches_are_the_zoo_backbone() -> None:
    cfg = load_cfg(None, ["MODEL.NAME", "bisenetv2", "MODEL.NUM_CLASSES", "19"])
    seg = build_model(cfg)
    backbone = build_backbone("bisenetv2")
    assert list(seg.backbone.state_dict()) == list(backbone.state_dict())
    assert all(k.startswith(("backbone.", "bga.", "head.", "aux")) for k in seg.state_dict())


def test_exported_classifier_loads_into_bisenetv2_with_no_missing_keys(tmp_path) -> None:
    classifier = create_classifier("bisenetv2", num_classes=10)
    with torch.no_grad():
        for p in classifier.parameters():
            p.normal_()
    ckpt = {"kind": "classifier", "model": classifier.state_dict()}
    out = str(tmp_path / "backbone.pth")
    exported = export_backbone(ckpt, out)
    assert exported and all(not k.startswith(("pre_logits", "fc")) for k in exported)

    cfg = load_cfg(None, ["MODEL.NAME", "bisenetv2", "MODEL.BACKBONE.NAME", "bisenetv2", "MODEL.BACKBONE.WEIGHTS", out])
    seg = load_initial_weights(build_model(cfg), cfg)  # strict: a missing or extra key would raise
    for k, v in classifier.backbone.state_dict().items():
        assert torch.equal(seg.backbone.state_dict()[k], v), k
    seg.eval()
    with torch.no_grad():
        assert seg(torch.randn(1, 3, 64, 128)).shape == (1, 19, 64, 128)
