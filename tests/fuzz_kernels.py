"""Property-based fuzz of every public kernel wrapper against its NumPy twin (issue 6).

Not collected by the default run (the name does not start with test_): tests/test_fuzz.py runs
it in a child `python -m pytest` so that a crash (a segfault) is reported as a failure, not a
dead run. Run it yourself with a profile (registered in tests/conftest.py):

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m pytest -q tests/fuzz_kernels.py --hypothesis-profile=ci
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m pytest -q tests/fuzz_kernels.py --hypothesis-profile=long

Each example builds a valid call of one kernel (random sizes, dtype, shapes whose element count
fits, argument values), then maybe spoils one argument (wrong dtype or type, non-contiguous,
one element too few or too many, read-only, a size off by one, negative, huge, not an integer,
NaN ...). The oracle: the NumPy twin runs first; if it raises, the native wrapper must raise the
same TypeError/ValueError with the same message, and that message names an argument; if it
succeeds, the native wrapper must succeed and leave every array equal to the twin's, to float
tolerance.
"""
import atexit
import collections
import copy
import inspect
import math
import re
import sys

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inception_native import native, reference  # noqa: E402

DTYPES = (np.float32, np.float64)
TOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-9}
# words a message may use for an argument it is about, beside the argument's own name
ALIASES = {"kernel", "output channels", "batch*spatial", "C*kh*kw", "batch*out_h*out_w",
           "batch", "in_features", "out_features", "parts"}


class Draw:
    """Random values for one example, from one seed Hypothesis drew (fast, and shrinks)."""

    def __init__(self, data, dtype):
        self.data, self.dtype = data, np.dtype(dtype)
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def int(self, lo, hi, label=None):
        return self.data.draw(st.integers(lo, hi), label=label)

    def choice(self, options, label=None):
        return self.data.draw(st.sampled_from(options), label=label)

    def array(self, shape, positive=False):
        a = self.rng.standard_normal(shape).astype(self.dtype)
        return np.abs(a) + self.dtype.type(0.5) if positive else a

    def shaped(self, count, tensor=None, positive=False):
        """An array of `count` elements: flat, or shaped like `tensor` when one is given."""
        shape = tensor if tensor is not None and self.int(0, 1) else (count,)
        return self.array(shape, positive)

    def bcs(self, lo_batch=1):
        return self.int(lo_batch, 4, "batch"), self.int(1, 9, "channels"), self.int(1, 19, "spatial")


# ---- valid calls, one builder per kernel: returns the arguments, in order -----------------

def _blas_sizes(d):
    b, f, s = d.bcs()
    return b, f, s, (b, f, s)


def b_mean_cpu(d):
    b, f, s, t = _blas_sizes(d)
    return [d.shaped(b * f * s, t), b, f, s, d.array(f)]


def b_variance_cpu(d):
    b, f, s, t = _blas_sizes(d)
    if b * s == 1:
        s = 2
        t = (b, f, s)
    return [d.shaped(b * f * s, t), d.array(f), b, f, s, d.array(f)]


def b_normalize_cpu(d):
    b, f, s, t = _blas_sizes(d)
    return [d.shaped(b * f * s, t), d.array(f), d.array(f, True), b, f, s]


def _strided_args(d):
    n, incx, incy = d.int(0, 70, "N"), d.int(1, 4, "INCX"), d.int(1, 4, "INCY")
    need = lambda inc: (n - 1) * inc + 1 if n else 0  # noqa: E731
    X = d.array(need(incx) + d.int(0, 3))
    Y = d.array(need(incy) + d.int(0, 3))
    return n, X, incx, Y, incy


def _alpha(d):
    return d.choice([0.0, 1.0, -2.5, 0.5, 3, np.float32(0.25), np.float64(-1.0)], "ALPHA")


def b_axpy_cpu(d):
    n, X, incx, Y, incy = _strided_args(d)
    return [n, _alpha(d), X, incx, Y, incy]


def b_scal_cpu(d):
    n, X, incx, _, _ = _strided_args(d)
    return [n, _alpha(d), X, incx]


b_fill_cpu = b_scal_cpu


def b_copy_cpu(d):
    n, X, incx, Y, incy = _strided_args(d)
    return [n, X, incx, Y, incy]


