"""The CS231N layers API (assignment 2's layers.py and fast_layers.py) on the native kernels.

Same names, arguments, return values and cache contract as the assignments, so a notebook that
imports these functions runs unchanged (docs/dropins.md lists the functions and their contract).
Inputs may be float64 (as in the assignments: the kernels then run in float64) or float32;
anything else is computed in float64. Arrays are read, never modified.

Where the editions differ or the contract is silent, this module:
- dropout: `p` is the probability of KEEPING a unit (2019+ editions; 2016/17 called it the drop
  probability); the mask comes from the native generator, seeded by `dropout_param['seed']` when
  given, else by a draw from np.random (so np.random.seed makes it repeatable);
- max pooling: the gradient of a window goes to its first maximum (Darknet's and PyTorch's
  rule; the assignments' naive reference routes it to every tied maximum);
- batchnorm_backward and batchnorm_backward_alt are one fused kernel (the simplified formula the
  "alt" version asks for); the BN cache is our own tuple;
- conv_forward_fast's cache is (x, w, b, conv_param, workspace), max_pool_forward_fast's is
  ('native', (x, pool_param, argmax)); svm_loss is NumPy (no kernel of ours does hinge losses);
- im2col_cython / col2im_cython (their own column layout) and layernorm/groupnorm are not here.
"""
import numpy as np

from . import native
from .shapes import output_hw


def _input(a):
    """A C-contiguous float32/float64 view or copy of a; other dtypes become float64."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, a.dtype if a.dtype in (np.float32, np.float64) else np.float64)


def _param(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


# ---- affine and ReLU -----------------------------------------------------------------------

def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b for x (N, d_1, ..., d_k), w (D, M), b (M,)."""
    x2 = _input(x).reshape(x.shape[0], -1)
    w, b = _param(w, x2.dtype), _param(b, x2.dtype)
    n, d, m = x2.shape[0], x2.shape[1], w.shape[-1]
    if w.shape != (d, m) or b.shape != (m,):
        raise ValueError(f"w must have shape ({d}, M) and b (M,), got {w.shape} and {b.shape}")
    out = np.empty((n, m), x2.dtype)
    native.gemm(0, 0, n, m, d, 1.0, x2, d, w, m, 0.0, out, m)
    native.add_bias(out, b, n, m, 1)
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    x2 = _input(x).reshape(x.shape[0], -1).astype(w.dtype, copy=False)
    dout = _param(dout, w.dtype)
    (n, d), m = x2.shape, w.shape[1]
    dx, dw, db = np.empty_like(x2), np.empty_like(w), np.zeros_like(b)
    native.gemm(0, 1, n, d, m, 1.0, dout, m, w, m, 0.0, dx, d)    # dx = dout w^T
    native.gemm(1, 0, d, m, n, 1.0, x2, d, dout, m, 0.0, dw, m)    # dw = x^T dout
    native.backward_bias(db, dout, n, m, 1)                        # db = sum over the batch
    return dx.reshape(x.shape), dw, db


def relu_forward(x):
    x = _input(x)
    return native.relu_forward(x, np.empty_like(x)), x


def relu_backward(dout, cache):
    x = _input(cache)
    return native.relu_backward(_param(dout, x.dtype), x, np.empty_like(x))  # x > 0 iff relu(x) > 0


# ---- batch normalisation -------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, D); bn_param: 'mode' ('train' or 'test', required), 'eps' (1e-5), 'momentum' (0.9),
    'running_mean' and 'running_var' (zeros), updated as m * running + (1 - m) * batch statistic
    with the biased variance and written back into bn_param."""
    mode = bn_param["mode"]
    if mode not in ("train", "test"):
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    x = _input(x)
    channels = x.shape[1]
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = _param(bn_param.get("running_mean", np.zeros(channels, x.dtype)), x.dtype).copy()
    running_var = _param(bn_param.get("running_var", np.zeros(channels, x.dtype)), x.dtype).copy()
    gamma, beta = _param(gamma, x.dtype), _param(beta, x.dtype)
    out, mean, invstd = np.empty_like(x), np.empty(channels, x.dtype), np.empty(channels, x.dtype)
    native.batchnorm_forward(x, gamma, beta, running_mean, running_var, out, mean, invstd,
                             training=mode == "train", eps=eps, momentum=1 - momentum,
                             unbiased=False)
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, (x, gamma, mean, invstd, mode == "train")


def batchnorm_backward(dout, cache):
    x, gamma, mean, invstd, training = cache
    dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    native.batchnorm_backward(_param(dout, x.dtype), x, mean, invstd, gamma, dx, dgamma, dbeta,
                              training=training)
    return dx, dgamma, dbeta


batchnorm_backward_alt = batchnorm_backward

# x (N, C, H, W), gamma and beta (C,): the kernels normalise over (N, H, W) per channel as they are
spatial_batchnorm_forward = batchnorm_forward
spatial_batchnorm_backward = batchnorm_backward


# ---- dropout ---------------------------------------------------------------------------------

def dropout_forward(x, dropout_param):
    """dropout_param: 'p' (probability of keeping a unit), 'mode' ('train' or 'test'), 'seed'."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    x = _input(x)
    if mode != "train":
        return x.copy(), (dropout_param, None)
    if not 0 < p <= 1:
        raise ValueError(f"dropout_param['p'] is the keep probability, in (0, 1], got {p}")
    seed = dropout_param.get("seed")
    seed = int(np.random.randint(2**31)) if seed is None else seed
    out, mask = np.empty_like(x), np.empty_like(x)
    native.dropout_forward(x, out, mask, 1 - p, seed)
    return out, (dropout_param, mask)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    if mask is None:
        return _input(dout)
    return native.dropout_backward(_param(dout, mask.dtype), mask, np.empty_like(mask))


