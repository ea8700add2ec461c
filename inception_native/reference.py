"""NumPy twins of every native kernel: same names, same signatures, same in-place results.

Written as the math reads, for checking the native kernels and for timing against them. They
validate their arguments with the same checks as the native wrappers, so both backends accept
and reject exactly the same calls. Sums are taken in float64, as the native kernels take them.
"""
import numpy as np

from . import _checks as check

# Darknet's epsilons are float literals (.000001f, .00001f): the same values here
NORMALIZE_EPS = np.float32(1e-6)
DELTA_EPS = np.float32(1e-5)


def _planes(a, batch, channels, spatial):
    """View of a C-contiguous array as (batch, channels, spatial); writes go through."""
    return a.reshape(batch, channels, spatial)


def _per_channel(v):
    return v.reshape(1, -1, 1)


def _channel_sum(a):
    return a.sum(axis=(0, 2), dtype=np.float64)


def _strided(a, n, inc):
    return a.reshape(-1)[: (n - 1) * inc + 1 : inc] if n else a.reshape(-1)[:0]


# ---- Darknet's blas routines -------------------------------------------------------------

def mean_cpu(x, batch, filters, spatial, mean):
    _, b, f, s = check.mean_cpu(x, batch, filters, spatial, mean)
    mean[...] = _channel_sum(_planes(x, b, f, s)) / (b * s)


def variance_cpu(x, mean, batch, filters, spatial, variance):
    _, b, f, s = check.variance_cpu(x, mean, batch, filters, spatial, variance)
    deviation = _planes(x, b, f, s) - _per_channel(mean)
    variance[...] = _channel_sum(deviation.astype(np.float64) ** 2) / (b * s - 1)


def normalize_cpu(x, mean, variance, batch, filters, spatial):
    _, b, f, s = check.normalize_cpu(x, mean, variance, batch, filters, spatial)
    x3 = _planes(x, b, f, s)
    x3[...] = (x3 - _per_channel(mean)) / (np.sqrt(_per_channel(variance)) + NORMALIZE_EPS)


def axpy_cpu(N, ALPHA, X, INCX, Y, INCY):
    _, n, alpha, incx, incy = check.axpy_cpu(N, ALPHA, X, INCX, Y, INCY)
    _strided(Y, n, incy)[...] += Y.dtype.type(alpha) * _strided(X, n, incx)


def scal_cpu(N, ALPHA, X, INCX):
    _, n, alpha, incx = check.scal_cpu(N, ALPHA, X, INCX)
    _strided(X, n, incx)[...] *= X.dtype.type(alpha)


def copy_cpu(N, X, INCX, Y, INCY):
    _, n, incx, incy = check.copy_cpu(N, X, INCX, Y, INCY)
    _strided(Y, n, incy)[...] = _strided(X, n, incx)


def fill_cpu(N, ALPHA, X, INCX):
    _, n, alpha, incx = check.fill_cpu(N, ALPHA, X, INCX)
    _strided(X, n, incx)[...] = alpha


def scale_bias(output, scales, batch, n, size):
    _, b, c, s = check.scale_bias(output, scales, batch, n, size)
    _planes(output, b, c, s)[...] *= _per_channel(scales)


def add_bias(output, biases, batch, n, size):
    _, b, c, s = check.add_bias(output, biases, batch, n, size)
    _planes(output, b, c, s)[...] += _per_channel(biases)


def backward_bias(bias_updates, delta, batch, n, size):
    _, b, c, s = check.backward_bias(bias_updates, delta, batch, n, size)
    bias_updates += _channel_sum(_planes(delta, b, c, s)).astype(bias_updates.dtype)


def backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates):
    _, b, c, s = check.backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates)
    product = _planes(delta, b, c, s).astype(np.float64) * _planes(x_norm, b, c, s)
    scale_updates += _channel_sum(product).astype(scale_updates.dtype)


def mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta):
    _, b, f, s = check.mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta)
    mean_delta[...] = _channel_sum(_planes(delta, b, f, s)) * (-1 / np.sqrt(variance + DELTA_EPS))


def variance_delta_cpu(x, delta, mean, variance, batch, filters, spatial, variance_delta):
    _, b, f, s = check.variance_delta_cpu(x, delta, mean, variance, batch, filters, spatial,
                                          variance_delta)
    deviation = _planes(x, b, f, s) - _per_channel(mean)
    product = _planes(delta, b, f, s).astype(np.float64) * deviation
    variance_delta[...] = _channel_sum(product) * -0.5 * (variance + DELTA_EPS) ** -1.5


def normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch, filters, spatial,
                        delta):
    _, b, f, s = check.normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch,
                                           filters, spatial, delta)
    m = b * s
    d3, deviation = _planes(delta, b, f, s), _planes(x, b, f, s) - _per_channel(mean)
    d3[...] = (d3 / np.sqrt(_per_channel(variance) + DELTA_EPS)
               + _per_channel(variance_delta) * 2 * deviation / m
               + _per_channel(mean_delta) / m)


# ---- the BatchNorm layer -----------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd,
                      training=True, eps=1e-5, momentum=0.01):
    _, B, C, S, eps, momentum = check.batchnorm_forward(
        x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd, bool(training), eps,
        momentum)
    x3 = _planes(x, B, C, S).astype(np.float64)
    if training:
        m = B * S
        batch_mean = x3.mean(axis=(0, 2))
        batch_var = x3.var(axis=(0, 2))  # biased: the normalisation's variance
        mean[...] = batch_mean
        invstd[...] = 1 / np.sqrt(batch_var + eps)
        rolling_mean[...] = (1 - momentum) * rolling_mean + momentum * batch_mean
        rolling_variance[...] = (1 - momentum) * rolling_variance + momentum * batch_var * m / (m - 1)
    else:
        mean[...] = rolling_mean
        invstd[...] = 1 / np.sqrt(rolling_variance.astype(np.float64) + eps)
    xhat = (x3 - _per_channel(mean)) * _per_channel(invstd)
    _planes(y, B, C, S)[...] = _per_channel(gamma) * xhat + _per_channel(beta)
    return y


def batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, training=True):
    _, B, C, S = check.batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta)
    dy3 = _planes(dy, B, C, S).astype(np.float64)
    xhat = (_planes(x, B, C, S) - _per_channel(mean)) * _per_channel(invstd.astype(np.float64))
    dbeta[...] = _channel_sum(dy3)
    dgamma[...] = _channel_sum(dy3 * xhat)
    dxhat = dy3 * _per_channel(gamma)
    if training:  # BN paper: dx = invstd / M * (M dxhat - sum dxhat - xhat sum dxhat * xhat)
        m = B * S
        dxhat = (dxhat - _channel_sum(dxhat).reshape(1, -1, 1) / m
                 - xhat * _channel_sum(dxhat * xhat).reshape(1, -1, 1) / m)
    _planes(dx, B, C, S)[...] = dxhat * _per_channel(invstd)
    return dx


def batchnorm_forward_darknet(x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean,
                              variance, training=True):
    _, B, C, S = check.batchnorm_forward_darknet(
        x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean, variance,
        bool(training))
    copy_cpu(x.size, x, 1, y, 1)
    if training:
        mean_cpu(y, B, C, S, mean)
        variance_cpu(y, mean, B, C, S, variance)
        scal_cpu(C, 0.99, rolling_mean, 1)
        axpy_cpu(C, 0.01, mean, 1, rolling_mean, 1)
        scal_cpu(C, 0.99, rolling_variance, 1)
        axpy_cpu(C, 0.01, variance, 1, rolling_variance, 1)
        normalize_cpu(y, mean, variance, B, C, S)
        copy_cpu(x.size, y, 1, x_norm, 1)
    else:
        normalize_cpu(y, rolling_mean, rolling_variance, B, C, S)
    scale_bias(y, scales, B, C, S)
    add_bias(y, biases, B, C, S)
    return y


def batchnorm_backward_darknet(delta, x, x_norm, mean, variance, scales, scale_updates,
                               bias_updates):
    _, B, C, S = check.batchnorm_backward_darknet(
        delta, x, x_norm, mean, variance, scales, scale_updates, bias_updates)
    mean_delta, variance_delta = np.empty_like(mean), np.empty_like(mean)
    backward_bias(bias_updates, delta, B, C, S)
    backward_scale_cpu(x_norm, delta, B, C, S, scale_updates)
    scale_bias(delta, scales, B, C, S)
    mean_delta_cpu(delta, variance, B, C, S, mean_delta)
    variance_delta_cpu(x, delta, mean, variance, B, C, S, variance_delta)
    normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, B, C, S, delta)
    return delta
