"""Convolution and pooling benchmarks: GoogLeNet's conv layers at batch 16 (or `batch`), native vs
the BLAS's own sgemm at the equivalent GEMM shape, the NumPy twin, PyTorch NCHW and channels_last
and onnxruntime (each when installed), in GFLOP/s and in % of the FMA peak measured in the same
run; GoogLeNet's pooling layers in milliseconds, against the copy bandwidth measured beside them.

    from inception_native.bench.conv import CONV_TABLE, conv_benchmark
    print(CONV_TABLE.format(conv_benchmark(threads=2, repeats=5)))

A convolution of x (B, C, H, W) by w (OC, C, kh, kw) into (B, OC, oh, ow) is the GEMM
(OC, C*kh*kw) x (C*kh*kw, B*oh*ow): 2*OC*C*kh*kw*B*oh*ow flops forward, twice that backward
(dx and dw), so forward+backward counts 3x. The sgemm column times that GEMM alone, on
preallocated matrices, through the same BLAS the native gemm calls: the ceiling the lowering
overheads are measured against. Timings are the median of `repeats` runs after one warm-up.
`threads` sets the OpenMP threads (the native convolution shares image blocks among them, with
a single-threaded BLAS each), the BLAS threads (sgemm, the linear layer, the NumPy twin),
PyTorch's threads and onnxruntime's intra-op threads alike.

onnxruntime runs each layer as a one-node ONNX graph (Conv with the weights as initializers,
MaxPool, AveragePool, GlobalAveragePool) in an InferenceSession with ORT_ENABLE_ALL; it needs
the `bench` extra (onnx, onnxruntime). Absent packages leave their columns None.
"""
import numpy as np

from .. import native, reference
from .._checks import pair
from ..conv import conv_isa, fma_peak_flops
from ..shapes import output_hw, output_size
from .table import Table
from .timing import median_of_rounds, spread, use_threads

BATCH = 16
PEAK_ROUNDS = 1 << 22  # FMA rounds per thread: 0.8 GFLOP on AVX2, 3.2 on AVX-512
# Figures of contenders that may be absent (not installed, or left out): None then.
OPTIONAL = ("numpy fwd", "numpy fwd+bwd", "torch fwd", "torch fwd+bwd", "torch cl fwd",
            "torch cl fwd+bwd", "onnxruntime fwd")
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
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding)
    work = np.empty(max(plan.workspace, 1), x.dtype)
    kw = {"workspace": work, "plan": plan} if backend is native else {}
    # inference packs its weights once (as onnxruntime does its initializers); a training step
    # packs them at every forward, since they change
    packed = {"packed": plan.pack(w)} if backend is native and plan.algorithm == "convk" else {}

    def fwd():
        backend.conv2d_forward(x, w, b, y, stride, padding, **kw, **packed)

    def fwd_bwd():
        backend.conv2d_forward(x, w, b, y, stride, padding, **kw)
        backend.conv2d_backward(y, x, w, dx, dw, db, stride, padding, **kw)

    return fwd, fwd_bwd, y.shape


def _torch_conv(torch, x, w, stride, padding, memory_format):
    xt, wt = (torch.tensor(a).to(memory_format=memory_format).requires_grad_() for a in (x, w))
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    return lambda: torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)


def _torch_runs(torch, layer, *args):
    """PyTorch's forward and forward+backward of layer(torch, *args, memory_format)(), in NCHW
    ("torch") and channels_last ("torch cl": input and weights)."""
    runs = {}
    for label, memory_format in (("torch", torch.contiguous_format), ("torch cl", torch.channels_last)):
        run = layer(torch, *args, memory_format)

        def fwd(run=run):
            with torch.no_grad():
                run()

        def fwd_bwd(run=run):
            y = run()
            y.backward(y.detach())

        runs[f"{label} fwd"], runs[f"{label} fwd+bwd"] = fwd, fwd_bwd
    return runs


