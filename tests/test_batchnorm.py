"""The BatchNorm layer kernels: darknet flavour against the article's code, exact flavour against
finite differences, both backends, rolling statistics, PyTorch, bad input."""
import numpy as np
import pytest
from conftest import DTYPES, assert_close

from inception_native import _article, native, reference

SHAPES = [(2, 3, 4, 5), (1, 4, 3, 3), (5, 1, 7), (16, 6, 1, 1), (3, 17, 2, 9)]
NORMALIZE_EPS, DELTA_EPS = float(np.float32(1e-6)), float(np.float32(1e-5))


def channel_view(a):
    """(batch, channels, ...) -> (channels, batch * spatial)"""
    return np.moveaxis(a.reshape(a.shape[0], a.shape[1], -1), 1, 0).reshape(a.shape[1], -1)


def per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def buffers(x, dtype):
    c = x.shape[1]
    return dict(y=np.empty_like(x), mean=np.empty(c, dtype), invstd=np.empty(c, dtype))


def exact_forward(backend, x, gamma, beta, training=True, rolling=None, eps=1e-5):
    c, dtype = x.shape[1], x.dtype
    rolling_mean, rolling_variance = rolling if rolling else (np.zeros(c, dtype), np.ones(c, dtype))
    out = buffers(x, dtype)
    backend.batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, out["y"],
                              out["mean"], out["invstd"], training=training, eps=eps)
    return out


def exact_backward(backend, dy, x, out, gamma, training=True):
    dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    backend.batchnorm_backward(dy, x, out["mean"], out["invstd"], gamma, dx, dgamma, dbeta,
                               training=training)
    return dx, dgamma, dbeta


def random_layer(rng, shape, dtype, offset=0.5):
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    return x, gamma, beta


# ---- darknet flavour ---------------------------------------------------------------------

def article_transcription(x, scales, biases, delta):
    """The article's forward_batchnorm_layer and backward_batchnorm_layer, per channel, float64."""
    xc, dc = channel_view(x.astype(np.float64)), channel_view(delta.astype(np.float64))
    m = xc.shape[1]
    mean, variance = xc.mean(axis=1), xc.var(axis=1, ddof=1)
    x_norm = (xc - mean[:, None]) / (np.sqrt(variance[:, None]) + NORMALIZE_EPS)
    y = scales[:, None] * x_norm + biases[:, None]
    bias_updates, scale_updates = dc.sum(axis=1), (dc * x_norm).sum(axis=1)
    d = dc * scales[:, None]
    mean_delta = d.sum(axis=1) * -1 / np.sqrt(variance + DELTA_EPS)
    variance_delta = (d * (xc - mean[:, None])).sum(axis=1) * -0.5 * (variance + DELTA_EPS) ** -1.5
    dx = (d / np.sqrt(variance[:, None] + DELTA_EPS) + variance_delta[:, None] * 2 *
          (xc - mean[:, None]) / m + mean_delta[:, None] / m)
    back = lambda a: np.moveaxis(a.reshape((x.shape[1], x.shape[0]) + x.shape[2:]), 0, 1)  # noqa: E731
    return dict(y=back(y), x_norm=back(x_norm), mean=mean, variance=variance, dx=back(dx),
                scale_updates=scale_updates, bias_updates=bias_updates)


