"""The speed protocol on a tiny model: every variant built from the same weights, timed model-only and end to
end, set beside its precision's limit; a variant that cannot be built is recorded, the others still run."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.config import load_cfg
from segkit.deploy.speed import CPU_VARIANTS, Variant, rendered_calibration, time_model, variants

LIMITS = {"fp32": {"gops": 100.0}, "int8": {"gops": 400.0}}


def _tiny(num_classes: int = 19) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1)).eval()


def _pick(*names: str) -> tuple[Variant, ...]:
    return tuple(v for v in CPU_VARIANTS if v.name in names)


def test_pytorch_variants_timed_both_ways_with_limits():
    cfg = load_cfg(None, ["MODEL.NUM_CLASSES", "19"])
    result = time_model(cfg, _tiny(), [(32, 48), (40, 56)], _pick("eager", "fused"), LIMITS, warmup=1, iters=2)
    assert set(result["latency"]) == {"32x48", "40x56"} and result["errors"] == {}
    assert result["gflops"]["32x48"] == pytest.approx(2 * 32 * 48 * (3 * 9 * 8 + 8 * 19) / 1e9)
    for size, rows in result["latency"].items():
        assert list(rows) == ["eager", "fused"]
        for r in rows.values():
            assert r["exact"] and r["limit"] == "fp32" and len(r["model"]["runs_ms"]) == 2
            assert r["predictor"]["median_ms"] > 0
            assert r["limit_ms"] == pytest.approx(1000 * result["gflops"][size] / 100.0)


def test_a_variant_that_cannot_be_built_is_recorded(monkeypatch):
    import segkit.deploy.speed as speed

    real = speed.build_variant

    def failing(model, variant, *args):
        if variant.name == "fused":
            raise RuntimeError("no kernel for this")
        return real(model, variant, *args)

    monkeypatch.setattr(speed, "build_variant", failing)
    cfg = load_cfg(None, ["MODEL.NUM_CLASSES", "19"])
    result = time_model(cfg, _tiny(), [(32, 48)], _pick("eager", "fused"), LIMITS, warmup=0, iters=1,
                        predictor=False)
    assert result["errors"] == {"fused": "RuntimeError: no kernel for this"}
    assert list(result["latency"]["32x48"]) == ["eager"] and result["latency"]["32x48"]["eager"]["predictor"] is None


def test_int8_variants_are_lossy_and_held_to_the_int8_limit(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    names = ("ort_int8", "ort_int8_conv") + (("ov_int8", "ov_int8_conv")
                                             if any(v.runtime == "openvino" for v in variants("cpu")) else ())
    cfg = load_cfg(None, ["MODEL.NUM_CLASSES", "19"])
    result = time_model(cfg, _tiny(), [(72, 96)], _pick(*names), LIMITS, warmup=0, iters=1, calib_images=2)
    assert result["errors"] == {}
    for name in names:
        r = result["latency"]["72x96"][name]
        assert not r["exact"] and r["limit"] == "int8" and r["precision"] == "int8"
        assert r.get("int8_ops") == (["Conv"] if name.endswith("_conv") else None)


def test_variants_offered_follow_the_installed_packages(monkeypatch):
    import segkit.deploy.speed as speed

    monkeypatch.setattr(speed, "openvino_available", lambda: False)
    names = [v.name for v in variants("cpu")]
    assert names[:3] == ["eager", "fused", "compile"] and not any(n.startswith("ov_") for n in names)
    assert [v.name for v in variants("cuda")] == ["eager", "fused", "compile", "fused_fp16", "fused_bf16", "ort_cuda"]
    # OpenVINO runs the ONNX export, which onnxruntime checks: without it, neither runtime is offered.
    monkeypatch.setattr(speed, "openvino_available", lambda: True)
    monkeypatch.setattr(speed, "missing_packages",
                        lambda names=("onnx", "onnxscript", "onnxruntime"): [n for n in names if n == "onnxruntime"])
    assert [v.name for v in variants("cpu")] == ["eager", "fused", "compile"]


def test_rendered_calibration_is_normalised_scenes_at_the_size():
    calibration = rendered_calibration((24, 40), 3, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    batches = list(calibration.inputs())
    assert len(batches) == 3 and batches[0].shape == (1, 3, 24, 40) and abs(batches[0]).max() <= 2.0 + 1e-6
    assert "(24, 40)" in calibration.key