def b_sgd_momentum_cpu(d):
    n = d.int(0, 70, "N")
    shape = (n,) if d.int(0, 1) else (1, n)
    decay = d.choice([0.0, 1e-2], "weight_decay")
    return [d.array(shape), d.array(shape), d.array(shape), d.choice([0.0, 0.1, 2], "lr"),
            d.choice([0.0, 0.9, 1.0], "momentum"), decay]


def b_scale_bias(d):
    b, c, s, t = _blas_sizes(d)
    return [d.shaped(b * c * s, t), d.array(c), b, c, s]


b_add_bias = b_scale_bias


def b_backward_bias(d):
    b, c, s, t = _blas_sizes(d)
    return [d.array(c), d.shaped(b * c * s, t), b, c, s]


def b_backward_scale_cpu(d):
    b, c, s, t = _blas_sizes(d)
    return [d.shaped(b * c * s, t), d.shaped(b * c * s, t), b, c, s, d.array(c)]


def b_mean_delta_cpu(d):
    b, f, s, t = _blas_sizes(d)
    return [d.shaped(b * f * s, t), d.array(f, True), b, f, s, d.array(f)]


def b_variance_delta_cpu(d):
    b, f, s, t = _blas_sizes(d)
    return [d.shaped(b * f * s, t), d.shaped(b * f * s, t), d.array(f), d.array(f, True),
            b, f, s, d.array(f)]


def b_normalize_delta_cpu(d):
    b, f, s, t = _blas_sizes(d)
    return [d.shaped(b * f * s, t), d.array(f), d.array(f, True), d.array(f), d.array(f),
            b, f, s, d.shaped(b * f * s, t)]


def _nchw(d, lo_batch=1):
    b, c = d.int(lo_batch, 4, "batch"), d.int(1, 6, "channels")
    spatial = tuple(d.int(1, 5) for _ in range(d.int(0, 2, "spatial dims")))
    if b * math.prod(spatial) == 1:  # training needs two values per channel
        b = 2
    return (b, c) + spatial, c


def b_batchnorm_forward(d):
    shape, c = _nchw(d)
    training = d.choice([True, False], "training")
    eps = d.choice([1e-5, 1e-3, 0.1], "eps")
    momentum = d.choice([0.0, 0.01, 0.1, 1.0], "momentum")
    return [d.array(shape), d.array(c), d.array(c), d.array(c), d.array(c, True),
            d.array(shape), d.array(c), d.array(c), training, eps, momentum]


def b_batchnorm_backward(d):
    shape, c = _nchw(d)
    return [d.array(shape), d.array(shape), d.array(c), d.array(c, True), d.array(c),
            d.array(shape), d.array(c), d.array(c), d.choice([True, False], "training")]


def b_batchnorm_forward_darknet(d):
    shape, c = _nchw(d)
    return [d.array(shape), d.array(c), d.array(c), d.array(c), d.array(c, True),
            d.array(shape), d.array(shape), d.array(c), d.array(c, True),
            d.choice([True, False], "training")]


def b_batchnorm_backward_darknet(d):
    shape, c = _nchw(d)
    return [d.array(shape), d.array(shape), d.array(shape), d.array(c), d.array(c, True),
            d.array(c), d.array(c), d.array(c)]


def _image(d):
    return d.int(1, 3, "batch"), d.int(1, 4, "channels"), d.int(1, 9, "height"), d.int(1, 9, "width")


def _conv_geometry(d):
    B, C, H, W = _image(d)
    kh, kw = d.int(1, min(H, 4) + 2, "kh"), d.int(1, min(W, 4) + 2, "kw")
    ph, pw = d.int(0, 2, "ph"), d.int(0, 2, "pw")
    kh, kw = min(kh, H + 2 * ph), min(kw, W + 2 * pw)
    sh, sw = d.int(1, 3, "sh"), d.int(1, 3, "sw")
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    return B, C, H, W, kh, kw, ph, pw, sh, sw, oh, ow


def _pair(d, a, b, name):
    return (a, b) if a != b or d.int(0, 1, name) else a


