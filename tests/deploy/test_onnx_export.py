"""ONNX export of every registered segmentor, checked against PyTorch; the errors of what cannot export."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segkit.deploy import ExportError, OnnxSegmentor, ParityError, export_onnx
from segkit.deploy import onnx_export
from segkit.deploy.exportable import ExactAdaptiveAvgPool2d, make_exportable
from segkit.deploy.runtime import MAX_SIZE_KEY, MIN_SIZE_KEY
from segkit.models import build_model
from segkit.models.segmentors import SEGMENTORS
from tests.deploy.conftest import CHECK_SIZES


@torch.no_grad()
def calibrate_norms(model: nn.Module, size: tuple[int, int] = CHECK_SIZES[0]) -> nn.Module:
    """Set every BN's running statistics from a few normalised-scale inputs, then eval mode.

    An untrained model with BN's default statistics (mean 0, var 1) lets activations grow layer by layer
    (an untrained PIDNet reaches logits of 400), and float32 rounding then differs between runtimes by
    more than any fixed bar. A trained model's statistics match its data; calibrated ones do too.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        model(torch.randn(2, 3, *size, generator=generator))
    return model.eval()


@pytest.mark.parametrize("name", sorted(SEGMENTORS))
def test_every_segmentor_exports_with_parity_at_two_sizes(name, seg_cfg, tmp_path):
    cfg = seg_cfg(name)
    torch.manual_seed(0)  # the same weights whatever ran before in this worker
    model = calibrate_norms(build_model(cfg))
    path = str(tmp_path / f"{name}.onnx")
    results = export_onnx(model, path, check_sizes=CHECK_SIZES, num_classes=cfg.MODEL.NUM_CLASSES)
    assert [r.size for r in results] == list(CHECK_SIZES) and [r.batch for r in results] == [2, 1]
    assert all(r.ok for r in results), [r.describe() for r in results]
    print(f"{name}: " + "; ".join(r.describe() for r in results))  # the figures, with pytest -s
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert MIN_SIZE_KEY in meta and MAX_SIZE_KEY not in meta  # traced at 1024x2048: no upper bound
    runner = OnnxSegmentor(path, num_classes=cfg.MODEL.NUM_CLASSES)
    assert runner.min_size[0] <= min(h for h, _ in CHECK_SIZES) and runner.max_size is None
    # Conv+BN folded: the file keeps at most the norms no conv precedes (BiSeNetV2's context embedding,
    # pre-activation units), and some were folded.
    def norms(m: nn.Module) -> int:
        return sum(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules())

    assert sum(n.op_type == "BatchNormalization" for n in onnx.load(path).graph.node) <= norms(make_exportable(model))
    assert norms(make_exportable(model)) < norms(model)


@pytest.mark.parametrize("size", [(8, 12), (7, 13), (33, 65), (5, 1), (19, 6)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6, (2, None)])
def test_exact_adaptive_pool_equals_pytorch_at_any_size(size, bins):
    x = torch.randn(2, 4, *size)
    expected = F.adaptive_avg_pool2d(x, bins)
    torch.testing.assert_close(ExactAdaptiveAvgPool2d(bins)(x), expected, rtol=1e-5, atol=1e-6)


def test_make_exportable_replaces_sized_pools_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(3), nn.AdaptiveAvgPool2d(1))
    model[1].running_mean.uniform_()
    model.eval()
    exportable = make_exportable(model)
    assert isinstance(exportable[2], ExactAdaptiveAvgPool2d) and isinstance(exportable[3], nn.AdaptiveAvgPool2d)
    assert isinstance(model[2], nn.AdaptiveAvgPool2d)  # the original is untouched
    x = torch.randn(1, 3, 17, 23)
    torch.testing.assert_close(exportable(x), model(x), rtol=1e-5, atol=1e-5)


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum() > 0 else x  # a branch on values: no graph can hold it


class NoOnnxOp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.special.zeta(x, x)  # traces fine, has no ONNX counterpart


def _fcn_with(seg_cfg, module: nn.Module) -> nn.Module:
    model = build_model(seg_cfg("fcn")).eval()
    model.decode_head.dropout = module
    return model


def test_untraceable_module_is_named(seg_cfg, tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match=r"decode_head\.dropout \(DataDependent\)"):
        export_onnx(_fcn_with(seg_cfg, DataDependent()), str(path), check_sizes=CHECK_SIZES)
    assert not os.path.exists(path)


def test_module_without_onnx_op_is_named(seg_cfg, tmp_path):
    with pytest.raises(ExportError, match=r"zeta.*decode_head\.dropout \(NoOnnxOp\)"):
        export_onnx(_fcn_with(seg_cfg, NoOnnxOp()), str(tmp_path / "bad.onnx"), check_sizes=CHECK_SIZES)


def test_disagreeing_file_is_not_written_and_the_sizes_are_named(seg_cfg, tmp_path, monkeypatch):
    def perturbed(model: nn.Module) -> nn.Module:
        m = make_exportable(model)
        with torch.no_grad():
            m.decode_head.classifier.bias.add_(0.01)  # what a wrong fold or a mis-sized pool would do, smaller
        return m

    monkeypatch.setattr(onnx_export, "make_exportable", perturbed)
    path = tmp_path / "fcn.onnx"
    with pytest.raises(ParityError) as err:
        export_onnx(build_model(seg_cfg("fcn")).eval(), str(path), check_sizes=CHECK_SIZES)
    assert "2x3x67x93" in str(err.value) and "1x3x100x141" in str(err.value) and "1.00e-02" in str(err.value)
    assert not os.path.exists(path) and not [p for p in os.listdir(tmp_path) if p.startswith("fcn.onnx")]


def test_old_opset_is_refused(seg_cfg, tmp_path):
    with pytest.raises(ValueError, match="opset 13"):
        export_onnx(build_model(seg_cfg("fcn")), str(tmp_path / "x.onnx"), opset=13)


def test_session_export_is_checked(exported):
    assert all(r.ok for r in exported.results)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        np.testing.assert_allclose(OnnxSegmentor(exported.onnx)(x).numpy(), exported.model(x).numpy(), atol=1e-3)
