"""Convolution and pooling benchmarks: GoogLeNet's conv layers at batch 16, native vs the BLAS's
own sgemm at the equivalent GEMM shape, the NumPy twin and PyTorch (when installed), in GFLOP/s;
GoogLeNet's pooling layers in milliseconds.

    from inception_native.bench.conv import CONV_TABLE, conv_benchmark
    print(CONV_TABLE.format(conv_benchmark(threads=2, repeats=5)))

A convolution of x (B, C, H, W) by w (OC, C, kh, kw) into (B, OC, oh, ow) is the GEMM
(OC, C*kh*kw) x (C*kh*kw, B*oh*ow): 2*OC*C*kh*kw*B*oh*ow flops forward, twice that backward
(dx and dw), so forward+backward counts 3x. The sgemm column times that GEMM alone, on
preallocated matrices, through the same BLAS the native gemm calls: the ceiling the lowering
overheads are measured against. Timings are the median of `repeats` runs after one warm-up.
`threads` sets the OpenMP threads (the native convolution shares image blocks among them, with
a single-threaded BLAS each), the BLAS threads (sgemm, the linear layer, the NumPy twin) and
PyTorch's threads alike.
"""
import numpy as np

from .. import native, reference
from .._checks import pair
from ..shapes import output_hw, output_size
from .table import Table
from .timing import median_of_rounds, spread, use_threads

BATCH = 16
# The layers timed, picked by their path in the models (Network.leaves): their shapes come from
# the models themselves. GoogLeNet as Table 1 of the paper, Inception v3 as released.
CONV_LAYERS = {
    "googlenet": {"conv1.conv": "conv1", "conv2.1.conv": "conv2",
                  "inception_3a.branch0.conv": "3a", "inception_3a.branch1.1.conv": "3a",
                  "inception_3a.branch2.1.conv": "3a", "inception_4e.branch1.1.conv": "4e",
                  "inception_5b.branch0.conv": "5b"},
    "inception_v3": {"mixed_5b.branch1.1.conv": "v3 5b", "mixed_6b.branch1.1.conv": "v3 6b",
                     "mixed_7b.branch2.1.conv": "v3 7b"},
}
POOL_LAYERS = {
    "googlenet": {"pool1": "pool1", "pool2": "pool2", "inception_3a.branch3.0": "3a branch",
                  "classifier.0": "head"},
    "inception_v3": {"mixed_5b.branch3.0": "v3 5b branch"},
}


def _picked(table, batch):
    """(label, layer, input shape) of the layers `table` names, from each model's leaves."""
    from .. import models
    picked = []
    for model, names in table.items():
        for path, layer, shape in getattr(models, model)().leaves(batch):
            if path in names:
                picked.append((names[path], layer, shape))
    return picked


def conv_layers(batch=BATCH):
    """[(name, (C, H, W), (OC, kh, kw), stride, padding)] of CONV_LAYERS, named with their sizes."""
    rows = []
    for label, conv, (_, C, H, W) in _picked(CONV_LAYERS, batch):
        OC, _, kh, kw = conv.params["weight"].shape
        (sh, sw), padding = conv.stride, conv.padding
        stride = f"/{sh}" if sh == sw and sh > 1 else ""
        rows.append((f"{label} {kh}x{kw}{stride} {C}->{OC} @{H}", (C, H, W), (OC, kh, kw),
                     conv.stride, conv.padding))
    return rows


def pool_layers(batch=BATCH):
    """[(name, (C, H, W), kernel, stride, padding, ceil_mode, kind)] of POOL_LAYERS."""
    rows = []
    for label, pool, (_, C, H, W) in _picked(POOL_LAYERS, batch):
        kind = type(pool).__name__.replace("Pool2d", "").lower()
        if kind == "globalavgpool":
            rows.append((f"{label} global avg @{H}", (C, H, W), None, None, None, None, "global"))
            continue
        k, s, p = pool.kernel, pool.stride or pool.kernel, pool.padding
        rows.append((f"{label} {kind} {k}x{k}/{s} p{p} @{H}", (C, H, W), k, s, p, pool.ceil_mode,
                     kind))
    return rows


