"""Our convolution kernels (csrc/convk.h) through conv2d_forward/backward, on every ISA path this
CPU runs: against the NumPy twin (float64 lowering + GEMM), with the fused options (bias, BN
scale+shift, ReLU, accumulate, channel-slice output), the backward's ReLU mask, the im2col
contender, bit-identical results across thread counts, and the ISA controls."""
import os
import subprocess
import sys

import numpy as np
import pytest

from inception_native import conv as native
from inception_native import reference
from inception_native.threads import get_num_threads, set_num_threads
from test_batchnorm import finite_difference

PATHS = native.conv_isa_levels()
TOL = {np.float32: 2e-5, np.float64: 1e-12}

# (B, C, H, W, OC, kernel, stride, padding)
CASES = [
    (2, 3, 9, 11, 5, (3, 3), 1, 1),
    (1, 17, 7, 7, 24, (1, 1), 1, 0),
    (3, 3, 15, 13, 17, (7, 7), 2, 3),
    (2, 24, 17, 17, 17, (1, 7), 1, (0, 3)),
    (2, 24, 17, 17, 17, (7, 1), 1, (3, 0)),
    (1, 1, 1, 1, 3, (1, 1), 1, 0),
    (3, 5, 2, 3, 7, (3, 1), (1, 2), (1, 0)),
    (2, 300, 3, 3, 5, (3, 3), 1, 1),
    (1, 8, 8, 8, 12, (3, 3), 2, 3),
    (3, 7, 11, 11, 13, (3, 3), 3, (1, 2)),
    (2, 5, 7, 6, 4, (1, 1), 2, 0),
    (2, 4, 9, 8, 6, (3, 5), (2, 3), (1, 2)),
    # dL/dw's pixel blocks (256 or 512 pixels) with runs of no whole vector: 64 and 1 channels
    (2, 3, 23, 21, 64, (7, 7), 2, 3),
    (3, 5, 19, 19, 1, (3, 3), 1, 1),
    # a kernel covering the whole input (one output pixel): planned as a 1x1 of C*kh*kw channels
    (2, 6, 5, 5, 9, (5, 5), 1, 0),
    (3, 4, 3, 2, 7, (3, 2), (2, 3), 0),
    # row panels (output rows of whole vectors, read in place at their taps): rows of 112 as
    # conv1's (AVX-512 float32: 64 + 48, two K blocks), of 48 on the tall tile (100 channels;
    # dL/dx's phase too), of 16 (AVX2's and the portable path's)
    (2, 3, 17, 224, 70, (7, 7), 2, 3),
    (1, 5, 9, 48, 100, (3, 3), 1, 1),
    (2, 7, 12, 32, 20, (3, 3), 2, 1),
]


@pytest.fixture(params=PATHS)
def isa(request):
    previous = native.set_conv_isa(request.param)
    yield request.param
    native.set_conv_isa(previous)


def make(rng, case, dtype):
    B, C, H, W, OC, (kh, kw), stride, padding = case
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    w = rng.standard_normal((OC, C, kh, kw)).astype(dtype)
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding)
    return x, w, stride, padding, plan


