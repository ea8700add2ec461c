"""Numerical edge cases of the BatchNorm kernels (issue 6), beside those of test_batchnorm.py
(mean 1e4 / std 1e-2, NaN in the forward, one value per channel): zero and tiny variance,
values whose float32 squares overflow while the statistics are finite, inf and NaN in either
direction, a batch of one in training mode, an empty batch."""
import numpy as np
import pytest
from conftest import DTYPES

from inception_native import native, reference

# inf and NaN inputs make NumPy warn in the twins: expected here
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
BACKENDS = pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])


def exact(backend, x, training=True, eps=1e-5, dy=None):
    """Forward (and backward, when dy is given) of the exact flavour, gamma 1, beta 0."""
    c, dt = x.shape[1], x.dtype
    out = dict(y=np.empty_like(x), mean=np.empty(c, dt), invstd=np.empty(c, dt),
               rolling_mean=np.zeros(c, dt), rolling_variance=np.ones(c, dt))
    backend.batchnorm_forward(x, np.ones(c, dt), np.zeros(c, dt), out["rolling_mean"],
                              out["rolling_variance"], out["y"], out["mean"], out["invstd"],
                              training=training, eps=eps)
    if dy is not None:
        out.update(dx=np.empty_like(x), dgamma=np.empty(c, dt), dbeta=np.empty(c, dt))
        backend.batchnorm_backward(dy, x, out["mean"], out["invstd"], np.ones(c, dt), out["dx"],
                                   out["dgamma"], out["dbeta"], training=training)
    return out


def darknet(backend, x, training=True):
    c, dt = x.shape[1], x.dtype
    out = dict(y=np.empty_like(x), x_norm=np.empty_like(x), mean=np.empty(c, dt),
               variance=np.empty(c, dt))
    backend.batchnorm_forward_darknet(x, np.ones(c, dt), np.zeros(c, dt), np.zeros(c, dt),
                                      np.ones(c, dt), out["y"], out["x_norm"], out["mean"],
                                      out["variance"], training=training)
    return out


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_variance_gives_beta_and_a_finite_gradient(backend, dtype):
    """A constant channel: variance 0, invstd 1/sqrt(eps), y = beta exactly, dx finite."""
    x = np.full((4, 2, 3), 7.0, dtype)
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    out = exact(backend, x, dy=dy)
    assert (out["y"] == 0).all()
    np.testing.assert_allclose(out["invstd"], 1 / np.sqrt(1e-5), rtol=1e-6)
    assert np.isfinite(out["dx"]).all() and np.isfinite(out["dgamma"]).all()
    np.testing.assert_allclose(out["rolling_variance"], 0.99, rtol=1e-6)
    d = darknet(backend, x)
    assert (d["variance"] == 0).all() and (d["y"] == 0).all()  # 0 / (sqrt(0) + 1e-6)


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_variance_is_resolved(backend, dtype):
    """Values 1 +- 1e-3 (float32) or 1 +- 1e-9 (float64): variance 1e-6 or 1e-18 beside a mean
    of 1 is found, and with an eps below it the output is standardised."""
    spread = 1e-3 if dtype == np.float32 else 1e-9
    x = (1 + spread * np.tile([-1.0, 1.0], (8, 3, 2))).astype(dtype)
    true_var = ((x.astype(np.float64) - x.astype(np.float64).mean(axis=(0, 2), keepdims=True))
                ** 2).mean(axis=(0, 2))
    out = exact(backend, x, eps=1e-30)
    np.testing.assert_allclose(out["invstd"], 1 / np.sqrt(true_var), rtol=1e-4)
    np.testing.assert_allclose(np.abs(out["y"]), 1.0, rtol=1e-3)


@BACKENDS
def test_float32_squares_that_overflow_leave_finite_statistics(backend):
    """|x| = 1.5e19: x*x overflows float32 (> 3.4e38) but the variance, 2.25e38, does not;
    sums in double keep every statistic finite and y = +-1."""
    x = np.tile(np.array([-1.5e19, 1.5e19], np.float32), (4, 2, 4))
    out = exact(backend, x)
    assert np.isfinite(out["invstd"]).all() and np.isfinite(out["rolling_variance"]).all()
    np.testing.assert_allclose(np.abs(out["y"]), 1.0, rtol=1e-5)
    b, f, s = 4, 2, 8
    mean, var = np.empty(f, np.float32), np.empty(f, np.float32)
    backend.mean_cpu(x, b, f, s, mean)
    backend.variance_cpu(x, mean, b, f, s, var)
    assert (mean == 0).all()
    np.testing.assert_allclose(var, 1.5e19 ** 2 * 32 / 31, rtol=1e-6)
    # and a mean of values near float32's largest is no inf
    big = np.full((3, 2, 5), 3e38, np.float32)
    backend.mean_cpu(big, 3, 2, 5, mean)
    np.testing.assert_allclose(mean, 3e38, rtol=1e-6)


