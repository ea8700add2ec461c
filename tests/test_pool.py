"""Max, average, adaptive average and global average pooling: native against the NumPy twin, a
direct window loop, finite differences and PyTorch; ceil mode's partial windows; adaptive
pooling's overlapping windows and its layer; bad input raises."""
import itertools
import math

import numpy as np
import pytest
from conftest import DTYPES, assert_close
from test_batchnorm import finite_difference

from inception_native import layers, native, reference
from inception_native.shapes import output_size as pool_output

# (B, C, H, W, kernel, stride, padding, ceil_mode)
CASES = [
    (2, 3, 8, 8, 3, 2, 0, True),     # GoogLeNet's 3x3/2 ceil: a partial last window
    (2, 3, 9, 9, 3, 2, 0, True),     # ... that lines up exactly
    (1, 2, 7, 7, 3, 1, 1, False),    # Inception's pool branch, 3x3/1 pad 1
    (2, 2, 6, 5, 2, 2, 0, False),
    (1, 3, 11, 10, 3, 2, 1, True),   # padding and ceil mode together
    (2, 1, 5, 7, (2, 3), (1, 2), (1, 1), True),
    (1, 2, 1, 1, 1, 1, 0, False),
    (3, 4, 14, 14, 3, 2, 0, True),
    (1, 1, 4, 4, 4, 4, 2, True),     # half-kernel padding, one window mostly padding
    (1, 1, 3, 300, (2, 70), 1, (1, 3), False),  # a kernel wider than 64, rows of 237 outputs
]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def direct_pool(x, kernel, stride, padding, ceil_mode, mode, include_pad=True):
    """Window by window, in float64, with the size rule written out."""
    B, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    oh, ow = pool_output(H, kh, sh, ph, ceil_mode), pool_output(W, kw, sw, pw, ceil_mode)
    y = np.empty((B, C, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - ph, ox * sw - pw
            y1, x1 = min(y0 + kh, H + ph), min(x0 + kw, W + pw)
            window = x[:, :, max(y0, 0):min(y1, H), max(x0, 0):min(x1, W)].astype(np.float64)
            if mode == "max":
                y[:, :, oy, ox] = window.max(axis=(2, 3))
            else:
                count = (y1 - y0) * (x1 - x0) if include_pad else window.shape[2] * window.shape[3]
                y[:, :, oy, ox] = window.sum(axis=(2, 3)) / count
    return y


def out_shape(case):
    B, C, H, W, kernel, stride, padding, ceil_mode = case
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    return B, C, pool_output(H, kh, sh, ph, ceil_mode), pool_output(W, kw, sw, pw, ceil_mode)


def max_pool(backend, x, case):
    y, argmax = np.empty(out_shape(case), x.dtype), np.empty(out_shape(case), np.int64)
    assert backend.max_pool2d_forward(x, y, argmax, *case[4:]) is y
    return y, argmax


def avg_pool(backend, x, case, include_pad=True):
    y = np.empty(out_shape(case), x.dtype)
    assert backend.avg_pool2d_forward(x, y, *case[4:], count_include_pad=include_pad) is y
    return y


def test_ceil_mode_sizes():
    assert pool_output(112, 3, 2, 0, True) == 56 and pool_output(112, 3, 2, 0, False) == 55
    assert pool_output(8, 3, 2, 0, True) == 4  # last window starts at 6, covers 6..7 only
    assert pool_output(5, 2, 2, 1, True) == 3  # a 4th window would start in the right padding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_max_pool_matches_direct_and_numpy(case, dtype, backend, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    y, argmax = max_pool(backend, x, case)
    np.testing.assert_array_equal(y, direct_pool(x, *case[4:], "max").astype(dtype))
    planes = x.reshape(x.shape[0] * x.shape[1], -1)
    np.testing.assert_array_equal(np.take_along_axis(planes, argmax.reshape(len(planes), -1), 1),
                                  y.reshape(len(planes), -1))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = np.full_like(x, np.nan)
    assert backend.max_pool2d_backward(dy, argmax, dx) is dx
    dx_numpy = reference.max_pool2d_backward(dy, argmax, np.empty_like(x))
    assert_close(dx, dx_numpy, dtype)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_avg_pool_matches_direct_and_numpy(case, dtype, include_pad, backend, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    y = avg_pool(backend, x, case, include_pad)
    assert_close(y, direct_pool(x, *case[4:], "avg", include_pad), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = {}
    for b in (native, reference):
        dx[b] = np.full_like(x, np.nan)
        assert b.avg_pool2d_backward(dy, dx[b], *case[4:], count_include_pad=include_pad) is dx[b]
    assert_close(dx[native], dx[reference], dtype)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pool_backward_matches_finite_differences(case, backend, rng):
    x = rng.permutation(np.prod(case[:4])).reshape(case[:4]) / np.prod(case[:4])  # distinct: no ties
    r = rng.standard_normal(out_shape(case))
    _, argmax = max_pool(backend, x, case)
    dx = backend.max_pool2d_backward(r, argmax, np.empty_like(x))
    loss = lambda: float((r * max_pool(backend, x, case)[0]).sum())  # noqa: E731
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)
    for include_pad in (True, False):
        dx = backend.avg_pool2d_backward(r, np.empty_like(x), *case[4:], count_include_pad=include_pad)
        loss = lambda: float((r * avg_pool(backend, x, case, include_pad)).sum())  # noqa: E731
        np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 1, 1, 1), (4, 5, 3), (2, 1024, 7, 7)], ids=str)
def test_global_avg_pool(shape, dtype, backend, rng):
    x = (rng.standard_normal(shape) + 100).astype(dtype)
    y = np.empty(shape[:2], dtype)
    assert backend.global_avg_pool_forward(x, y) is y
    assert_close(y, x.reshape(*shape[:2], -1).astype(np.float64).mean(axis=2), dtype)
    dy = rng.standard_normal(shape[:2]).astype(dtype)
    dx = np.empty_like(x)
    assert backend.global_avg_pool_backward(dy, dx) is dx
    assert_close(dx.reshape(*shape[:2], -1), np.repeat(dy[..., None], np.prod(shape[2:]), 2) / np.prod(shape[2:]), dtype)
    if dtype == np.float64 and x.size < 200:
        x -= 100  # finite differences want values near 1
        loss = lambda: float((dy * backend.global_avg_pool_forward(x, y)).sum())  # noqa: E731
        np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)