def _layer(backend, x, w, stride, padding):
    """Closures running forward and forward+backward with preallocated buffers."""
    (sh, sw), (ph, pw) = pair("stride", stride, 1), pair("padding", padding)
    y = np.empty((x.shape[0], w.shape[0], *output_hw(*x.shape[2:], *w.shape[2:], sh, sw, ph, pw)),
                 x.dtype)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], x.dtype)
    b = np.zeros(w.shape[0], x.dtype)
    need = native.conv2d_workspace_size(x.shape, w.shape, stride, padding)
    work = np.empty(max(need, 1), x.dtype)
    kw = {"workspace": work} if backend is native else {}

    def fwd():
        backend.conv2d_forward(x, w, b, y, stride, padding, **kw)

    def fwd_bwd():
        fwd()
        backend.conv2d_backward(y, x, w, dx, dw, db, stride, padding, **kw)

    return fwd, fwd_bwd, y.shape


def _torch_layer(torch, x, w, stride, padding):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.zeros(w.shape[0], requires_grad=True)

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
        y.backward(y.detach())

    return fwd, fwd_bwd


def conv_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True, on_rows=None):
    """One dict per layer: name, gemm shape (M, N, K), GFLOP/s of native forward and
    forward+backward, of sgemm at the equivalent shape, of the NumPy twin and of PyTorch
    (None when not installed), each figure's range ("<key> range": slowest and fastest run's);
    on_rows([row]) is called as soon as a layer is measured."""
    torch, rng = use_threads(threads), np.random.default_rng(0)
    rows = []
    for name, (C, H, W), (OC, kh, kw), stride, padding in layers or conv_layers(batch):
        x = rng.standard_normal((batch, C, H, W), np.float32)
        w = (rng.standard_normal((OC, C, kh, kw), np.float32) / np.sqrt(C * kh * kw)).astype(np.float32)
        fwd, fwd_bwd, yshape = _layer(native, x, w, stride, padding)
        M, N, K = OC, batch * yshape[2] * yshape[3], C * kh * kw
        A, B, Cm = (rng.standard_normal(s, np.float32) for s in ((M, K), (K, N), (M, N)))
        runs = {"native fwd": fwd, "native fwd+bwd": fwd_bwd,
                "blas sgemm": lambda: native.gemm(0, 0, M, N, K, 1.0, A, K, B, N, 0.0, Cm, N)}
        if numpy_twin:
            runs["numpy fwd"], runs["numpy fwd+bwd"], _ = _layer(reference, x, w, stride, padding)
        if torch is not None:
            runs["torch fwd"], runs["torch fwd+bwd"] = _torch_layer(torch, x, w, stride, padding)
        flops = 2.0 * M * N * K  # forward; the backward is twice that (dx and dw)
        row = {"layer": name, "gemm (M, N, K)": (M, N, K), "numpy fwd": None,
               "numpy fwd+bwd": None, "torch fwd": None, "torch fwd+bwd": None}
        for key, (seconds, fastest, slowest) in median_of_rounds(runs, repeats).items():
            work = (3 if key.endswith("bwd") else 1) * flops / 1e9
            key = key.replace("blas sgemm", "sgemm")
            row[key], row[f"{key} range"] = work / seconds, [work / slowest, work / fastest]
        _measured(rows, row, on_rows)
    return rows


def _measured(rows, row, on_rows):
    rows.append(row)
    if on_rows:
        on_rows([row])


