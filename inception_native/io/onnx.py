"""ONNX export: `export_onnx(net, path)` writes a network's inference graph (freeze's graph:
BatchNorm folded into the convolutions, dropout gone, auxiliary heads left out) in standard
operators only (Conv, Relu, LeakyRelu, Sigmoid, Softmax, MaxPool, AveragePool, GlobalAveragePool,
Flatten, Concat, Gemm, Mul, Add), opset 17, with a dynamic batch dimension: input "input"
(batch, C, H, W), output "logits". Needs the `onnx` package (pip install
'inception-native[onnx]').
"""
import os

import numpy as np

from ..freeze import lower
from ..layers import DarknetMaxPool

OPSET, IR_VERSION = 17, 8  # IR 8 goes with opset 17: runtimes from onnxruntime 1.14 read it
MISSING = "ONNX export needs the onnx package: pip install 'inception-native[onnx]' (or pip install onnx)"


def _pool(a):
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
    return {"kernel_shape": [kh, kw], "strides": [sh, sw], "pads": [ph, pw, ph, pw],
            "ceil_mode": int(a["ceil_mode"])}


def _nodes(node, names, shapes, constant):
    """(op type, inputs, attributes) of the ONNX nodes of one graph node, in order; each reads
    the one before's output."""
    a, ins = node.attrs, [names[v] for v in node.inputs]
    if node.op == "conv":
        (kh, kw), (ph, pw) = a["weight"].shape[2:], a["padding"]
        yield "Conv", ins + [constant(a["weight"]), constant(a["bias"])], {
            "kernel_shape": [kh, kw], "strides": list(a["stride"]), "pads": [ph, pw, ph, pw]}
    elif node.op == "linear":
        yield "Gemm", ins + [constant(a["weight"]), constant(a["bias"])], {"transB": 1}
    elif node.op == "affine":
        per_channel = lambda v: constant(v.reshape(1, -1, 1, 1))  # noqa: E731
        yield "Mul", ins + [per_channel(a["scale"])], {}
        yield "Add", [None, per_channel(a["shift"])], {}
    elif node.op == "relu":
        yield "Relu", ins, {}
    elif node.op == "leaky_relu":
        yield "LeakyRelu", ins, {"alpha": float(a["slope"])}
    elif node.op == "logistic":
        yield "Sigmoid", ins, {}
    elif node.op == "softmax":  # over each image's values, as Darknet's [softmax]
        yield "Flatten", ins, {"axis": 1}
        yield "Softmax", [None], {"axis": 1}
    elif node.op == "maxpool":
        yield "MaxPool", ins, _pool(a)
    elif node.op == "avgpool":
        yield "AveragePool", ins, {**_pool(a), "count_include_pad": int(a["count_include_pad"])}
    elif node.op == "global_avgpool":
        yield "GlobalAveragePool", ins, {}
        yield "Flatten", [None], {"axis": 1}
    elif node.op == "adaptive_avgpool":
        (_, H, W), (_, oh, ow) = shapes[node.inputs[0]], shapes[node.output]
        if H % oh or W % ow:
            raise ValueError(f"adaptive average pooling {H}x{W} -> {oh}x{ow} has uneven windows: "
                             "no standard ONNX operator")
        yield "AveragePool", ins, {"kernel_shape": [H // oh, W // ow], "strides": [H // oh, W // ow]}
    elif node.op == "flatten":
        yield "Flatten", ins, {"axis": 1}
    elif node.op == "concat":
        yield "Concat", ins, {"axis": 1}
    elif isinstance(a["layer"], DarknetMaxPool):  # windows past the bottom and right edges
        (_, H, W), k, s = shapes[node.inputs[0]], a["layer"].size, a["layer"].stride
        _, first, (bottom, right) = a["layer"]._geometry(H, W)
        yield "MaxPool", ins, {"kernel_shape": [k, k], "strides": [s, s],
                               "pads": [first, first, bottom, right]}
    else:
        raise ValueError(f"{type(a['layer']).__name__} has no ONNX export")
    if a.get("relu"):
        yield "Relu", [None], {}


def export_onnx(net, path, input_shape=None):
    """Write net's inference graph to path (see the module's note); input_shape (C, H, W):
    a Network's own when None. Returns the onnx.ModelProto."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError(MISSING) from None
    input_shape = tuple(input_shape or net.input_shape)
    params = list(net.params.values())
    dtype = params[0].dtype if params else np.dtype(np.float32)
    graph = lower(net, input_shape, dtype)
    elem = TensorProto.DOUBLE if graph.dtype == np.float64 else TensorProto.FLOAT
    names, initializers, nodes = {0: "input"}, [], []

    def constant(array):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array),
                                                    f"c{len(initializers)}"))
        return initializers[-1].name

    for node in graph.nodes:
        previous = None
        for op, ins, attrs in _nodes(node, names, graph.shapes, constant):
            previous = f"v{len(nodes)}"
            nodes.append(helper.make_node(op, [i or nodes[-1].output[0] for i in ins], [previous],
                                          name=f"{op}_{len(nodes)}", **attrs))
        names[node.output] = previous
    nodes.append(helper.make_node("Identity", [names[graph.output]], ["logits"]))
    model = helper.make_model(
        helper.make_graph(
            nodes, "inception_native",
            [helper.make_tensor_value_info("input", elem, ["batch", *input_shape])],
            [helper.make_tensor_value_info("logits", elem, ["batch", *graph.shapes[graph.output]])],
            initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="inception_native",
        ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    with open(os.fspath(path), "wb") as f:
        f.write(model.SerializeToString())
    return model
