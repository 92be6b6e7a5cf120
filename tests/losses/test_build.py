from collections import OrderedDict

import pytest
import torch
from torch import nn

from segkit.config import get_cfg
from segkit.losses import CrossEntropy, OhemCrossEntropy, build_criterion
from segkit.models.segmentors.base import Segmentor


class TwoAux(Segmentor):
    aux_names = ("aux_a", "aux_b")
    default_aux_weights = (1.0, 0.5)
    head_names = ("head",)

    def __init__(self, c=4):
        super().__init__()
        self.head = nn.Conv2d(3, c, 1)
        self.aux_a = nn.Conv2d(3, c, 1)
        self.aux_b = nn.Conv2d(3, c, 1)

    def forward(self, x):
        return self.outputs(self.head(x), OrderedDict(aux_a=self.aux_a(x), aux_b=self.aux_b(x)))


def cfg_for(num_classes=4, **loss):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = num_classes
    for k, v in loss.items():
        setattr(cfg.LOSS, k, v)
    return cfg


def test_total_is_weighted_sum_and_parts_are_named():
    model = TwoAux().train()
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    crit = build_criterion(cfg_for(), model)
    out = model(x)
    total, parts = crit(out, y)
    assert set(parts) == {"loss_main", "loss_aux_a", "loss_aux_b"}
    expected = parts["loss_main"] + 1.0 * parts["loss_aux_a"] + 0.5 * parts["loss_aux_b"]
    assert torch.allclose(total.detach(), expected)
    total.backward()
    assert model.aux_b.weight.grad is not None
    # each aux head owns its loss module
    assert crit.aux["aux_a"] is not crit.aux["aux_b"] and isinstance(crit.aux["aux_a"], OhemCrossEntropy)


def test_config_weights_loss_names_and_eval_output():
    model = TwoAux().train()
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    crit = build_criterion(cfg_for(NAME="ce", AUX_NAME="ce", AUX_WEIGHTS=[0.0, 2.0]), model)
    assert isinstance(crit.main, CrossEntropy)
    total, parts = crit(model(x), y)
    assert torch.allclose(total.detach(), parts["loss_main"] + 2.0 * parts["loss_aux_b"])
    total_eval, parts_eval = crit(model.eval()(x), y)  # plain logits: main head only
    assert set(parts_eval) == {"loss_main"} and torch.allclose(total_eval, parts["loss_main"])


def test_aux_weight_length_error_names_the_key():
    with pytest.raises(ValueError, match=r"LOSS\.AUX_WEIGHTS has 1 values"):
        build_criterion(cfg_for(AUX_WEIGHTS=[0.4]), TwoAux())


def test_class_weights_from_config_and_argument():
    model = TwoAux()
    crit = build_criterion(cfg_for(NAME="ce", CLASS_WEIGHTS=[1.0, 2.0, 3.0, 4.0]), model)
    assert crit.main.weight.tolist() == [1.0, 2.0, 3.0, 4.0]
    crit = build_criterion(cfg_for(), model, class_weights=[1.0, 1.0, 0.5, 2.0])
    assert crit.aux["aux_b"].weight.tolist() == [1.0, 1.0, 0.5, 2.0]
    with pytest.raises(ValueError, match=r"LOSS\.CLASS_WEIGHTS has 3 values but MODEL\.NUM_CLASSES is 4"):
        build_criterion(cfg_for(CLASS_WEIGHTS=[1.0, 1.0, 1.0]), model)
    with pytest.raises(ValueError, match="given twice"):
        build_criterion(cfg_for(CLASS_WEIGHTS=[1.0] * 4), model, class_weights=[1.0] * 4)
    with pytest.raises(ValueError, match=r"LOSS\.NAME 'focal'"):
        build_criterion(cfg_for(NAME="focal"), model)