def b_conv2d_forward(d):
    B, C, H, W, kh, kw, ph, pw, sh, sw, oh, ow = _conv_geometry(d)
    OC = d.int(1, 5, "out channels")
    stride, padding = _pair(d, sh, sw, "stride pair"), _pair(d, ph, pw, "padding pair")
    bias = d.array(OC) if d.int(0, 1, "bias") else None
    workspace = None
    if d.int(0, 1, "workspace"):
        need = native.conv2d_workspace_size((B, C, H, W), (OC, C, kh, kw), stride, padding)
        workspace = d.array(need + d.int(0, 2))
    return [d.array((B, C, H, W)), d.array((OC, C, kh, kw)), bias, d.array((B, OC, oh, ow)),
            stride, padding, workspace]


def b_conv2d_backward(d):
    x, weight, bias, y, stride, padding, workspace = b_conv2d_forward(d)
    dx = d.array(x.shape) if d.int(0, 1, "dx") else None
    dbias = d.array(weight.shape[0]) if bias is not None else None
    return [y, x, weight, dx, d.array(weight.shape), dbias, stride, padding, workspace]


def b_im2col_ext(d):
    _, C, H, W, kh, kw, ph, pw, sh, sw, oh, ow = _conv_geometry(d)
    return [d.array((C, H, W)), C, H, W, kh, kw, ph, pw, sh, sw, d.array(C * kh * kw * oh * ow)]


def b_col2im_ext(d):
    args = b_im2col_ext(d)
    return [args[-1]] + args[1:-1] + [args[0]]


def b_im2col_cpu(d):
    _, C, H, W, k, _, p, _, s, _, _, _ = _conv_geometry(d)  # one ksize, stride, pad
    k = min(k, W + 2 * p, H + 2 * p)
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    return [d.array((C, H, W)), C, H, W, k, s, p, d.array(C * k * k * oh * ow)]


def b_col2im_cpu(d):
    args = b_im2col_cpu(d)
    return [args[-1]] + args[1:-1] + [args[0]]


def _gemm_args(d):
    ta, tb = d.choice([0, 1, False, True], "TA"), d.choice([0, 1], "TB")
    m, n, k = d.int(0, 9, "M"), d.int(0, 9, "N"), d.int(0, 9, "K")
    ra, ca = (k, m) if ta else (m, k)
    rb, cb = (n, k) if tb else (k, n)
    lda, ldb, ldc = (max(1, c) + d.int(0, 2) for c in (ca, cb, n))
    A = d.array((ra - 1) * lda + ca if ra and ca else d.int(0, 2))
    B = d.array((rb - 1) * ldb + cb if rb and cb else d.int(0, 2))
    C = d.array((m - 1) * ldc + n if m and n else d.int(0, 2))
    alpha, beta = d.choice([1.0, 0.5, -2, 0]), d.choice([0.0, 1.0, 0.25])
    return [ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc]


b_gemm = b_gemm_cpu = _gemm_args


def _pool_geometry(d):
    B, C, H, W = _image(d)
    kh, kw = d.int(1, min(H, 4), "kh"), d.int(1, min(W, 4), "kw")
    ph, pw = d.int(0, kh // 2, "ph"), d.int(0, kw // 2, "pw")
    stride = d.choice([None, 1, 2, 3, (1, 2), (2, 1)], "stride")
    ceil_mode = d.choice([False, True], "ceil_mode")
    kernel, padding = _pair(d, kh, kw, "kernel pair"), _pair(d, ph, pw, "padding pair")
    sh, sw = (kh, kw) if stride is None else (stride if isinstance(stride, tuple) else (stride,) * 2)
    pool = lambda n, k, s, p: reference_pool_output(n, k, s, p, ceil_mode)  # noqa: E731
    oh, ow = pool(H, kh, sh, ph), pool(W, kw, sw, pw)
    return (B, C, H, W), (B, C, oh, ow), kernel, stride, padding, ceil_mode


def reference_pool_output(n, k, s, p, ceil_mode):
    from inception_native.shapes import output_size as pool_output
    return pool_output(n, k, s, p, ceil_mode)


def b_max_pool2d_forward(d):
    xs, ys, kernel, stride, padding, ceil_mode = _pool_geometry(d)
    return [d.array(xs), d.array(ys), np.zeros(ys, np.int64), kernel, stride, padding, ceil_mode]


def b_max_pool2d_backward(d):
    x, y, argmax, kernel, stride, padding, ceil_mode = b_max_pool2d_forward(d)
    reference.max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode)
    return [d.array(y.shape), argmax, d.array(x.shape)]


