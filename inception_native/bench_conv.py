"""Convolution and pooling benchmarks: GoogLeNet's conv layers at batch 16, native vs the BLAS's
own sgemm at the equivalent GEMM shape, the NumPy twin and PyTorch (when installed), in GFLOP/s;
GoogLeNet's pooling layers in milliseconds.

    from inception_native.bench_conv import conv_benchmark, format_rows
    print(format_rows(conv_benchmark(threads=2, repeats=5)))

A convolution of x (B, C, H, W) by w (OC, C, kh, kw) into (B, OC, oh, ow) is the GEMM
(OC, C*kh*kw) x (C*kh*kw, B*oh*ow): 2*OC*C*kh*kw*B*oh*ow flops forward, twice that backward
(dx and dw), so forward+backward counts 3x. The sgemm column times that GEMM alone, on
preallocated matrices, through the same BLAS the native gemm calls: the ceiling the lowering
overheads are measured against. Timings are the median of `repeats` runs after one warm-up.
`threads` sets the OpenMP threads (the native convolution shares image blocks among them, with
a single-threaded BLAS each), the BLAS threads (sgemm, the linear layer, the NumPy twin) and
PyTorch's threads alike.
"""
import ctypes
import glob
import os
import statistics
import time

import numpy as np

from . import _blas_threads, native, reference, set_num_threads

# name, (C, H, W), (OC, kh, kw), stride, padding: GoogLeNet (Szegedy et al. 2014, Table 1)
GOOGLENET_CONVS = [
    ("conv1 7x7/2 3->64 @224", (3, 224, 224), (64, 7, 7), 2, 3),
    ("conv2 3x3 64->192 @56", (64, 56, 56), (192, 3, 3), 1, 1),
    ("3a 1x1 192->64 @28", (192, 28, 28), (64, 1, 1), 1, 0),
    ("3a 3x3 96->128 @28", (96, 28, 28), (128, 3, 3), 1, 1),
    ("4e 3x3 160->320 @14", (160, 14, 14), (320, 3, 3), 1, 1),
    ("5b 1x1 832->384 @7", (832, 7, 7), (384, 1, 1), 1, 0),
]
BATCH = 16


def _openblas_set_threads(n):
    """Set the thread count of the BLAS behind gemm (SciPy's OpenBLAS) and of NumPy's own
    OpenBLAS (the NumPy twin's); OPENBLAS_NUM_THREADS only counts at load time."""
    import numpy
    _blas_threads.set(n)
    libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libs, "*openblas*")):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "scipy_openblas_set_num_threads64_"):
            lib.scipy_openblas_set_num_threads64_(ctypes.c_int(n))


def _median_of(runs, repeats, pause=0.05):
    """Median time of each closure over `repeats` rounds, after one warm-up round. Every round runs
    every closure once, so a neighbour's burst of load (the machine may be shared) hits them all
    alike; closures are grouped by their first word (the library: native, blas, numpy, torch),
    with a pause before each group, so that one library's idle threads, still spinning, do not
    slow the next library down."""
    groups = {}
    for key, fn in runs.items():
        groups.setdefault(key.split()[0], {})[key] = fn
    times = {key: [] for key in runs}
    for round_ in range(repeats + 1):
        for group in groups.values():
            time.sleep(pause)
            for key, fn in group.items():
                start = time.perf_counter()
                fn()
                if round_:  # round 0 warms up
                    times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in times.items()}


def _layer(backend, x, w, stride, padding):
    """Closures running forward and forward+backward with preallocated buffers."""
    y = np.empty((x.shape[0], w.shape[0]) + tuple(
        (n + 2 * padding - k) // stride + 1 for n, k in zip(x.shape[2:], w.shape[2:])), x.dtype)
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


def _setup(threads):
    """Every library on `threads` threads; returns torch, or None when it is not installed."""
    set_num_threads(threads)
    _openblas_set_threads(threads)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def conv_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True):
    """One dict per layer: name, gemm shape (M, N, K), GFLOP/s of native forward and
    forward+backward, of sgemm at the equivalent shape, of the NumPy twin and of PyTorch
    (None when not installed)."""
    torch, rng = _setup(threads), np.random.default_rng(0)
    rows = []
    for name, (C, H, W), (OC, kh, kw), stride, padding in layers or GOOGLENET_CONVS:
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
        for key, seconds in _median_of(runs, repeats).items():
            row[key.replace("blas sgemm", "sgemm")] = (3 if key.endswith("bwd") else 1) * flops / seconds / 1e9
        rows.append(row)
    return rows


# name, (C, H, W), kernel, stride, padding, ceil_mode, kind
GOOGLENET_POOLS = [
    ("pool1 max 3x3/2 ceil @112", (64, 112, 112), 3, 2, 0, True, "max"),
    ("pool2 max 3x3/2 ceil @56", (192, 56, 56), 3, 2, 0, True, "max"),
    ("3a branch max 3x3/1 p1 @28", (192, 28, 28), 3, 1, 1, True, "max"),
    ("v3 branch avg 3x3/1 p1 @35", (192, 35, 35), 3, 1, 1, False, "avg"),
    ("head global avg @7", (1024, 7, 7), None, None, None, None, "global"),
]


def _pool_layer(backend, x, kernel, stride, padding, ceil_mode, kind):
    from ._checks import pool_output
    B, C, H, W = x.shape
    if kind == "global":
        y, dx = np.empty((B, C), x.dtype), np.empty_like(x)
        return (lambda: backend.global_avg_pool_forward(x, y),
                lambda: backend.global_avg_pool_backward(y, dx))
    oh, ow = (pool_output(n, kernel, stride, padding, ceil_mode) for n in (H, W))
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


def pool_benchmark(threads=1, repeats=5, batch=BATCH, layers=None, numpy_twin=True):
    """One dict per pooling layer of GoogLeNet / Inception v3 at `batch`: milliseconds of the
    forward and forward+backward, native, NumPy twin and PyTorch (None when not installed)."""
    torch, rng = _setup(threads), np.random.default_rng(0)
    rows = []
    for name, (C, H, W), *args in layers or GOOGLENET_POOLS:
        x = rng.standard_normal((batch, C, H, W), np.float32)
        runs = {}
        for label, backend in [("native", native)] + ([("numpy", reference)] if numpy_twin else []):
            fwd, bwd = _pool_layer(backend, x, *args)
            runs[f"{label} fwd"], runs[f"{label} fwd+bwd"] = fwd, lambda f=fwd, b=bwd: (f(), b())
        if torch is not None:
            runs["torch fwd"], runs["torch fwd+bwd"] = _torch_pool(torch, x, *args)
        row = {"layer": name}
        row.update({key: seconds * 1e3 for key, seconds in _median_of(runs, repeats).items()})
        rows.append(row)
    return rows


def format_rows(rows, unit="GFLOP/s"):
    """Benchmark rows as a fixed-width text table."""
    keys = [k for k in ["native fwd", "sgemm", "numpy fwd", "torch fwd", "native fwd+bwd",
                        "numpy fwd+bwd", "torch fwd+bwd"] if any(k in r for r in rows)]
    lines = [f"{'layer (' + unit + ')':<28}" + "".join(f"{k:>15}" for k in keys)]
    for r in rows:
        cells = "".join(f"{'-' if r.get(k) is None else format(r[k], '.1f'):>15}" for k in keys)
        lines.append(f"{r['layer']:<28}" + cells)
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(format_rows(conv_benchmark(threads, repeats)))
    print(format_rows(pool_benchmark(threads, repeats), unit="ms"))
