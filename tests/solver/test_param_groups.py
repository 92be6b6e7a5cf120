import pytest
import torch
from torch import nn

from segkit.config import get_cfg, get_cls_cfg
from segkit.models.classifier import create_classifier
from segkit.models.segmentors.base import Segmentor
from segkit.solver import build_optimizer, get_param_groups


class Toy(Segmentor):
    head_names = ("head", "fuse")

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 1),
                                      nn.GroupNorm(2, 8), nn.SyncBatchNorm(8))
        self.fuse = nn.Sequential(nn.Conv2d(8, 8, 1), nn.LayerNorm(8))
        self.head = nn.Sequential(nn.Conv2d(8, 4, 1), self.fuse[0])  # shares a conv with fuse
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def group_of(groups, p):
    found = [g for g in groups if any(q is p for q in g["params"])]
    assert len(found) == 1, "every parameter in exactly one group"
    return found[0]


def test_segmentation_groups():
    m = Toy()
    groups = get_param_groups(m, 5e-4, head_modules=m.head_modules(), head_lr_mult=10.0)
    trainable = [p for p in m.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    for p in trainable:
        group_of(groups, p)
    assert all(g["params"] for g in groups)
    bb = m.backbone
    assert group_of(groups, bb[0].weight)["weight_decay"] == 5e-4
    for norm in (bb[1], bb[3], bb[4], m.fuse[1]):
        assert group_of(groups, norm.weight)["weight_decay"] == 0.0
        assert group_of(groups, norm.bias)["weight_decay"] == 0.0
    assert group_of(groups, bb[2].bias)["weight_decay"] == 0.0
    assert group_of(groups, bb[2].weight)["lr_mult"] == 1.0
    for p in (m.head[0].weight, m.fuse[0].weight, m.fuse[1].weight):
        assert group_of(groups, p)["lr_mult"] == 10.0
    assert group_of(groups, m.head[0].weight)["weight_decay"] == 5e-4


@pytest.mark.parametrize("name", ["resnet18", "seresnet18", "efficientnet_b0", "xception41"])
def test_pretraining_defaults_leave_every_1d_parameter_of_a_classifier_undecayed(name):
    # The published classification recipes exempt 1-D parameters; for the zoo those are exactly the
    # norm and bias parameters that WEIGHT_DECAY_NORM / WEIGHT_DECAY_BIAS (0 in pretraining) cover.
    cfg = get_cls_cfg()
    m = create_classifier(name, num_classes=3)
    opt = build_optimizer(cfg, m)
    assert {g["lr_mult"] for g in opt.param_groups} == {1.0}  # a classifier has no head modules
    for p in m.parameters():
        assert group_of(opt.param_groups, p)["weight_decay"] == (0.0 if p.ndim <= 1 else cfg.SOLVER.WEIGHT_DECAY)


def test_build_optimizer_sets_group_lrs_and_hyperparameters():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.HEAD_LR_MULT, cfg.SOLVER.NESTEROV = 0.02, 10.0, True
    m = Toy()
    opt = build_optimizer(cfg, nn.parallel.DataParallel(m))  # a wrapper is unwrapped
    assert isinstance(opt, torch.optim.SGD)
    for g in opt.param_groups:
        assert g["lr"] == 0.02 * g["lr_mult"] and g["momentum"] == 0.9 and g["nesterov"]
    assert {g["lr_mult"] for g in opt.param_groups} == {1.0, 10.0}
