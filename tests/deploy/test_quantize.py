"""INT8: calibration inputs as evaluation makes them, and a quantized model end to end on the demo set."""
from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import torch

from segkit.config import load_cfg
from segkit.data import build_dataset, generate_demo_dataset
from segkit.deploy import OnnxSegmentor, calibration_inputs, quantize_int8
from segkit.deploy.quantize import calibration_indices, int8_agreement
from segkit.evaluation import InferenceMode, inference


@pytest.fixture(scope="module")
def demo(exported, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "cityscapes"
    generate_demo_dataset(str(root), (64, 128), num_train=3, num_val=2, seed=0, workers=1)
    cfg = load_cfg(exported.cfg_file, ["DATASET.ROOT", str(root), "DATASET.CHECK_LABELS", "False"])
    return cfg, build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT, train=False)


def test_calibration_indices_spread_over_the_dataset():
    assert calibration_indices(10, 3) == [0, 4, 9] or calibration_indices(10, 3) == [0, 5, 9]
    assert calibration_indices(2, 100) == [0, 1]
    with pytest.raises(ValueError, match="empty"):
        calibration_indices(0, 1)


def test_calibration_sees_what_evaluation_feeds_the_model(demo):
    cfg, dataset = demo
    mode = InferenceMode.from_config(cfg, scales=[0.75], flip=True)
    batches = list(calibration_inputs(dataset, cfg, 2, mode))
    # One batch per image: the scaled view (48x96) and its mirror, padded to a multiple of 32.
    assert [b.shape for b in batches] == [(2, 3, 64, 96)] * 2
    np.testing.assert_array_equal(batches[0][1, :, :48], batches[0][0, :, :48, ::-1])
    assert not batches[0][:, :, 48:].any()  # zero padding, the normalised mean


def test_the_runs_own_mode_calibrates_and_keys_the_cache(demo):
    """A run with --msc/--flip calibrates INT8 on the views it runs, and its cached file is another one."""
    from segkit.deploy.quantize import dataset_calibration

    cfg, dataset = demo
    mode = InferenceMode.from_config(cfg, scales=[0.75], flip=True)
    default, own = dataset_calibration(cfg, 2), dataset_calibration(cfg, 2, mode=mode)
    assert default.key != own.key and str(mode.describe()) in own.key
    assert [b.shape for b in own.inputs()] == [b.shape for b in calibration_inputs(dataset, cfg, 2, mode)]
    assert [b.shape for b in default.inputs()] != [b.shape for b in own.inputs()]


def test_uint8_images_are_normalised_with_the_config(demo):
    cfg, dataset = demo
    raw = [{"image": cv2.imread(sample.image)} for sample in dataset.samples]  # BGR uint8, not normalised
    mode = InferenceMode.from_config(cfg)
    for a, b in zip(calibration_inputs(raw, cfg, 3, mode), calibration_inputs(dataset, cfg, 3, mode)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="float32 \\[5, 5\\]"):
        next(calibration_inputs([{"image": np.zeros((5, 5), np.float32)}], cfg, 1))


def test_int8_end_to_end_on_the_demo_set(exported, demo, tmp_path):
    cfg, dataset = demo
    out = str(tmp_path / "int8.onnx")
    quantize_int8(exported.onnx, out, calibration_inputs(dataset, cfg, 3))
    model = onnx.load(out)
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 10
    assert {p.key for p in model.metadata_props} >= {"segkit.min_input_size"}  # the size range carries over
    # The layer writing the logits stays float: no quantize-dequantize pair after it.
    fp32_last = [n.op_type for n in onnx.load(exported.onnx).graph.node if "logits" in n.output]
    assert [n.op_type for n in model.graph.node if "logits" in n.output] == fp32_last == ["Resize"]
    int8, fp32 = OnnxSegmentor(out, num_classes=19), OnnxSegmentor(exported.onnx, num_classes=19)
    image = dataset[0]["image"]
    a = inference(int8, image, InferenceMode(flip=True), num_classes=19)
    b = inference(fp32, image, InferenceMode(flip=True), num_classes=19)
    assert a.shape == b.shape == (19, 64, 128)
    # Random weights, so no mIoU to compare; the probabilities must still follow the fp32 ones.
    assert np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1] > 0.9
    assert torch.isfinite(a).all()
    # int8_agreement: the argmax of the two files, as computed here by hand, and no difference to itself.
    x = next(calibration_inputs(dataset, cfg, 1))
    agreement, max_diff, count = int8_agreement(exported.onnx, out, [x])
    by_hand = (int8(torch.from_numpy(x)).argmax(1) == fp32(torch.from_numpy(x)).argmax(1)).float().mean()
    assert count == 1 and agreement == pytest.approx(float(by_hand)) and 0 < max_diff < float("inf")
    assert int8_agreement(out, out, [x, x])[:2] == (1.0, 0.0)


def _qdq_pairs_away_from_convolutions(path: str) -> int:
    """How many quantized tensors neither come out of a Conv nor go into one (e.g. a sigmoid's output into a Mul)."""
    model = onnx.load(path)
    made_by = {out: n.op_type for n in model.graph.node for out in n.output}
    used_by: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            used_by.setdefault(i, []).append(n)
    away = 0
    for q in (n for n in model.graph.node if n.op_type == "QuantizeLinear"):
        readers = [r for dq in used_by.get(q.output[0], []) for r in used_by.get(dq.output[0], [])]
        away += made_by.get(q.input[0]) != "Conv" and all(r.op_type != "Conv" for r in readers)
    return away


def test_int8_of_the_convolutions_only_leaves_the_other_ops_float(exported, demo, tmp_path):
    cfg, dataset = demo
    every, conv = str(tmp_path / "every.onnx"), str(tmp_path / "conv.onnx")
    quantize_int8(exported.onnx, every, calibration_inputs(dataset, cfg, 2))
    quantize_int8(exported.onnx, conv, calibration_inputs(dataset, cfg, 2), op_types=["Conv"])
    assert _qdq_pairs_away_from_convolutions(conv) == 0
    assert _qdq_pairs_away_from_convolutions(every) > 0  # e.g. BiSeNetV2's sigmoid gates
    x = dataset[0]["image"]
    a = inference(OnnxSegmentor(conv, num_classes=19), x, InferenceMode(), num_classes=19)
    b = inference(OnnxSegmentor(exported.onnx, num_classes=19), x, InferenceMode(), num_classes=19)
    assert np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1] > 0.9


def test_held_out_indices_are_those_calibration_leaves():
    from segkit.deploy.quantize import calibration_indices, held_out_indices

    assert held_out_indices(10, 3) == [1, 3, 6, 8] and set(held_out_indices(10, 3)).isdisjoint(calibration_indices(10, 3))
    assert held_out_indices(3, 2) == [1] and held_out_indices(3, 5) == []
