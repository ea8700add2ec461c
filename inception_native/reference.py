"""NumPy twins of every native kernel: same names, same signatures, same in-place results.

Written as the math reads, for checking the native kernels and for timing against them. They
validate their arguments with the same checks as the native wrappers, so both backends accept
and reject exactly the same calls. Sums are taken in float64, as the native kernels take them.
"""
import functools

import numpy as np

from . import _checks as check
# The convolution's plan is arithmetic on sizes, shared with the native kernels so that both
# accept the same plans and workspaces (the twin needs neither).
from .conv import checked_packed, checked_plan, conv2d_plan, conv2d_workspace_size  # noqa: F401
# The blocked layout's block is the conv ISA path's (a fact about the native kernels, shared).
from .conv import nchwc_block  # noqa: F401
from .shapes import output_hw

# Darknet's epsilons are float literals (.000001f, .00001f): the same values here
NORMALIZE_EPS = np.float32(1e-6)
DELTA_EPS = np.float32(1e-5)


def _planes(a, batch, channels, spatial):
    """View of a C-contiguous array, or of a channel slice of one, as (batch, channels, spatial);
    writes go through."""
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


def sgd_momentum_cpu(p, grad, velocity, lr, momentum, weight_decay):
    _, _, rate, mom, decay = check.sgd_momentum_cpu(p, grad, velocity, lr, momentum, weight_decay)
    t = p.dtype.type
    velocity *= t(mom)
    velocity += grad
    if decay:
        velocity += t(decay) * p
    p += t(-rate) * velocity


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
                      training=True, eps=1e-5, momentum=0.01, unbiased=True, relu=False):
    _, B, C, S, _, _, eps, momentum = check.batchnorm_forward(
        x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd,
        check.truth("training", training), eps, momentum, check.truth("unbiased", unbiased))
    x3 = _planes(x, B, C, S).astype(np.float64)
    if training:
        m = B * S
        batch_mean = x3.mean(axis=(0, 2))
        batch_var = x3.var(axis=(0, 2))  # biased: the normalisation's variance
        mean[...] = batch_mean
        invstd[...] = 1 / np.sqrt(batch_var + eps)
        rolling_mean[...] = (1 - momentum) * rolling_mean + momentum * batch_mean
        correction = m / (m - 1) if unbiased else 1
        rolling_variance[...] = (1 - momentum) * rolling_variance + momentum * batch_var * correction
    else:
        mean[...] = rolling_mean
        invstd[...] = 1 / np.sqrt(rolling_variance.astype(np.float64) + eps)
    xhat = (x3 - _per_channel(mean)) * _per_channel(invstd)
    t = _per_channel(gamma) * xhat + _per_channel(beta)
    _planes(y, B, C, S)[...] = np.where(t < 0, 0, t) if check.truth("relu", relu) else t
    return y


def _relu_masked(dy, y_relu):
    """dy where y_relu > 0, else 0 (a ReLU's backward, y_relu its output); dy when None."""
    return dy if y_relu is None else np.where(y_relu > 0, dy, 0).astype(dy.dtype)


def batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, training=True, *,
                       y_relu=None):
    training = check.truth("training", training)
    _, B, C, S, _, _ = check.batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, y_relu)
    dy3 = _planes(_relu_masked(dy, y_relu), B, C, S).astype(np.float64)
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
                              variance, training=True, relu=False):
    _, B, C, S = check.batchnorm_forward_darknet(
        x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean, variance,
        check.truth("training", training))
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
    if check.truth("relu", relu):
        y[y < 0] = 0  # NaN kept
    return y


def batchnorm_backward_darknet(delta, x, x_norm, mean, variance, scales, scale_updates,
                               bias_updates, *, y_relu=None):
    _, B, C, S = check.batchnorm_backward_darknet(
        delta, x, x_norm, mean, variance, scales, scale_updates, bias_updates, y_relu)
    delta[...] = _relu_masked(delta, y_relu)
    mean_delta, variance_delta = np.empty_like(mean), np.empty_like(mean)
    backward_bias(bias_updates, delta, B, C, S)
    backward_scale_cpu(x_norm, delta, B, C, S, scale_updates)
    scale_bias(delta, scales, B, C, S)
    mean_delta_cpu(delta, variance, B, C, S, mean_delta)
    variance_delta_cpu(x, delta, mean, variance, B, C, S, variance_delta)
    normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, B, C, S, delta)
    return delta


