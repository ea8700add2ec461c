"""The blocked-layout (NCHWc) direct convolution (csrc/nchwc.h) through conv2d_forward_nchwc and
nchwc_pack_weights, on every ISA path this CPU runs: native against its NumPy twin and against a
direct convolution in float64 written here, blocked and plain (first layer) input, strides,
paddings, rectangular kernels, output channels off the block, channel-block slices, bias and
ReLU on and off; bit-identical results run to run and across thread counts; bad input."""
import numpy as np
import pytest

from inception_native import conv as native
from inception_native import reference
from inception_native.threads import get_num_threads, set_num_threads

PATHS = native.conv_isa_levels()

# (B, C, H, W, OC, kernel, stride, padding, plain): C a multiple of 8 (of 16 on the 16-lane
# paths, else the case checks that packing refuses it); plain: a plain NCHW input
CASES = [
    (2, 16, 9, 10, 16, (3, 3), 1, 1, False),
    (1, 8, 7, 7, 24, (1, 1), 1, 0, False),
    (2, 16, 11, 12, 32, (5, 5), 2, 2, False),
    (1, 24, 9, 9, 13, (1, 7), 1, (0, 3), False),
    (1, 48, 9, 9, 20, (7, 1), 1, (3, 0), False),
    (3, 32, 5, 3, 40, (3, 3), (1, 2), (3, 2), False),
    (1, 48, 6, 5, 48, (3, 3), (2, 1), (0, 3), False),
    (1, 16, 2, 2, 8, (3, 3), 1, 2, False),
    (1, 16, 1, 1, 16, (1, 1), 1, 0, False),
    (2, 256, 13, 11, 64, (1, 1), 1, 0, False),
    (1, 16, 8, 9, 16, (1, 1), 2, 0, False),
    (1, 16, 3, 40, 32, (1, 3), 2, 1, False),
    (1, 32, 6, 7, 32, (1, 3), 1, (0, 1), False),
    (2, 3, 20, 19, 64, (7, 7), 2, 3, True),    # GoogLeNet's conv1, smaller
    (1, 5, 9, 8, 24, (3, 3), 1, 1, True),
]


@pytest.fixture(params=PATHS)
def isa(request):
    previous = native.set_conv_isa(request.param)
    yield request.param
    native.set_conv_isa(previous)


def direct(x, w, bias, stride, padding, relu):
    """relu?(conv2d(x, w) + bias) in float64, tap by tap over a zero-padded x."""
    (sh, sw), (ph, pw) = (np.broadcast_to(stride, 2), np.broadcast_to(padding, 2))
    B, C, H, W = x.shape
    OC, _, kh, kw = w.shape
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((B, OC, oh, ow)) + (0 if bias is None else bias.reshape(1, -1, 1, 1))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            y += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j].astype(np.float64))
    return np.maximum(y, 0) if relu else y