def test_max_pool_nan_wins(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    for backend in (native, reference):
        y, argmax = max_pool(backend, x, (1, 1, 4, 4, 2, 2, 0, False))
        assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 5 and np.isfinite(y.ravel()[1:]).all()


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[5], (2, 3, 10, 10, 3, 1, 1, False)], ids=str)
def test_pooling_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(case[:4])
    kernel, stride, padding, ceil_mode = case[4:]
    dy = rng.standard_normal(out_shape(case))
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode).backward(torch.tensor(dy))
    y, argmax = max_pool(native, x, case)
    np.testing.assert_array_equal(y, F.max_pool2d(torch.tensor(x), kernel, stride, padding, ceil_mode=ceil_mode).numpy())
    np.testing.assert_allclose(native.max_pool2d_backward(dy, argmax, np.empty_like(x)), xt.grad.numpy(), rtol=1e-12)
    for include_pad in (True, False):
        xt = torch.tensor(x, requires_grad=True)
        yt = F.avg_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=include_pad)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(avg_pool(native, x, case, include_pad), yt.detach().numpy(), rtol=1e-12)
        dx = native.avg_pool2d_backward(dy, np.empty_like(x), kernel, stride, padding, ceil_mode, include_pad)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_pooling_rejects_bad_input(backend):
    x, y = np.ones((1, 2, 6, 6), np.float32), np.empty((1, 2, 3, 3), np.float32)
    argmax = np.empty((1, 2, 3, 3), np.int64)
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel \(3, 3\)"):
        backend.max_pool2d_forward(x, y, argmax, 3, 2, 2)
    with pytest.raises(ValueError, match=r"padding \(0, 2\) must be at most half the kernel \(3, 3\)"):
        backend.avg_pool2d_forward(x, y, 3, 2, (0, 2))
    with pytest.raises(ValueError, match="kernel 7x7 is larger than the padded input 6x6"):
        backend.avg_pool2d_forward(x, y, 7, 1)
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        backend.max_pool2d_forward(x, y, argmax, 3, 0)
    with pytest.raises(TypeError, match="argmax must have dtype int64"):
        backend.max_pool2d_forward(x, y, argmax.astype(np.int32), 2, 2)
    with pytest.raises(ValueError, match=r"y must have shape \(1, 2, 3, 3\)"):
        backend.max_pool2d_forward(x, np.empty((1, 2, 2, 2), np.float32), argmax, 2, 2)
    with pytest.raises(TypeError, match="y has dtype float64, expected float32"):
        backend.avg_pool2d_forward(x, y.astype(np.float64), 2, 2)
    with pytest.raises(ValueError, match="x and y must not overlap"):
        backend.avg_pool2d_forward(x, x, 1, 1)
    bad = np.full((1, 2, 3, 3), 36, np.int64)
    with pytest.raises(ValueError, match=r"argmax has 18 entries outside \[0, 36\)"):
        backend.max_pool2d_backward(np.ones((1, 2, 3, 3), np.float32), bad, np.empty_like(x))
    with pytest.raises(ValueError, match="y has 3 elements, expected 2"):
        backend.global_avg_pool_forward(x, np.empty(3, np.float32))


def test_avg_pool2d_backward_names_dx_when_it_is_not_an_array(backend):
    # found by the fuzz suite (tests/fuzz_kernels.py): the message said "x"
    dy = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(TypeError, match="^dx must be a numpy.ndarray"):
        backend.avg_pool2d_backward(dy, [[0.0]], 2)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("argument", ["kernel", "stride", "padding"])
def test_pool_sizes_past_2_31_are_rejected(argument, kind, backend):
    # found by the fuzz suite's long profile: stride 2**63 raised OverflowError
    x, y = np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 1, 1), np.float32)
    sizes = dict(kernel=2, stride=2, padding=0, ceil_mode=False)
    sizes[argument] = 2**63
    with pytest.raises(ValueError, match=f"^{argument} must be <= 2147483647, got {2**63}"):
        if kind == "max":
            backend.max_pool2d_forward(x, y, np.zeros(y.shape, np.int64), **sizes)
        else:
            backend.avg_pool2d_backward(y, x, **sizes)


# ---- adaptive average pooling ---------------------------------------------------------------

# (B, C, H, W, oh, ow)
ADAPTIVE = [
    (2, 3, 14, 14, 4, 4),   # torchvision GoogLeNet's auxiliary heads at 224: overlapping windows
    (1, 2, 7, 7, 3, 3),     # [0,3) [2,5) [4,7)
    (2, 2, 5, 5, 5, 5),     # the identity
    (2, 3, 8, 8, 1, 1),     # the global mean
    (2, 2, 9, 6, 4, 5),     # non-square; windows of 2 and 3 rows, of 1 and 2 columns
    (1, 3, 1, 10, 1, 3),
    (3, 4, 17, 13, 6, 13),
    (2, 2, 2, 3, 3, 7),     # larger than the input, as PyTorch allows: 2 -> 3 is [0,1) [0,2) [1,2)
]