# ---- convolution lowering and gemm -------------------------------------------------------

def _lower(x, kh, kw, ph, pw, sh, sw):
    """x (B, C, H, W) -> cols (C, kh, kw, B, oh, ow): the col matrix (K, B*ohw) of the B images,
    cols[c, i, j, b, y, x] = x[b, c, y*sh - ph + i, x*sw - pw + j], 0 in the padding."""
    B, C, H, W = x.shape
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((C, kh, kw, B, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw].transpose(1, 0, 2, 3)
    return cols


def _raise(cols, shape, kh, kw, ph, pw, sh, sw):
    """The adjoint of _lower: (B, C, H, W) where each pixel sums the cols entries lowered from it."""
    B, C, H, W = shape
    oh, ow = cols.shape[-2:]
    xp = np.zeros((B, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, i, j].transpose(1, 0, 2, 3)
    return xp[:, :, ph:ph + H, pw:pw + W]


def im2col_ext(data_im, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_col):
    _, C, H, W, kh, kw, ph, pw, sh, sw = check.im2col_ext(
        data_im, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w,
        data_col)
    data_col.reshape(-1)[...] = _lower(data_im.reshape(1, C, H, W), kh, kw, ph, pw, sh, sw).ravel()


def col2im_ext(data_col, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_im):
    _, C, H, W, kh, kw, ph, pw, sh, sw = check.col2im_ext(
        data_col, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w,
        data_im)
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw)
    cols = data_col.reshape(C, kh, kw, 1, oh, ow)
    data_im.reshape(1, C, H, W)[...] += _raise(cols, (1, C, H, W), kh, kw, ph, pw, sh, sw)


def im2col_cpu(data_im, channels, height, width, ksize, stride, pad, data_col):
    check.im2col_cpu(data_im, channels, height, width, ksize, stride, pad, data_col)
    im2col_ext(data_im, channels, height, width, ksize, ksize, pad, pad, stride, stride, data_col)


def col2im_cpu(data_col, channels, height, width, ksize, stride, pad, data_im):
    check.col2im_cpu(data_col, channels, height, width, ksize, stride, pad, data_im)
    col2im_ext(data_col, channels, height, width, ksize, ksize, pad, pad, stride, stride, data_im)


def _matrix(a, rows, cols, ld):
    """rows x cols view of a flat C-contiguous array with row stride ld; writes go through."""
    return np.lib.stride_tricks.as_strided(a.reshape(-1), (rows, cols),
                                           (ld * a.itemsize, a.itemsize))


def gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    _, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc = check.gemm(TA, TB, M, N, K, ALPHA, A, lda,
                                                                B, ldb, BETA, C, ldc)
    a = _matrix(A, *((k, m) if ta else (m, k)), lda)
    b = _matrix(B, *((n, k) if tb else (k, n)), ldb)
    c = _matrix(C, m, n, ldc)
    product = (a.T if ta else a) @ (b.T if tb else b)
    real = C.dtype.type
    c[...] = real(alpha) * product + (real(beta) * c if beta != 0 else 0)


gemm_cpu = gemm  # native has both (BLAS and Darknet's triple loop); NumPy has one matmul


# ---- convolution and linear layers ---------------------------------------------------------

def conv2d_forward(x, weight, bias, y, stride=1, padding=0, workspace=None, *, plan=None,
                   scale=None, shift=None, relu=False, accumulate=False, packed=None):
    plan = checked_plan(plan, x, weight, stride, padding)
    check.conv2d_forward(x, weight, bias, y, plan.output_shape, workspace, plan.workspace, scale,
                         shift)
    checked_packed(plan, weight, packed, y, workspace)  # checked as the kernels check it; weight is what counts
    relu, accumulate = check.truth("relu", relu), check.truth("accumulate", accumulate)
    B, C, H, W, OC, kh, kw, sh, sw, ph, pw = plan.sizes
    cols = _lower(x, kh, kw, ph, pw, sh, sw)
    out = weight.reshape(OC, -1) @ cols.reshape(C * kh * kw, -1)  # (OC, B*ohw): one GEMM
    t = out.reshape(OC, B, *y.shape[2:]).transpose(1, 0, 2, 3)
    if scale is not None:
        t = t * scale.reshape(1, -1, 1, 1)
    for add in (bias, shift):
        if add is not None:
            t = t + add.reshape(1, -1, 1, 1)
    if accumulate:
        t = t + y
    if relu:
        t = np.where(t < 0, 0, t)
    y[...] = t
    return y


def conv2d_backward(dy, x, weight, dx, dweight, dbias, stride=1, padding=0, workspace=None, *,
                    plan=None, y_relu=None, accumulate=False):
    plan = checked_plan(plan, x, weight, stride, padding)
    accumulate = check.truth("accumulate", accumulate)
    check.conv2d_backward(dy, x, weight, dx, dweight, dbias, plan.output_shape, workspace,
                          plan.workspace, y_relu, accumulate)
    B, C, H, W, OC, kh, kw, sh, sw, ph, pw = plan.sizes
    dy = _relu_masked(dy, y_relu)
    cols = _lower(x, kh, kw, ph, pw, sh, sw)
    dY = dy.transpose(1, 0, 2, 3).reshape(OC, -1)  # (OC, B*ohw)
    dweight.reshape(OC, -1)[...] = dY @ cols.reshape(C * kh * kw, -1).T
    if dbias is not None:
        dbias[...] = dy.sum(axis=(0, 2, 3), dtype=np.float64)
    if dx is not None:
        dcols = (weight.reshape(OC, -1).T @ dY).reshape(cols.shape)
        dx[...] = _raise(dcols, x.shape, kh, kw, ph, pw, sh, sw) + (dx if accumulate else 0)
    return dx



# ---- the blocked layout (NCHWc): (B, C // blk, H, W, blk), channel c = block c // blk, lane
# c % blk ----

def _blocked(x, blk):
    """(B, C, H, W) -> (B, C // blk, H, W, blk), a new C-contiguous array."""
    B, C, H, W = x.shape
    return np.ascontiguousarray(x.reshape(B, C // blk, blk, H, W).transpose(0, 1, 3, 4, 2))


def _unblocked(x):
    """(B, Cb, H, W, blk) -> (B, Cb*blk, H, W), a new C-contiguous array."""
    B, Cb, H, W, blk = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(B, Cb * blk, H, W))


def nchwc_pack_weights(w, blk, plain_input=False):
    """w (OC, C, kh, kw) -> wp (ceil(OC/blk), C//blk, kh, kw, blk_in, blk_out) with
    wp[ob, cb, i, j, ci, co] = w[ob*blk + co, cb*blk + ci, i, j], or, plain_input,
    (ceil(OC/blk), C, kh, kw, blk_out) with wp[ob, c, i, j, co] = w[ob*blk + co, c, i, j];
    0 for output channels past OC."""
    OC, C, kh, kw, blk, plain = check.nchwc_pack_weights(w, blk, plain_input)
    OCb = -(-OC // blk)
    padded = np.zeros((OCb * blk, C, kh, kw), np.float32)
    padded[:OC] = w
    if plain:
        return np.ascontiguousarray(padded.reshape(OCb, blk, C, kh, kw).transpose(0, 2, 3, 4, 1))
    return np.ascontiguousarray(
        padded.reshape(OCb, blk, C // blk, blk, kh, kw).transpose(0, 2, 4, 5, 3, 1))


def _unpacked_weights(wp):
    """nchwc_pack_weights's inverse: wp -> w (OCb*blk, C, kh, kw)."""
    if wp.ndim == 5:
        OCb, C, kh, kw, blk = wp.shape
        return np.ascontiguousarray(wp.transpose(0, 4, 1, 2, 3).reshape(OCb * blk, C, kh, kw))
    OCb, Cb, kh, kw, blk, _ = wp.shape
    return np.ascontiguousarray(wp.transpose(0, 5, 1, 4, 2, 3).reshape(OCb * blk, Cb * blk, kh, kw))


def conv2d_forward_nchwc(x, wp, bias, y, stride, padding, relu=False):
    """y = relu?(conv2d(x, w) + bias) in the blocked layout: x blocked (B, C//blk, H, W, blk), or
    plain (B, C, H, W) when wp was packed with plain_input; wp = nchwc_pack_weights(w, blk);
    y (B, OC//blk, oh, ow, blk); returns y. The plain convolution on unblocked copies."""
    sizes, plain, _, _, relu = check.conv2d_forward_nchwc(x, wp, bias, y, stride, padding, relu,
                                                         nchwc_block())
    B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow = sizes
    xp = np.ascontiguousarray(x) if plain else _unblocked(x)
    t = np.empty((B, OC, oh, ow), np.float32)
    conv2d_forward(xp, _unpacked_weights(wp), bias, t, (sh, sw), (ph, pw), relu=relu)
    y[...] = _blocked(t, y.shape[4])
    return y

def linear_forward(x, weight, bias, y):
    check.linear_forward(x, weight, bias, y)
    y[...] = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(dy, x, weight, dx, dweight, dbias):
    check.linear_backward(dy, x, weight, dx, dweight, dbias)
    if dx is not None:
        dx[...] = dy @ weight
    dweight[...] = dy.T @ x
    if dbias is not None:
        dbias[...] = dy.sum(axis=0, dtype=np.float64)
    return dx


def fold_batchnorm(weight, bias, gamma, beta, mean, var, eps=1e-5):
    """Fold an inference BatchNorm into the convolution (or linear layer) before it:
        bn(conv(x, w) + b) = conv(x, w * a) + (b - mean) * a + beta,  a = gamma / sqrt(var + eps)
    weight (OC, ...), bias (OC,) or None (no bias: 0); returns the new (weight, bias), in the
    dtype of weight, computed in float64."""
    if not isinstance(weight, np.ndarray) or weight.ndim < 2:
        raise ValueError("weight must be an ndarray of shape (out_channels, ...)")
    OC = weight.shape[0]
    params = {"gamma": gamma, "beta": beta, "mean": mean, "var": var}
    if bias is not None:
        params["bias"] = bias
    for name, v in params.items():
        if not isinstance(v, np.ndarray) or v.shape != (OC,):
            raise ValueError(f"{name} must be an ndarray of shape ({OC},)")
    eps = check.number("eps", eps, 0.0, low_open=True)
    a = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    b = np.zeros(OC) if bias is None else bias.astype(np.float64)
    new_weight = weight * a.reshape((OC,) + (1,) * (weight.ndim - 1))
    new_bias = (b - mean) * a + beta
    return new_weight.astype(weight.dtype), new_bias.astype(weight.dtype)


# ---- pooling -------------------------------------------------------------------------------

def _windows(x, kh, kw, sh, sw, ph, pw, oh, ow, fill):
    """Yield (plane index, value) of each kernel offset (i, j), row-major, for every output
    position, and whether that offset lies inside the image (padding is `fill`)."""
    B, C, H, W = x.shape
    bottom = max(0, (oh - 1) * sh + kh - H - ph)  # ceil mode can reach past the padding
    right = max(0, (ow - 1) * sw + kw - W - pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, bottom), (pw, right)), constant_values=fill)
    rows = np.arange(oh)[:, None] * sh - ph
    columns = np.arange(ow)[None, :] * sw - pw
    for i in range(kh):
        for j in range(kw):
            iy, ix = rows + i, columns + j
            inside = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
            yield iy * W + ix, inside, xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]


def _window_counts(n, k, s, p, out, include_pad):
    """Per output index along one axis: the divisor's factor (see the pool module's note)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if include_pad:
        return end - start
    return np.minimum(end, n) - np.maximum(start, 0)


def _avg_divisor(s, include_pad):
    """(oh, ow) divisors of average pooling with sizes s = check.pool_sizes(...)."""
    _, _, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
    return np.outer(_window_counts(H, kh, sh, ph, oh, include_pad),
                    _window_counts(W, kw, sw, pw, ow, include_pad))


def max_pool2d_forward(x, y, argmax, kernel, stride=None, padding=0, ceil_mode=False):
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    _, s = check.max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode)
    B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
    best = np.full(y.shape, -np.inf, x.dtype)
    index = np.full(y.shape, -1, np.int64)
    for plane_index, inside, v in _windows(x, kh, kw, sh, sw, ph, pw, oh, ow, -np.inf):
        take = inside & ((index < 0) | (v > best) | (np.isnan(v) & ~np.isnan(best)))
        best = np.where(take, v, best)
        index = np.where(take, plane_index, index)
    y[...] = best
    if check.taps(argmax):
        iy, ix = np.divmod(index, W)
        corner_y, corner_x = _window_corners(sh, sw, ph, pw, oh, ow)
        argmax[...] = (iy - corner_y) * kw + ix - corner_x
    elif argmax is not None:
        argmax[...] = index
    return y


def _window_corners(sh, sw, ph, pw, oh, ow):
    """The row and column of each window's first tap, (oh, 1) and (1, ow)."""
    return np.arange(oh)[:, None] * sh - ph, np.arange(ow)[None, :] * sw - pw


def _tap_index(argmax, s):
    """The plane index iy*W + ix of each uint8 tap i*kw + j of argmax, -1 where it names no
    pixel of the map."""
    _, _, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
    corner_y, corner_x = _window_corners(sh, sw, ph, pw, oh, ow)
    i, j = np.divmod(argmax.astype(np.int64), kw)
    iy, ix = corner_y + i, corner_x + j
    inside = (i < kh) & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    return np.where(inside, iy * W + ix, -1)


def max_pool2d_backward(dy, argmax, dx, *, x=None, y=None, kernel=None, stride=None, padding=0,
                        ceil_mode=False):
    if check.taps(argmax):
        if x is not None or y is not None:
            raise TypeError("max_pool2d_backward takes a uint8 argmax and the window, not x and y")
        ceil_mode = check.truth("ceil_mode", ceil_mode)
        _, s = check.max_pool2d_backward_taps(dy, argmax, dx, kernel, stride, padding, ceil_mode)
        bad = _scatter_max(dy, _tap_index(argmax, s), dx)
        if bad:
            raise ValueError(f"argmax has {bad} taps outside the map: not max_pool2d_forward's")
        return dx
    if argmax is None:
        ceil_mode = check.truth("ceil_mode", ceil_mode)
        _, s = check.max_pool2d_backward_search(dy, dx, x, y, kernel, stride, padding, ceil_mode)
        B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
        index = np.full(y.shape, -1, np.int64)  # each window's first pixel equal to its y
        for plane_index, inside, v in _windows(x, kh, kw, sh, sw, ph, pw, oh, ow, 0):
            equal = (v == y) | (np.isnan(v) & np.isnan(y))
            index = np.where(inside & equal & (index < 0), plane_index, index)
        _scatter_max(dy, index, dx)
        if (index < 0).any():
            raise ValueError(f"y has {(index < 0).sum()} entries that no pixel of their window in "
                             "x equals: not max_pool2d_forward's output for this x and window")
        return dx
    if any(v is not None for v in (x, y, kernel)):
        raise TypeError("max_pool2d_backward takes argmax, or x, y and kernel, not both")
    _, P, HW, ohw = check.max_pool2d_backward(dy, argmax, dx)
    bad = _scatter_max(dy, argmax, dx)
    if bad:
        raise ValueError(f"argmax has {bad} entries outside [0, {HW}): not max_pool2d_forward's")
    return dx


def _scatter_max(dy, index, dx):
    """dx = 0, then dx[index] += dy plane by plane, skipping indices outside the plane; returns
    how many were skipped."""
    P, HW, ohw = dx.shape[0] * dx.shape[1], dx.shape[2] * dx.shape[3], dy.shape[2] * dy.shape[3]
    flat, index = dx.reshape(P, HW), index.reshape(P, ohw)
    flat[...] = 0
    bad = (index < 0) | (index >= HW)
    rows = np.broadcast_to(np.arange(P)[:, None], index.shape)
    np.add.at(flat, (rows[~bad], index[~bad]), dy.reshape(P, ohw)[~bad])
    return int(bad.sum())


def avg_pool2d_forward(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    _, s, cip = check.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode,
                                         count_include_pad)
    B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
    total = np.zeros(y.shape, np.float64)
    for _, _, v in _windows(x, kh, kw, sh, sw, ph, pw, oh, ow, 0):
        total += v
    y[...] = total / _avg_divisor(s, cip)
    return y


def avg_pool2d_backward(dy, dx, kernel, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    _, s, cip = check.avg_pool2d_backward(dy, dx, kernel, stride, padding, ceil_mode,
                                          count_include_pad)
    B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow = s
    g = dy / _avg_divisor(s, cip)
    P = B * C
    flat = np.zeros((P, H * W), np.float64)
    for plane_index, inside, _ in _windows(dx, kh, kw, sh, sw, ph, pw, oh, ow, 0):
        np.add.at(flat, (slice(None), plane_index[inside]), g.reshape(P, oh, ow)[:, inside])
    dx.reshape(P, H * W)[...] = flat
    return dx


def _adaptive_windows(n, m):
    """[start, end) of the m windows along an axis of n: [floor(i n / m), ceil((i + 1) n / m))."""
    return [(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]


def _adaptive_bins(s):
    """Every output bin (i, j) of sizes s = (P, H, W, oh, ow): its window in the image (an index)
    and the window's area."""
    _, H, W, oh, ow = s
    for i, (y0, y1) in enumerate(_adaptive_windows(H, oh)):
        for j, (x0, x1) in enumerate(_adaptive_windows(W, ow)):
            yield (i, j), np.s_[:, :, y0:y1, x0:x1], (y1 - y0) * (x1 - x0)


def adaptive_avg_pool2d_forward(x, y):
    _, s = check.adaptive_avg_pool2d_forward(x, y)
    for (i, j), window, area in _adaptive_bins(s):
        y[:, :, i, j] = x[window].sum(axis=(2, 3), dtype=np.float64) / area
    return y


def adaptive_avg_pool2d_backward(dy, dx):
    _, s = check.adaptive_avg_pool2d_backward(dy, dx)
    total = np.zeros(dx.shape, np.float64)
    for (i, j), window, area in _adaptive_bins(s):
        total[window] += (dy[:, :, i, j] / area)[:, :, None, None]
    dx[...] = total
    return dx


def global_avg_pool_forward(x, y):
    _, P, S = check.global_avg_pool_forward(x, y)
    y.reshape(-1)[...] = x.reshape(P, S).mean(axis=1, dtype=np.float64)
    return y


def global_avg_pool_backward(dy, dx):
    _, P, S = check.global_avg_pool_backward(dy, dx)
    dx.reshape(P, S)[...] = dy.reshape(P, 1) / S
    return dx


# ---- the blocked layout's reorders and pooling -----------------------------------------------

def nchw_to_nchwc(x, y):
    check.nchwc_reorder(x, y, False)
    y[...] = _blocked(x, y.shape[4])
    return y


def nchwc_to_nchw(x, y):
    check.nchwc_reorder(x, y, True)
    y[...] = _unblocked(x)
    return y


def _pool_nchwc(pool, x, y, kernel, stride, padding, ceil_mode):
    """pool(x, y) (an NCHW twin's call) on the plain copy of the blocked x, written into y"""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    check.pool2d_forward_nchwc(x, y, kernel, stride, padding, ceil_mode)
    out = np.empty(_unblocked(y).shape, y.dtype)
    pool(_unblocked(x), out)
    y[...] = _blocked(out, y.shape[4])
    return y


def max_pool2d_forward_nchwc(x, y, kernel, stride=None, padding=0, ceil_mode=False):
    return _pool_nchwc(lambda a, b: max_pool2d_forward(a, b, None, kernel, stride, padding,
                                                       ceil_mode), x, y, kernel, stride, padding,
                       ceil_mode)


def avg_pool2d_forward_nchwc(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                             count_include_pad=True):
    return _pool_nchwc(lambda a, b: avg_pool2d_forward(a, b, kernel, stride, padding, ceil_mode,
                                                       count_include_pad), x, y, kernel, stride,
                       padding, ceil_mode)


def global_avg_pool_forward_nchwc(x, y):
    check.global_avg_pool_forward_nchwc(x, y)
    return global_avg_pool_forward(_unblocked(x), y)


# ---- activations, dropout, concatenation, loss --------------------------------------------

def relu_forward(x, y):
    check.relu_forward(x, y)
    np.maximum(x, 0, out=y)  # NaN stays NaN, as in the native kernel
    return y


def channel_affine_forward(x, scale, shift, y, relu=False):
    check.channel_affine_forward(x, scale, shift, y)
    per_channel = (-1,) + (1,) * (x.ndim - 2)
    product = x * scale.reshape(per_channel) if scale is not None else x
    np.add(product, shift.reshape(per_channel), out=y)
    if relu:
        np.maximum(y, 0, out=y)  # NaN stays NaN, as in the native kernel
    return y


def relu_backward(dy, y, dx):
    check.relu_backward(dy, y, dx)
    dx[...] = np.where(y > 0, dy, 0)
    return dx


def uniform24(seed, n):
    """The native dropout's draws: SplitMix64 of seed + (i + 1) * golden gamma, top 24 bits,
    for i < n (see csrc/activation.c), as uint64."""
    z = np.uint64(seed) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z >> np.uint64(40)


def dropout_forward(x, y, mask, p, seed):
    _, n, p, seed = check.dropout_forward(x, y, mask, p, seed)
    kept = uniform24(seed, n).astype(np.float64) >= p * 2.0 ** 24
    scale = mask.dtype.type(1.0 / (1.0 - p))
    mask.reshape(-1)[...] = np.where(kept, scale, mask.dtype.type(0))
    y[...] = x * mask
    return y


def dropout_backward(dy, mask, dx):
    check.dropout_backward(dy, mask, dx)
    dx[...] = dy * mask
    return dx


def concat_forward(xs, y):
    check.concat_forward(xs, y)
    y[...] = np.concatenate(xs, axis=1)
    return y


def concat_backward(dy, dxs):
    _, _, _, _, channels = check.concat_backward(dy, dxs)
    for dx, part in zip(dxs, np.split(dy, np.cumsum(channels)[:-1], axis=1)):
        dx[...] = part
    return dxs


def softmax_cross_entropy_forward(logits, labels, probs, label_smoothing=0.0):
    _, N, K, e = check.softmax_cross_entropy_forward(logits, labels, probs, label_smoothing)
    z = logits.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    probs[...] = np.exp(z - lse)
    q = np.full((N, K), e / K)
    q[np.arange(N), labels] += 1 - e
    return float(-(q * (z - lse)).sum() / N)


def softmax_cross_entropy_backward(probs, labels, dlogits, label_smoothing=0.0, dloss=1.0):
    _, N, K, e, dloss = check.softmax_cross_entropy_backward(probs, labels, dlogits,
                                                             label_smoothing, dloss)
    q = np.full((N, K), e / K)
    q[np.arange(N), labels] += 1 - e
    dlogits[...] = dloss * (probs.astype(np.float64) - q) / N
    return dlogits


# ---- Darknet's activations and the softmax ----------------------------------------------------

def leaky_relu_forward(x, y, slope=0.1):
    _, _, slope = check.leaky_relu_forward(x, y, slope)
    y[...] = np.where(x > 0, x, slope * x.astype(np.float64))
    return y


def leaky_relu_backward(dy, y, dx, slope=0.1):
    _, _, slope = check.leaky_relu_backward(dy, y, dx, slope)
    dx[...] = np.where(y > 0, dy, slope * dy.astype(np.float64))
    return dx


def logistic_forward(x, y):
    check.logistic_forward(x, y)
    y[...] = 1 / (1 + np.exp(-x.astype(np.float64)))
    return y


def logistic_backward(dy, y, dx):
    check.logistic_backward(dy, y, dx)
    y64 = y.astype(np.float64)
    dx[...] = dy * y64 * (1 - y64)
    return dx


def softmax_forward(x, y):
    check.softmax_forward(x, y)
    z = x.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y[...] = e / e.sum(axis=1, keepdims=True)
    return y


def softmax_backward(dy, y, dx):
    check.softmax_backward(dy, y, dx)
    y64 = y.astype(np.float64)
    dx[...] = y64 * (dy - (dy * y64).sum(axis=1, keepdims=True))
    return dx


# ---- calls checked once, run many times (the frozen plans' steps) -----------------------------

def _call_twin(kernel):
    """kernel's `_call` twin, kernel_call(*args) -> a function of no arguments running
    kernel(*args). The native one checks the arguments once, when it is made; this one checks
    them at every run, as the NumPy twins always do."""
    @functools.wraps(kernel)
    def make(*args, **kwargs):
        return functools.partial(kernel, *args, **kwargs)
    make.__name__ = make.__qualname__ = kernel.__name__ + "_call"
    return make


conv2d_forward_call = _call_twin(conv2d_forward)
max_pool2d_forward_call = _call_twin(max_pool2d_forward)
avg_pool2d_forward_call = _call_twin(avg_pool2d_forward)
global_avg_pool_forward_call = _call_twin(global_avg_pool_forward)