@BACKENDS
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
def test_inf_and_nan_propagate_to_their_channel_only(backend, bad):
    x = np.random.default_rng(1).standard_normal((3, 3, 4)).astype(np.float32)
    x[1, 2, 3] = bad
    dy = np.ones_like(x)
    out = exact(backend, x, dy=dy)
    assert np.isfinite(out["y"][:, :2]).all() and np.isfinite(out["dx"][:, :2]).all()
    assert not np.isfinite(out["y"][:, 2]).any()  # x - mean is nan or inf everywhere in it
    assert not np.isfinite(out["rolling_mean"][2]) and not np.isfinite(out["dx"][:, 2]).all()
    d = darknet(backend, x)
    assert np.isfinite(d["y"][:, :2]).all() and not np.isfinite(d["y"][:, 2]).any()
    mean = np.empty(3, np.float32)
    backend.mean_cpu(x, 3, 3, 4, mean)
    assert np.isfinite(mean[:2]).all() and (np.isnan(mean[2]) if np.isnan(bad) else mean[2] == bad)


@BACKENDS
def test_nan_in_the_gradient_propagates(backend):
    x = np.random.default_rng(2).standard_normal((2, 2, 5))
    dy = np.ones_like(x)
    dy[0, 0, 0] = np.nan
    out = exact(backend, x, dy=dy)
    assert np.isnan(out["dx"][:, 0]).all() and np.isnan(out["dgamma"][0])
    assert np.isfinite(out["dx"][:, 1]).all() and np.isfinite(out["dbeta"][1])


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_of_one_in_training_normalises_over_positions(backend, dtype):
    """Batch 1, training: the statistics run over the H*W positions of the one image (defined
    whenever H*W > 1); with one position per channel it raises (see the next test)."""
    x = np.random.default_rng(3).standard_normal((1, 3, 4, 5)).astype(dtype)
    out = exact(backend, x)
    xs = x.reshape(3, 20).astype(np.float64)
    expected = (xs - xs.mean(1, keepdims=True)) / np.sqrt(xs.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out["y"].reshape(3, 20), expected, rtol=1e-4, atol=1e-5)
    d = darknet(backend, x)
    np.testing.assert_allclose(d["variance"], xs.var(1, ddof=1), rtol=1e-5)


@BACKENDS
def test_batch_of_one_with_one_value_per_channel_raises(backend):
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="x: training needs more than one value per channel"):
        exact(backend, x)
    with pytest.raises(ValueError, match="x: training needs more than one value per channel"):
        darknet(backend, x)
    exact(backend, x, training=False)  # inference is defined: the rolling statistics
    darknet(backend, x, training=False)


@BACKENDS
@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_empty_batch_raises_in_every_entry_point(backend, shape):
    x = np.zeros(shape, np.float32)
    message = r"x must not be empty, got shape"
    with pytest.raises(ValueError, match=message):
        exact(backend, x)
    with pytest.raises(ValueError, match=message):
        darknet(backend, x)
    c, e = max(shape[1], 1), np.empty_like(x)
    v = np.ones(c, np.float32)
    with pytest.raises(ValueError, match=message):
        backend.batchnorm_backward(e, x, v, v, v, np.empty_like(x), v.copy(), v.copy())
    with pytest.raises(ValueError, match=message):
        backend.batchnorm_backward_darknet(e, x, np.empty_like(x), v, v, v, v.copy(), v.copy())
    with pytest.raises(ValueError, match="batch must be >= 1, got 0"):
        backend.mean_cpu(x, 0, 3, 4, np.empty(3, np.float32))


@BACKENDS
def test_a_flag_without_a_truth_value_is_named(backend):
    """bool() of an array of two values fails; the message names the flag (found by fuzzing)."""
    x = np.ones((2, 3, 4), np.float32)
    flags = np.array([True, False])
    with pytest.raises(ValueError, match="^training must be a bool, got ndarray"):
        exact(backend, x, training=flags)
    with pytest.raises(ValueError, match="^ceil_mode must be a bool, got ndarray"):
        backend.max_pool2d_forward(x.reshape(1, 2, 3, 4), np.empty((1, 2, 1, 2), np.float32),
                                   np.empty((1, 2, 1, 2), np.int64), 2, ceil_mode=flags)
    with pytest.raises(ValueError, match="^count_include_pad must be a bool, got ndarray"):
        backend.avg_pool2d_forward(x.reshape(1, 2, 3, 4), np.empty((1, 2, 1, 2), np.float32), 2,
                                   count_include_pad=flags)