def b_avg_pool2d_forward(d):
    xs, ys, kernel, stride, padding, ceil_mode = _pool_geometry(d)
    return [d.array(xs), d.array(ys), kernel, stride, padding, ceil_mode,
            d.choice([True, False], "count_include_pad")]


def b_avg_pool2d_backward(d):
    x, y, *rest = b_avg_pool2d_forward(d)
    return [y, x, *rest]


def b_adaptive_avg_pool2d_forward(d):
    B, C, H, W = _image(d)
    return [d.array((B, C, H, W)), d.array((B, C, d.int(1, 2 * H, "oh"), d.int(1, 2 * W, "ow")))]


def b_adaptive_avg_pool2d_backward(d):
    x, y = b_adaptive_avg_pool2d_forward(d)
    return [y, x]


def b_global_avg_pool_forward(d):
    shape, _ = _nchw(d)
    return [d.array(shape), d.array(shape[:2])]


def b_global_avg_pool_backward(d):
    x, y = b_global_avg_pool_forward(d)
    return [y, x]


def b_channel_affine_forward(d):
    shape, c = _nchw(d)
    scale = d.array(c) if d.choice([True, False], "scaled") else None
    return [d.array(shape), scale, d.array(c), d.array(shape), d.choice([True, False], "relu")]


def _activation(d):
    """x (any shape), an output like it, and Darknet's leaky slope or another >= 0."""
    shape, _ = _nchw(d)
    return d.array(shape), d.array(shape), d.choice([0.1, 0.0, 0.01, 3.0], "slope")


def b_leaky_relu_forward(d):
    return list(_activation(d))


def b_leaky_relu_backward(d):
    x, y, slope = _activation(d)
    return [d.array(x.shape), reference.leaky_relu_forward(x, y, slope), np.empty_like(x), slope]


def b_logistic_forward(d):
    return list(_activation(d)[:2])


def b_logistic_backward(d):
    x, y, _ = _activation(d)
    return [d.array(x.shape), reference.logistic_forward(x, y), np.empty_like(x)]


def _rows(d):
    return d.int(1, 4, "rows"), d.int(1, 12, "classes")


def b_softmax_forward(d):
    shape = _rows(d)
    return [d.array(shape) * 4, d.array(shape)]


def b_softmax_backward(d):
    x, y = b_softmax_forward(d)
    return [d.array(x.shape), reference.softmax_forward(x, y), np.empty_like(x)]


BUILDERS = {name[2:]: f for name, f in globals().items() if name.startswith("b_")}


# ---- spoiling one argument ----------------------------------------------------------------

def spoil(d, args, names):
    """Replace one argument by a bad (or merely odd) value; returns (index, kind) or None."""
    if d.int(0, 2, "spoil?") == 0:
        return None
    i = d.int(0, len(args) - 1, "spoiled argument")
    a = args[i]
    if isinstance(a, np.ndarray):
        kind = d.choice(["dtype", "float16", "noncontiguous", "fewer", "more", "readonly",
                         "reshape", "list", "other dtype"], "array spoil")
        if kind == "dtype":
            args[i] = a.astype(np.int32)
        elif kind == "float16":
            args[i] = a.astype(np.float16)
        elif kind == "other dtype":
            args[i] = a.astype(np.float32 if a.dtype == np.float64 else np.float64)
        elif kind == "noncontiguous":
            args[i] = np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a
        elif kind == "fewer":
            args[i] = a.reshape(-1)[:-1].copy() if a.size else a
        elif kind == "more":
            args[i] = np.concatenate([a.reshape(-1), a.reshape(-1)[:1] + 1]) if a.size else a
        elif kind == "readonly":
            a.setflags(write=False)
        elif kind == "reshape":
            args[i] = a.reshape(-1)
        else:
            args[i] = a.tolist()
        return i, kind
    if a is None or isinstance(a, (bool, np.bool_)):
        kind = d.choice(["none", "int 2", "flag str", "flag array"], "flag spoil")
        args[i] = {"none": None, "int 2": 2, "flag str": "yes",
                   "flag array": np.array([True, False])}[kind]
        return i, kind
    if isinstance(a, (int, np.integer)):
        kind = d.choice(["-1", "0", "+1", "-1 off", "huge", "2**63", "float", "bool", "str",
                         "none", "numpy int"], "int spoil")
        args[i] = {"-1": -1, "0": 0, "+1": a + 1, "-1 off": a - 1, "huge": 2**40, "2**63": 2**63,
                   "float": a + 0.5, "bool": True, "str": str(a), "none": None,
                   "numpy int": np.int64(a)}[kind]
        return i, kind
    if isinstance(a, (float, np.floating)):
        kind = d.choice(["nan", "inf", "-1", "2", "0", "str", "none"], "float spoil")
        args[i] = {"nan": math.nan, "inf": math.inf, "-1": -1.0, "2": 2.0, "0": 0.0,
                   "str": "x", "none": None}[kind]
        return i, kind
    if isinstance(a, tuple):
        kind = d.choice(["triple", "negative", "zero", "floats"], "pair spoil")
        args[i] = {"triple": a + (1,), "negative": (a[0], -1), "zero": (0, a[1]),
                   "floats": (float(a[0]), a[1])}[kind]
        return i, kind
    return None