def assert_close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_and_fused_options_match_numpy(isa, case, dtype, rng):
    x, w, stride, padding, plan = make(rng, case, dtype)
    assert plan.isa == isa and plan.algorithm == "convk"
    B, OC, oh, ow = plan.output_shape
    scale, shift, bias = (rng.standard_normal(OC).astype(dtype) for _ in range(3))
    want, got = np.empty(plan.output_shape, dtype), np.empty(plan.output_shape, dtype)
    for options in ({}, {"bias": bias}, {"shift": shift, "relu": True},
                    {"scale": scale, "shift": shift, "relu": True}):
        b = options.pop("bias", None)
        reference.conv2d_forward(x, w, b, want, stride, padding, **options)
        native.conv2d_forward(x, w, b, got, stride, padding, plan=plan, **options)
        assert_close(got, want, dtype)
    # accumulate into channels [2, 2 + OC) of a wider tensor; the others stay as they were
    big = rng.standard_normal((B, OC + 3, oh, ow)).astype(dtype)
    expected = big.copy()
    reference.conv2d_forward(x, w, None, expected[:, 2:2 + OC], stride, padding, scale=scale,
                             shift=shift, relu=True, accumulate=True)
    native.conv2d_forward(x, w, None, big[:, 2:2 + OC], stride, padding, plan=plan, scale=scale,
                          shift=shift, relu=True, accumulate=True)
    assert_close(big, expected, dtype)
    np.testing.assert_array_equal(big[:, :2], expected[:, :2])
    np.testing.assert_array_equal(big[:, 2 + OC:], expected[:, 2 + OC:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backward_with_and_without_relu_mask_matches_numpy(isa, case, dtype, rng):
    """With and without dL/dx too: dL/dbias comes from dL/dx's pass over dY, or from dL/dw's
    packed dY (a first layer's backward)."""
    x, w, stride, padding, plan = make(rng, case, dtype)
    dy = rng.standard_normal(plan.output_shape).astype(dtype)
    y = rng.standard_normal(plan.output_shape).astype(dtype)
    for mask in (None, y):
        want = [np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], dtype)]
        reference.conv2d_backward(dy, x, w, *want, stride, padding, y_relu=mask)
        for with_dx in (True, False):
            got = [np.empty_like(x) if with_dx else None, np.empty_like(w),
                   np.empty(w.shape[0], dtype)]
            native.conv2d_backward(dy, x, w, *got, stride, padding, plan=plan, y_relu=mask)
            for g, e in zip(got, want):
                if g is not None:
                    assert_close(g, e, dtype)


@pytest.mark.parametrize("algorithm", ["convk", "im2col"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backward_accumulates_dx_on_request(isa, case, dtype, algorithm, rng):
    """accumulate=True: dx += dL/dx (an Inception block's branches sum into one dx), with the
    mask; dweight and dbias still overwritten. Phases without taps (kernel < stride) add 0."""
    x, w, stride, padding, _ = make(rng, case, dtype)
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding, algorithm=algorithm)
    dy, y = (rng.standard_normal(plan.output_shape).astype(dtype) for _ in range(2))
    before = rng.standard_normal(x.shape).astype(dtype)
    want = [np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], dtype)]
    reference.conv2d_backward(dy, x, w, *want, stride, padding, y_relu=y)
    for backend, options in ((native, {"plan": plan}), (reference, {})):
        got = [before.copy(), np.full_like(w, np.nan), np.full(w.shape[0], np.nan, dtype)]
        backend.conv2d_backward(dy, x, w, *got, stride, padding, y_relu=y, accumulate=True,
                                **options)
        for g, e in zip(got, [before + want[0], *want[1:]]):
            assert_close(g, e, dtype)


@pytest.mark.parametrize("algorithm", ["convk", "im2col"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backward_reads_dy_and_y_relu_from_channel_slices(isa, case, algorithm, rng):
    """An Inception branch's dL/dy and ReLU output as channels [c0, c1) of its block's: the
    same gradients as from contiguous copies."""
    x, w, stride, padding, _ = make(rng, case, np.float64)
    plan = native.conv2d_plan(x.shape, w.shape, stride, padding, algorithm=algorithm)
    B, OC, oh, ow = plan.output_shape
    big_dy, big_y = (rng.standard_normal((B, OC + 5, oh, ow)) for _ in range(2))
    dy, y = big_dy[:, 3:3 + OC], big_y[:, 3:3 + OC]
    results = []
    for args in ((dy, y), (dy.copy(), y.copy())):
        got = [np.empty_like(x), np.empty_like(w), np.empty(OC)]
        native.conv2d_backward(args[0], x, w, *got, stride, padding, plan=plan, y_relu=args[1])
        results.append(got)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()))
    if B > 1:  # one image: a slice is C-contiguous, its stride never used
        with pytest.raises(ValueError, match="y_relu and dy must be laid out alike"):
            native.conv2d_backward(dy, x, w, None, np.empty_like(w), None, stride, padding,
                                   plan=plan, y_relu=y.copy())