# ---- convolution and max pooling -------------------------------------------------------------

def _conv_forward(x, w, b, conv_param):
    x = _input(x)
    w, b = _param(w, x.dtype), _param(b, x.dtype)
    stride, pad = conv_param["stride"], conv_param["pad"]
    (n, _, height, width), (f, _, hh, ww) = x.shape, w.shape
    out = np.empty((n, f, *output_hw(height, width, hh, ww, stride, stride, pad, pad)), x.dtype)
    workspace = np.empty(native.conv2d_workspace_size(x.shape, w.shape, stride, pad), x.dtype)
    native.conv2d_forward(x, w, b, out, stride, pad, workspace)
    return out, (x, w, b, conv_param, workspace)


def _conv_backward(dout, cache):
    x, w, b, conv_param = cache[:4]
    workspace = cache[4] if len(cache) > 4 else None
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    native.conv2d_backward(_param(dout, x.dtype), x, w, dx, dw, db, conv_param["stride"],
                           conv_param["pad"], workspace)
    return dx, dw, db


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,); conv_param 'stride', 'pad';
    cache (x, w, b, conv_param)."""
    out, cache = _conv_forward(x, w, b, conv_param)
    return out, cache[:4]


conv_backward_naive = _conv_backward
conv_forward_fast = conv_forward_strides = conv_forward_im2col = _conv_forward
conv_backward_fast = conv_backward_strides = conv_backward_im2col = _conv_backward


def _max_pool(x, pool_param):
    x = _input(x)
    kernel = (pool_param["pool_height"], pool_param["pool_width"])
    stride = pool_param["stride"]
    n, c, height, width = x.shape
    shape = (n, c, *output_hw(height, width, *kernel, stride, stride, 0, 0))
    out, argmax = np.empty(shape, x.dtype), np.empty(shape, np.int64)
    native.max_pool2d_forward(x, out, argmax, kernel, stride)
    return out, argmax, x


def max_pool_forward_naive(x, pool_param):
    """pool_param 'pool_height', 'pool_width', 'stride' (no padding); cache (x, pool_param)."""
    out, _, x = _max_pool(x, pool_param)
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    _, argmax, x = _max_pool(x, pool_param)  # the cache has no argmax: find it again
    return native.max_pool2d_backward(_param(dout, x.dtype), argmax, np.empty_like(x))


def max_pool_forward_fast(x, pool_param):
    out, argmax, x = _max_pool(x, pool_param)
    return out, ("native", (x, pool_param, argmax))


def max_pool_backward_fast(dout, cache):
    x, _, argmax = cache[1]
    return native.max_pool2d_backward(_param(dout, x.dtype), argmax, np.empty_like(x))


# ---- losses ----------------------------------------------------------------------------------

def softmax_loss(x, y):
    """Mean cross-entropy of the softmax of scores x (N, C) at labels y (N,); returns loss, dx."""
    x = _input(x)
    labels, probs = np.ascontiguousarray(y, np.int64), np.empty_like(x)
    loss = native.softmax_cross_entropy_forward(x, labels, probs)
    return loss, native.softmax_cross_entropy_backward(probs, labels, probs)


def svm_loss(x, y):
    """Mean multiclass hinge loss sum_{j != y} max(0, x_j - x_y + 1); returns loss, dx."""
    x, y = _input(x), np.asarray(y)
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] = -dx.sum(axis=1)
    return margins.sum() / n, dx / n