def load_onnxruntime():
    """(onnx, onnxruntime), or None when either is not installed."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return None
    return onnx, onnxruntime


def _onnxruntime_run(ort, threads, x, op, initializers=(), **attributes):
    """A closure running the one-node graph y = op(x, *initializers) in an onnxruntime session
    on `threads` intra-op threads, all graph optimizations on."""
    onnx, onnxruntime = ort
    helper = onnx.helper
    params = [onnx.numpy_helper.from_array(a, f"p{i}") for i, a in enumerate(initializers)]
    node = helper.make_node(op, ["x"] + [p.name for p in params], ["y"], **attributes)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], params)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(helper.make_model(graph).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})


def _contenders(threads, use_torch):
    """torch (None when not installed or not used) and onnxruntime's load_onnxruntime(), with
    every library on `threads` threads."""
    torch = use_threads(threads)
    return torch if use_torch else None, load_onnxruntime()


def fma_peak(threads, repeats):
    """GFLOP/s of the FMA loop on the convolution's ISA path (conv_isa) on `threads` threads:
    (median, [slowest, fastest]) over `repeats` rounds."""
    flops = fma_peak_flops(PEAK_ROUNDS, threads) / 1e9
    timing = median_of_rounds({"peak": lambda: fma_peak_flops(PEAK_ROUNDS, threads)}, repeats)["peak"]
    return flops / timing.median, [flops / timing.slowest, flops / timing.fastest]


def _scaled(row, key, new_key, factor):
    """row[new_key] and its range: row[key]'s times factor."""
    row[new_key], row[f"{new_key} range"] = row[key] * factor, [v * factor for v in row[f"{key} range"]]


def conv_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True, use_torch=True,
                   on_rows=None, dtype=np.float32):
    """One dict per layer: name, gemm shape (M, N, K), GFLOP/s of native forward and
    forward+backward, of sgemm at the equivalent shape, of the NumPy twin, of PyTorch in NCHW and
    channels_last and of onnxruntime's forward (None when not installed, or for PyTorch when
    not use_torch), each figure's range ("<key> range": slowest and fastest run's), the FMA
    peak measured first ("fma peak", GFLOP/s) and the native forward's share of it ("native
    % peak"); on_rows([row]) is called as soon as a layer is measured. dtype float64: every
    contender in float64 (sgemm is then dgemm; onnxruntime left out: its CPU Conv is float32
    only), the peak halved (an FMA does half as many float64 operations)."""
    torch, ort = _contenders(threads, use_torch)
    dtype = np.dtype(dtype)
    ort = ort if dtype == np.float32 else None
    rng = np.random.default_rng(0)
    peak, peak_range = fma_peak(threads, repeats)
    if dtype == np.float64:
        peak, peak_range = peak / 2, [p / 2 for p in peak_range]
    rows = []
    for name, (C, H, W), (OC, kh, kw), stride, padding in layers or conv_layers(batch):
        x = rng.standard_normal((batch, C, H, W)).astype(dtype)
        w = (rng.standard_normal((OC, C, kh, kw)) / np.sqrt(C * kh * kw)).astype(dtype)
        fwd, fwd_bwd, yshape = _layer(native, x, w, stride, padding)
        M, N, K = OC, batch * yshape[2] * yshape[3], C * kh * kw
        A, B, Cm = (rng.standard_normal(s).astype(dtype) for s in ((M, K), (K, N), (M, N)))
        runs = {"native fwd": fwd, "native fwd+bwd": fwd_bwd,
                "blas sgemm": lambda: native.gemm(0, 0, M, N, K, 1.0, A, K, B, N, 0.0, Cm, N)}
        if numpy_twin:
            runs["numpy fwd"], runs["numpy fwd+bwd"], _ = _layer(reference, x, w, stride, padding)
        if torch is not None:
            runs.update(_torch_runs(torch, _torch_conv, x, w, stride, padding))
        if ort is not None:
            (sh, sw), (ph, pw) = pair("stride", stride, 1), pair("padding", padding)
            runs["onnxruntime fwd"] = _onnxruntime_run(
                ort, threads, x, "Conv", (w, np.zeros(OC, np.float32)), kernel_shape=[kh, kw],
                strides=[sh, sw], pads=[ph, pw, ph, pw])
        flops = 2.0 * M * N * K  # forward; the backward is twice that (dx and dw)
        row = {"layer": name, "gemm (M, N, K)": (M, N, K), **dict.fromkeys(OPTIONAL),
               "dtype": dtype.name, "fma peak": peak, "fma peak range": peak_range}
        for key, (seconds, fastest, slowest) in median_of_rounds(runs, repeats).items():
            work = (3 if key.endswith("bwd") else 1) * flops / 1e9
            key = key.replace("blas sgemm", "sgemm")
            row[key], row[f"{key} range"] = work / seconds, [work / slowest, work / fastest]
        _scaled(row, "native fwd", "native % peak", 100 / peak)
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
                lambda: backend.global_avg_pool_backward(y, dx), y)
    oh, ow = (output_size(n, kernel, stride, padding, ceil_mode) for n in (H, W))
    y, dx = np.empty((B, C, oh, ow), x.dtype), np.empty_like(x)
    if kind == "max":  # as layers.MaxPool2d trains: no argmax, the backward finds the maxima in x
        window = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
        return (lambda: backend.max_pool2d_forward(x, y, None, **window),
                lambda: backend.max_pool2d_backward(y, None, dx, x=x, y=y, **window), y)
    return (lambda: backend.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode),
            lambda: backend.avg_pool2d_backward(y, dx, kernel, stride, padding, ceil_mode), y)