# Spoils that can never be a valid call (others, such as a size + 1 or a read-only input,
# may still be valid: then both backends must agree on the result)
ALWAYS_INVALID = {"dtype", "float16", "list", "str", "nan", "inf", "flag array"}


# ---- the oracle ---------------------------------------------------------------------------

# examples run per kernel: "matched" (both succeeded, equal) or "raised" (both raised alike)
TALLY = collections.defaultdict(collections.Counter)


@atexit.register
def _print_tally():
    if TALLY:
        lines = [f"{name:28s} {sum(c.values()):7d} examples: {c['matched']:6d} matched the twin, "
                 f"{c['raised']:6d} raised alike" for name, c in sorted(TALLY.items())]
        print("\nfuzz_kernels tally\n" + "\n".join(lines), file=sys.stderr)


def run(fn, args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001: the type is checked by the caller
        return e
    return None


def names_an_argument(message, names):
    words = set(names) | ALIASES
    return any(re.search(r"(?<![A-Za-z_])" + re.escape(w) + r"(?![A-Za-z_])", message)
               for w in words)


def equal(a, b, dtype):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        tol = TOL.get(a.dtype, 1e-3)
        scale = max(1.0, float(np.nanmax(np.abs(b))) if b.size and np.isfinite(b).any() else 1.0)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)


def check_kernel(name, data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    d = Draw(data, dtype)
    args = BUILDERS[name](d)
    names = list(inspect.signature(getattr(reference, name)).parameters)[:len(args)]
    spoiled = spoil(d, args, names)
    ref_args, nat_args = copy.deepcopy(args), copy.deepcopy(args)
    for a, r, n in zip(args, ref_args, nat_args):  # deepcopy drops the read-only flag
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            r.setflags(write=False)
            n.setflags(write=False)
    ref_error = run(getattr(reference, name), ref_args)
    nat_error = run(getattr(native, name), nat_args)
    if ref_error is not None:
        assert isinstance(ref_error, (TypeError, ValueError)), repr(ref_error)
        assert type(nat_error) is type(ref_error), (repr(nat_error), repr(ref_error))
        assert str(nat_error) == str(ref_error)
        assert names_an_argument(str(ref_error), names), str(ref_error)
        TALLY[name]["raised"] += 1
        return
    assert nat_error is None, repr(nat_error)
    if spoiled is not None:
        assert spoiled[1] not in ALWAYS_INVALID, f"{names[spoiled[0]]}: {spoiled[1]} accepted"
    for r, n, arg in zip(ref_args, nat_args, names):
        if arg != "workspace":  # scratch space: its contents are no result
            equal(n, r, dtype)
    TALLY[name]["matched"] += 1


KERNELS = sorted(BUILDERS)


@pytest.mark.parametrize("name", KERNELS)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          deadline=None)
@given(data=st.data())
def test_kernel_matches_twin_or_raises(name, data):
    check_kernel(name, data)