def direct_adaptive(x, oh, ow):
    """Window by window, in float64, with PyTorch's rule written out."""
    B, C, H, W = x.shape
    y = np.empty((B, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(math.floor(i * H / oh), math.ceil((i + 1) * H / oh))
            columns = slice(math.floor(j * W / ow), math.ceil((j + 1) * W / ow))
            y[:, :, i, j] = x[:, :, rows, columns].astype(np.float64).mean(axis=(2, 3))
    return y


def adaptive_pool(backend, x, oh, ow):
    y = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    assert backend.adaptive_avg_pool2d_forward(x, y) is y
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_matches_direct_and_numpy(case, dtype, backend, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    y = adaptive_pool(backend, x, *case[4:])
    assert_close(y, direct_adaptive(x, *case[4:]), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = {}
    for b in (native, reference):
        dx[b] = np.full_like(x, np.nan)  # the backward zeroes dx first
        assert b.adaptive_avg_pool2d_backward(dy, dx[b]) is dx[b]
    assert_close(dx[native], dx[reference], dtype)


def test_adaptive_avg_pool_windows(backend):
    # x[r, c] = 100 r + c: each output is 100 (mean row) + (mean column) of its window, exactly
    x = (100 * np.arange(14)[:, None] + np.arange(14)).reshape(1, 1, 14, 14).astype(np.float64)
    means = np.array([1.5, 4.5, 8.5, 11.5])  # of [0,4) [3,7) [7,11) [10,14)
    np.testing.assert_array_equal(adaptive_pool(backend, x, 4, 4)[0, 0],
                                  100 * means[:, None] + means)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 5, 5))
    np.testing.assert_array_equal(adaptive_pool(backend, x, 5, 5), x)
    np.testing.assert_array_equal(backend.adaptive_avg_pool2d_backward(x, np.empty_like(x)), x)
    g = backend.global_avg_pool_forward(x, np.empty(x.shape[:2]))
    np.testing.assert_allclose(adaptive_pool(backend, x, 1, 1)[..., 0, 0], g, rtol=1e-12, atol=1e-15)
    # a pixel gets a share of every window it is in: 14 -> 4, row and column 3 are in two
    dx = backend.adaptive_avg_pool2d_backward(np.ones((1, 1, 4, 4)), np.empty((1, 1, 14, 14)))
    np.testing.assert_array_equal(dx[0, 0, [0, 3], :4], np.array([[1, 1, 1, 2], [2, 2, 2, 4]]) / 16)
    # an inf reaches the windows that hold it, no other (no 0 * inf)
    x = np.zeros((1, 1, 14, 14))
    x[0, 0, 0, 0] = np.inf
    y = adaptive_pool(backend, x, 4, 4)
    assert np.isinf(y[0, 0, 0, 0]) and (y.ravel()[1:] == 0).all()
    dx = backend.adaptive_avg_pool2d_backward(y, np.empty_like(x))
    assert np.isinf(dx[0, 0, :4, :4]).all() and dx[0, 0, 4:].sum() == dx[0, 0, :, 4:].sum() == 0


@pytest.mark.parametrize("case", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_backward_is_the_adjoint_and_the_gradient(case, backend, rng):
    x, r = rng.standard_normal(case[:4]), rng.standard_normal(case[:2] + case[4:])
    dx = backend.adaptive_avg_pool2d_backward(r, np.empty_like(x))
    # <pool(x), r> = <x, pool_backward(r)>
    np.testing.assert_allclose((adaptive_pool(backend, x, *case[4:]) * r).sum(), (x * dx).sum(),
                               rtol=1e-12)
    loss = lambda: float((r * adaptive_pool(backend, x, *case[4:])).sum())  # noqa: E731
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    from inception_native import torch_twin

    x, dy = rng.standard_normal(case[:4]), rng.standard_normal(case[:2] + case[4:])
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, case[4:])
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(adaptive_pool(native, x, *case[4:]), yt.detach().numpy(), rtol=1e-12)
    dx = native.adaptive_avg_pool2d_backward(dy, np.empty_like(x))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    twin = torch_twin.build(layers.AdaptiveAvgPool2d(case[4:]))
    np.testing.assert_array_equal(twin(torch.tensor(x)).numpy(), yt.detach().numpy())


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_adaptive_avg_pool_rejects_bad_input(backend):
    x, y = np.ones((1, 2, 6, 6), np.float32), np.empty((1, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="y has dtype float64, expected float32 like x"):
        backend.adaptive_avg_pool2d_forward(x, y.astype(np.float64))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int32"):
        backend.adaptive_avg_pool2d_forward(x.astype(np.int32), y)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        backend.adaptive_avg_pool2d_forward(np.ones((1, 2, 6, 12), np.float32)[..., ::2], y)
    with pytest.raises(ValueError, match=r"^y must have shape \(batch, channels, height, width\), "
                                         r"all >= 1, got shape \(1, 2, 0, 3\)"):
        backend.adaptive_avg_pool2d_forward(x, np.empty((1, 2, 0, 3), np.float32))
    with pytest.raises(ValueError, match=r"^x must have shape .*got shape \(0, 2, 6, 6\)"):
        backend.adaptive_avg_pool2d_forward(np.ones((0, 2, 6, 6), np.float32), y[:0])
    with pytest.raises(ValueError, match=r"^dx must have shape .*got shape \(2, 6, 6\)"):
        backend.adaptive_avg_pool2d_backward(y, x[0])
    for shape in ((2, 2, 3, 3), (1, 3, 3, 3)):
        with pytest.raises(ValueError, match=fr"y \({shape[0]}, {shape[1]}, 3, 3\) and x "
                                             r"\(1, 2, 6, 6\) must agree in batch and channels"):
            backend.adaptive_avg_pool2d_forward(x, np.empty(shape, np.float32))
    with pytest.raises(ValueError, match="x and y must not overlap"):
        backend.adaptive_avg_pool2d_forward(x, x)
    y.setflags(write=False)
    with pytest.raises(ValueError, match="y is read-only but is written to"):
        backend.adaptive_avg_pool2d_forward(x, y)
    with pytest.raises(TypeError, match="^dx must be a numpy.ndarray, got list"):
        backend.adaptive_avg_pool2d_backward(y, [[0.0]])
    tall = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1, 1, 2**31, 1), (0,) * 4)
    with pytest.raises(ValueError, match="x's height must be <= 2147483647, got 2147483648"):
        backend.adaptive_avg_pool2d_forward(tall, np.empty((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="dy's height must be <= 2147483647, got 2147483648"):
        backend.adaptive_avg_pool2d_backward(tall, np.empty((1, 1, 1, 1), np.float32))


def test_adaptive_avg_pool2d_layer(backend, rng):
    layer = layers.AdaptiveAvgPool2d((4, 3), backend)
    assert layer.output_shape((2, 3, 14, 9)) == (2, 3, 4, 3)
    assert layers.AdaptiveAvgPool2d(4).output_size == (4, 4)
    x = rng.standard_normal((2, 3, 14, 9)).astype(np.float32)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, adaptive_pool(backend, x, 4, 3))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx, backend.adaptive_avg_pool2d_backward(dy, np.empty_like(x)))
    assert layer.forward(x) is y and layer.backward(dy) is dx  # buffers reused
    small = x[:, :, :3].copy()  # 3 rows pooled to 4: rows 0, 0-1, 1-2, 2 (PyTorch's windows)
    expected = np.stack([small[:, :, 0], small[:, :, :2].mean(2), small[:, :, 1:].mean(2),
                         small[:, :, 2]], axis=2)
    np.testing.assert_allclose(layers.AdaptiveAvgPool2d((4, 9), backend).forward(small), expected,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="output_size must be >= 1, got 0"):
        layers.AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match=r"output_size must be an int or a pair \(height, width\)"):
        layers.AdaptiveAvgPool2d((4, 4, 4))


@pytest.mark.parametrize("backend", [native, reference])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [(3, 2, 0, True), (3, 1, 1, False), (2, 2, 0, True), (3, 3, 1, True),
                                    ((5, 1), (1, 3), (2, 0), True)])