@pytest.mark.parametrize("mode", ["off", "always"])
@pytest.mark.parametrize("algorithm", ["convk", "im2col"])
@pytest.mark.parametrize("case", CASES + [(2, 6, 9, 70, 11, (3, 3), 1, 1)], ids=str)
def test_x_and_dx_as_channel_slices(isa, case, algorithm, mode, rng):
    """x as channels [1, 1 + C) of a wider tensor (a branch reading its part of stacked 1x1
    convolutions' output) and dx written, or added, into a slice of another laid out alike
    (its part of their gradient): the same bits as contiguous arrays (direct, Winograd,
    im2col), the other channels untouched; dx laid out unlike x is refused."""
    x, w, stride, padding, _ = make(rng, case, np.float64)
    previous = native.set_conv_winograd(mode)
    try:
        plan = native.conv2d_plan(x.shape, w.shape, stride, padding, algorithm=algorithm)
    finally:
        native.set_conv_winograd(previous)
    B, C, H, W = x.shape
    x_big = rng.standard_normal((B, C + 3, H, W))
    x_big[:, 1:1 + C] = x
    dy = rng.standard_normal(plan.output_shape)
    before = rng.standard_normal(x.shape)
    results = []
    for xs, dx in ((x, before.copy()), (x_big[:, 1:1 + C], np.full((B, C + 3, H, W), 7.0))):
        y = native.conv2d_forward(xs, w, None, np.empty(plan.output_shape), stride, padding,
                                  plan=plan).copy()
        into = dx if dx.shape == x.shape else dx[:, 1:1 + C]
        into[...] = before
        grads = [np.empty_like(w), np.empty(w.shape[0])]
        native.conv2d_backward(dy, xs, w, into, *grads, stride, padding, plan=plan, y_relu=y,
                               accumulate=True)
        added = into.copy()
        native.conv2d_backward(dy, xs, w, into, *grads, stride, padding, plan=plan, y_relu=y)
        results.append([y, added, into.copy(), *grads])
        if dx.shape != x.shape:
            assert (dx[:, :1] == 7).all() and (dx[:, 1 + C:] == 7).all()
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    if B > 1:  # one image: a slice is C-contiguous, its stride never used
        with pytest.raises(ValueError, match="dx and x must be laid out alike"):
            native.conv2d_backward(dy, x_big[:, 1:1 + C], w, np.empty_like(x), np.empty_like(w),
                                   None, stride, padding, plan=plan)


@pytest.mark.parametrize("case, passes", [
    ((3, 2, 110, 110, 32, (3, 3), 1, 1), (3, 2)),    # dY: 2 + 1 images
    ((3, 2, 110, 110, 200, (3, 3), 2, 1), (3, 1)),   # dY by phases: 1 + 1 + 1
    ((3, 32, 110, 110, 4, (3, 3), 1, 1), (2, 3)),    # x: 2 + 1
    ((3, 90, 110, 110, 2, (3, 3), 2, 0), (1, 3))],   # x by phases: 1 + 1 + 1
    ids=str)
def test_large_maps_run_a_few_images_at_a_time(isa, case, passes, rng):
    """Where the padded copy of a pass's source would take more than 8 MiB for the batch,
    passes of fewer images (float64 here): every output, gradient and mask read at its pass's
    images, dL/dw summed over the passes, dx added into."""
    x, w, stride, padding, plan = make(rng, case, np.float64)
    assert plan.pass_images(np.float64) == passes
    B, OC, oh, ow = plan.output_shape
    big_dy, big_y = (rng.standard_normal((B, OC + 3, oh, ow)) for _ in range(2))
    dy, y = big_dy[:, 1:1 + OC], big_y[:, 1:1 + OC]
    before = rng.standard_normal(x.shape)
    want = [np.empty_like(x), np.empty_like(w), np.empty(OC)]
    reference.conv2d_backward(dy, x, w, *want, stride, padding, y_relu=y)
    got = [before.copy(), np.empty_like(w), np.empty(OC)]
    native.conv2d_backward(dy, x, w, *got, stride, padding, plan=plan, y_relu=y, accumulate=True)
    for g, e in zip(got, [before + want[0], *want[1:]]):
        assert_close(g, e, np.float64)
    y_want, y_got = np.empty((B, OC, oh, ow)), np.empty((B, OC, oh, ow))
    reference.conv2d_forward(x, w, None, y_want, stride, padding)
    native.conv2d_forward(x, w, None, y_got, stride, padding, plan=plan)
    assert_close(y_got, y_want, np.float64)