def _torch_pool(torch, x, kernel, stride, padding, ceil_mode, kind, memory_format):
    F = torch.nn.functional
    xt = torch.tensor(x).to(memory_format=memory_format).requires_grad_()
    return {"max": lambda: F.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode),
            "avg": lambda: F.avg_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode),
            "global": lambda: F.adaptive_avg_pool2d(xt, 1)}[kind]


def _onnxruntime_pool(ort, threads, x, kernel, stride, padding, ceil_mode, kind):
    if kind == "global":
        return _onnxruntime_run(ort, threads, x, "GlobalAveragePool")
    window = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [padding] * 4,
              "ceil_mode": int(ceil_mode)}
    if kind == "max":
        return _onnxruntime_run(ort, threads, x, "MaxPool", **window)
    return _onnxruntime_run(ort, threads, x, "AveragePool", count_include_pad=1, **window)


def pool_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True, use_torch=True,
                   on_rows=None):
    """One dict per pooling layer of GoogLeNet / Inception v3 at `batch`: milliseconds of the
    forward and forward+backward, native, NumPy twin, PyTorch NCHW and channels_last and
    onnxruntime's forward (None when not installed, or for PyTorch when not use_torch), each
    with its range ("<key> range"); the copy bandwidth on the layer's input ("copy GB/s":
    native copy_cpu, bytes read + written) and the native forward against it ("native x copy
    bound": its time over an ideal pool's, which reads the input and writes the output once at
    that bandwidth); on_rows([row]) as soon as a layer is measured."""
    torch, ort = _contenders(threads, use_torch)
    rng = np.random.default_rng(0)
    rows = []
    for name, (C, H, W), *args in layers or pool_layers(batch):
        x = rng.standard_normal((batch, C, H, W), np.float32)
        copy = np.empty_like(x)
        runs = {"copy": lambda: native.copy_cpu(x.size, x, 1, copy, 1)}
        for label, backend in [("native", native)] + ([("numpy", reference)] if numpy_twin else []):
            fwd, bwd, y = _pool_layer(backend, x, *args)
            runs[f"{label} fwd"], runs[f"{label} fwd+bwd"] = fwd, lambda f=fwd, b=bwd: (f(), b())
        if torch is not None:
            runs.update(_torch_runs(torch, _torch_pool, x, *args))
        if ort is not None:
            runs["onnxruntime fwd"] = _onnxruntime_pool(ort, threads, x, *args)
        row = {"layer": name, **dict.fromkeys(OPTIONAL)}
        timings = median_of_rounds(runs, repeats)
        copied = timings.pop("copy")
        for key, (seconds, fastest, slowest) in timings.items():
            row[key], row[f"{key} range"] = seconds * 1e3, [fastest * 1e3, slowest * 1e3]
        gigabytes = 2 * x.nbytes / 1e9
        row["copy GB/s"], row["copy GB/s range"] = (gigabytes / copied.median,
                                                    [gigabytes / copied.slowest, gigabytes / copied.fastest])
        ideal_ms = (x.nbytes + y.nbytes) / 1e9 / row["copy GB/s"] * 1e3
        _scaled(row, "native fwd", "native x copy bound", 1 / ideal_ms)
        _measured(rows, row, on_rows)
    return rows


