"""Darknet's files and layers: the leaky, logistic and softmax kernels against their NumPy
twins and finite differences; DarknetMaxPool, Route and Graph; io.load_darknet against an
independent float64 transliteration of Darknet's forward (its own weights reader, loops as
Darknet's C writes them); save/reload round trips; GoogLeNet to Darknet and back; every kind
of bad file."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DTYPES, assert_close
from test_batchnorm import finite_difference

from inception_native import darknet_cli, io, layers, models, native, reference
from inception_native.graph import Graph
from inception_native.io import darknet

CFGS = Path(__file__).resolve().parents[1] / "inception_native" / "darknet_cfgs"


# ---- kernels ----------------------------------------------------------------------------------

ELEMENTWISE = {  # name: (extra arguments, the forward in float64, dy/dx from the output)
    "leaky_relu": ((0.1,), lambda x: np.where(x > 0, x, 0.1 * x), lambda y: np.where(y > 0, 1, 0.1)),
    "logistic": ((), lambda x: 1 / (1 + np.exp(-x)), lambda y: y * (1 - y)),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (2, 3, 5, 5), (16, 64, 7, 7)], ids=str)
def test_activation_kernels_match_the_math_and_run_in_place(name, shape, dtype, rng):
    extra, forward, slope = ELEMENTWISE[name]
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    out = {}
    for backend in (native, reference):
        y = getattr(backend, f"{name}_forward")(x, np.empty_like(x), *extra)
        dx = getattr(backend, f"{name}_backward")(dy, y, np.empty_like(x), *extra)
        out[backend] = y, dx
        inplace, grad = x.copy(), dy.copy()
        getattr(backend, f"{name}_forward")(inplace, inplace, *extra)
        getattr(backend, f"{name}_backward")(grad, inplace, grad, *extra)
        np.testing.assert_array_equal(inplace, y)
        np.testing.assert_array_equal(grad, dx)
    if name == "logistic":  # exp: NumPy's own SIMD exp on some CPUs (AVX-512), libm's in C
        np.testing.assert_array_max_ulp(out[native][0], out[reference][0], maxulp=2)
    else:
        np.testing.assert_array_equal(out[native][0], out[reference][0])
    assert_close(out[native][1], out[reference][1], dtype)
    expected = forward(x.astype(np.float64))
    assert_close(out[native][0], expected, dtype)
    assert_close(out[native][1], dy * slope(expected), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 10), (64, 1000)], ids=str)
def test_softmax_kernels_match_the_twin_and_the_math(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    x[0, 0] = 80  # exp(80) overflows float32: the max is subtracted first
    dy = rng.standard_normal(shape).astype(dtype)
    y = native.softmax_forward(x, np.empty_like(x))
    assert_close(y, reference.softmax_forward(x, np.empty_like(x)), dtype)
    z = x.astype(np.float64)
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert_close(y, expected, dtype)
    dx = native.softmax_backward(dy, y, np.empty_like(x))
    assert_close(dx, reference.softmax_backward(dy, y, np.empty_like(x)), dtype)
    inplace = x.copy()
    native.softmax_forward(inplace, inplace)
    np.testing.assert_array_equal(inplace, y)
    native.softmax_backward(dy, y, dy)
    np.testing.assert_array_equal(dy, dx)


@pytest.mark.parametrize("name", ["leaky_relu", "logistic", "softmax"])
def test_backward_kernels_are_the_gradient(name, rng):
    x = rng.standard_normal((3, 5)) * 2
    weights = rng.standard_normal(x.shape)
    forward, backward = getattr(native, f"{name}_forward"), getattr(native, f"{name}_backward")

    def loss():
        return float((weights * forward(x, np.empty_like(x))).sum())

    y = forward(x, np.empty_like(x))
    np.testing.assert_allclose(backward(weights, y, np.empty_like(x)), finite_difference(loss, x),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_activation_kernels_reject_bad_input(backend):
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="slope must be a finite number"):
        backend.leaky_relu_forward(x, np.empty_like(x), -0.1)
    with pytest.raises(ValueError, match=r"y must have shape \(2, 3\)"):
        backend.logistic_forward(x, np.empty(5))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, classes\)"):
        backend.softmax_forward(np.ones(3), np.empty(3))
    with pytest.raises(TypeError, match="y has dtype float32, expected float64"):
        backend.softmax_backward(x, x.astype(np.float32), np.empty_like(x))
    y = np.array([np.nan, -1.0, 2.0])
    assert np.isnan(backend.leaky_relu_forward(y, np.empty(3))[0])
    assert np.isnan(backend.logistic_forward(y, np.empty(3))[0])


# ---- layers and the graph -----------------------------------------------------------------

def darknet_maxpool(x, size, stride, padding):
    """Darknet's forward_maxpool_layer, loop for loop, in float64."""
    B, C, H, W = x.shape
    oh, ow = (H + padding - size) // stride + 1, (W + padding - size) // stride + 1
    offset = -(padding // 2)
    y = np.empty((B, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            best = np.full((B, C), -np.inf)
            for n in range(size):
                for m in range(size):
                    h, w = offset + i * stride + n, offset + j * stride + m
                    if 0 <= h < H and 0 <= w < W:
                        best = np.maximum(best, x[:, :, h, w])
            y[:, :, i, j] = best
    return y


@pytest.mark.parametrize("size,stride,padding,hw", [
    (2, 2, None, (8, 8)), (2, 1, None, (5, 6)), (3, 2, None, (9, 8)), (2, 2, None, (7, 7)),
    (3, 1, 2, (5, 5)), (3, 2, 0, (9, 9)), (5, 3, 6, (7, 8)), (1, 1, None, (3, 3))])
def test_darknet_maxpool_is_darknets(size, stride, padding, hw, backend, rng):
    pool = layers.DarknetMaxPool(size, stride, padding, backend)
    x = rng.standard_normal((2, 3, *hw))
    y = pool.forward(x)
    np.testing.assert_array_equal(y, darknet_maxpool(x, size, stride, pool.padding))
    assert y.shape == pool.output_shape(x.shape)
    if size == 2 and stride == 1:  # Darknet's padding size - 1 = 1 is all on the right and bottom
        assert y.shape[2:] == hw and np.array_equal(y[..., -1, -1], x[..., -1, -1])
    weights = rng.standard_normal(y.shape)
    dx = pool.backward(weights)
    np.testing.assert_allclose(dx, finite_difference(lambda: float((weights * pool.forward(x)).sum()), x),
                               atol=1e-8)


@pytest.mark.parametrize("size,stride,padding,hw", [
    (2, 2, None, (8, 8)), (2, 1, None, (5, 6)), (3, 2, None, (9, 8)), (5, 3, 6, (7, 8))])
def test_darknet_maxpool_trains_from_taps_as_eval_from_the_search(size, stride, padding, hw,
                                                                  backend, rng):
    """In training the pool keeps taps, not x (its own padded copy, or the padding the kernel
    applies); dx equals, bit for bit, the backward that finds the maxima again (eval), on ties
    (values from a few levels) and on a map Darknet pads asymmetrically."""
    x = rng.integers(0, 3, (2, 3, *hw)).astype(np.float64)
    dy = rng.standard_normal(layers.DarknetMaxPool(size, stride, padding).output_shape(x.shape))
    dxs = []
    for training in (True, False):
        pool = layers.DarknetMaxPool(size, stride, padding, backend)
        pool.train() if training else pool.eval()
        y = pool.forward(x)
        np.testing.assert_array_equal(y, darknet_maxpool(x, size, stride, pool.padding))
        assert (pool._taps is not None, pool._x is None) == (training, training)
        dxs.append(pool.backward(dy).copy())
    np.testing.assert_array_equal(dxs[0], dxs[1])
    assert dxs[0].sum() == pytest.approx(dy.sum())  # every output's gradient lands once


def test_darknet_maxpool_refuses_windows_outside_the_image():
    with pytest.raises(ValueError, match="windows wholly outside"):
        layers.DarknetMaxPool(2, 1, 6).output_shape((1, 1, 4, 4))


GRAPH_CFG = """[net]
width=7
height=6
channels=2
[convolutional]
filters=3
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=1
[convolutional]
filters=4
size=1
activation=logistic
[route]
layers=-1,0
[route]
layers=0
[maxpool]
size=3
stride=2
[convolutional]
filters=2
size=3
pad=1
activation=relu
[route]
layers=-1,-2
[avgpool]
[connected]
output=5
activation=leaky
[softmax]
"""


def test_graph_backward_sums_the_gradients_of_shared_outputs(rng):
    """conv0's output feeds maxpool1 and two routes: its gradient is the sum of three."""
    net = darknet.read("graph.cfg", dtype=np.float64, text=GRAPH_CFG)
    assert net.sources == {"route3": ["conv2", "conv0"], "route4": ["conv0"],
                           "route7": ["conv6", "maxpool5"]}
    models._first_conv(net).input_grad = True
    x = rng.standard_normal((3, 2, 6, 7))
    weights = rng.standard_normal((3, 5))
    out = net.forward(x)
    assert len(out) == 1 and out[0].shape == (3, 5)
    np.testing.assert_allclose(out[0].sum(1), 1)
    dx = net.backward([weights])
    loss = lambda: float((weights * net.forward(x)[0]).sum())  # noqa: E731
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-5, atol=1e-8)
    grads = {k: g.copy() for k, g in net.grads.items()}
    for name in ("conv0.conv.weight", "conv2.conv.bias", "connected9.connected.weight"):
        np.testing.assert_allclose(grads[name], finite_difference(loss, net.params[name]),
                                   rtol=1e-5, atol=1e-8)
    assert list(net.stage_shapes()) == [name for name, _ in net.stages]
    assert net.stage_shapes()["route7"] == (1, 5, 3, 4)
    assert [shape for path, _, shape in net.layers() if path == "route3"] == [[(1, 4, 6, 7), (1, 3, 6, 7)]]


def test_graph_rejects_sources_that_are_not_earlier():
    stages = [("a", layers.ReLU()), ("b", layers.Route())]
    with pytest.raises(ValueError, match="stage b must read earlier stages"):
        Graph(stages, {"b": ["b"]}, (1, 2, 2))
    with pytest.raises(ValueError, match="not in the graph"):
        Graph(stages, {"c": ["a"]}, (1, 2, 2))
    assert Graph(stages, {"b": [None, "a"]}, (1, 2, 2)).stage_shapes()["b"] == (1, 2, 2, 2)


def test_logits_drops_the_softmax_and_keeps_the_layers():
    net = darknet.read("graph.cfg", text=GRAPH_CFG)
    trimmed = darknet.logits(net)
    assert [n for n, _ in trimmed.stages] == [n for n, _ in net.stages][:-1]
    assert trimmed.params.keys() == net.params.keys()
    assert all(trimmed.params[k] is v for k, v in net.params.items())
    assert darknet.logits(trimmed) is trimmed


# ---- an independent transliteration of Darknet's forward --------------------------------------

def cfg_text(net_options, sections):
    lines = ["[net]", *(f"{k}={v}" for k, v in net_options.items())]
    for kind, options in sections:
        lines += ["", f"[{kind}]", *(f"{k}={v}" for k, v in options.items())]
    return "\n".join(lines) + "\n"


def darknet_forward(net_options, sections, weights_path, x):
    """Darknet's network forward (inference) in float64, reading the weights itself: header,
    then per layer in file order; parameter layouts as Darknet's C (conv weights n x c x k x k,
    connected weights outputs x inputs, transposed in the file when major or minor > 1000)."""
    data = Path(weights_path).read_bytes()
    major, minor, _ = np.frombuffer(data[:12], "<i4")
    offset = 20 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 16
    floats = np.frombuffer(data, "<f4", offset=offset).astype(np.float64)
    position = 0

    def take(n):
        nonlocal position
        position += n
        assert position <= floats.size
        return floats[position - n:position]

    def activate(v, name):
        return {"linear": v, "relu": np.maximum(v, 0), "leaky": np.where(v > 0, v, 0.1 * v),
                "logistic": 1 / (1 + np.exp(-v))}[name]

    def normalised(v, biases, norm):
        """Darknet's forward_batchnorm_layer in inference (norm: scales, rolling mean, rolling
        variance), or add_bias without BatchNorm."""
        per = lambda a: a.reshape((1, a.size) + (1,) * (v.ndim - 2))  # noqa: E731
        if norm is not None:
            scales, mean, variance = map(per, norm)
            v = (v - mean) / (np.sqrt(variance) + 1e-6) * scales
        return v + per(biases)

    outputs = []
    for kind, options in sections:
        bn = bool(options.get("batch_normalize"))
        if kind == "convolutional":
            if x.ndim == 2:
                x = x[:, :, None, None]
            n, k, s = options["filters"], options["size"], options.get("stride", 1)
            p = k // 2 if options.get("pad") else options.get("padding", 0)
            B, C, H, W = x.shape
            biases = take(n)
            norm = [take(n) for _ in range(3)] if bn else None
            weights = take(n * C * k * k).reshape(n, C, k, k)
            oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
            padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            out = np.zeros((B, n, oh, ow))
            for i in range(k):
                for j in range(k):
                    window = padded[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
                    out += np.einsum("bchw,nc->bnhw", window, weights[:, :, i, j])
            x = activate(normalised(out, biases, norm), options.get("activation", "logistic"))
        elif kind == "connected":
            n = options["output"]
            flat = x.reshape(x.shape[0], -1)
            biases = take(n)
            weights = take(n * flat.shape[1])
            weights = (weights.reshape(flat.shape[1], n).T if major > 1000 or minor > 1000
                       else weights.reshape(n, flat.shape[1]))
            norm = [take(n) for _ in range(3)] if bn else None
            x = activate(normalised(flat @ weights.T, biases, norm), options.get("activation", "logistic"))
        elif kind == "maxpool":
            stride = options.get("stride", 1)
            size = options.get("size", stride)
            x = darknet_maxpool(x, size, stride, options.get("padding", size - 1))
        elif kind == "avgpool":
            x = x.mean(axis=(2, 3))
        elif kind == "route":
            indices = [int(i) for i in str(options["layers"]).split(",")]
            x = np.concatenate([outputs[i if i >= 0 else len(outputs) + i] for i in indices], axis=1)
        elif kind == "softmax":
            flat = x.reshape(x.shape[0], -1)
            e = np.exp(flat - flat.max(1, keepdims=True))
            x = e / e.sum(1, keepdims=True)
        outputs.append(x)  # dropout and cost: the identity
    assert position == floats.size
    return outputs[-1]


EVERY_SECTION = ({"width": 12, "height": 10, "channels": 3, "batch": 64, "learning_rate": 0.1}, [
    ("convolutional", {"batch_normalize": 1, "filters": 6, "size": 3, "stride": 1, "pad": 1, "activation": "leaky"}),
    ("maxpool", {"size": 2, "stride": 1}),
    ("convolutional", {"filters": 4, "size": 1, "stride": 1, "pad": 1, "activation": "relu"}),
    ("route", {"layers": "-1,-3"}),
    ("maxpool", {"size": 3, "stride": 2}),
    ("convolutional", {"batch_normalize": 1, "filters": 5, "size": 3, "stride": 2, "padding": 2, "activation": "linear"}),
    ("route", {"layers": "3"}),
    ("maxpool", {"size": 2, "stride": 2, "padding": 0}),
    ("avgpool", {}),
    ("convolutional", {"filters": 8, "size": 1, "activation": "logistic"}),
    ("connected", {"output": 7, "batch_normalize": 1, "activation": "leaky"}),
    ("dropout", {"probability": 0.5}),
    ("connected", {"output": 4, "activation": "linear"}),
    ("softmax", {"groups": 1}),
    ("cost", {"type": "sse"}),
])
IMAGE_CONNECTED = ({"width": 9, "height": 7, "channels": 2}, [
    ("convolutional", {"filters": 3, "size": 5, "stride": 2, "padding": 1}),  # logistic by default
    ("maxpool", {"size": 2, "stride": 2}),  # a 3x4 map: Darknet pads the bottom row
    ("connected", {"output": 6, "activation": "relu"}),
    ("route", {"layers": "-1"}),
    ("connected", {"output": 3, "activation": "linear"}),
])


def weights_for(sections, channels_hw, version, rng, path):
    """A .weights file of random floats for a cfg's layers, with `version`'s header."""
    net = darknet.read("t.cfg", text=cfg_text(dict(zip(("channels", "height", "width"), channels_hw)), sections))
    count = sum(a if isinstance(a, int) else a.size for s in darknet.darknet_sections(net) for _, a in s.arrays)
    values = rng.standard_normal(count).astype("<f4")
    index = 0
    for s in darknet.darknet_sections(net):  # variances > 0, as a trained network's
        for what, a in s.arrays:
            if what == "rolling variance":
                values[index:index + a.size] = rng.uniform(0.5, 2, a.size)
            index += a if isinstance(a, int) else a.size
    major, minor, revision = version
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    seen = np.array(123456, "<u8" if wide else "<i4")
    Path(path).write_bytes(np.array(version, "<i4").tobytes() + seen.tobytes() + values.tobytes())
    return path


@pytest.mark.parametrize("case", [EVERY_SECTION, IMAGE_CONNECTED], ids=["every_section", "image_connected"])
@pytest.mark.parametrize("version", [(0, 1, 0), (0, 2, 0), (0, 1001, 0)], ids=["v0.1", "v0.2", "transposed"])
def test_loaded_network_matches_darknets_forward(case, version, tmp_path, rng):
    net_options, sections = case
    cfg = tmp_path / "net.cfg"
    cfg.write_text(cfg_text(net_options, sections))
    hw = (net_options["channels"], net_options["height"], net_options["width"])
    weights = weights_for(sections, hw, version, rng, tmp_path / "net.weights")
    net = io.load_darknet(cfg, weights)
    assert net.seen == 123456
    x = rng.uniform(0, 1, (2, *hw)).astype(np.float32)
    expected = darknet_forward(net_options, sections, weights, x.astype(np.float64))
    got = net.eval().forward(x)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("case", [EVERY_SECTION, IMAGE_CONNECTED], ids=["every_section", "image_connected"])
def test_save_and_reload_keeps_every_bit(case, tmp_path, rng):
    net_options, sections = case
    hw = (net_options["channels"], net_options["height"], net_options["width"])
    (tmp_path / "a.cfg").write_text(cfg_text(net_options, sections))
    weights = weights_for(sections, hw, (0, 2, 0), rng, tmp_path / "a.weights")
    net = io.load_darknet(tmp_path / "a.cfg", weights)
    io.save_darknet(net, tmp_path / "b.cfg", tmp_path / "b.weights")
    assert (tmp_path / "b.weights").read_bytes() == weights.read_bytes()
    again = io.load_darknet(tmp_path / "b.cfg", tmp_path / "b.weights")
    for tensors in ("params", "buffers"):
        ours, theirs = getattr(net, tensors), getattr(again, tensors)
        assert ours.keys() == theirs.keys()
        for k in ours:
            if not k.endswith(("seed", "step")):
                np.testing.assert_array_equal(ours[k], theirs[k])
    x = rng.uniform(0, 1, (2, *hw)).astype(np.float32)
    np.testing.assert_array_equal(net.eval().forward(x)[0], again.eval().forward(x)[0])
    io.save_darknet(again, tmp_path / "c.cfg", tmp_path / "c.weights")
    assert (tmp_path / "c.cfg").read_text() == (tmp_path / "b.cfg").read_text()


# ---- GoogLeNet and the example cfgs ----------------------------------------------------------

@pytest.mark.parametrize("bn", ["darknet", False])
def test_googlenet_goes_to_darknet_and_back_with_identical_outputs(bn, tmp_path, rng):
    net = models.googlenet(num_classes=10, bn=bn, input_size=96, seed=3)
    for name, p in net.buffers.items():  # trained-looking statistics
        if name.endswith("rolling_variance"):
            p[...] = rng.uniform(0.5, 2, p.shape)
        elif name.endswith("rolling_mean"):
            p[...] = rng.standard_normal(p.shape)
    io.save_darknet(net, tmp_path / "g.cfg", tmp_path / "g.weights")  # the heads are left out
    cfg = (tmp_path / "g.cfg").read_text()
    assert cfg.count("[route]") == 9 * 4 and cfg.count("[convolutional]") == 3 + 9 * 6
    again = io.load_darknet(tmp_path / "g.cfg", tmp_path / "g.weights")
    x = rng.standard_normal((2, 3, 96, 96)).astype(np.float32)
    np.testing.assert_array_equal(again.eval().forward(x)[0], net.eval().forward(x)[0])


def test_networks_darknet_cannot_express_are_named():
    with pytest.raises(ValueError, match=r"conv1\.bn: BatchNorm flavour 'exact'"):
        io.save_darknet(models.googlenet(bn=True, aux=False, input_size=64), "x.cfg", "x.weights")
    with pytest.raises(ValueError, match=r"inception_3a\.branch3\.0 \(AvgPool2d\) has no Darknet form"):
        io.save_darknet(models.inception_v2(bn="darknet", input_size=64), "x.cfg", "x.weights")
    with pytest.raises(ValueError, match=r"mixed_5b\.branch3\.0 \(AvgPool2d\) has no Darknet form"):
        io.save_darknet(models.inception_v3(bn="darknet", aux=False, input_size=75), "x.cfg", "x.weights")
    net = models.Network([("c", layers.Conv2d(3, 4, (1, 3)))], {}, (3, 8, 8))
    with pytest.raises(ValueError, match=r"^c: Darknet's layers are square, the kernel is \(1, 3\)"):
        io.save_darknet(net, "x.cfg", "x.weights")
    assert not Path("x.cfg").exists()


def sections_of(text):
    return [(s.kind, s.options) for s in darknet.parse_cfg(text)]


def test_example_googlenet_cfg_is_the_paper_layout_with_routes(tmp_path):
    net = models.googlenet(bn="darknet", aux=False)
    io.save_darknet(net, tmp_path / "g.cfg", tmp_path / "g.weights")
    example = (CFGS / "googlenet.cfg").read_text()
    assert sections_of(example) == sections_of((tmp_path / "g.cfg").read_text())
    loaded = io.load_darknet(CFGS / "googlenet.cfg", tmp_path / "g.weights")
    assert loaded.num_params() == net.num_params()
    assert loaded.stage_shapes()[loaded.stages[-1][0]] == (1, 1000)


def test_example_extraction_cfg_builds_and_round_trips(tmp_path):
    net = io.load_darknet(CFGS / "extraction.cfg", seed=1)
    shapes = list(net.stage_shapes().values())
    assert shapes[0] == (1, 64, 112, 112) and shapes[2] == (1, 192, 56, 56) and shapes[-1] == (1, 1000)
    assert isinstance(net.stages[-1][1], layers.Softmax)
    io.save_darknet(net, tmp_path / "e.cfg", tmp_path / "e.weights")
    again = io.load_darknet(tmp_path / "e.cfg", tmp_path / "e.weights")
    for k, v in net.params.items():
        np.testing.assert_array_equal(again.params[k], v)


# ---- bad files ------------------------------------------------------------------------------

SMALL = cfg_text({"width": 8, "height": 8, "channels": 1}, [
    ("convolutional", {"batch_normalize": 1, "filters": 2, "size": 3, "pad": 1, "activation": "leaky"}),
    ("connected", {"output": 3, "activation": "linear"}),
])
SMALL_FLOATS = (2 * 4 + 2 * 9) + (3 + 3 * 128)


def header(version=(0, 2, 0)):
    return np.array(version, "<i4").tobytes() + np.zeros(1, "<u8").tobytes()


@pytest.mark.parametrize("body,message", [
    (b"\0" * 10, "10 bytes, shorter than a Darknet weights header"),
    (header() + np.zeros(20, "<f4").tobytes(),
     r"ends in layer 0 \[convolutional\]: it needs 26 floats \(biases 2, scales 2, rolling mean 2, "
     r"rolling variance 2, weights 18\), 20 remain"),
    (header() + np.zeros(SMALL_FLOATS - 1, "<f4").tobytes(),
     r"ends in layer 1 \[connected\]: it needs 387 floats \(biases 3, weights 384\), 386 remain"),
    (header() + np.zeros(SMALL_FLOATS + 1, "<f4").tobytes(),
     r"too long: the cfg's layers need 413 floats \(the last, layer 1 \[connected\]\), the file holds 414"),
    (header((0, 1, 0)) + np.zeros(SMALL_FLOATS, "<f4").tobytes(),  # an 8-byte seen in a 0.1 file
     r"too long: .* the file holds 414 after its header 0\.1\.0"),
    (header() + np.zeros(SMALL_FLOATS, "<f4").tobytes() + b"\0\0", "and 2 bytes after"),
])
def test_bad_weights_files_name_the_layer_and_the_counts(body, message, tmp_path):
    (tmp_path / "s.cfg").write_text(SMALL)
    (tmp_path / "s.weights").write_bytes(body)
    with pytest.raises(ValueError, match=message):
        io.load_darknet(tmp_path / "s.cfg", tmp_path / "s.weights")


@pytest.mark.parametrize("change,message", [
    (("[connected]", "[shortcut]"), r"s\.cfg:13: layer 1 \[shortcut\]: section \[shortcut\] is not supported"),
    (("activation=leaky", "activation=mish"), r"layer 0 \[convolutional\]: activation=mish is not supported"),
    (("pad=1", "pad=1\ngroups=2"), r"layer 0 \[convolutional\]: groups=2 is not supported \(only groups=1\)"),
    (("pad=1", "pad=1\nxnor=1"), r"layer 0 \[convolutional\]: unknown key 'xnor'"),
    (("filters=2", "filters=two"), "filters=two is not an integer"),
    (("filters=2", "filters=0"), "filters=0 must be >= 1"),
    (("[connected]", "[route]\nlayers=-3\n[connected]"), r"layer 1 \[route\]: layers=-3: layer -2 does not exist"),
    (("[connected]", "[route]\nlayers=1\n[connected]"), r"layer 1 \[route\]: layers=1: layer 1 does not exist"),
    (("[connected]", "[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n[connected]"),
     r"layer 2 \[route\]: layers=-1,-2 joins maps of different sizes: layer 1 gives 2x4x4, layer 0 gives 2x8x8"),
    (("[connected]", "[cost]\n[connected]"), r"layer 1 \[cost\]: \[cost\] must be the last section"),
    (("width=8", "width=0"), r"\[net\]: channels, height and width must be given"),
    (("[net]", "[nett]"), "starts with a .net. section"),
    (("size=3", "size=3\nsize=5"), "size is given twice"),
    (("filters=2", "filters 2"), r"s\.cfg:\d+: expected \[section\] or key=value, got 'filters 2'"),
    (("size=3\npad=1", "size=11"), r"layer 0 \[convolutional\]: .*11"),
    (("[connected]", "[avgpool]\n[maxpool]\n[connected]"), r"layer 2 \[maxpool\]: needs an image"),
])
def test_bad_cfgs_name_the_section_index_and_key(change, message, tmp_path):
    (tmp_path / "s.cfg").write_text(SMALL.replace(*change))
    (tmp_path / "s.weights").write_bytes(b"")  # never read: the cfg fails first
    with pytest.raises(ValueError, match=message):
        io.load_darknet(tmp_path / "s.cfg", tmp_path / "s.weights")


# ---- the command line ---------------------------------------------------------------------

def run(*args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "inception_native", *args], capture_output=True,
                          text=True, check=check, timeout=300, env=env)


def assert_one_line_error(result, text):
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and text in result.stderr, result.stderr


def test_letterbox_keeps_the_aspect_on_a_grey_border():
    Image = pytest.importorskip("PIL.Image")
    image = Image.fromarray(np.full((10, 20, 3), 255, np.uint8))  # 20 wide, 10 high
    boxed = darknet_cli.letterbox(image, 8, 8)
    assert boxed.shape == (3, 8, 8)
    assert (boxed[:, :2] == 0.5).all() and (boxed[:, 6:] == 0.5).all() and (boxed[:, 2:6] == 1).all()


def test_cli_predict_with_a_cfg(tmp_path, rng):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "c.cfg").write_text(cfg_text({"width": 16, "height": 16, "channels": 3}, [
        ("convolutional", {"filters": 4, "size": 3, "pad": 1, "activation": "leaky"}),
        ("avgpool", {}), ("connected", {"output": 6, "activation": "linear"}), ("softmax", {})]))
    io.save_darknet(io.load_darknet(tmp_path / "c.cfg"), tmp_path / "c.cfg", tmp_path / "c.weights")
    Image.fromarray(rng.integers(0, 255, (30, 20, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "names.txt").write_text("\n".join(f"thing {i}" for i in range(6)))
    common = ["predict", "--cfg", str(tmp_path / "c.cfg"), "--weights", str(tmp_path / "c.weights")]
    lines = run(*common, "--names", str(tmp_path / "names.txt"), str(tmp_path / "a.png")).stdout.splitlines()
    assert lines[0].endswith("a.png") and len(lines) == 6
    assert all(re.fullmatch(r"  +\d+\.\d%  thing \d \(\d\)", line) for line in lines[1:])
    lines = run(*common, "--top", "2", str(tmp_path / "a.png")).stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"  +\d+\.\d%  class \d", line) for line in lines[1:])
    (tmp_path / "short.weights").write_bytes((tmp_path / "c.weights").read_bytes()[:-4])
    result = run("predict", "--cfg", str(tmp_path / "c.cfg"), "--weights", str(tmp_path / "short.weights"),
                 str(tmp_path / "a.png"), check=False)
    assert_one_line_error(result, r"ends in layer 2 [connected]: it needs 30 floats (biases 6, weights 24), 29 remain")
    (tmp_path / "five.txt").write_text("a\nb\nc\nd\ne\n")
    result = run(*common, "--names", str(tmp_path / "five.txt"), str(tmp_path / "a.png"), check=False)
    assert_one_line_error(result, "names 5 classes, the network has 6 outputs")


def test_cli_train_cfg_then_export_and_predict(tmp_path):
    pytest.importorskip("sklearn")
    checkpoint = str(tmp_path / "d.npz")
    result = run("train", "--cfg", str(CFGS / "digits.cfg"), "--epochs", "2", "--limit", "256",
                 "--checkpoint", checkpoint)
    losses = [float(v) for v in re.findall(r"epoch \d/2  loss ([\d.]+)", result.stdout)]
    assert "at 32x32" in result.stdout and len(losses) == 2 and losses[1] < losses[0]
    out = run("export", "--checkpoint", checkpoint, "--darknet", str(tmp_path / "d")).stdout
    assert "d.cfg and" in out
    exported = io.load_darknet(tmp_path / "d.cfg", tmp_path / "d.weights")
    trained = darknet.read(CFGS / "digits.cfg")
    io.load(checkpoint, trained)
    for k, v in trained.params.items():
        np.testing.assert_array_equal(exported.params[k], v)
    from sklearn.datasets import load_digits
    np.save(tmp_path / "two.npy", load_digits().images[:2])
    lines = run("predict", "--checkpoint", checkpoint, "--input", str(tmp_path / "two.npy")).stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("0: ")
    result = run("train", "--cfg", str(tmp_path / "d.cfg").replace("d.cfg", "none.cfg"), check=False)
    assert_one_line_error(result, "No such file")
    (tmp_path / "rgb.cfg").write_text(SMALL.replace("channels=1", "channels=3"))
    assert_one_line_error(run("train", "--cfg", str(tmp_path / "rgb.cfg"), check=False),
                          "needs a one-channel square input")


def test_cli_export_names_what_darknet_cannot_hold(tmp_path):
    (tmp_path / "bad.cfg").write_text(SMALL.replace("activation=leaky", "activation=tanh"))
    assert_one_line_error(run("export", "--cfg", str(tmp_path / "bad.cfg"), "--darknet", str(tmp_path / "o"), check=False),
                          "layer 0 [convolutional]: activation=tanh is not supported")
    (tmp_path / "s.cfg").write_text(SMALL)
    out = run("export", "--cfg", str(tmp_path / "s.cfg"), "--darknet", str(tmp_path / "o")).stdout
    assert "o.cfg" in out and (tmp_path / "o.weights").stat().st_size == 20 + 4 * SMALL_FLOATS


def test_the_docs_python_blocks_run(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "darknet.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/darknet.md", "exec"), {})