@pytest.mark.parametrize("case", CASES[:4], ids=str)
def test_im2col_contender_gives_the_same_results(case, rng):
    x, w, stride, padding, plan = make(rng, case, np.float64)
    im2col = native.conv2d_plan(x.shape, w.shape, stride, padding, algorithm="im2col")
    OC = w.shape[0]
    scale, shift = rng.standard_normal(OC), rng.standard_normal(OC)
    y0 = rng.standard_normal(plan.output_shape)
    ys = []
    for p in (plan, im2col):
        y = y0.copy()
        native.conv2d_forward(x, w, None, y, stride, padding, plan=p, scale=scale, shift=shift,
                              relu=True, accumulate=True)
        ys.append(y)
    np.testing.assert_allclose(ys[0], ys[1], rtol=1e-12, atol=1e-12)
    grads = []
    for p in (plan, im2col):
        g = [np.empty_like(x), np.empty_like(w), np.empty(OC)]
        native.conv2d_backward(y0, x, w, *g, stride, padding, plan=p, y_relu=ys[0])
        grads.append(g)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], (4, 32, 20, 20, 48, (3, 3), 1, 1),
                                  (2, 32, 180, 180, 4, (3, 3), 1, 1),  # 2 passes
                                  (1, 64, 7, 7, 200, (1, 1), 1, 0),  # rows split, a lone pixel
                                  (16, 24, 12, 12, 40, (1, 1), 1, 0)], ids=str)  # blocks evened
def test_results_repeat_bit_for_bit_across_runs_and_threads(isa, case, rng):
    x, w, stride, padding, _ = make(rng, case, np.float32)
    dy = None
    runs = []
    saved = get_num_threads()
    try:
        for threads in (1, 2, 2):
            set_num_threads(threads)
            plan = native.conv2d_plan(x.shape, w.shape, stride, padding)
            y = np.empty(plan.output_shape, np.float32)
            native.conv2d_forward(x, w, None, y, stride, padding, plan=plan, relu=True)
            dy = np.sin(np.arange(y.size, dtype=np.float32)).reshape(y.shape) if dy is None else dy
            g = [np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], np.float32)]
            native.conv2d_backward(dy, x, w, *g, stride, padding, plan=plan, y_relu=y)
            runs.append([y, *g])
    finally:
        set_num_threads(saved)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_workspace_is_reused_and_checked(rng):
    x, w, stride, padding, plan = make(rng, CASES[0], np.float32)
    work = np.empty(plan.workspace, np.float32)
    y1, y2 = np.empty(plan.output_shape, np.float32), np.empty(plan.output_shape, np.float32)
    native.conv2d_forward(x, w, None, y1, stride, padding, plan=plan)
    native.conv2d_forward(x, w, None, y2, stride, padding, work, plan=plan)
    np.testing.assert_array_equal(y1, y2)
    with pytest.raises(ValueError, match="workspace has"):
        native.conv2d_forward(x, w, None, y2, stride, padding, work[:-1], plan=plan)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[6]], ids=str)
def test_weights_packed_once_give_the_same_bits(isa, case, dtype, rng):
    x, w, stride, padding, plan = make(rng, case, dtype)
    packed = plan.pack(w)
    assert packed.shape == (plan.packed_size,) and packed.dtype == dtype
    scale, shift = (rng.standard_normal(w.shape[0]).astype(dtype) for _ in range(2))
    want, got = np.empty(plan.output_shape, dtype), np.empty(plan.output_shape, dtype)
    for options in ({}, {"scale": scale, "shift": shift, "relu": True}):
        native.conv2d_forward(x, w, None, want, stride, padding, plan=plan, **options)
        native.conv2d_forward(x, w, None, got, stride, padding, plan=plan, packed=packed,
                              **options)
        np.testing.assert_array_equal(got, want)
        reference.conv2d_forward(x, w, None, got, stride, padding, packed=packed, **options)
        assert_close(got, want, dtype)