def _figure(key):
    return lambda r, group: "-" if r.get(key) is None else spread(r[key], *r[f"{key} range"])


def _table(unit, keys, legend, notes=lambda rows: []):
    """A table of the rows' `keys` figures in `unit`, each with its range."""
    return Table([(f"layer ({unit})", "<28", lambda r, group: r["layer"])]
                 + [(k, ">21", _figure(k)) for k in keys],
                 [f"figures: {unit}, median of the timed runs (their extremes in brackets)", *legend,
                  "native: our kernels; numpy: their NumPy twins; torch: PyTorch's, NCHW; torch cl: "
                  "PyTorch's, input and weights channels_last; onnxruntime: a one-node ONNX graph "
                  "in onnxruntime (ORT_ENABLE_ALL, intra-op threads = threads); - : not installed "
                  "or left out"], notes)


def _peak_note(rows):
    halved = " (float64: half the float32 loop's)" if rows and rows[0].get("dtype") == "float64" else ""
    return [f"FMA peak on the {conv_isa()} path, measured before the rows: "
            f"{spread(rows[0]['fma peak'], *rows[0]['fma peak range'], digits=0)} GFLOP/s{halved}"] if rows else []


CONV_TABLE = _table("GFLOP/s", ["native fwd", "native % peak", "sgemm", "numpy fwd", "torch fwd",
                                "torch cl fwd", "onnxruntime fwd", "native fwd+bwd", "numpy fwd+bwd",
                                "torch fwd+bwd", "torch cl fwd+bwd"],
                    ["layer: its name, kernel, /stride, input -> output channels, @ input size; "
                     "higher is faster",
                     "native % peak: the native forward in % of the FMA peak (below the table): "
                     "float32 FMA chains in the vector registers the convolution runs on, on the "
                     "same threads",
                     "fwd: the forward; fwd+bwd: forward and backward (dL/dx and the weights' "
                     "gradient), counted as 3x the forward's flops",
                     "sgemm: the BLAS's own sgemm alone, on the GEMM the layer lowers to (M output "
                     "channels, N batch x output positions, K input channels x kernel area): the "
                     "ceiling of im2col + GEMM"], _peak_note)
POOL_TABLE = _table("ms", ["native fwd", "numpy fwd", "torch fwd", "torch cl fwd", "onnxruntime fwd",
                           "copy GB/s", "native x copy bound", "native fwd+bwd", "numpy fwd+bwd",
                           "torch fwd+bwd", "torch cl fwd+bwd"],
                    ["layer: its name, kind, window/stride, padding, @ input size; lower is faster",
                     "fwd: the forward; fwd+bwd: forward and backward (dL/dx)",
                     "copy GB/s: native copy_cpu of the layer's input, bytes read + written a second",
                     "native x copy bound: the native forward's time over an ideal pool's at that "
                     "bandwidth (input read once, output written once; no argmax): 1.0 is the bound"])