def test_ddp_style_wrapper_is_unwrapped():
    class Wrapper(nn.parallel.DistributedDataParallel):
        def __init__(self, module):  # no process group needed to test the unwrapping
            nn.Module.__init__(self)
            self.module = module

    crit = build_criterion(cfg_for(), Wrapper(TwoAux()))
    assert list(crit.aux) == ["aux_a", "aux_b"]


class BoundaryModel(Segmentor):
    """A toy PIDNet: a class-logit aux head, a 1-channel edge head with its own loss, and a joint term."""

    aux_names = ("aux_a", "edge")
    default_aux_weights = (0.4, 20.0)
    aux_losses = {"aux_a": "ce", "edge": "boundary_bce"}
    joint_losses = {"edge_ohem": ("boundary_ohem", ("main", "edge"), 0.5)}
    head_names = ("head",)

    def __init__(self, c=4):
        super().__init__()
        self.head = nn.Conv2d(3, c, 1)
        self.aux_a = nn.Conv2d(3, c, 1)
        self.edge = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        return self.outputs(self.head(x), OrderedDict(aux_a=self.aux_a(x), edge=self.edge(x)))


def test_model_declares_head_losses_and_joint_terms():
    model = BoundaryModel().train()
    x, y = torch.randn(2, 3, 16, 16), torch.randint(0, 4, (2, 16, 16))
    crit = build_criterion(cfg_for(AUX_NAME="ohem"), model)
    assert isinstance(crit.aux["aux_a"], CrossEntropy)  # the model's declaration beats LOSS.AUX_NAME
    assert type(crit.aux["edge"]).__name__ == "BoundaryBCE"
    total, parts = crit(model(x), y)
    assert set(parts) == {"loss_main", "loss_aux_a", "loss_edge", "loss_edge_ohem"}
    expected = parts["loss_main"] + 0.4 * parts["loss_aux_a"] + 20.0 * parts["loss_edge"] + 0.5 * parts["loss_edge_ohem"]
    assert torch.allclose(total.detach(), expected)
    total.backward()
    assert model.edge.weight.grad is not None
    # Plain logits (eval mode): the terms that need an aux output are skipped.
    _, parts_eval = crit(model.eval()(x), y)
    assert set(parts_eval) == {"loss_main"}


@pytest.mark.parametrize(
    "attrs,match",
    [
        ({"aux_losses": {"aux_c": "ce"}}, r"aux_losses names \['aux_c'\]"),
        ({"aux_losses": {"edge": "boundary_ohem"}}, r"aux_losses\['edge'\] 'boundary_ohem' takes"),
        ({"joint_losses": {"t": ("boundary_ohem", ("main", "nope"), 1.0)}}, r"joint_losses\['t'\]"),
        ({"joint_losses": {"aux_a": ("ce", ("main",), 1.0)}}, r"joint_losses\['aux_a'\]"),
        ({"joint_losses": {"t": ("boundary_ohem", ("main",), 1.0)}}, r"takes \['logits', 'binary'\]"),
    ],
)
def test_bad_loss_declarations_are_refused(attrs, match):
    model = type("Bad", (BoundaryModel,), attrs)()
    with pytest.raises(ValueError, match=match):
        build_criterion(cfg_for(), model)


def test_main_head_takes_only_class_logit_losses():
    with pytest.raises(ValueError, match=r"LOSS\.NAME 'boundary_bce' takes \['binary'\]"):
        build_criterion(cfg_for(NAME="boundary_bce"), TwoAux())


def test_ohem_settings_and_class_weights_reach_the_joint_term():
    cfg = cfg_for(OHEM_THRESH=0.9, OHEM_MIN_KEPT=131072, BOUNDARY_THRESH=0.7, CLASS_WEIGHTS=[1.0, 2.0, 3.0, 4.0])
    joint = build_criterion(cfg, BoundaryModel()).joint["edge_ohem"]
    assert joint.thresh == 0.7 and joint.ohem.thresh == 0.9 and joint.ohem.min_kept == 131072
    assert joint.ohem.weight.tolist() == [1.0, 2.0, 3.0, 4.0]