def test_packed_weights_are_checked(rng):
    x, w, stride, padding, plan = make(rng, CASES[0], np.float32)
    y = np.empty(plan.output_shape, np.float32)
    with pytest.raises(ValueError, match="weight must have shape"):
        plan.pack(w[:, :1])
    with pytest.raises(TypeError, match="weight must have dtype float32 or float64"):
        plan.pack(w.astype(np.int32))
    packed = plan.pack(w)
    im2col = native.conv2d_plan(x.shape, w.shape, stride, padding, algorithm="im2col")
    shared = np.zeros(plan.packed_size + y.size, np.float32)
    for backend in (native, reference):
        with pytest.raises(ValueError, match=f"packed has {packed.size - 1} elements"):
            backend.conv2d_forward(x, w, None, y, stride, padding, packed=packed[:-1])
        with pytest.raises(TypeError, match="packed has dtype float64"):
            backend.conv2d_forward(x, w, None, y, stride, padding, packed=packed.astype(np.float64))
        with pytest.raises(TypeError, match="packed weights are for our kernels' plans"):
            backend.conv2d_forward(x, w, None, y, stride, padding, plan=im2col, packed=packed)
        with pytest.raises(ValueError, match="packed and y must not overlap"):
            backend.conv2d_forward(x, w, None, shared[:y.size].reshape(y.shape), stride,
                                   padding, packed=shared[y.size - 1:y.size - 1 + packed.size])


def test_bad_options_are_rejected(rng):
    x, w, stride, padding, plan = make(rng, CASES[0], np.float32)
    OC = w.shape[0]
    y = np.empty(plan.output_shape, np.float32)
    for backend in (native, reference):
        with pytest.raises(ValueError, match="give bias or shift, not both"):
            backend.conv2d_forward(x, w, np.ones(OC, np.float32), y, stride, padding,
                                   shift=np.ones(OC, np.float32))
        with pytest.raises(ValueError, match="scale has 4 elements, expected 5"):
            backend.conv2d_forward(x, w, None, y, stride, padding, scale=np.ones(4, np.float32))
        with pytest.raises(TypeError, match="shift has dtype float64"):
            backend.conv2d_forward(x, w, None, y, stride, padding, shift=np.ones(OC))
        with pytest.raises(ValueError, match="y must be C-contiguous or a channel slice"):
            backend.conv2d_forward(x, w, None, np.empty((*y.shape[:3], 2 * y.shape[3]),
                                                       np.float32)[..., ::2], stride, padding)
        with pytest.raises(ValueError, match=r"y_relu must have shape"):
            backend.conv2d_backward(y, x, w, None, np.empty_like(w), None, stride, padding,
                                    y_relu=np.ones(3, np.float32))
        with pytest.raises(ValueError, match="accumulate=True needs dx"):
            backend.conv2d_backward(y, x, w, None, np.empty_like(w), None, stride, padding,
                                    accumulate=True)


def test_isa_controls():
    assert native.conv_isa() in PATHS and "portable" in PATHS
    previous = native.set_conv_isa("portable")
    try:
        assert native.conv_isa() == "portable"
        with pytest.raises(ValueError, match="unknown ISA path"):
            native.set_conv_isa("sse9")
        if "avx512" not in PATHS:
            with pytest.raises(ValueError, match="this CPU cannot run the avx512 path"):
                native.set_conv_isa("avx512")
    finally:
        native.set_conv_isa(previous)


def test_environment_variable_picks_a_path_the_cpu_runs():
    def path(value):
        env = {k: v for k, v in os.environ.items() if k != "INCEPTION_NATIVE_ISA"}
        if value is not None:
            env["INCEPTION_NATIVE_ISA"] = value
        code = "from inception_native import conv; print(conv.conv_isa())"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
    best = path(None)
    assert best in PATHS and path("portable") == "portable"
    assert path("bogus") == best  # unknown: ignored
    if "avx512" not in PATHS:
        assert path("avx512") == best  # higher than the CPU runs: ignored