def darknet_step(backend, x, scales, biases, delta):
    c, dtype = x.shape[1], x.dtype
    got = dict(y=np.empty_like(x), x_norm=np.empty_like(x), mean=np.empty(c, dtype),
               variance=np.empty(c, dtype), rolling_mean=np.zeros(c, dtype),
               rolling_variance=np.ones(c, dtype), scale_updates=np.zeros(c, dtype),
               bias_updates=np.zeros(c, dtype))
    backend.batchnorm_forward_darknet(x, scales, biases, got["rolling_mean"],
                                      got["rolling_variance"], got["y"], got["x_norm"],
                                      got["mean"], got["variance"])
    got["dx"] = delta.copy()
    backend.batchnorm_backward_darknet(got["dx"], x, got["x_norm"], got["mean"], got["variance"],
                                       scales, got["scale_updates"], got["bias_updates"])
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_darknet_flavour_follows_the_article(shape, dtype, backend, rng):
    x, scales, biases = random_layer(rng, shape, dtype)
    delta = rng.standard_normal(shape).astype(dtype)
    got = darknet_step(backend, x, scales, biases, delta)
    expected = article_transcription(x, scales, biases, delta)
    for key, value in expected.items():
        assert_close(got[key], value, dtype, scale=20)
    assert_close(got["rolling_mean"], 0.01 * expected["mean"], dtype)
    assert_close(got["rolling_variance"], 0.99 + 0.01 * expected["variance"], dtype)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (16, 8, 7, 7), (2, 1, 33)], ids=str)
def test_darknet_flavour_matches_the_article_compiled(shape, rng):
    """Against csrc/darknet_article.c, the article's loops as they stand (float sums)."""
    x, scales, biases = random_layer(rng, shape, np.float32)
    delta = rng.standard_normal(shape).astype(np.float32)
    got = darknet_step(native, x, scales, biases, delta)
    article = _article.ArticleBatchNorm(shape[0], shape[1], int(np.prod(shape[2:])))
    article.scales[:], article.biases[:], article.rolling_variance[:] = scales, biases, 1
    y = article.forward(x.ravel().copy())
    dx = article.backward(delta.ravel().copy())
    np.testing.assert_allclose(got["y"].ravel(), y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["dx"].ravel(), dx, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["rolling_variance"], article.rolling_variance, rtol=1e-5)


def test_darknet_inference_uses_rolling_statistics(backend, rng):
    x, scales, biases = random_layer(rng, (3, 2, 4), np.float64)
    rolling_mean, rolling_variance = np.array([0.5, -1.0]), np.array([4.0, 0.25])
    y, unused = np.empty_like(x), np.empty(2)
    backend.batchnorm_forward_darknet(x, scales, biases, rolling_mean, rolling_variance, y,
                                      np.empty_like(x), unused, unused.copy(), training=False)
    expected = ((x - per_channel(rolling_mean, 3)) / (np.sqrt(per_channel(rolling_variance, 3))
                + NORMALIZE_EPS) * per_channel(scales, 3) + per_channel(biases, 3))
    np.testing.assert_allclose(y, expected, rtol=1e-13)


# ---- exact flavour -----------------------------------------------------------------------

def finite_difference(f, a, h=1e-6):
    """Central differences of the scalar f() with respect to every element of a (in place)."""
    grad = np.empty_like(a)
    flat, g = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        plus = f()
        flat[i] = keep - h
        minus = f()
        flat[i] = keep
        g[i] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (4, 2, 1, 1), (1, 2, 5)], ids=str)
