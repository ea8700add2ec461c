# cython: language_level=3
"""The whole BatchNorm layer, native, in float32 and float64: two flavours, four functions.

exact (the default in the layers): y = gamma * (x - mean) / sqrt(var + eps) + beta with the
biased batch variance; its backward is the true gradient of its forward. Fused: the forward
reads x twice and writes y once, the backward reads dy and x twice and writes dx once.

darknet: Darknet's forward_batchnorm_layer / backward_batchnorm_layer, composed of the blas
routines step by step (unbiased variance, 1e-6 outside the root forward, 1e-5 inside it backward).

x has shape (batch, channels, *spatial), NCHW; per-channel arrays have shape (channels,). All
outputs are written into the arrays passed (reuse them: a fresh output costs page faults), and
the function returns the main output. The NumPy twins are in inception_native.reference.
"""
cimport numpy as cnp
from in_batchnorm cimport *
import numpy as np

from . import _checks as check

cnp.import_array()



cdef inline void *data(a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd,
                      training=True, eps=1e-5, momentum=0.01, unbiased=True, relu=False):
    """Exact BatchNorm forward; returns y (y = max(y, 0), NaN kept, when relu: a ReLU fused
    into the store; its backward then takes y_relu=y).

    training: mean and invstd = 1/sqrt(var + eps) of the batch (biased variance) are written
    for the backward, and rolling = (1 - momentum) * rolling + momentum * batch statistic, with
    the unbiased variance (as PyTorch; needs batch*spatial > 1), or the biased one when
    unbiased=False (as CS231N). momentum 0.01 is Darknet's 0.99/0.01.
    inference: normalises with the rolling statistics, which it writes into mean and invstd.
    x (batch, channels, ...) and y like it; with 4-D x, each may be a channel slice
    t[:, c0:c1] of a larger C-contiguous tensor.
    """
    cdef size_t B, C, S, x_image, y_image
    cdef double eps_, momentum_
    cdef bint f64, train = check.truth("training", training)
    cdef int unbiased_ = check.truth("unbiased", unbiased)
    cdef int relu_ = check.truth("relu", relu)
    f64, B, C, S, x_image, y_image, eps_, momentum_ = check.batchnorm_forward(
        x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd, train, eps, momentum,
        unbiased_)
    cdef void *py = data(y)
    cdef void *pm = data(mean)
    cdef void *pi = data(invstd)
    cdef void *px = data(x)
    cdef void *pg = data(gamma)
    cdef void *pb = data(beta)
    cdef void *prm = data(rolling_mean)
    cdef void *prv = data(rolling_variance)
    with nogil:
        if train:
            in_batchnorm_forward_train(f64, py, pm, pi, px, pg, pb, prm, prv, B, C, S, x_image,
                                       y_image, eps_, momentum_, unbiased_, relu_)
        else:
            in_batchnorm_forward_eval(f64, py, pm, pi, px, pg, pb, prm, prv, B, C, S, x_image,
                                      y_image, eps_, relu_)
    return y


def batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, training=True, *,
                       y_relu=None):
    """Exact BatchNorm backward, the true gradient of batchnorm_forward; returns dx.

    mean and invstd are what the forward wrote. dgamma and dbeta are overwritten (not
    accumulated). training=False differentiates the inference forward (frozen statistics).
    y_relu: the output of a forward with relu=True (dy counts as 0 where y_relu <= 0, the ReLU's
    backward fused into this one), or None. dx may be dy (in place). With 4-D x, x and dx may be
    channel slices of larger C-contiguous tensors laid out alike, and dy and y_relu likewise.
    """
    cdef size_t B, C, S, x_image, dy_image
    cdef bint f64
    cdef int train = check.truth("training", training)
    f64, B, C, S, x_image, dy_image = check.batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma,
                                                      dbeta, y_relu)
    cdef void *pdx = data(dx)
    cdef void *pdg = data(dgamma)
    cdef void *pdb = data(dbeta)
    cdef void *pdy = data(dy)
    cdef void *pyr = data(y_relu)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pi = data(invstd)
    cdef void *pg = data(gamma)
    with nogil:
        in_batchnorm_backward(f64, pdx, pdg, pdb, pdy, pyr, px, pm, pi, pg, B, C, S, x_image,
                              dy_image, train)
    return dx


def batchnorm_forward_darknet(x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean,
                              variance, training=True, relu=False):
    """Darknet's forward_batchnorm_layer; returns y (y = max(y, 0), NaN kept, when relu: its
    add_bias with a ReLU in the store).

    training: mean, variance (unbiased) and x_norm are written, the rolling statistics updated
    as 0.99 * rolling + 0.01 * batch statistic. Needs batch*spatial > 1.
    inference: normalises with the rolling statistics; x_norm, mean and variance are untouched.
    """
    cdef size_t B, C, S
    cdef bint f64
    cdef int train = check.truth("training", training)
    cdef int relu_ = check.truth("relu", relu)
    f64, B, C, S = check.batchnorm_forward_darknet(
        x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean, variance, train)
    cdef void *py = data(y)
    cdef void *pn = data(x_norm)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    cdef void *px = data(x)
    cdef void *ps = data(scales)
    cdef void *pb = data(biases)
    cdef void *prm = data(rolling_mean)
    cdef void *prv = data(rolling_variance)
    with nogil:
        in_batchnorm_forward_darknet(f64, py, pn, pm, pv, px, ps, pb, prm, prv, B, C, S, train,
                                     relu_)
    return y


def batchnorm_backward_darknet(delta, x, x_norm, mean, variance, scales, scale_updates,
                               bias_updates, *, y_relu=None):
    """Darknet's backward_batchnorm_layer, in place on delta (dL/dy in, dL/dx out); returns delta.

    scale_updates and bias_updates accumulate (+=) as Darknet's do. mean and variance are the
    statistics the forward used (the batch ones in training). y_relu: the output of a forward
    with relu=True (delta is first set to 0 where y_relu <= 0), or None.
    """
    cdef size_t B, C, S
    cdef bint f64
    f64, B, C, S = check.batchnorm_backward_darknet(
        delta, x, x_norm, mean, variance, scales, scale_updates, bias_updates, y_relu)
    scratch = (np.empty_like(mean), np.empty_like(mean))  # mean_delta, variance_delta
    cdef void *pd = data(delta)
    cdef void *psu = data(scale_updates)
    cdef void *pbu = data(bias_updates)
    cdef void *pmd = data(scratch[0])
    cdef void *pvd = data(scratch[1])
    cdef void *pyr = data(y_relu)
    cdef void *px = data(x)
    cdef void *pn = data(x_norm)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    cdef void *ps = data(scales)
    with nogil:
        in_batchnorm_backward_darknet(f64, pd, psu, pbu, pmd, pvd, pyr, px, pn, pm, pv, ps, B, C,
                                      S)
    return delta