# ---- Winograd F(2x2, 3x3): the forward and dL/dx of 3x3 stride-1 convolutions (csrc/convk.h) -

# (B, C, H, W, OC, padding): paddings 0-2, odd and even maps down to 1x1 (partial tiles at the
# right and bottom), channel counts off every block, odd batch; the last needs several C
# blocks and channel chunks
WINO_CASES = [
    (1, 1, 1, 1, 1, 1), (3, 3, 5, 7, 17, 2), (1, 17, 9, 8, 24, 0), (2, 24, 6, 9, 3, 1),
    (1, 5, 2, 3, 7, 2), (3, 3, 4, 4, 5, (0, 2)), (1, 8, 31, 30, 40, 1), (1, 300, 5, 6, 13, 1),
    (1, 24, 7, 7, 1000, 1),
    (2, 6, 9, 70, 11, 1),  # rows of 35 tiles: a vector of tiles side by side on every ISA
]


@pytest.fixture
def winograd():
    """Winograd forced on for every 3x3 stride-1 plan made in the test, the mode restored after."""
    previous = native.set_conv_winograd("always")
    yield
    native.set_conv_winograd(previous)


def wino_make(rng, case, dtype):
    B, C, H, W, OC, padding = case
    return make(rng, (B, C, H, W, OC, (3, 3), 1, padding), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINO_CASES, ids=str)
def test_winograd_forward_and_fused_options_match_numpy(isa, winograd, case, dtype, rng):
    x, w, stride, padding, plan = wino_make(rng, case, dtype)
    assert plan.winograd and plan.isa == isa
    B, OC, oh, ow = plan.output_shape
    scale, shift = (rng.standard_normal(OC).astype(dtype) for _ in range(2))
    want, got = np.empty(plan.output_shape, dtype), np.empty(plan.output_shape, dtype)
    packed = plan.pack(w)
    for options in ({}, {"shift": shift, "relu": True}, {"scale": scale, "shift": shift}):
        reference.conv2d_forward(x, w, None, want, stride, padding, **options)
        native.conv2d_forward(x, w, None, got, stride, padding, plan=plan, **options)
        assert_close(got, want, dtype)
        again = np.empty_like(got)
        native.conv2d_forward(x, w, None, again, stride, padding, plan=plan, packed=packed,
                              **options)
        np.testing.assert_array_equal(again, got)  # packed once or in the call: the same bits
    big = rng.standard_normal((B, OC + 3, oh, ow)).astype(dtype)
    expected = big.copy()
    reference.conv2d_forward(x, w, None, expected[:, 2:2 + OC], stride, padding, scale=scale,
                             shift=shift, relu=True, accumulate=True)
    native.conv2d_forward(x, w, None, big[:, 2:2 + OC], stride, padding, plan=plan, scale=scale,
                          shift=shift, relu=True, accumulate=True, packed=packed)
    assert_close(big, expected, dtype)
    np.testing.assert_array_equal(big[:, :2], expected[:, :2])
    np.testing.assert_array_equal(big[:, 2 + OC:], expected[:, 2 + OC:])