def test_exact_backward_is_the_gradient(shape, training, backend, rng):
    x, gamma, beta = random_layer(rng, shape, np.float64)
    weights = rng.standard_normal(shape)  # loss = sum(weights * y), so dy = weights
    rolling = (rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1]))

    def loss():
        r = (rolling[0].copy(), rolling[1].copy())
        return float((weights * exact_forward(backend, x, gamma, beta, training, r)["y"]).sum())

    out = exact_forward(backend, x, gamma, beta, training, (rolling[0].copy(), rolling[1].copy()))
    dx, dgamma, dbeta = exact_backward(backend, weights, x, out, gamma, training)
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma, finite_difference(loss, gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta, finite_difference(loss, beta), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", SHAPES + [(16, 32, 14, 14)], ids=str)
def test_exact_float32_matches_float64(shape, training, rng):
    x, gamma, beta = random_layer(rng, shape, np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    rolling = (rng.standard_normal(shape[1]).astype(np.float32),
               rng.uniform(0.5, 2, shape[1]).astype(np.float32))
    results = []
    for dtype, backend in [(np.float32, native), (np.float64, reference)]:
        args = [a.astype(dtype) for a in (x, gamma, beta)]
        r = tuple(a.astype(dtype) for a in rolling)
        out = exact_forward(backend, *args, training, r)
        results.append((out["y"], *exact_backward(backend, dy.astype(dtype), args[0], out, args[1],
                                                   training), *r))
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_rolling_statistics_follow_the_recurrence(dtype, unbiased, backend, rng):
    shape, eps = (4, 3, 5, 5), 1e-3
    gamma, beta = np.ones(3, dtype), np.zeros(3, dtype)
    rolling_mean, rolling_variance = np.zeros(3, dtype), np.ones(3, dtype)
    expected_mean, expected_variance = np.zeros(3), np.ones(3)
    for step in range(5):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        out = buffers(x, dtype)
        backend.batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, out["y"],
                                  out["mean"], out["invstd"], eps=eps, unbiased=unbiased)
        xc = channel_view(x.astype(np.float64))
        expected_mean = 0.99 * expected_mean + 0.01 * xc.mean(axis=1)
        expected_variance = 0.99 * expected_variance + 0.01 * xc.var(axis=1, ddof=int(unbiased))
        assert_close(out["mean"], xc.mean(axis=1), dtype, scale=10)
        assert_close(out["invstd"], 1 / np.sqrt(xc.var(axis=1) + eps), dtype, scale=10)
    assert_close(rolling_mean, expected_mean, dtype, scale=10)
    assert_close(rolling_variance, expected_variance, dtype, scale=10)
    # inference normalises with them
    x = rng.standard_normal(shape).astype(dtype)
    out = exact_forward(backend, x, gamma, beta, False, (rolling_mean, rolling_variance), eps)
    expected = (x - per_channel(expected_mean, 4)) / np.sqrt(per_channel(expected_variance, 4) + eps)
    assert_close(out["y"], expected, dtype, scale=10)


def test_one_value_per_channel_trains_with_the_biased_rolling_variance(backend):
    x = np.array([[1.0, 2.0]])  # batch 1, two channels, no spatial extent
    out = buffers(x, np.float64)
    rolling = (np.zeros(2), np.ones(2))
    backend.batchnorm_forward(x, np.ones(2), np.zeros(2), *rolling, out["y"], out["mean"],
                              out["invstd"], momentum=0.5, unbiased=False)
    np.testing.assert_allclose(out["y"], 0.0)
    np.testing.assert_allclose(rolling[0], [0.5, 1.0])
    np.testing.assert_allclose(rolling[1], [0.5, 0.5])


def test_exact_statistics_are_sound_far_from_zero(rng):
    """Mean 1e4, std 1e-2 in float32: the variance comes out to float32 precision."""
    x = (1e4 + 1e-2 * rng.standard_normal((16, 4, 8, 8))).astype(np.float32)
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    rolling = (np.zeros(4, np.float32), np.zeros(4, np.float32))
    out = exact_forward(native, x, gamma, beta, True, rolling, eps=1e-12)
    xc = channel_view(x.astype(np.float64))
    np.testing.assert_allclose(out["invstd"], 1 / np.sqrt(xc.var(axis=1)), rtol=1e-6)
    np.testing.assert_allclose(rolling[1], 0.01 * xc.var(axis=1, ddof=1), rtol=1e-6)
    # and the normalised output is exact to float32 rounding of (x - mean) * invstd
    expected = (x.astype(np.float64) - per_channel(xc.mean(axis=1), 4)) / np.sqrt(
        per_channel(xc.var(axis=1), 4))
    np.testing.assert_allclose(out["y"], expected, atol=0.05)  # one float32 ulp of x is 1e-3 / 1e-2 std


def test_nan_propagates(backend):
    x = np.ones((2, 2, 3), np.float32)
    x[0, 1, 1] = np.nan
    out = exact_forward(backend, x, np.ones(2, np.float32), np.zeros(2, np.float32))
    assert np.isfinite(out["y"][:, 0]).all() and np.isnan(out["y"][:, 1]).all()


# ---- PyTorch, when installed -------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_matches_pytorch(dtype, training, rng):
    torch = pytest.importorskip("torch")
    shape = (4, 5, 6, 7)
    x, gamma, beta = random_layer(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    rolling = (rng.standard_normal(5).astype(dtype), rng.uniform(0.5, 2, 5).astype(dtype))
    t = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    t_rolling = [torch.tensor(a) for a in rolling]
    y = torch.nn.functional.batch_norm(t[0], *t_rolling, t[1], t[2], training=training,
                                       momentum=0.01, eps=1e-5)
    y.backward(torch.tensor(dy))
    ours_rolling = (rolling[0].copy(), rolling[1].copy())
    out = exact_forward(native, x, gamma, beta, training, ours_rolling)
    grads = exact_backward(native, dy, x, out, gamma, training)
    assert_close(out["y"], y.detach().numpy(), dtype, scale=10)
    for ours, theirs in zip(grads, t):
        assert_close(ours, theirs.grad.numpy(), dtype, scale=50)
    for ours, theirs in zip(ours_rolling, t_rolling):
        assert_close(ours, theirs.numpy(), dtype, scale=10)


# ---- bad input ---------------------------------------------------------------------------

def test_bad_batchnorm_arguments_are_rejected(backend):
    x = np.zeros((2, 3, 4), np.float32)
    c = lambda: np.zeros(3, np.float32)  # noqa: E731
    good = dict(x=x, gamma=c(), beta=c(), rolling_mean=c(), rolling_variance=c(),
                y=np.empty_like(x), mean=c(), invstd=c())
    cases = [
        (dict(x=np.zeros(3, np.float32)), ValueError, r"x must have shape \(batch, channels"),
        (dict(x=np.zeros((0, 3, 4), np.float32)), ValueError, "x must not be empty"),
        (dict(x=np.zeros((1, 3, 1), np.float32)), ValueError, "more than one value per channel"),
        (dict(y=np.empty((2, 3, 5), np.float32)), ValueError, r"y must have shape \(2, 3, 4\)"),
        (dict(gamma=np.zeros(4, np.float32)), ValueError, "gamma has 4 elements, expected 3"),
        (dict(beta=np.zeros(3)), TypeError, "beta has dtype float64, expected float32"),
        (dict(x=x.astype(np.int64)), TypeError, "x must have dtype float32 or float64"),
        (dict(x=np.zeros((2, 3, 8), np.float32)[:, :, ::2]), ValueError, "x must be C-contiguous"),
        (dict(eps=0.0), ValueError, "eps must be a finite number in"),
        (dict(momentum=1.5), ValueError, "momentum must be a finite number in"),
    ]
    for change, error, words in cases:
        with pytest.raises(error, match=words):
            backend.batchnorm_forward(**{**good, **change})
    with pytest.raises(ValueError, match=r"dx must have shape"):
        backend.batchnorm_backward(x, x, c(), c(), c(), np.empty((3, 3, 4), np.float32), c(), c())


def test_article_layer_refuses_a_tensor_of_the_wrong_size():
    layer = _article.ArticleBatchNorm(2, 3, 4)
    with pytest.raises(ValueError, match="expected 24 elements, got 23"):
        layer.forward(np.zeros(23, np.float32))
    with pytest.raises(TypeError, match="float32"):
        layer.backward(np.zeros(24))


# ---- BN + ReLU fused (relu=True forward, y_relu= backward), both flavours ------------------

def relu_forward_both(backend, flavour, x, gamma, beta, relu, training=True):
    """(y, saved) of a forward of `flavour` with or without the fused ReLU."""
    c, dtype = x.shape[1], x.dtype
    rolling = (np.zeros(c, dtype), np.ones(c, dtype))
    if flavour == "exact":
        out = buffers(x, dtype)
        backend.batchnorm_forward(x, gamma, beta, *rolling, out["y"], out["mean"], out["invstd"],
                                  training=training, relu=relu)
        return out["y"], out
    y, x_norm, mean, variance = np.empty_like(x), np.empty_like(x), np.empty(c, dtype), np.empty(c, dtype)
    backend.batchnorm_forward_darknet(x, gamma, beta, *rolling, y, x_norm, mean, variance,
                                      training=training, relu=relu)
    return y, dict(x_norm=x_norm, mean=mean, variance=variance)


def relu_backward_both(backend, flavour, dy, x, saved, gamma, y_relu, training=True):
    """(dx, dgamma, dbeta) of a backward of `flavour`, dy masked by y_relu's sign when given."""
    if flavour == "exact":
        dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
        backend.batchnorm_backward(dy, x, saved["mean"], saved["invstd"], gamma, dx, dgamma,
                                   dbeta, training=training, y_relu=y_relu)
        return dx, dgamma, dbeta
    dx, dgamma, dbeta = dy.copy(), np.zeros_like(gamma), np.zeros_like(gamma)
    backend.batchnorm_backward_darknet(dx, x, saved["x_norm"], saved["mean"], saved["variance"],
                                       gamma, dgamma, dbeta, y_relu=y_relu)
    return dx, dgamma, dbeta


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("flavour", ["exact", "darknet"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(4, 17, 9, 11)], ids=str)
def test_bn_relu_fused_equals_bn_then_relu(shape, dtype, flavour, training, backend, rng):
    """The fused forward stores max(BN(x), 0) and the fused backward equals BN's backward of dy
    masked by the ReLU's backward: bit for bit, as the same sums in the same order."""
    if flavour == "darknet" and not training:
        training = True  # the darknet flavour differentiates training mode only
    x, gamma, beta = random_layer(rng, shape, dtype, offset=0.0)
    dy = rng.standard_normal(shape).astype(dtype)
    y, saved = relu_forward_both(backend, flavour, x, gamma, beta, True, training)
    plain, plain_saved = relu_forward_both(backend, flavour, x, gamma, beta, False, training)
    relu_y = backend.relu_forward(plain, np.empty_like(plain))
    np.testing.assert_array_equal(y, relu_y)
    assert 0 < (y > 0).mean() < 1  # the mask matters
    fused = relu_backward_both(backend, flavour, dy, x, saved, gamma, y, training)
    masked = backend.relu_backward(dy, relu_y, np.empty_like(dy))
    unfused = relu_backward_both(backend, flavour, masked, x, plain_saved, gamma, None, training)
    for ours, theirs in zip(fused, unfused):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("flavour", ["exact", "darknet"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bn_relu_native_matches_numpy(flavour, dtype, rng):
    shape = (3, 5, 7, 6)
    x, gamma, beta = random_layer(rng, shape, dtype, offset=0.0)
    dy = rng.standard_normal(shape).astype(dtype)
    results = []
    for backend in (native, reference):
        y, saved = relu_forward_both(backend, flavour, x, gamma, beta, True)
        results.append((y, *relu_backward_both(backend, flavour, dy, x, saved, gamma, y)))
    for ours, theirs in zip(*results):
        assert_close(ours, theirs, dtype, scale=20)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (4, 2, 1, 1), (1, 2, 5)], ids=str)
def test_bn_relu_backward_is_the_gradient(shape, training, backend, rng):
    """The exact flavour's fused BN + ReLU against central differences of sum(w * relu(BN(x)))."""
    x, gamma, beta = random_layer(rng, shape, np.float64, offset=0.0)
    weights = rng.standard_normal(shape)

    def loss():
        return float((weights * relu_forward_both(backend, "exact", x, gamma, beta, True,
                                                  training)[0]).sum())

    y, saved = relu_forward_both(backend, "exact", x, gamma, beta, True, training)
    assert (np.abs(y[y > 0]) > 1e-4).all()  # no kink within the differences' step
    grads = relu_backward_both(backend, "exact", weights, x, saved, gamma, y, training)
    for ours, wrt in zip(grads, (x, gamma, beta)):
        np.testing.assert_allclose(ours, finite_difference(loss, wrt), rtol=1e-6, atol=1e-8)


def test_bn_relu_keeps_nan_and_checks_y_relu(backend):
    x = np.ones((2, 2, 3), np.float32)
    x[0, 1, 1] = np.nan
    y, saved = relu_forward_both(backend, "exact", x, np.ones(2, np.float32),
                                 np.full(2, -1, np.float32), True)
    assert (y[:, 0] == 0).all() and np.isnan(y[:, 1]).all()
    gamma = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"y_relu must have shape \(2, 2, 3\)"):
        relu_backward_both(backend, "exact", x, x, saved, gamma, np.empty((2, 2, 4), np.float32))
    with pytest.raises(TypeError, match="y_relu has dtype float64"):
        relu_backward_both(backend, "darknet", x, x, dict(x_norm=x, mean=gamma, variance=gamma),
                           gamma, np.empty((2, 2, 3)))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_bn_writes_and_reads_channel_slices(dtype, training, backend, rng):
    """The exact flavour reads x and writes y in channel slices of larger tensors, and backward
    reads x and dy (with y_relu laid out as dy) and writes dx (laid out as x) in slices (an
    Inception branch's channels of the concatenation, a stacked 1x1 convolution's channels of
    its output): the same bits as contiguous arrays, the rest of the tensors untouched; arrays
    that should be laid out alike and are not, or neither contiguous nor a channel slice, are
    refused."""
    shape = (3, 4, 5, 6)
    x, gamma, beta = random_layer(rng, shape, dtype, offset=0.0)
    dy = rng.standard_normal(shape).astype(dtype)
    y, saved = relu_forward_both(backend, "exact", x, gamma, beta, True, training)
    grads = relu_backward_both(backend, "exact", dy, x, saved, gamma, y, training)
    block, dy_block = np.full((3, 9, 5, 6), 7, dtype), np.full((3, 9, 5, 6), np.nan, dtype)
    x_block, dx_block = np.full((3, 7, 5, 6), np.nan, dtype), np.full((3, 7, 5, 6), 7, dtype)
    dy_block[:, 2:6], x_block[:, 1:5] = dy, x
    for x_in, dx_out in ((x, np.empty_like(x)), (x_block[:, 1:5], dx_block[:, 1:5])):
        stats = [np.empty(4, dtype) for _ in range(2)]
        backend.batchnorm_forward(x_in, gamma, beta, np.zeros(4, dtype), np.ones(4, dtype),
                                  block[:, 2:6], *stats, training=training, relu=True)
        np.testing.assert_array_equal(block[:, 2:6], y)
        assert (block[:, :2] == 7).all() and (block[:, 6:] == 7).all()
        dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
        backend.batchnorm_backward(dy_block[:, 2:6], x_in, *stats, gamma, dx_out, dgamma, dbeta,
                                   training, y_relu=block[:, 2:6])
        for ours, theirs in zip((dx_out, dgamma, dbeta), grads):
            np.testing.assert_array_equal(ours, theirs)
    assert (dx_block[:, :1] == 7).all() and (dx_block[:, 5:] == 7).all()
    with pytest.raises(ValueError, match="y_relu and dy must be laid out alike"):
        backend.batchnorm_backward(dy_block[:, 2:6], x, *stats, gamma, np.empty_like(x), dgamma,
                                   dbeta, y_relu=y)
    with pytest.raises(ValueError, match="dx and x must be laid out alike"):
        backend.batchnorm_backward(dy, x, *stats, gamma, dx_out, dgamma, dbeta)
    for name, bad in (("y", "out"), ("x", "in")):
        strided = np.empty((3, 4, 5, 12), dtype)[..., ::2]
        strided[...] = x
        with pytest.raises(ValueError, match=f"{name} must be C-contiguous or a channel slice"):
            backend.batchnorm_forward(strided if bad == "in" else x, gamma, beta,
                                      np.zeros(4, dtype), np.ones(4, dtype),
                                      strided if bad == "out" else np.empty_like(x), *stats)
