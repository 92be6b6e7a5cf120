"""segkit.deploy.ranges: per-input maxima of every float tensor, their spread, the widest ones in graph order."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from segkit.deploy.ranges import TensorSpread, activation_spread, widest_spreads


def _file(path) -> str:
    """images -> 1x1 conv copying channel 0 (and a channel of zeros) -> Relu -> x0.5 = logits."""
    weight = np.zeros((2, 3, 1, 1), np.float32)
    weight[0, 0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["conv"]), helper.make_node("Relu", ["conv"], ["relu"]),
         helper.make_node("Mul", ["relu", "half"], ["logits"])], "spread",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2, "h", "w"])],
        [onnx.numpy_helper.from_array(weight, "w"), onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_each_tensor_keeps_the_largest_value_of_each_input_in_graph_order(tmp_path):
    x = np.zeros((1, 3, 4, 5), np.float32)
    x[0, 0, 1, 2], x[0, 0, 3, 3], x[0, 1] = 2.0, -6.0, 100.0  # channel 1 never reaches the output
    spreads = activation_spread(_file(tmp_path / "m.onnx"), iter([x, 10 * x]))
    assert [(s.name, s.op_type) for s in spreads] == [("conv", "Conv"), ("relu", "Relu"), ("logits", "Mul")]
    conv, relu, logits = spreads
    np.testing.assert_allclose(conv.maxima, [6.0, 60.0])  # |value|: the negative -6 counts
    np.testing.assert_allclose(relu.maxima, [2.0, 20.0])
    np.testing.assert_allclose(logits.maxima, [1.0, 10.0])
    assert conv.spread == pytest.approx(10.0) and logits.spread == pytest.approx(10.0)


def test_spread_ignores_inputs_where_a_tensor_is_zero():
    assert TensorSpread("t", "Relu", np.array([0.0, 2.0, 8.0])).spread == pytest.approx(4.0)
    assert TensorSpread("t", "Relu", np.zeros(3)).spread == 1.0


def test_the_widest_are_kept_in_graph_order():
    largest = (("a", 3.0), ("b", 50.0), ("c", 1.0), ("d", 9.0))
    spreads = [TensorSpread(n, "Conv", np.array([1.0, m])) for n, m in largest]
    assert [s.name for s in widest_spreads(spreads, 2)] == ["b", "d"]


def test_no_inputs_is_an_error_naming_the_file(tmp_path):
    path = _file(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="no input reached .*m.onnx"):
        activation_spread(path, iter([]))