# dL/dx by Winograd besides WINO_CASES: C and OC off the blocks both ways, a padding past 2
# (dL/dx's padding 2 - p is negative: dY cropped)
WINO_DX_CASES = [(2, 33, 11, 13, 47, 1), (1, 47, 9, 7, 300, (2, 0)), (2, 5, 6, 7, 9, (3, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINO_CASES + WINO_DX_CASES, ids=str)
def test_winograd_dx_matches_numpy_and_the_direct_path(isa, case, dtype, rng):
    """dL/dx of a Winograd plan (its own convolution of dY by the flipped weights) against the
    twin and the direct plan's phase GEMM: with and without the ReLU mask, dy and y_relu as
    channel slices of wider tensors, overwritten and accumulated; dw and dbias as ever."""
    x, w, stride, padding, _ = wino_make(rng, case, dtype)
    plans = {}
    for mode in ("always", "off"):
        previous = native.set_conv_winograd(mode)
        try:
            plans[mode] = native.conv2d_plan(x.shape, w.shape, stride, padding)
        finally:
            native.set_conv_winograd(previous)
    assert plans["always"].winograd and not plans["off"].winograd
    B, OC, oh, ow = plans["off"].output_shape
    big_dy, big_y = (rng.standard_normal((B, OC + 3, oh, ow)).astype(dtype) for _ in range(2))
    dy, y = big_dy[:, 2:2 + OC], big_y[:, 2:2 + OC]
    before = rng.standard_normal(x.shape).astype(dtype)
    for mask in (None, y):
        want = [np.empty_like(x), np.empty_like(w), np.empty(OC, dtype)]
        reference.conv2d_backward(dy.copy(), x, w, *want, stride, padding,
                                  y_relu=None if mask is None else mask.copy())
        for plan in plans.values():
            got = [np.empty_like(x), np.empty_like(w), np.empty(OC, dtype)]
            native.conv2d_backward(dy, x, w, *got, stride, padding, plan=plan, y_relu=mask)
            for g, e in zip(got, want):
                assert_close(g, e, dtype)
            added = before.copy()
            native.conv2d_backward(dy, x, w, added, np.empty_like(w), None, stride, padding,
                                   plan=plan, y_relu=mask, accumulate=True)
            assert_close(added, before + want[0], dtype)


def test_winograd_dx_runs_a_few_images_at_a_time(isa, winograd, rng):
    """dL/dx by Winograd reads a padded, masked copy of dY, made for 2 images, then 1 (float64:
    over 8 MiB for the batch): each pass's dx added at its images, from channel slices."""
    x, w, stride, padding, plan = wino_make(rng, (3, 32, 110, 110, 32, 1), np.float64)
    assert plan.winograd and plan.pass_images(np.float64)[1] == 2
    B, OC, oh, ow = plan.output_shape
    big_dy, big_y = (rng.standard_normal((B, OC + 3, oh, ow)) for _ in range(2))
    dy, y = big_dy[:, 1:1 + OC], big_y[:, 1:1 + OC]
    before = rng.standard_normal(x.shape)
    want = [np.empty_like(x), np.empty_like(w), np.empty(OC)]
    reference.conv2d_backward(dy.copy(), x, w, *want, stride, padding, y_relu=y.copy())
    got = [before.copy(), np.empty_like(w), np.empty(OC)]
    native.conv2d_backward(dy, x, w, *got, stride, padding, plan=plan, y_relu=y, accumulate=True)
    for g, e in zip(got, [before + want[0], *want[1:]]):
        assert_close(g, e, np.float64)


def test_winograd_dx_matches_finite_differences(winograd, rng):
    """L = sum(r * relu(conv(x) + bias)) on a Winograd plan, the backward given the forward's
    ReLU output as its mask: its gradients against central differences (float64). Weights
    scaled by 1/sqrt(9C), so that y and L stay near 1 (the differences' rounding with them)."""
    x, w, stride, padding, plan = wino_make(rng, (2, 32, 5, 4, 33, 1), np.float64)
    assert plan.winograd
    w /= np.sqrt(9 * w.shape[1])
    bias = rng.standard_normal(w.shape[0])
    r = rng.standard_normal(plan.output_shape)

    def forward():
        y = np.empty(plan.output_shape)
        native.conv2d_forward(x, w, bias, y, stride, padding, plan=plan, relu=True)
        return y
    loss = lambda: float((r * forward()).sum())  # noqa: E731
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(bias)
    native.conv2d_backward(r, x, w, dx, dw, db, stride, padding, plan=plan, y_relu=forward())
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, finite_difference(loss, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, finite_difference(loss, bias), rtol=1e-6, atol=1e-8)


def test_winograd_float32_error_stays_near_the_direct_ones(rng):
    """float32 error against a float64 reference, relative to max |y|: Winograd's (transforms
    add roundings) measured against the direct path's, on GoogLeNet-like channel counts."""
    x, w, stride, padding, _ = wino_make(rng, (2, 192, 14, 14, 64, 1), np.float32)
    want = np.empty((2, 64, 14, 14))
    reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, want, 1, 1)
    errors = {}
    for mode in ("off", "always"):
        previous = native.set_conv_winograd(mode)
        try:
            plan = native.conv2d_plan(x.shape, w.shape, 1, 1)
        finally:
            native.set_conv_winograd(previous)
        assert plan.winograd == (mode == "always")
        got = np.empty(plan.output_shape, np.float32)
        native.conv2d_forward(x, w, None, got, 1, 1, plan=plan)
        errors[mode] = np.abs(got - want).max() / np.abs(want).max()
    assert errors["always"] < 1e-5 and errors["always"] < 8 * errors["off"], errors


def test_winograd_repeats_bit_for_bit_across_runs_and_threads(winograd, rng):
    """The forward and the backward (dL/dx by Winograd) on 1, 2 and 3 threads, then 2 again."""
    x, w, stride, padding, _ = wino_make(rng, (6, 32, 20, 20, 48, 1), np.float32)
    runs = []
    for threads in (1, 2, 3, 2):
        plan = native.conv2d_plan(x.shape, w.shape, stride, padding, threads=threads)
        assert plan.winograd and plan.threads == threads
        y = np.empty(plan.output_shape, np.float32)
        native.conv2d_forward(x, w, None, y, stride, padding, plan=plan, relu=True)
        dy = np.sin(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
        g = [np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], np.float32)]
        native.conv2d_backward(dy, x, w, *g, stride, padding, plan=plan, y_relu=y)
        runs.append([y, *g])
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_winograd_rule_and_controls(rng):
    shapes = {"googlenet 3a": ((1, 96, 28, 28), (128, 96, 3, 3), 1, 1),
              "few channels": ((1, 3, 28, 28), (8, 3, 3, 3), 1, 1),
              "stride 2": ((1, 96, 28, 28), (128, 96, 3, 3), 2, 1),
              "5x5": ((1, 96, 28, 28), (128, 96, 5, 5), 1, 2),
              "8x8, one image: 16 tiles": ((1, 448, 8, 8), (384, 448, 3, 3), 1, 1),
              "8x8, two images: 32 tiles": ((2, 448, 8, 8), (384, 448, 3, 3), 1, 1)}
    previous = native.set_conv_winograd("auto")
    try:
        for mode, expect in (("auto", [True, False, False, False, False, True]),
                             ("always", [True, True, False, False, True, True]),
                             ("off", [False] * 6)):
            assert native.set_conv_winograd(mode) in native.WINOGRAD_MODES
            assert native.conv_winograd() == mode
            plans = [native.conv2d_plan(*s) for s in shapes.values()]
            assert [p.winograd for p in plans] == expect, mode
            for p, (x_shape, w_shape, _, _) in zip(plans, shapes.values()):
                OC, C = w_shape[:2]  # packed weights follow the plan: U_t's 16 (OC, C) or w
                taps = 16 if p.winograd else w_shape[2] * w_shape[3]
                assert p.packed_size == taps * (-(-OC // 12) * 12) * C
        with pytest.raises(ValueError, match="mode must be one of"):
            native.set_conv_winograd("sometimes")
    finally:
        native.set_conv_winograd(previous)


def test_winograd_environment_variable_and_info():
    def run(value, code):
        env = {k: v for k, v in os.environ.items() if k != "INCEPTION_NATIVE_WINOGRAD"}
        if value is not None:
            env["INCEPTION_NATIVE_WINOGRAD"] = value
        return subprocess.run([sys.executable, *code], env=env, capture_output=True, text=True,
                              check=True).stdout
    mode = ["-c", "from inception_native import conv; print(conv.conv_winograd())"]
    assert run(None, mode).strip() == "auto" and run("0", mode).strip() == "off"
    assert run("always", mode).strip() == "always" and run("bogus", mode).strip() == "auto"
    assert "winograd:   off" in run("0", ["-m", "inception_native", "info"])