@pytest.mark.parametrize("width", [11, 300, 2500])  # one block of output columns, several, too wide to fold
def test_max_pool_without_argmax_gives_the_same_maximum(backend, dtype, window, width):
    """argmax=None (inference): y as with an argmax, NaN winning as before."""
    x = np.random.default_rng(1).standard_normal((2, 3, 13, width)).astype(dtype)
    x[0, 0, 2, 2] = x[1, 2, 12, width - 1] = np.nan
    x[0, 1, 5, :] = -np.inf
    shape = layers.MaxPool2d(*window).output_shape(x.shape)
    with_argmax, alone = np.empty(shape, dtype), np.empty(shape, dtype)
    native.max_pool2d_forward(x, with_argmax, np.empty(shape, np.int64), *window)
    backend.max_pool2d_forward(x, alone, None, *window)
    np.testing.assert_array_equal(alone, with_argmax)


def test_max_pool_with_a_kernel_wider_than_the_precomputed_tap_ranges():
    """A kernel over 64 columns wide has its tap ranges computed per row: the same maxima."""
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 300)).astype(np.float32)
    window = ((3, 70), (1, 5), (1, 0), True)
    shape = layers.MaxPool2d(*window).output_shape(x.shape)
    expected, alone, argmax = np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, np.int64)
    reference.max_pool2d_forward(x, expected, None, *window)
    native.max_pool2d_forward(x, alone, None, *window)
    np.testing.assert_array_equal(alone, expected)
    native.max_pool2d_forward(x, alone, argmax, *window)
    np.testing.assert_array_equal(alone, expected)


# ---- max pooling without argmax (training): the backward finds the maxima again in x ----------
# more windows: strides 1-3, odd sizes, 1x1 maps, batch 1, a kernel over 64 columns, a row over
# 128 output columns (several lane blocks)
SEARCH_CASES = CASES + [
    (1, 2, 9, 13, 3, 3, 1, True),
    (2, 1, 1, 1, 1, 1, 0, True),
    (1, 1, 1, 7, (1, 3), (1, 2), (0, 1), False),
    (1, 2, 5, 300, (3, 70), (1, 5), (1, 0), True),
    (1, 1, 4, 301, 3, 1, 1, False),
    (2, 2, 7, 6, 2, 1, 0, True),
    (2, 3, 10, 11, (2, 3), (3, 2), (1, 1), True),  # kernel rows < stride: rows no window sees
    (1, 2, 6, 9, 1, 2, 0, False),                  # 1x1 kernel, stride 2
    (2, 3, 40, 33, 3, 1, 1, False),  # stride 1 over several chunks of rows (14 rows of 35)
    (1, 2, 30, 26, (2, 4), 1, (1, 2), True),       # stride 1, rectangular, chunks of 17 rows
    # same-size stride 1 over many small planes (Inception's branch pools: 7x7, 14x14), 1x1
    # planes, 5x5 windows over 5x3 planes, 3x5 windows
    (2, 9, 7, 7, 3, 1, 1, False),
    (3, 7, 14, 14, 3, 1, 1, True),
    (1, 3, 1, 1, 3, 1, 1, False),
    (2, 4, 5, 3, 5, 1, 2, False),
    (2, 3, 6, 6, (3, 5), 1, (1, 2), False),
    (1, 2, 70, 70, 3, 1, 1, False),  # same-size planes over 4096 values: the search's path
]


def with_ties_and_nans(shape, dtype, rng):
    """Few distinct values (ties in most windows), a NaN, a -inf row: where the first maximum
    and the NaN rule show."""
    x = rng.integers(-2, 3, shape).astype(dtype)
    x.flat[rng.integers(0, x.size)] = np.nan
    x[0, 0, -1, :] = -np.inf
    return x


def search_backward(backend, dy, x, y, case):
    kernel, stride, padding, ceil_mode = case[4:]
    dx = np.full_like(x, np.nan)
    assert backend.max_pool2d_backward(dy, None, dx, x=x, y=y, kernel=kernel, stride=stride,
                                       padding=padding, ceil_mode=ceil_mode) is dx
    return dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SEARCH_CASES, ids=str)
def test_max_pool_backward_without_argmax_equals_the_argmax_form(case, dtype, backend, rng):
    """y without argmax and dx found from x and y equal the twin's and, bit for bit, what the
    int64 argmax gives (first maximum on ties, a NaN wins)."""
    for x in (with_ties_and_nans(case[:4], dtype, rng), rng.standard_normal(case[:4]).astype(dtype)):
        y = np.empty(out_shape(case), dtype)
        backend.max_pool2d_forward(x, y, None, *case[4:])
        y_twin, argmax = max_pool(reference, x, case)
        np.testing.assert_array_equal(y, y_twin)
        dy = rng.standard_normal(y.shape).astype(dtype)
        expected = reference.max_pool2d_backward(dy, argmax, np.empty_like(x))
        np.testing.assert_array_equal(search_backward(backend, dy, x, y, case), expected)
        _, native_argmax = max_pool(native, x, case)
        np.testing.assert_array_equal(native_argmax, argmax)


