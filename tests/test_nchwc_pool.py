"""The blocked layout NCHWc (B, C // blk, H, W, blk): the reorders and the pooling kernels give
the NCHW kernels' results (native and twin), read and write channel-block slices of larger
tensors at any batch, and refuse bad input clearly."""
import numpy as np
import pytest
from conftest import assert_close
from test_pool import CASES, out_shape

from inception_native import native, reference


def blocked(x, blk):
    B, C, H, W = x.shape
    return np.ascontiguousarray(x.reshape(B, C // blk, blk, H, W).transpose(0, 1, 3, 4, 2))


def plain(x):
    B, CB, H, W, blk = x.shape
    return x.transpose(0, 1, 4, 2, 3).reshape(B, CB * blk, H, W)


def in_slice(shape, blocks_before, blocks_after, dtype, fill=7.0):
    """An array of shape that is the block (channel) slice [:, before:before + shape[1]] of a
    larger C-contiguous array filled with fill, and that larger array."""
    big = np.full((shape[0], blocks_before + shape[1] + blocks_after, *shape[2:]), fill, dtype)
    return big[:, blocks_before:blocks_before + shape[1]], big


@pytest.mark.parametrize("blk", [8, 16])
def test_reorders_round_trip_through_slices(blk, backend, rng, dtype=np.float32):
    x = rng.standard_normal((3, 2 * blk, 5, 4)).astype(dtype)
    y, big = in_slice((3, 2, 5, 4, blk), 1, 2, dtype)
    assert backend.nchw_to_nchwc(x, y) is y
    np.testing.assert_array_equal(y, blocked(x, blk))
    assert (big[:, :1] == 7).all() and (big[:, 3:] == 7).all()  # nothing outside the slice
    back, wide = in_slice(x.shape, 3, 1, dtype)  # into a channel slice of a plain tensor
    assert backend.nchwc_to_nchw(y, back) is back
    np.testing.assert_array_equal(back, x)
    assert (wide[:, :3] == 7).all() and (wide[:, -1:] == 7).all()
    source, _ = in_slice(x.shape, 1, 0, dtype)  # from a channel slice of a plain tensor
    source[...] = x
    np.testing.assert_array_equal(backend.nchw_to_nchwc(source, np.empty_like(y)), y)


@pytest.mark.parametrize("include_pad", [None, True, False])  # None: max pooling
@pytest.mark.parametrize("case", CASES, ids=str)
def test_pooling_equals_the_nchw_kernels(case, include_pad, backend, rng, dtype=np.float32):
    blk = 8 if case[0] != 3 else 16
    B, C = case[0], blk * (1 + case[1] % 2)
    x = rng.standard_normal((B, C, *case[2:4])).astype(dtype)
    expected = np.empty((B, C, *out_shape(case)[2:]), dtype)
    if include_pad is None:
        native.max_pool2d_forward(x, expected, None, *case[4:])
    else:
        native.avg_pool2d_forward(x, expected, *case[4:], include_pad)
    # x a block slice, y a block slice, both of larger tensors
    xs, _ = in_slice((B, C // blk, *case[2:4], blk), 2, 1, dtype)
    xs[...] = blocked(x, blk)
    ys, big = in_slice((B, C // blk, *expected.shape[2:], blk), 1, 1, dtype)
    if include_pad is None:
        assert backend.max_pool2d_forward_nchwc(xs, ys, *case[4:]) is ys
        np.testing.assert_array_equal(plain(ys), expected)
    else:
        assert backend.avg_pool2d_forward_nchwc(xs, ys, *case[4:], include_pad) is ys
        assert_close(plain(ys), expected, dtype)
    assert (big[:, 0] == 7).all() and (big[:, -1] == 7).all()


@pytest.mark.parametrize("blk", [8, 16])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 7), (2, 5, 3)], ids=str)
def test_global_average_pool_gives_a_plain_batch_of_channels(shape, blk, backend, rng,
                                                            dtype=np.float32):
    B, CB, S = shape
    x = rng.standard_normal((B, CB * blk, S, S + 1)).astype(dtype) + 3
    xs, _ = in_slice((B, CB, S, S + 1, blk), 1, 1, dtype)
    xs[...] = blocked(x, blk)
    y = np.empty((B, CB * blk), dtype)
    assert backend.global_avg_pool_forward_nchwc(xs, y) is y
    assert_close(y, x.mean(axis=(2, 3), dtype=np.float64), dtype)


def test_a_nan_wins_the_maximum_and_native_equals_the_twin_bit_for_bit(rng):
    x = blocked(rng.standard_normal((2, 16, 9, 9)).astype(np.float32), 8)
    x[0, 1, 4, 4, 3] = np.nan
    y = {b: np.empty((2, 2, 4, 4, 8), np.float32) for b in (native, reference)}
    for b in y:
        b.max_pool2d_forward_nchwc(x, y[b], 3, 2, 0, True)
    assert np.isnan(y[native][0, 1, 1:3, 1:3, 3]).all() and np.isnan(y[native]).sum() == 4
    np.testing.assert_array_equal(y[native], y[reference])
    a = {b: np.empty((2, 2, 9, 9, 8), np.float32) for b in (native, reference)}
    for b in a:
        b.avg_pool2d_forward_nchwc(np.nan_to_num(x), a[b], 3, 1, 1, False, False)
    np.testing.assert_array_equal(a[native], a[reference])  # the same sums in double


def test_bad_input_is_refused_naming_the_argument(backend):
    x = np.zeros((1, 2, 4, 4, 8), np.float32)
    y = np.zeros((1, 2, 2, 2, 8), np.float32)
    with pytest.raises(ValueError, match=r"x's last axis \(the block\) must be one of \(8, 16\)"):
        backend.max_pool2d_forward_nchwc(np.zeros((1, 2, 4, 4, 5), np.float32), y, 2)
    with pytest.raises(ValueError, match="y must have shape"):
        backend.max_pool2d_forward_nchwc(x, np.zeros((1, 2, 3, 3, 8), np.float32), 2)
    with pytest.raises(TypeError, match="y must have dtype float32"):
        backend.avg_pool2d_forward_nchwc(x, y.astype(np.float64), 2)
    with pytest.raises(ValueError, match="x must be C-contiguous or a channel-block slice"):
        backend.max_pool2d_forward_nchwc(np.zeros((1, 2, 8, 4, 8), np.float32)[:, :, ::2], y, 2)
    with pytest.raises(ValueError, match="padding"):
        backend.max_pool2d_forward_nchwc(x, y, 2, 2, 2)
    with pytest.raises(ValueError, match="must hold the same tensor"):
        backend.nchw_to_nchwc(np.zeros((1, 3, 4, 4), np.float32), np.zeros((1, 1, 4, 4, 8), np.float32))
    read_only = np.zeros((1, 16, 4, 4), np.float32)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="y is read-only"):
        backend.nchwc_to_nchw(x, read_only)
    arena = np.zeros(256 + 64, np.float32)
    with pytest.raises(ValueError, match="must not overlap"):
        backend.max_pool2d_forward_nchwc(arena[:256].reshape(x.shape), arena[200:264].reshape(y.shape), 2)
    with pytest.raises(ValueError, match=r"y must have shape \(1, 16\)"):
        backend.global_avg_pool_forward_nchwc(x, np.zeros(16, np.float32))
    with pytest.raises(TypeError, match="ndarray"):
        backend.global_avg_pool_forward_nchwc(x.tolist(), np.zeros((1, 16), np.float32))
    with pytest.raises(TypeError, match="x has dtype float64, expected float32$"):
        backend.nchw_to_nchwc(np.zeros((1, 8, 4, 4)), np.zeros((1, 1, 4, 4, 8), np.float32))
