"""Convolution lowering, gemm, conv2d, linear and BatchNorm folding: native against the NumPy
twin, against a direct nested-loop convolution, against finite differences and PyTorch; bad
input raises."""
import numpy as np
import pytest
from conftest import DTYPES, assert_close
from test_batchnorm import finite_difference

from inception_native import native, reference

# float32 sums of up to a few hundred products, in different orders by BLAS and NumPy
LOOSE = 20


def direct_conv2d(x, w, b, stride, padding):
    """The definition, window by window, in float64: no lowering, no GEMM."""
    (B, C, H, W), (OC, _, kh, kw) = x.shape, w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((B, OC, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            window = xp[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
            for o in range(OC):
                y[:, o, oy, ox] = (window * w[o]).sum(axis=(1, 2, 3))
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def random_cases(count, seed=7):
    """(B, C, H, W, OC, kh, kw, stride, padding): strides 1 and 2, paddings 0..3, rectangular
    kernels, 1x1, channel counts 1..17, each kernel fitting its padded input."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw = rng.choice([1, 1, 2, 3, 5, 7]), rng.choice([1, 3, 3, 5, 7])
        sh, sw = rng.integers(1, 3, 2)
        ph, pw = rng.integers(0, 4, 2)
        H, W = rng.integers(1, 12, 2)
        if H + 2 * ph < kh or W + 2 * pw < kw:
            continue
        cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 18)), int(H), int(W),
                      int(rng.integers(1, 18)), int(kh), int(kw), (int(sh), int(sw)),
                      (int(ph), int(pw))))
    return cases


FIXED_CASES = [
    (2, 3, 8, 8, 4, 3, 3, (1, 1), (1, 1)),    # 3x3 same
    (3, 5, 6, 7, 4, 1, 1, (1, 1), (0, 0)),    # 1x1: no lowering
    (2, 4, 9, 9, 3, 7, 7, (2, 2), (3, 3)),    # GoogLeNet's stem shape
    (2, 3, 7, 7, 2, 1, 7, (1, 1), (0, 3)),    # Inception v3's 1x7
    (2, 3, 7, 7, 2, 7, 1, (1, 1), (3, 0)),    # and 7x1
    (1, 2, 5, 5, 3, 5, 5, (1, 1), (0, 0)),    # kernel = input
    (23, 4, 7, 7, 5, 3, 3, (1, 1), (1, 1)),   # 7x7 maps: groups of 21 images and a rest of 2
    (23, 6, 7, 7, 5, 1, 1, (1, 1), (0, 0)),   # 1x1 on 7x7: grouped too
    (5, 2, 1, 1, 3, 1, 1, (1, 1), (0, 0)),    # 1x1 maps (a linear layer)
]
CASES = FIXED_CASES + random_cases(24)


def make_conv(rng, case, dtype, bias=True):
    B, C, H, W, OC, kh, kw, stride, padding = case
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    w = (rng.standard_normal((OC, C, kh, kw)) / np.sqrt(C * kh * kw)).astype(dtype)
    b = rng.standard_normal(OC).astype(dtype) if bias else None
    return x, w, b, stride, padding


def out_shape(x, w, stride, padding):
    (B, _, H, W), (OC, _, kh, kw) = x.shape, w.shape
    return (B, OC, (H + 2 * padding[0] - kh) // stride[0] + 1, (W + 2 * padding[1] - kw) // stride[1] + 1)


def forward(backend, x, w, b, stride, padding, **kw):
    y = np.empty(out_shape(x, w, stride, padding), x.dtype)
    assert backend.conv2d_forward(x, w, b, y, stride, padding, **kw) is y
    return y


def backward(backend, dy, x, w, stride, padding, with_dx=True, with_db=True, **kw):
    dx = np.full_like(x, np.nan) if with_dx else None
    dw, db = np.full_like(w, np.nan), np.full(w.shape[0], np.nan, x.dtype) if with_db else None
    assert backend.conv2d_backward(dy, x, w, dx, dw, db, stride, padding, **kw) is dx
    return dx, dw, db


# ---- lowering ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES[:12], ids=str)
def test_im2col_ext_and_col2im_ext_match_numpy(case, dtype, rng):
    _, C, H, W, _, kh, kw, (sh, sw), (ph, pw) = case
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    im = rng.standard_normal((C, H, W)).astype(dtype)
    cols = {}
    for backend in (native, reference):
        cols[backend] = np.full((C * kh * kw, oh * ow), np.nan, dtype)
        assert backend.im2col_ext(im, C, H, W, kh, kw, ph, pw, sh, sw, cols[backend]) is None
    np.testing.assert_array_equal(cols[native], cols[reference])
    back = {}
    for backend in (native, reference):
        back[backend] = np.ones_like(im)  # col2im adds into data_im
        backend.col2im_ext(cols[native], C, H, W, kh, kw, ph, pw, sh, sw, back[backend])
    assert_close(back[native], back[reference], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C, H, W, ksize, stride, pad", [(3, 5, 5, 3, 1, 1), (2, 7, 6, 3, 2, 0),
                                                         (4, 4, 4, 1, 1, 0), (1, 9, 9, 5, 2, 2)])
def test_darknet_im2col_cpu_is_the_square_case(C, H, W, ksize, stride, pad, dtype, rng):
    oh, ow = (H + 2 * pad - ksize) // stride + 1, (W + 2 * pad - ksize) // stride + 1
    im = rng.standard_normal((C, H, W)).astype(dtype)
    col, col_ext = np.empty((C * ksize * ksize, oh * ow), dtype), np.empty((C * ksize * ksize, oh * ow), dtype)
    native.im2col_cpu(im, C, H, W, ksize, stride, pad, col)
    native.im2col_ext(im, C, H, W, ksize, ksize, pad, pad, stride, stride, col_ext)
    np.testing.assert_array_equal(col, col_ext)
    # Darknet's definition, entry by entry
    for c in range(C):
        for i in range(ksize):
            for j in range(ksize):
                for y in range(oh):
                    for x in range(ow):
                        iy, ix = y * stride - pad + i, x * stride - pad + j
                        inside = 0 <= iy < H and 0 <= ix < W
                        assert col[(c * ksize + i) * ksize + j, y * ow + x] == (im[c, iy, ix] if inside else 0)


@pytest.mark.parametrize("case", CASES[:12], ids=str)
def test_col2im_is_the_adjoint_of_im2col(case, rng):
    """<im2col(x), c> == <x, col2im(c)>: col2im is the transpose the backward needs."""
    _, C, H, W, _, kh, kw, (sh, sw), (ph, pw) = case
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    x, c = rng.standard_normal((C, H, W)), rng.standard_normal((C * kh * kw, oh * ow))
    col, back = np.empty_like(c), np.zeros_like(x)
    native.im2col_ext(x, C, H, W, kh, kw, ph, pw, sh, sw, col)
    native.col2im_ext(c, C, H, W, kh, kw, ph, pw, sh, sw, back)
    np.testing.assert_allclose((col * c).sum(), (x * back).sum(), rtol=1e-12)


# ---- gemm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("TA, TB", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("M, N, K, pad, BETA", [(1, 1, 1, 0, 0.0), (7, 5, 3, 2, 0.5),
                                                (33, 17, 65, 1, 1.0), (4, 9, 0, 0, -1.0)])
def test_gemm_matches_numpy_and_darknet_loop(TA, TB, M, N, K, pad, BETA, dtype, rng):
    a_shape = (K, M) if TA else (M, K)
    b_shape = (N, K) if TB else (K, N)
    lda, ldb, ldc = max(a_shape[1], 1) + pad, max(b_shape[1], 1) + pad, N + pad
    A = rng.standard_normal(a_shape[0] * lda).astype(dtype)
    B = rng.standard_normal(b_shape[0] * ldb).astype(dtype)
    C0 = rng.standard_normal(M * ldc).astype(dtype)
    results = []
    for fn in (native.gemm, native.gemm_cpu, reference.gemm):
        C = C0.copy()
        assert fn(TA, TB, M, N, K, 0.75, A, lda, B, ldb, BETA, C, ldc) is None
        results.append(C)
    a = A.reshape(a_shape[0], lda)[:, :a_shape[1]].astype(np.float64)
    b = B.reshape(b_shape[0], ldb)[:, :b_shape[1]].astype(np.float64)
    expected = C0.reshape(M, ldc).astype(np.float64).copy()
    expected[:, :N] = 0.75 * (a.T if TA else a) @ (b.T if TB else b) + BETA * expected[:, :N]
    for C in results:
        assert_close(C.reshape(M, ldc), expected, dtype, scale=LOOSE)  # the padding columns untouched


@pytest.mark.parametrize("fn", [native.gemm, reference.gemm], ids=["native", "numpy"])
def test_gemm_beta_zero_does_not_read_c(fn):
    C = np.full(4, np.nan)
    fn(0, 0, 2, 2, 1, 1.0, np.ones(2), 1, np.ones(2), 2, 0.0, C, 2)
    np.testing.assert_array_equal(C, np.ones(4))


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_gemm_rejects_bad_arguments(backend):
    A, B, C = np.ones(6), np.ones(6), np.zeros(4)
    with pytest.raises(ValueError, match="lda must be >= 3"):
        backend.gemm(0, 0, 2, 2, 3, 1.0, A, 2, B, 2, 0.0, C, 2)
    with pytest.raises(ValueError, match="A has 6 elements, needs at least 8"):
        backend.gemm(0, 0, 2, 2, 3, 1.0, A, 5, B, 2, 0.0, C, 2)
    with pytest.raises(ValueError, match="TA must be 0 or 1"):
        backend.gemm(2, 0, 2, 2, 3, 1.0, A, 3, B, 2, 0.0, C, 2)
    with pytest.raises(TypeError, match="B has dtype float32"):
        backend.gemm(0, 0, 2, 2, 3, 1.0, A, 3, B.astype(np.float32), 2, 0.0, C, 2)
    with pytest.raises(ValueError, match="does not fit the BLAS's 32-bit int"):
        backend.gemm(0, 0, 2, 2**31, 3, 1.0, A, 3, B, 2**31, 0.0, C, 2**31)
    with pytest.raises(ValueError, match="A and C must not overlap"):
        backend.gemm(0, 0, 2, 2, 1, 1.0, C, 1, B, 2, 0.0, C, 2)


# ---- conv2d --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_forward_matches_direct_convolution(case, dtype, backend, rng):
    x, w, b, stride, padding = make_conv(rng, case, dtype, bias=case[0] != 3)
    y = forward(backend, x, w, b, stride, padding)
    assert_close(y, direct_conv2d(x, w, b, stride, padding), dtype, scale=LOOSE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_backward_matches_numpy(case, dtype, rng):
    x, w, _, stride, padding = make_conv(rng, case, dtype)
    dy = rng.standard_normal(out_shape(x, w, stride, padding)).astype(dtype)
    for got, expected in zip(backward(native, dy, x, w, stride, padding),
                             backward(reference, dy, x, w, stride, padding)):
        assert_close(got, expected, dtype, scale=LOOSE)


@pytest.mark.parametrize("case", [FIXED_CASES[0], FIXED_CASES[1], FIXED_CASES[3], FIXED_CASES[5],
                                  (2, 2, 6, 5, 3, 3, 2, (2, 1), (1, 0)), (4, 3, 3, 3, 2, 3, 3, (2, 2), (1, 1))],
                         ids=str)
def test_conv2d_backward_matches_finite_differences(case, backend, rng):
    x, w, b, stride, padding = make_conv(rng, case, np.float64)
    r = rng.standard_normal(out_shape(x, w, stride, padding))  # L = sum(r * y)
    loss = lambda: float((r * forward(backend, x, w, b, stride, padding)).sum())  # noqa: E731
    dx, dw, db = backward(backend, r, x, w, stride, padding)
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, finite_difference(loss, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, finite_difference(loss, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", FIXED_CASES + CASES[-4:], ids=str)
def test_conv2d_threads_give_the_same_result(case, threads, rng):
    """Blocks shared among threads, partial dw summed: as on one thread; the BLAS's thread
    count is back to what it was."""
    from inception_native import get_num_threads, set_num_threads, threads as native_threads
    x, w, b, stride, padding = make_conv(rng, case, np.float64)
    dy = rng.standard_normal(out_shape(x, w, stride, padding))
    before, blas_before = get_num_threads(), native_threads.get_blas_threads()
    expected = forward(native, x, w, b, stride, padding), *backward(native, dy, x, w, stride, padding)
    try:
        set_num_threads(threads)
        got = forward(native, x, w, b, stride, padding), *backward(native, dy, x, w, stride, padding)
        dx, dw, _ = backward(native, dy, x, w, stride, padding, with_dx=False, with_db=False)
    finally:
        set_num_threads(before)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, expected[2], rtol=1e-12, atol=1e-12)
    assert native_threads.get_blas_threads() == blas_before


def test_conv2d_overlapping_calls_from_python_threads(rng):
    """The GIL is released: several Python threads convolve at once, on two OpenMP threads
    each; every result is right and the BLAS's thread count is restored once, at the end."""
    from concurrent.futures import ThreadPoolExecutor

    from inception_native import get_num_threads, set_num_threads, threads as native_threads
    x, w, b, stride, padding = make_conv(rng, FIXED_CASES[6], np.float32)
    expected = direct_conv2d(x, w, b, stride, padding)
    blas_before, before = native_threads.get_blas_threads(), get_num_threads()
    try:
        set_num_threads(2)  # per calling thread in OpenMP: set it in each worker too
        def run(_):
            set_num_threads(2)
            return [forward(native, x, w, b, stride, padding) for _ in range(5)]
        with ThreadPoolExecutor(3) as pool:
            results = [y for ys in pool.map(run, range(6)) for y in ys]
    finally:
        set_num_threads(before)
    for y in results:
        assert_close(y, expected, np.float32, scale=LOOSE)
    assert native_threads.get_blas_threads() == blas_before


@pytest.mark.parametrize("case", [FIXED_CASES[0], FIXED_CASES[6], FIXED_CASES[7]], ids=str)
def test_conv2d_optional_outputs_and_workspace(case, rng):
    x, w, _, stride, padding = make_conv(rng, case, np.float32)
    dy = rng.standard_normal(out_shape(x, w, stride, padding)).astype(np.float32)
    need = native.conv2d_workspace_size(x.shape, w.shape, stride, padding)
    workspace = np.full(need + 5, np.nan, np.float32)
    y1 = forward(native, x, w, None, stride, padding)
    y2 = forward(native, x, w, None, stride, padding, workspace=workspace)
    np.testing.assert_array_equal(y1, y2)
    dx1, dw1, db1 = backward(native, dy, x, w, stride, padding)
    _, dw2, db2 = backward(native, dy, x, w, stride, padding, with_dx=False, with_db=False,
                           workspace=workspace)
    np.testing.assert_array_equal(dw1, dw2)
    assert db2 is None and np.isfinite(dx1).all() and np.isfinite(db1).all()
    if need:
        with pytest.raises(ValueError, match=f"workspace has {need - 1} elements, needs at least {need}"):
            forward(native, x, w, None, stride, padding, workspace=workspace[:need - 1])


@pytest.mark.parametrize("min_columns, block_values", [(1, 1), (1, 60), (20, 1), (100, 1)])
@pytest.mark.parametrize("case", FIXED_CASES + CASES[-6:], ids=str)
def test_conv2d_every_blocking_gives_the_same_result(case, min_columns, block_values, rng):
    """Row blocks of one image (down to one row), groups of images, remainders: all the same."""
    x, w, b, stride, padding = make_conv(rng, case, np.float64)
    dy = rng.standard_normal(out_shape(x, w, stride, padding))
    expected = forward(native, x, w, b, stride, padding), *backward(native, dy, x, w, stride, padding)
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding, min_columns=min_columns,
                              block_values=block_values, algorithm="im2col")
    got = (forward(native, x, w, b, stride, padding, plan=plan),
           *backward(native, dy, x, w, stride, padding, plan=plan))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def blocking(x_shape, w_shape, threads=1, stride=1, padding=0):
    return native.conv2d_plan(x_shape, w_shape, stride, padding, threads, algorithm="im2col").blocking


def im2col_workspace(x_shape, w_shape, threads, stride=1, padding=0):
    return native.conv2d_workspace_size(x_shape, w_shape, stride, padding, threads, algorithm="im2col")


def test_conv2d_groups_small_maps_and_not_large_ones():
    """im2col: 7x7 maps: 21 images per GEMM (>= 1024 columns); 56x56: one image; 1x1 on 28x28: none."""
    assert blocking((16, 4, 28, 28), (8, 4, 3, 3), padding=1) == (2, 28)
    assert blocking((16, 192, 28, 28), (64, 192, 1, 1))[0] == 1
    assert im2col_workspace((16, 192, 28, 28), (64, 192, 1, 1), threads=1) == 0
    assert blocking((16, 4, 7, 7), (8, 4, 1, 1))[0] == 16
    assert blocking((32, 4, 7, 7), (8, 4, 1, 1))[0] == 21
    assert blocking((16, 4, 56, 56), (8, 4, 3, 3), padding=1)[0] == 1
    assert im2col_workspace((16, 192, 56, 56), (64, 192, 1, 1), threads=1) == 0
    assert im2col_workspace((16, 832, 7, 7), (384, 832, 1, 1), threads=1) == (832 + 384) * 16 * 49
    assert blocking((16, 160, 14, 14), (320, 160, 3, 3), threads=2, padding=1) == (4, 14)  # 4 blocks of 4, not 6+6+4
    assert im2col_workspace((2, 64, 56, 56), (64, 64, 3, 3), threads=8) == \
        im2col_workspace((2, 64, 56, 56), (64, 64, 3, 3), threads=2)  # 2 images
    # two threads: 8 images each, and a partial dw each
    assert im2col_workspace((16, 832, 7, 7), (384, 832, 1, 1), threads=2) == \
        2 * ((832 + 384) * 8 * 49 + 384 * 832)
    assert blocking((16, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3) == (1, 63)  # conv1: 63 rows, 4 MiB of col
    assert blocking((16, 64, 56, 56), (64, 64, 3, 3), padding=1) == (1, 32)


def test_conv2d_plan_must_fit_the_arrays(rng):
    x, w, b, stride, padding = make_conv(rng, FIXED_CASES[0], np.float32)
    y = np.empty(out_shape(x, w, stride, padding), np.float32)
    other = native.conv2d_plan((x.shape[0] + 1, *x.shape[1:]), w.shape, stride, padding)
    for backend in (native, reference):
        with pytest.raises(ValueError, match="plan was made for sizes"):
            backend.conv2d_forward(x, w, b, y, stride, padding, plan=other)
        with pytest.raises(TypeError, match="plan must be a ConvPlan or ConvKPlan"):
            backend.conv2d_forward(x, w, b, y, stride, padding, plan=(1, 1))


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_conv2d_forward_call_checks_once_and_reads_the_arrays_at_each_run(backend, rng):
    x, w, b, stride, padding = make_conv(rng, FIXED_CASES[0], np.float32)
    y = np.empty(out_shape(x, w, stride, padding), np.float32)
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding)
    options = dict(plan=plan, relu=True, packed=plan.pack(w))
    call = backend.conv2d_forward_call(x, w, b, y, stride, padding, None, **options)
    for _ in range(2):  # new values in x: the call reads them
        x[...] = rng.standard_normal(x.shape)
        call()
        np.testing.assert_array_equal(y, forward(backend, x, w, b, stride, padding, **options))
    if backend is native:  # checked when made, not when run
        with pytest.raises(ValueError, match=r"y must have shape"):
            backend.conv2d_forward_call(x, w, b, y[:, :, 1:], stride, padding, plan=plan)


@pytest.mark.parametrize("case", FIXED_CASES[:5] + [(3, 3, 10, 10, 4, 3, 3, (2, 2), (0, 0))], ids=str)
def test_conv2d_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding = make_conv(rng, case, np.float64)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    dy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(forward(native, x, w, b, stride, padding), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, expected in zip(backward(native, dy, x, w, stride, padding), (xt, wt, bt)):
        np.testing.assert_allclose(got, expected.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_conv2d_rejects_bad_input(backend):
    x, w, y = np.ones((2, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32), np.empty((2, 4, 3, 3), np.float32)
    cases = [
        (ValueError, "weight has 2 input channels", dict(weight=np.ones((4, 2, 3, 3), np.float32))),
        (ValueError, "kernel 7x7 is larger than the padded input 5x5", dict(weight=np.ones((4, 3, 7, 7), np.float32))),
        (ValueError, "stride must be >= 1, got 0", dict(stride=0)),
        (ValueError, r"stride\[1\] must be >= 1", dict(stride=(1, 0))),
        (TypeError, "x must have dtype float32 or float64, got int64", dict(x=np.ones((2, 3, 5, 5), np.int64))),
        (TypeError, "weight has dtype float64, expected float32", dict(weight=np.ones((4, 3, 3, 3)))),
        (ValueError, "x must be C-contiguous", dict(x=np.ones((2, 3, 5, 10), np.float32)[..., ::2])),
        (ValueError, r"y must have shape \(2, 4, 3, 3\)", dict(y=np.empty((2, 4, 5, 5), np.float32))),
        (ValueError, r"x must have shape \(batch, channels, height, width\)", dict(x=np.ones((3, 5, 5), np.float32))),
        (TypeError, "weight must be a numpy.ndarray", dict(weight=[[1.0]])),
        (ValueError, "bias has 3 elements, expected 4", dict(bias=np.ones(3, np.float32))),
        (ValueError, "padding must be >= 0", dict(padding=-1)),
    ]
    for error, message, change in cases:
        args = dict(x=x, weight=w, bias=None, y=y, stride=1, padding=0) | change
        with pytest.raises(error, match=message):
            backend.conv2d_forward(**args)
    same = np.ones((2, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match="x and y must not overlap"):
        backend.conv2d_forward(same, np.ones((1, 1, 1, 1), np.float32), None, same)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4, 3, 3\)"):
        backend.conv2d_backward(np.ones((2, 4, 5, 5), np.float32), x, w, None, np.empty_like(w), None)


# ---- linear --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, I, O", [(1, 1, 1), (5, 7, 3), (16, 1024, 10), (17, 33, 9)])
def test_linear_matches_numpy_and_finite_differences(N, I, O, dtype, rng):
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), O))
    dy = rng.standard_normal((N, O)).astype(dtype)
    out = {}
    for backend in (native, reference):
        y, dx, dw, db = np.empty((N, O), dtype), np.empty_like(x), np.empty_like(w), np.empty_like(b)
        assert backend.linear_forward(x, w, b, y) is y
        assert backend.linear_backward(dy, x, w, dx, dw, db) is dx
        out[backend] = (y, dx, dw, db)
    for got, expected in zip(out[native], out[reference]):
        assert_close(got, expected, dtype, scale=LOOSE * 10)
    if dtype == np.float64 and N * I < 100:
        y = np.empty((N, O))
        loss = lambda: float((dy * native.linear_forward(x, w, b, y)).sum())  # noqa: E731
        _, dx, dw, db = out[native]
        for got, a in ((dx, x), (dw, w), (db, b)):
            np.testing.assert_allclose(got, finite_difference(loss, a), rtol=1e-6, atol=1e-8)


def lane_sums(x, w, b, lanes=16):
    """y = x w^T + b as the few-row forward sums it, derived in NumPy: term k of each dot
    product added into partial sum k % lanes in order of k (products rounded, no fused
    multiply-add), then the bias and the partial sums in lane order."""
    N, I = x.shape
    products = x[:, None, :] * w[None, :, :]  # (N, O, I), each rounded to the dtype
    products = np.concatenate([products, np.zeros((*products.shape[:2], -I % lanes), x.dtype)], 2)
    partial = np.zeros((*products.shape[:2], lanes), x.dtype)
    for k in range(0, products.shape[2], lanes):
        partial = partial + products[:, :, k:k + lanes]
    y = np.broadcast_to(b, partial.shape[:2]).copy()
    for lane in range(lanes):
        y = y + partial[:, :, lane]
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N, I, O, bias", [(1, 1024, 1000, True), (6, 37, 5, True),
                                           (16, 50, 3, False), (3, 15, 2, True)])