def make(rng, case, relu=True, with_bias=True):
    """x (blocked, or plain), packed weights, bias (padded to the blocks), y, the plain-layout
    x and w and the direct convolution's result (blocked, OC rounded up)."""
    B, C, H, W, OC, (kh, kw), stride, padding, plain = case
    blk = native.nchwc_block()
    xn = rng.standard_normal((B, C, H, W)).astype(np.float32)
    w = rng.standard_normal((OC, C, kh, kw)).astype(np.float32)
    OCp = -(-OC // blk) * blk
    bias = rng.standard_normal(OCp).astype(np.float32) if with_bias else None
    wp = native.nchwc_pack_weights(w, blk, plain)
    x = xn if plain else reference._blocked(xn, blk)
    w_padded = np.zeros((OCp, C, kh, kw), np.float32)
    w_padded[:OC] = w
    want = reference._blocked(direct(xn, w_padded, bias, stride, padding, relu), blk)
    y = np.full(want.shape, np.nan, np.float32)
    return x, wp, bias, y, want


def usable(case):
    """False when the case's input channels are not whole blocks of this path."""
    return case[-1] or case[1] % native.nchwc_block() == 0


def assert_close(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("relu, with_bias", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_matches_twin_and_direct(isa, case, relu, with_bias, rng):
    if not usable(case):
        with pytest.raises(ValueError, match="not a multiple of the block"):
            make(rng, case)
        return
    x, wp, bias, y, want = make(rng, case, relu, with_bias)
    stride, padding = case[6], case[7]
    assert native.conv2d_forward_nchwc(x, wp, bias, y, stride, padding, relu) is y
    assert_close(y, want)
    twin = np.full_like(y, np.nan)
    reference.conv2d_forward_nchwc(x, wp, bias, twin, stride, padding, relu)
    assert_close(twin, want)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[9], CASES[13]], ids=str)
def test_channel_block_slices_in_and_out(isa, case, rng):
    """x and y are blocks [1, 1 + n) of tensors with 2 more blocks (channels, for a plain x):
    the same result, and the output tensor's other blocks untouched."""
    if not usable(case):
        pytest.skip("channels not whole blocks on this path")
    x, wp, bias, y, want = make(rng, case)
    stride, padding = case[6], case[7]
    big_x = np.zeros((x.shape[0], x.shape[1] + 2, *x.shape[2:]), np.float32)
    big_x[:, 1:-1] = x
    big_y = np.full((y.shape[0], y.shape[1] + 2, *y.shape[2:]), 7.0, np.float32)
    native.conv2d_forward_nchwc(big_x[:, 1:-1], wp, bias, big_y[:, 1:-1], stride, padding, True)
    assert_close(big_y[:, 1:-1], want)
    assert (big_y[:, 0] == 7).all() and (big_y[:, -1] == 7).all()
    twin = np.full_like(big_y, 7.0)
    reference.conv2d_forward_nchwc(big_x[:, 1:-1], wp, bias, twin[:, 1:-1], stride, padding, True)
    assert_close(twin, big_y)


@pytest.mark.parametrize("case", [CASES[2], CASES[5], CASES[9], CASES[13]], ids=str)
def test_bits_repeat_across_runs_and_threads(isa, case, rng):
    if not usable(case):
        pytest.skip("channels not whole blocks on this path")
    big = (4, *case[1:])  # batch 4: enough work for the second thread
    x, wp, bias, y, _ = make(rng, big)
    stride, padding = case[6], case[7]
    threads = get_num_threads()
    runs = []
    try:
        for n in (1, 1, 2):
            set_num_threads(n)
            runs.append(native.conv2d_forward_nchwc(x, wp, bias, y.copy(), stride, padding, True))
    finally:
        set_num_threads(threads)
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("OC", [8, 13, 32])
def test_pack_weights_layout(OC, plain, rng):
    blk = native.nchwc_block()
    C = 5 if plain else 2 * blk
    w = rng.standard_normal((OC, C, 3, 2)).astype(np.float32)
    wp = native.nchwc_pack_weights(w, blk, plain)
    OCb = -(-OC // blk)
    assert wp.shape == ((OCb, C, 3, 2, blk) if plain else (OCb, C // blk, 3, 2, blk, blk))
    assert np.array_equal(wp, reference.nchwc_pack_weights(w, blk, plain))
    o, c, i, j = OC - 1, C - 1, 2, 1
    if plain:
        assert wp[o // blk, c, i, j, o % blk] == w[o, c, i, j]
    else:
        assert wp[o // blk, c // blk, i, j, c % blk, o % blk] == w[o, c, i, j]
    assert np.array_equal(reference._unpacked_weights(wp)[:OC], w)
    assert not reference._unpacked_weights(wp)[OC:].any()  # channels past OC are 0


def test_block_follows_the_isa_path(isa):
    assert native.nchwc_block() == (16 if isa in ("avx512", "portable512") else 8)
    assert reference.nchwc_block() == native.nchwc_block()


def _args(rng):
    """Valid arguments of a small blocked convolution (3x3, padding 1)."""
    blk = native.nchwc_block()
    x, wp, bias, y, _ = make(rng, (1, 2 * blk, 5, 6, 2 * blk, (3, 3), 1, 1, False))
    return dict(x=x, wp=wp, bias=bias, y=y, stride=1, padding=1)


def _bad_calls(rng):
    blk = native.nchwc_block()
    a = _args(rng)
    big = np.zeros((1, a["x"].shape[1], 5, 12, blk), np.float32)
    calls = [
        (TypeError, "x must have dtype float32", dict(x=a["x"].astype(np.float64))),
        (TypeError, "wp must be a numpy.ndarray", dict(wp=list(range(3)))),
        (ValueError, "wp must be nchwc_pack_weights's array", dict(wp=a["wp"][..., :4])),
        (ValueError, "wp must be nchwc_pack_weights's array",
         dict(wp=np.zeros((1, 2, 3, 3, 4, 4), np.float32))),
        (ValueError, "x has 1 channel blocks", dict(x=np.ascontiguousarray(a["x"][:, :1]))),
        (ValueError, "x must have shape", dict(x=a["x"][..., 0])),
        (ValueError, "x must have shape", dict(x=a["x"][:0])),
        (ValueError, "x must be C-contiguous or a channel-block slice", dict(x=big[:, :, :, ::2])),
        (ValueError, "y must have shape", dict(y=np.ascontiguousarray(a["y"][:, :, :4]))),
        (ValueError, "y must be C-contiguous or a channel-block slice",
         dict(y=np.zeros((1, a["y"].shape[1], 5, 12, blk), np.float32)[:, :, :, ::2])),
        (TypeError, "bias has dtype float64", dict(bias=np.zeros(a["y"].shape[1] * blk))),
        (ValueError, "bias must have shape", dict(bias=np.zeros(3, np.float32))),
        (ValueError, "stride must be >= 1", dict(stride=0)),
        (ValueError, "padding must be >= 0", dict(padding=-1)),
        (ValueError, "kernel 3x3 is larger than the padded input",
         dict(padding=0, x=np.ascontiguousarray(a["x"][:, :, :1]))),
    ]
    ro = a["y"].copy()
    ro.flags.writeable = False
    calls.append((ValueError, "y is read-only", dict(y=ro)))
    return a, calls


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_bad_arguments_raise_clear_errors(backend, rng):
    a, calls = _bad_calls(rng)
    for error, message, change in calls:
        with pytest.raises(error, match=message):
            backend.conv2d_forward_nchwc(**{**a, **change})
    assert not np.isnan(backend.conv2d_forward_nchwc(**a)).any()  # the valid call itself runs


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_overlapping_and_plain_mismatches_raise(backend, rng):
    a = _args(rng)
    x = a["x"]
    with pytest.raises(ValueError, match="x and y must not overlap"):
        backend.conv2d_forward_nchwc(x, a["wp"], None, x, 1, 1)
    wp_plain = native.nchwc_pack_weights(np.zeros((16, 3, 3, 3), np.float32),
                                         native.nchwc_block(), True)
    xp = np.zeros((1, 4, 5, 6), np.float32)
    with pytest.raises(ValueError, match="x has 4 channels, wp was packed for 3"):
        backend.conv2d_forward_nchwc(xp, wp_plain, None, a["y"], 1, 1)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_pack_weights_bad_arguments(backend, rng):
    blk = native.nchwc_block()
    w = rng.standard_normal((16, blk, 3, 3)).astype(np.float32)
    for error, message, args in [
        (TypeError, "w must be a numpy.ndarray", ([1.0], blk)),
        (TypeError, "w has dtype float64", (w.astype(np.float64), blk)),
        (ValueError, "w must have shape", (w[0], blk)),
        (ValueError, "w must have shape", (w[:0], blk)),
        (ValueError, "blk must be one of", (w, 4)),
        (ValueError, "not a multiple of the block", (np.ascontiguousarray(w[:, :3]), blk)),
        (ValueError, "w must be C-contiguous", (w[:, :, ::2], blk)),
    ]:
        with pytest.raises(error, match=message):
            backend.nchwc_pack_weights(*args)