def _pool_layer(backend, x, kernel, stride, padding, ceil_mode, kind):
    B, C, H, W = x.shape
    if kind == "global":
        y, dx = np.empty((B, C), x.dtype), np.empty_like(x)
        return (lambda: backend.global_avg_pool_forward(x, y),
                lambda: backend.global_avg_pool_backward(y, dx))
    oh, ow = (output_size(n, kernel, stride, padding, ceil_mode) for n in (H, W))
    y, dx, argmax = np.empty((B, C, oh, ow), x.dtype), np.empty_like(x), np.empty((B, C, oh, ow), np.int64)
    if kind == "max":
        return (lambda: backend.max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode),
                lambda: backend.max_pool2d_backward(y, argmax, dx))
    return (lambda: backend.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode),
            lambda: backend.avg_pool2d_backward(y, dx, kernel, stride, padding, ceil_mode))


def _torch_pool(torch, x, kernel, stride, padding, ceil_mode, kind):
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    run = {"max": lambda: F.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode),
           "avg": lambda: F.avg_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode),
           "global": lambda: F.adaptive_avg_pool2d(xt, 1)}[kind]

    def fwd():
        with torch.no_grad():
            run()

    def fwd_bwd():
        y = run()
        y.backward(y.detach())

    return fwd, fwd_bwd


def pool_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True, on_rows=None):
    """One dict per pooling layer of GoogLeNet / Inception v3 at `batch`: milliseconds of the
    forward and forward+backward, native, NumPy twin and PyTorch (None when not installed),
    each with its range ("<key> range"); on_rows([row]) as soon as a layer is measured."""
    torch, rng = use_threads(threads), np.random.default_rng(0)
    rows = []
    for name, (C, H, W), *args in layers or pool_layers(batch):
        x = rng.standard_normal((batch, C, H, W), np.float32)
        runs = {}
        for label, backend in [("native", native)] + ([("numpy", reference)] if numpy_twin else []):
            fwd, bwd = _pool_layer(backend, x, *args)
            runs[f"{label} fwd"], runs[f"{label} fwd+bwd"] = fwd, lambda f=fwd, b=bwd: (f(), b())
        if torch is not None:
            runs["torch fwd"], runs["torch fwd+bwd"] = _torch_pool(torch, x, *args)
        row = {"layer": name}
        for key, (seconds, fastest, slowest) in median_of_rounds(runs, repeats).items():
            row[key], row[f"{key} range"] = seconds * 1e3, [fastest * 1e3, slowest * 1e3]
        _measured(rows, row, on_rows)
    return rows


def _figure(key):
    return lambda r, group: "-" if r.get(key) is None else spread(r[key], *r[f"{key} range"])


def _table(unit, keys, legend):
    """A table of the rows' `keys` figures in `unit`, each with its range."""
    return Table([(f"layer ({unit})", "<28", lambda r, group: r["layer"])]
                 + [(k, ">21", _figure(k)) for k in keys],
                 [f"figures: {unit}, median of the timed runs (their extremes in brackets)", *legend,
                  "native: our kernels; numpy: their NumPy twins; torch: PyTorch's"])


CONV_TABLE = _table("GFLOP/s", ["native fwd", "sgemm", "numpy fwd", "torch fwd", "native fwd+bwd",
                                "numpy fwd+bwd", "torch fwd+bwd"],
                    ["layer: its name, kernel, /stride, input -> output channels, @ input size; "
                     "higher is faster",
                     "fwd: the forward; fwd+bwd: forward and backward (dL/dx and the weights' "
                     "gradient), counted as 3x the forward's flops",
                     "sgemm: the BLAS's own sgemm alone, on the GEMM the layer lowers to (M output "
                     "channels, N batch x output positions, K input channels x kernel area): the "
                     "ceiling of im2col + GEMM"])
POOL_TABLE = _table("ms", ["native fwd", "numpy fwd", "torch fwd", "native fwd+bwd", "numpy fwd+bwd",
                           "torch fwd+bwd"],
                    ["layer: its name, kind, window/stride, padding, @ input size; lower is faster",
                     "fwd: the forward; fwd+bwd: forward and backward (dL/dx)"])