@pytest.mark.parametrize("case", [c for c in SEARCH_CASES if np.prod(c[:4]) <= 600], ids=str)
def test_max_pool_backward_without_argmax_matches_finite_differences(case, backend, rng):
    x = rng.permutation(np.prod(case[:4])).reshape(case[:4]) / np.prod(case[:4])  # no ties
    r = rng.standard_normal(out_shape(case))
    y = np.empty(out_shape(case))
    backend.max_pool2d_forward(x, y, None, *case[4:])
    loss = lambda: float((r * max_pool(backend, x, case)[0]).sum())  # noqa: E731
    np.testing.assert_allclose(search_backward(backend, r, x, y, case),
                               finite_difference(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SEARCH_CASES[len(CASES):], ids=str)
def test_avg_pool_on_more_windows(case, dtype, include_pad, backend, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    assert_close(avg_pool(backend, x, case, include_pad),
                 direct_pool(x, *case[4:], "avg", include_pad), dtype)


# ---- the forward's paths, swept: same-size stride 1 (chunks of whole planes or of rows, window
# rows and columns masked by their place in the plane), the row path (3- and 2-row windows with constant counts, strides 1
# and 2 with their own column loops) and every other window, on odd maps 1x1 .. 31x30
# (H, W, kernel, stride, padding)
SWEEP_WINDOWS = [(3, 1, 1), (3, 2, 0), (3, 2, 1), (2, 1, 0), (2, 2, 1), (5, 1, 2), (5, 2, 2),
                 ((3, 5), 1, (1, 2)), ((1, 3), (1, 2), (0, 1)), (1, 1, 0)]
SWEEP_MAPS = [(1, 1), (2, 3), (5, 7), (9, 4), (31, 30)]
SWEEP = [(B, C, H, W, *window, ceil_mode)
         for n, ((H, W), window, ceil_mode) in enumerate(
             (m, w, c) for m in SWEEP_MAPS for w in SWEEP_WINDOWS for c in (False, True))
         for B, C in [((1, 1), (2, 3), (1, 17))[n % 3]]
         if all(k <= n + 2 * p for k, n, p in zip(pair(window[0]), (H, W), pair(window[2])))]


def with_nans_and_infinities(shape, dtype, rng):
    """Normal values with NaN, +inf and -inf sprinkled in (ties where they meet)"""
    x = rng.standard_normal(shape).astype(dtype)
    for value in (np.nan, np.inf, -np.inf, np.nan):
        x.flat[rng.integers(0, x.size, max(1, x.size // 40))] = value
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SWEEP, ids=str)
def test_pool_forward_paths_match_the_twins(case, dtype, rng):
    """y without argmax, y and the argmax with it, and the mean (either divisor) equal the NumPy
    twins' on plain data and on data with NaN and infinities (a NaN wins the maximum and spoils
    the mean)."""
    for x in (rng.standard_normal(case[:4]).astype(dtype), with_nans_and_infinities(case[:4], dtype, rng)):
        y_twin, argmax_twin = max_pool(reference, x, case)
        y = np.full(out_shape(case), 7, dtype)
        native.max_pool2d_forward(x, y, None, *case[4:])
        np.testing.assert_array_equal(y, y_twin)
        y, argmax = max_pool(native, x, case)
        np.testing.assert_array_equal(y, y_twin)
        np.testing.assert_array_equal(argmax, argmax_twin)
        for include_pad in (True, False):
            with np.errstate(invalid="ignore"):
                expected = avg_pool(reference, x, case, include_pad)
            assert_close(avg_pool(native, x, case, include_pad), expected, dtype)


# ---- the same-size forward runs flat over chunks of whole planes (512 // (H*W) of them, planes up
# to 512 values) or of 512 // W rows of one plane, its window rows masked by their place in the
# plane: the rows of the planes either side are read (a chunk at either end of x is copied
# first) and must never count. Chunks of 10 planes and a last of 3 (7x7), of one plane, of 17 +
# 17 + 1 rows (35x30, the last chunk one row, fewer than a 5x5 window's 2 rows either side)
SAME_CHUNK_CASES = [(1, 23, 7, 7, 3, 1, 1, False), (2, 3, 9, 5, 3, 1, 1, True),
                    (1, 3, 35, 30, 5, 1, 2, False), (1, 2, 35, 30, 3, 1, 1, False),
                    (1, 7, 1, 9, 3, 1, 1, False), (1, 4, 14, 14, (5, 3), 1, (2, 1), False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SAME_CHUNK_CASES, ids=str)
def test_same_size_pools_keep_their_planes_apart(case, dtype, rng):
    """Each plane's first and last rows hold NaN, +inf or -inf in turn (a leak into the plane
    before or after changes its maximum or its mean): the maxima (bit for bit) and the means
    equal the NumPy twins'."""
    x = rng.standard_normal(case[:4]).astype(dtype)
    edges = x.reshape(-1, *case[2:4])
    for plane, value in zip(edges, itertools.cycle((np.nan, np.inf, -np.inf))):
        plane[0, ::2], plane[-1, 1::2] = value, -value
    y = np.full(out_shape(case), 7, dtype)
    native.max_pool2d_forward(x, y, None, *case[4:])
    np.testing.assert_array_equal(y, max_pool(reference, x, case)[0])
    for include_pad in (True, False):
        with np.errstate(invalid="ignore"):
            expected = avg_pool(reference, x, case, include_pad)
        assert_close(avg_pool(native, x, case, include_pad), expected, dtype)


# ---- the max pooling's forward on maps whose output columns tile the rows (W = sw*ow, or up to
# sw*(ow + 1), not same-size): a thread's output rows in chunks of 512 // W rows running on across
# planes (chunks that end mid-plane, several planes a chunk, a partial last chunk, the row split of
# 2 threads mid-plane), rows folded in runs of 64 bytes that go past the row's end except near x's
# end, a span of rows whose windows step by sh at a time, then the columns over the chunk at
# stride sw, masked at the row edges (W > sw*ow: one output more a row, dropped in the copy to y)
TILED_CASES = [
    (1, 37, 14, 14, 3, 2, 0, True),    # GoogLeNet's 14 -> 7: 36-row chunks, 5+ planes each
    (2, 5, 28, 28, 3, 2, 0, True),     # 28 -> 14: 18-row chunks
    (1, 3, 9, 18, 3, 2, 0, True),      # 9 rows: the last window not clipped
    (1, 2, 5, 112, 3, 2, 0, True),     # 4-row chunks of rows of 7 runs
    (3, 11, 56, 56, 3, 2, 0, True),    # 56 -> 28 over 33 planes
    (1, 75, 28, 28, 3, 2, 0, True),    # big enough for 2 threads: 525 rows each
    (2, 3, 7, 9, 3, 3, 0, False),      # stride 3, odd width
    (1, 4, 9, 10, 3, (2, 1), (0, 1), False),  # stride 1 across, 2 down: both edges masked
    (1, 3, 12, 12, 3, 2, 1, False),    # padding 1: the first column masked, a 2-row first window
    (2, 3, 10, 10, 2, 2, 0, False),    # 2x2/2: no mask
    (1, 3, 13, 20, (5, 4), 2, (2, 1), True),  # 5 rows (a count of no constant), 4 columns
    (1, 1, 1, 2, 1, 2, 0, False),      # a map smaller than a run
    (2, 3, 2, 4, (5, 2), (1, 2), (2, 0), False),  # windows clipped at both ends: 2 rows each
    (1, 40, 17, 17, 3, 2, 0, False),   # Inception v3's 17 -> 8: W = 2*ow + 1
    (2, 5, 35, 35, 3, 2, 0, False),    # 35 -> 17
    (1, 2, 11, 63, 3, 2, 0, False),    # the widest kind tiled: rows of 63 values (4 runs)
    (1, 4, 16, 16, 3, 2, 0, False),    # W = 2*ow + 2: two columns past the outputs' stride
    (1, 3, 13, 13, 3, 2, 0, True),     # ceil mode, W = 2*ow + 1
    (2, 3, 11, 11, 3, 3, 0, False),    # stride 3, W = 3*ow + 2
    (2, 3, 9, 9, 2, 2, 0, False),      # 2x2/2: the last column in no window
    (1, 120, 17, 17, 3, 2, 0, False),  # W = 2*ow + 1, big enough for 2 threads
    (2, 7, 28, 28, 3, 1, 1, False),    # same-size planes over 256 values: GoogLeNet's 3a pool
    (1, 9, 17, 17, 3, 1, 1, True),     # ... 17x17, ceil mode
    (1, 2, 20, 30, 5, 1, 2, False),    # ... a 5x5 window (counts 3 to 5 rows)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TILED_CASES, ids=str)
def test_max_pool_forward_on_tiled_maps_matches_the_twin(case, dtype, rng):
    """y without argmax equals the twin's, every output written, on plain data, on ties, and on
    data with NaN and infinities, a NaN at x's first and last pixels and in the first and last
    columns and rows of planes (where the runs and masks end)."""
    B, C, H, W = case[:4]
    nans = with_nans_and_infinities(case[:4], dtype, rng)
    nans.flat[[0, -1]] = np.nan
    nans[0, -1, rng.integers(0, H), 0] = nans[-1, 0, rng.integers(0, H), W - 1] = np.nan
    nans[-1, -1, H - 1, rng.integers(0, W)] = nans[0, 0, 0, rng.integers(0, W)] = np.nan
    for x in (rng.standard_normal(case[:4]).astype(dtype), with_ties_and_nans(case[:4], dtype, rng),
              nans):
        y_twin, _ = max_pool(reference, x, case)
        y = np.full(out_shape(case), 7, dtype)
        native.max_pool2d_forward(x, y, None, *case[4:])
        np.testing.assert_array_equal(y, y_twin)


# ---- planes pooled with plain maxima when they hold no NaN, and by the exact passes again when
# they do: same-size 3x3/1 over 256 values (up to 112x112) and 3x3/2 without padding on rows of
# 32 or more. The bits must be the exact passes' (the forward with taps runs those): signed
# zeros and ties included. Every pixel of these lies in a window (ceil mode, or odd sizes).
PLAIN_CASES = [((2, 5, 28, 28), 1, 1, False), ((1, 3, 17, 17), 1, 1, False),
               ((1, 2, 16, 17), 1, 1, False), ((1, 3, 2, 200), 1, 1, False),
               ((1, 2, 112, 112), 1, 1, False), ((1, 40, 28, 28), 1, 1, False),
               ((2, 5, 35, 33), 2, 0, False), ((1, 3, 3, 32), 2, 0, True),
               ((1, 3, 4, 64), 2, 0, True), ((1, 2, 8, 47), 2, 0, True),
               ((1, 3, 112, 112), 2, 0, True), ((1, 40, 56, 56), 2, 0, True)]  # 40: 2 threads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, stride, padding, ceil", PLAIN_CASES, ids=str)
def test_planes_without_nan_give_the_exact_passes_bits(shape, stride, padding, ceil, dtype, rng):
    """Planes of -0, +0 and a few values (ties everywhere), NaN in every third plane (at a plane's
    last row, its first column or inside), infinities elsewhere: y without taps equals y with
    taps bit for bit, and the twin's values."""
    x = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0], dtype), shape)
    planes = x.reshape(-1, *shape[2:])
    for n, plane in enumerate(planes):
        if n % 3 == 1:
            plane[[-1, rng.integers(0, shape[2]), 0][n % 9 // 3], [0, -1, 1][n % 2]] = np.nan
        elif n % 3 == 2:
            plane[rng.integers(0, shape[2]), rng.integers(0, shape[3])] = (np.inf, -np.inf)[n % 2]
    out = [(n + 2 * padding - 3 + (stride - 1 if ceil else 0)) // stride + 1 for n in shape[2:]]
    alone, with_taps = np.empty((*shape[:2], *out), dtype), np.empty((*shape[:2], *out), dtype)
    native.max_pool2d_forward(x, alone, None, 3, stride, padding, ceil)
    native.max_pool2d_forward(x, with_taps, np.empty(alone.shape, np.uint8), 3, stride, padding,
                              ceil)
    np.testing.assert_array_equal(alone.view(f"u{x.itemsize}"), with_taps.view(f"u{x.itemsize}"))
    np.testing.assert_array_equal(alone, max_pool(reference, x, (*shape, 3, stride, padding,
                                                                 ceil))[0])
    assert np.isnan(alone.reshape(-1, *out)[1::3]).any(axis=(1, 2)).all()


# ---- the backward passes: the average pooling's same-size stride 1 (ow = W) runs as a gather, a
# sum pooling of the shares dy / divisor over the adjoint window (row padding kh - 1 - ph, up to
# kh - 1), the others spread the shares window by window; the max pooling's search matches 9 and
# 4 taps with their counts constants, others with a loop, and scatters a chunk of rows at a time.
# The sweep's windows, and stride-1 ones whose rows are not centred (oh != H: the generic passes),
# planes smaller than the window, a row longer than a 512-value chunk.
SAME_WINDOWS = [((3, 3), 1, (0, 1)), ((4, 3), 1, (1, 1)), ((5, 1), 1, 0), ((2, 5), 1, (1, 2)),
                (7, 1, 3)]
SAME_MAPS = [(1, 1), (2, 3), (6, 5), (40, 31), (3, 600)]
BACKWARD_SWEEP = SWEEP + [
    (B, C, H, W, *window, ceil_mode)
    for n, ((H, W), window, ceil_mode) in enumerate(
        (m, w, c) for m in SAME_MAPS for w in SAME_WINDOWS for c in (False, True))
    for B, C in [((1, 1), (2, 3), (1, 5))[n % 3]]
    if all(k <= n + 2 * p for k, n, p in zip(pair(window[0]), (H, W), pair(window[2])))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", BACKWARD_SWEEP, ids=str)
def test_pool_backward_paths_match_the_twins(case, dtype, rng):
    """The average pooling's dx (either divisor) equals the NumPy twin's on plain dy and on dy
    with NaN and infinities, whatever dx held before; the max pooling's dx found from x and y,
    bit for bit, on plain x, on x with ties and on x with NaN and infinities."""
    for x in (rng.standard_normal(case[:4]).astype(dtype), with_ties_and_nans(case[:4], dtype, rng),
              with_nans_and_infinities(case[:4], dtype, rng)):
        y = np.empty(out_shape(case), dtype)
        native.max_pool2d_forward(x, y, None, *case[4:])
        dy = rng.standard_normal(y.shape).astype(dtype)
        _, argmax = max_pool(reference, x, case)
        np.testing.assert_array_equal(search_backward(native, dy, x, y, case),
                                      reference.max_pool2d_backward(dy, argmax, np.empty_like(x)))
    for dy in (rng.standard_normal(out_shape(case)).astype(dtype),
               with_nans_and_infinities(out_shape(case), dtype, rng)):
        for include_pad in (True, False):
            dx = {}
            for b in (native, reference):
                dx[b] = np.full(case[:4], np.nan, dtype)
                with np.errstate(invalid="ignore"):
                    b.avg_pool2d_backward(dy, dx[b], *case[4:], count_include_pad=include_pad)
            assert_close(dx[native], dx[reference], dtype)


# ---- max pooling with taps (training): a byte an output, each window's first maximum as its tap
# i*kw + j, found by the forward's own passes (the tiled ones for same-size maps too) ----------
TAPS_CASES = BACKWARD_SWEEP + TILED_CASES + SEARCH_CASES[len(CASES):] + [
    (1, 2, 7, 7, 15, 1, 7, False),   # 225 taps: the most a byte holds but 30
    (2, 3, 9, 9, 3, 1, 1, True),     # same-size in ceil mode (an output past no window)
    (1, 3, 8, 8, (2, 3), 2, 1, False),  # tiled, top windows of 1 row from kernel row 1
]


def plane_index(taps, case):
    """The plane index iy*W + ix of each tap i*kw + j, from the window's corner."""
    B, C, H, W, kernel, stride, padding, _ = case
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    _, _, oh, ow = out_shape(case)
    i, j = np.divmod(taps.astype(np.int64), kw)
    return (np.arange(oh)[:, None] * sh - ph + i) * W + np.arange(ow) * sw - pw + j


def taps_backward(backend, dy, taps, case):
    kernel, stride, padding, ceil_mode = case[4:]
    dx = np.full(case[:4], np.nan, dy.dtype)
    assert backend.max_pool2d_backward(dy, taps, dx, kernel=kernel, stride=stride,
                                       padding=padding, ceil_mode=ceil_mode) is dx
    return dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TAPS_CASES, ids=str)
def test_max_pool_taps_name_the_argmax_and_give_its_dx(case, dtype, backend, rng):
    """y with taps equals y with the int64 argmax (NaN where it has NaN); each tap names the
    argmax's pixel; the dx from taps is the argmax form's bit for bit: on plain x, on ties, on
    NaN and infinities and on signed zeros, and for a dy of signed zeros, NaN and infinities."""
    zeros = rng.choice(np.array([0.0, -0.0, 1.0], dtype), case[:4])
    for x in (rng.standard_normal(case[:4]).astype(dtype), with_ties_and_nans(case[:4], dtype, rng),
              with_nans_and_infinities(case[:4], dtype, rng), zeros):
        y_argmax, argmax = max_pool(reference, x, case)
        y, taps = np.empty(out_shape(case), dtype), np.full(out_shape(case), 255, np.uint8)
        assert backend.max_pool2d_forward(x, y, taps, *case[4:]) is y
        np.testing.assert_array_equal(y, y_argmax)
        np.testing.assert_array_equal(plane_index(taps, case), argmax)
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_array_equal(taps_backward(backend, dy, taps, case),
                                      reference.max_pool2d_backward(dy, argmax, np.empty_like(x)))
    # dy's signed zeros, NaN and infinities: NaN where the twin has NaN (whose sign may differ:
    # inf + -inf), elsewhere the same bits (+0 where the twin's dx = 0, dx[argmax] += dy gives it)
    dy = rng.choice(np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.5], dtype), y.shape)
    with np.errstate(invalid="ignore"):  # inf + -inf in the NumPy twin
        dx = taps_backward(backend, dy, taps, case)
        dx_twin = reference.max_pool2d_backward(dy, argmax, np.empty_like(x))
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(dx_twin))
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(dx[~np.isnan(dx)].view(bits), dx_twin[~np.isnan(dx)].view(bits))


@pytest.mark.parametrize("case", [c for c in TAPS_CASES if np.prod(c[:4]) <= 400][::3], ids=str)
def test_max_pool_backward_from_taps_matches_finite_differences(case, backend, rng):
    x = rng.permutation(np.prod(case[:4])).reshape(case[:4]) / np.prod(case[:4])  # no ties
    r = rng.standard_normal(out_shape(case))
    y, taps = np.empty(out_shape(case)), np.empty(out_shape(case), np.uint8)
    backend.max_pool2d_forward(x, y, taps, *case[4:])
    loss = lambda: float((r * max_pool(backend, x, case)[0]).sum())  # noqa: E731
    np.testing.assert_allclose(taps_backward(backend, r, taps, case), finite_difference(loss, x),
                               rtol=1e-6, atol=1e-8)


def test_max_pool_taps_reject_bad_input(backend):
    x, dx = np.ones((1, 2, 6, 6), np.float32), np.empty((1, 2, 6, 6), np.float32)
    y, dy, taps = np.ones((1, 2, 3, 3), np.float32), np.ones((1, 2, 3, 3), np.float32), np.zeros((1, 2, 3, 3), np.uint8)
    with pytest.raises(ValueError, match=r"kernel \(16, 16\) has 256 taps, more than a uint8 argmax"):
        backend.max_pool2d_forward(np.ones((1, 1, 16, 16), np.float32), np.empty((1, 1, 1, 1), np.float32),
                                   np.empty((1, 1, 1, 1), np.uint8), 16)
    with pytest.raises(ValueError, match="argmax has 12 elements, expected 18"):
        backend.max_pool2d_forward(x, y, np.zeros((1, 2, 3, 2), np.uint8), 2)
    with pytest.raises(TypeError, match="needs the kernel"):
        backend.max_pool2d_backward(dy, taps, dx)
    with pytest.raises(TypeError, match="takes a uint8 argmax and the window, not x and y"):
        backend.max_pool2d_backward(dy, taps, dx, x=x, y=y, kernel=2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 2, 3, 3\)"):
        backend.max_pool2d_backward(dy[:, :, :2], taps, dx, kernel=2)
    with pytest.raises(TypeError, match=r"argmax must have dtype int64 \(plane indices\) or uint8 \(window taps\), got int8"):
        backend.max_pool2d_forward(x, y, taps.astype(np.int8), 2)
    with pytest.raises(ValueError, match="argmax must be C-contiguous"):
        backend.max_pool2d_backward(dy, np.zeros((1, 2, 3, 6), np.uint8)[..., ::2], dx, kernel=2)
    dx[...] = 7
    assert backend.max_pool2d_backward(dy, taps, dx, kernel=2) is dx  # taps 0: each corner
    np.testing.assert_array_equal(dx[:, :, ::2, ::2], 1)
    assert dx.sum() == 18
    bad = taps.copy()
    bad.flat[[0, 5]] = (4, 200)  # past the 2x2 kernel's 4 taps
    with pytest.raises(ValueError, match="argmax has 2 taps outside the map"):
        backend.max_pool2d_backward(dy, bad, dx, kernel=2)
    with pytest.raises(ValueError, match="argmax has 10 taps outside the map"):  # 5 a plane:
        backend.max_pool2d_backward(dy, taps, dx, kernel=3, stride=2, padding=1)  # the corners pad


@pytest.mark.parametrize("case", [c for c in BACKWARD_SWEEP[len(SWEEP):] if np.prod(c[:4]) <= 200],
                         ids=str)
def test_avg_pool_backward_same_size_matches_finite_differences(case, rng):
    x = rng.standard_normal(case[:4])
    r = rng.standard_normal(out_shape(case))
    for include_pad in (True, False):
        dx = native.avg_pool2d_backward(r, np.empty_like(x), *case[4:], count_include_pad=include_pad)
        loss = lambda: float((r * avg_pool(native, x, case, include_pad)).sum())  # noqa: E731
        np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_pool_forward_calls_check_once_and_read_the_arrays_at_each_run(backend, rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    kinds = [("max_pool2d_forward", (None, 3, 2, 1, True), (2, 3, 5, 5)),
             ("avg_pool2d_forward", (3, 2, 1, True, False), (2, 3, 5, 5)),
             ("global_avg_pool_forward", (), (2, 3))]
    for name, window, shape in kinds:
        y, expected = np.empty(shape, np.float32), np.empty(shape, np.float32)
        call = getattr(backend, name + "_call")(x, y, *window)
        for _ in range(2):
            x[...] = rng.standard_normal(x.shape)
            call()
            getattr(backend, name)(x, expected, *window)
            np.testing.assert_array_equal(y, expected)
        if backend is native:
            with pytest.raises(ValueError, match="y "):
                getattr(backend, name + "_call")(x, y[:1], *window)


def test_max_pool_layers_keep_taps_in_training_and_search_in_eval(rng):
    """MaxPool2d trains with a byte an output (its taps), without x or an int64 argmax; in eval
    it keeps x and finds the maxima again. Both give the argmax form's dx, exactly."""
    case = (2, 3, 9, 9, 3, 2, 0, True)
    x = with_ties_and_nans(case[:4], np.float32, rng)
    expected_y, argmax = max_pool(native, x, case)
    dy = rng.standard_normal(expected_y.shape).astype(np.float32)
    expected_dx = native.max_pool2d_backward(dy, argmax, np.empty_like(x))
    for training in (True, False):
        layer = layers.MaxPool2d(*case[4:]).train(training)
        np.testing.assert_array_equal(layer.forward(x), expected_y)
        arrays = [v for v in vars(layer).values() if isinstance(v, np.ndarray)]
        assert not any(v.dtype == np.int64 for v in arrays)
        assert any(v.dtype == np.uint8 for v in arrays) == training
        assert any(v is x for v in arrays) != training
        np.testing.assert_array_equal(layer.backward(dy), expected_dx)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_max_pool_backward_without_argmax_rejects_bad_input(backend):
    x, dx = np.ones((1, 2, 6, 6), np.float32), np.empty((1, 2, 6, 6), np.float32)
    y, dy = np.ones((1, 2, 3, 3), np.float32), np.ones((1, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="without argmax needs x"):
        backend.max_pool2d_backward(dy, None, dx, y=y, kernel=2)
    with pytest.raises(TypeError, match="without argmax needs kernel"):
        backend.max_pool2d_backward(dy, None, dx, x=x, y=y)
    with pytest.raises(TypeError, match="takes argmax, or x, y and kernel, not both"):
        backend.max_pool2d_backward(dy, np.zeros((1, 2, 3, 3), np.int64), dx, x=x, y=y, kernel=2)
    with pytest.raises(ValueError, match=r"y must have shape \(1, 2, 3, 3\)"):
        backend.max_pool2d_backward(dy, None, dx, x=x, y=np.ones((1, 2, 2, 2), np.float32), kernel=2)
    with pytest.raises(ValueError, match=r"dx must have shape \(1, 2, 6, 6\)"):
        backend.max_pool2d_backward(dy, None, dx[:, :, :5], x=x, y=y, kernel=2)
    with pytest.raises(TypeError, match="y has dtype float64, expected float32"):
        backend.max_pool2d_backward(dy, None, dx, x=x, y=y.astype(np.float64), kernel=2)
    with pytest.raises(ValueError, match="dx and x must not overlap"):
        backend.max_pool2d_backward(dy, None, x, x=x, y=y, kernel=2)
    assert backend.max_pool2d_backward(y, None, dx, x=x, y=y, kernel=2) is dx  # dy may be y
    with pytest.raises(ValueError, match="y has 17 entries that no pixel of their window in x equals"):
        y_other = y.copy()
        y_other.flat[1:] = 2
        backend.max_pool2d_backward(dy, None, dx, x=x, y=y_other, kernel=2)
    with pytest.raises(ValueError, match="y has 18 entries"):
        backend.max_pool2d_backward(dy, None, dx, x=x, y=np.full_like(y, np.nan), kernel=2)


def test_max_pool_search_refuses_a_kernel_it_cannot_number(backend):
    """The first-maximum search numbers a window's taps in 31 bits: a 2^16 x 2^16 kernel (on a
    plane it fits, padding half of it) is refused with a clear message, before any memory is
    touched."""
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1, 1, 1, 1), (4, 4, 4, 4))
    k, p = 2 ** 16, 2 ** 15
    y = np.empty((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="too large for max pooling's argmax"):
        backend.max_pool2d_forward(x, y, np.empty((1, 1, 2, 2), np.int64), k, 1, p)
    with pytest.raises(ValueError, match="too large for max pooling's argmax"):
        backend.max_pool2d_backward(y, None, np.empty((1, 1, 1, 1), np.float32), x=x, y=y,
                                    kernel=k, stride=1, padding=p)
