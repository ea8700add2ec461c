"""The CS231N API against the assignments' formulas (written here from the math and the article's
CS231N code) and against numerical gradients computed as the assignments compute them."""
import numpy as np
import pytest

from inception_native import cs231n


def rel_error(x, y):
    """The assignments' relative error."""
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def numerical_gradient(f, x, df, h=1e-5):
    """gradient_check.eval_numerical_gradient_array: central differences of f(x) . df."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        i = it.multi_index
        keep = x[i]
        x[i] = keep + h
        plus = f(x).copy()
        x[i] = keep - h
        minus = f(x).copy()
        x[i] = keep
        grad[i] = np.sum((plus - minus) * df) / (2 * h)
        it.iternext()
    return grad


@pytest.fixture
def rng():
    return np.random.default_rng(231)


# ---- affine, relu ------------------------------------------------------------------------

def test_affine_matches_the_formula_and_numerical_gradients(rng):
    x, w, b = rng.standard_normal((10, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    out, cache = cs231n.affine_forward(x, w, b)
    assert rel_error(out, x.reshape(10, 6) @ w + b) < 1e-12
    dx, dw, db = cs231n.affine_backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, numerical_gradient(lambda v: cs231n.affine_forward(v, w, b)[0], x, dout)) < 1e-8
    assert rel_error(dw, numerical_gradient(lambda v: cs231n.affine_forward(x, v, b)[0], w, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda v: cs231n.affine_forward(x, w, v)[0], b, dout)) < 1e-8


def test_relu(rng):
    x, dout = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    out, cache = cs231n.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(cs231n.relu_backward(dout, cache), dout * (x > 0))


# ---- batch normalisation: the article's CS231N code is the reference ---------------------

def article_batchnorm_forward(x, gamma, beta, bn_param):
    mode, eps, momentum = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1]))
    running_var = bn_param.get("running_var", np.zeros(x.shape[1]))
    if mode == "train":
        sample_mean, sample_var = np.mean(x, axis=0), np.var(x, axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        cache = (x, gamma, x_hat, sample_mean, sample_var, eps)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    else:
        x_hat, cache = (x - running_mean) / np.sqrt(running_var + eps), None
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return gamma * x_hat + beta, cache


def article_batchnorm_backward(dout, cache):
    x, gamma, x_hat, sample_mean, sample_var, eps = cache
    n = x.shape[0]
    dgamma, dbeta = np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)
    dx_hat = dout * gamma
    dsigma = -0.5 * np.sum(dx_hat * (x - sample_mean), axis=0) * np.power(sample_var + eps, -1.5)
    dmu = -np.sum(dx_hat / np.sqrt(sample_var + eps), axis=0) - 2 * dsigma * np.sum(x - sample_mean, axis=0) / n
    dx = dx_hat / np.sqrt(sample_var + eps) + 2.0 * dsigma * (x - sample_mean) / n + dmu / n
    return dx, dgamma, dbeta


def test_batchnorm_matches_the_article_over_training_then_test(rng):
    n, d = 200, 3
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    ours, theirs = {"mode": "train"}, {"mode": "train"}
    for _ in range(50):  # the notebook's loop: one dict reused, then flipped to test
        x = 2 * rng.standard_normal((n, d)) + 5
        out, _ = cs231n.batchnorm_forward(x, gamma, beta, ours)
        expected, _ = article_batchnorm_forward(x, gamma, beta, theirs)
        assert rel_error(out, expected) < 1e-8
    assert rel_error(ours["running_mean"], theirs["running_mean"]) < 1e-12
    assert rel_error(ours["running_var"], theirs["running_var"]) < 1e-12
    ours["mode"] = theirs["mode"] = "test"
    x = 2 * rng.standard_normal((n, d)) + 5
    assert rel_error(cs231n.batchnorm_forward(x, gamma, beta, ours)[0],
                     article_batchnorm_forward(x, gamma, beta, theirs)[0]) < 1e-12


def test_batchnorm_backward_matches_the_article_and_numerical_gradients(rng):
    n, d = 4, 5  # the 2019+ notebook's gradient check
    x = 5 * rng.standard_normal((n, d)) + 12
    gamma, beta, dout = rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal((n, d))
    bn_param = {"mode": "train"}
    _, cache = cs231n.batchnorm_forward(x, gamma, beta, bn_param)
    _, article_cache = article_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads = cs231n.batchnorm_backward(dout, cache)
    for ours, theirs in zip(grads, article_batchnorm_backward(dout, article_cache)):
        assert rel_error(ours, theirs) < 1e-8
    for ours, alt in zip(grads, cs231n.batchnorm_backward_alt(dout, cache)):
        np.testing.assert_array_equal(ours, alt)
    f = lambda a, g, b: cs231n.batchnorm_forward(a, g, b, {"mode": "train"})[0]  # noqa: E731
    assert rel_error(grads[0], numerical_gradient(lambda v: f(v, gamma, beta), x, dout)) < 1e-8
    assert rel_error(grads[1], numerical_gradient(lambda v: f(x, v, beta), gamma, dout)) < 1e-8
    assert rel_error(grads[2], numerical_gradient(lambda v: f(x, gamma, v), beta, dout)) < 1e-8


def test_spatial_batchnorm_normalises_per_channel(rng):
    x = 4 * rng.standard_normal((2, 3, 4, 5)) + 10
    gamma, beta, dout = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 1.0]), rng.standard_normal(x.shape)
    out, cache = cs231n.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)
    grads = cs231n.spatial_batchnorm_backward(dout, cache)
    # the reference solution's reshape to (N*H*W, C) and the article's vanilla backward
    flat = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, 3)  # noqa: E731
    _, article_cache = article_batchnorm_forward(flat(x), gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = article_batchnorm_backward(flat(dout), article_cache)
    assert rel_error(flat(grads[0]), dx) < 1e-9
    assert rel_error(grads[1], dgamma) < 1e-12 and rel_error(grads[2], dbeta) < 1e-12
    f = lambda v: cs231n.spatial_batchnorm_forward(v, gamma, beta, {"mode": "train"})[0]  # noqa: E731
    assert rel_error(grads[0], numerical_gradient(f, x, dout)) < 1e-6  # h = 1e-5 at |x| ~ 10


def test_bn_param_contract():
    x = np.ones((3, 2))
    with pytest.raises(KeyError):
        cs231n.batchnorm_forward(x, np.ones(2), np.zeros(2), {})
    with pytest.raises(ValueError, match='Invalid forward batchnorm mode "eval"'):
        cs231n.batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "eval"})
    bn_param = {"mode": "test"}  # running statistics default to zeros, variance included
    out, _ = cs231n.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(out, 1 / np.sqrt(1e-5))
    np.testing.assert_array_equal(bn_param["running_var"], [0.0, 0.0])


# ---- dropout -----------------------------------------------------------------------------

def test_dropout_keeps_p_and_is_repeatable(rng):
    x = rng.standard_normal((500, 500)) + 10
    for p in (0.25, 0.4, 0.7):
        out, _ = cs231n.dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
        assert abs((out == 0).mean() - (1 - p)) < 0.01
        assert abs(out.mean() - x.mean()) < 0.05
        np.testing.assert_array_equal(cs231n.dropout_forward(x, {"mode": "test", "p": p})[0], x)
    x, dout = rng.standard_normal((10, 10)) + 10, rng.standard_normal((10, 10))
    param = {"mode": "train", "p": 0.2, "seed": 123}
    _, cache = cs231n.dropout_forward(x, param)
    dx = cs231n.dropout_backward(dout, cache)
    numeric = numerical_gradient(lambda v: cs231n.dropout_forward(v, param)[0], x, dout)
    assert rel_error(dx, numeric) < 1e-9


# ---- convolution and pooling: nested loops are the reference ------------------------------

def direct_conv(x, w, b, stride, pad):
    n, c, height, width = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = 1 + (height + 2 * pad - hh) // stride, 1 + (width + 2 * pad - ww) // stride
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


@pytest.mark.parametrize("forward, backward", [
    (cs231n.conv_forward_naive, cs231n.conv_backward_naive),
    (cs231n.conv_forward_fast, cs231n.conv_backward_fast)], ids=["naive", "fast"])
def test_conv(forward, backward, rng):
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv_param = {"stride": 2, "pad": 1}
    out, cache = forward(x, w, b, conv_param)
    assert rel_error(out, direct_conv(x, w, b, 2, 1)) < 1e-10
    assert cache[:4][0] is not None and len(cache) >= 4
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: forward(v, w, b, conv_param)[0], x, dout)) < 1e-8
    assert rel_error(dw, numerical_gradient(lambda v: forward(x, v, b, conv_param)[0], w, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda v: forward(x, w, v, conv_param)[0], b, dout)) < 1e-8


@pytest.mark.parametrize("forward, backward", [
    (cs231n.max_pool_forward_naive, cs231n.max_pool_backward_naive),
    (cs231n.max_pool_forward_fast, cs231n.max_pool_backward_fast)], ids=["naive", "fast"])
def test_max_pool(forward, backward, rng):
    x = rng.standard_normal((2, 3, 4, 6))
    pool_param = {"pool_height": 2, "pool_width": 3, "stride": 1}
    out, cache = forward(x, pool_param)
    expected = np.array([[[[x[n, c, i:i + 2, j:j + 3].max() for j in range(4)] for i in range(3)]
                          for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    numeric = numerical_gradient(lambda v: forward(v, pool_param)[0], x, dout)
    assert rel_error(backward(dout, cache), numeric) < 1e-10


# ---- losses ------------------------------------------------------------------------------

def test_softmax_and_svm_losses(rng):
    x, y = 0.001 * rng.standard_normal((50, 10)), rng.integers(10, size=50)
    loss, dx = cs231n.softmax_loss(x, y)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert abs(loss - -log_probs[np.arange(50), y].mean()) < 1e-12
    assert abs(loss - np.log(10)) < 0.01  # near-uniform scores: the notebook's sanity check
    assert rel_error(dx, numerical_gradient(lambda v: np.array(cs231n.softmax_loss(v, y)[0]), x, 1.0)) < 1e-7
    loss, dx = cs231n.svm_loss(x, y)
    assert abs(loss - 9) < 0.05  # margins of about 1 for the 9 wrong classes
    assert rel_error(dx, numerical_gradient(lambda v: np.array(cs231n.svm_loss(v, y)[0]), x, 1.0)) < 1e-7