def test_linear_forward_of_few_rows_sums_in_lanes(N, I, O, bias, threads, dtype, rng):
    """A batch of at most 16 rows takes dot products (no GEMM): bit for bit the lane order,
    on any thread count (rows in groups of 4 and 1, outputs in pairs and an odd last one, a
    tail of Fin past the last 16)."""
    from inception_native import get_num_threads, set_num_threads

    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), O))
    y = np.full((N, O), np.nan, dtype)
    before = get_num_threads()
    try:
        set_num_threads(threads)
        native.linear_forward(x, w, b if bias else None, y)
    finally:
        set_num_threads(before)
    b = b if bias else np.zeros_like(b)
    np.testing.assert_array_equal(y, lane_sums(x, w, b))
    assert_close(y, x @ w.T + b, dtype, scale=LOOSE)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_linear_rejects_bad_input(backend):
    with pytest.raises(ValueError, match="weight has 4 input features"):
        backend.linear_forward(np.ones((2, 3)), np.ones((5, 4)), None, np.empty((2, 5)))
    with pytest.raises(ValueError, match=r"y must have shape \(2, 5\)"):
        backend.linear_forward(np.ones((2, 3)), np.ones((5, 3)), None, np.empty((5, 2)))


# ---- BatchNorm folding ---------------------------------------------------------------------

@pytest.mark.parametrize("with_bias", [True, False])
def test_fold_batchnorm_gives_the_same_outputs(with_bias, rng):
    """conv then inference BatchNorm == one conv with the folded weight and bias."""
    x, w, b, stride, padding = make_conv(rng, FIXED_CASES[0], np.float64, bias=with_bias)
    C = w.shape[0]
    gamma, beta = rng.uniform(0.5, 2, C), rng.standard_normal(C)
    mean, var, eps = rng.standard_normal(C), rng.uniform(0.1, 3, C), 1e-3
    y = forward(native, x, w, b, stride, padding)
    bn = np.empty_like(y)
    native.batchnorm_forward(y, gamma, beta, mean.copy(), var.copy(), bn, np.empty(C), np.empty(C),
                             training=False, eps=eps)
    w2, b2 = native.fold_batchnorm(w, b, gamma, beta, mean, var, eps)
    np.testing.assert_allclose(forward(native, x, w2, b2, stride, padding), bn, rtol=1e-12, atol=1e-12)
    w32, b32 = native.fold_batchnorm(w.astype(np.float32), None if b is None else b.astype(np.float32),
                                     gamma, beta, mean, var, eps)
    assert w32.dtype == b32.dtype == np.float32
