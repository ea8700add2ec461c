# cython: language_level=3
"""Darknet's blas routines (src/blas.c), native, in float32 and float64; and sgd_momentum_cpu,
the optimiser's scal/axpy step in one pass (ours).

Same names, argument order and arithmetic as Darknet; results are written in place into the
arrays passed and every routine returns None. Arrays may have any shape whose element count
fits the sizes; they must be C-contiguous float32 or float64, all of one dtype. Every argument
is checked before memory is touched, then the C kernel runs with the GIL released.
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp
from in_blas cimport *

from . import _checks as check

cnp.import_array()



cdef inline void *data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def mean_cpu(x, batch, filters, spatial, mean):
    """mean[i] = sum_{j,k} x[j, i, k] / (batch*spatial)"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.mean_cpu(x, batch, filters, spatial, mean)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    with nogil:
        in_mean_cpu(f64, px, b, f, s, pm)


def variance_cpu(x, mean, batch, filters, spatial, variance):
    """variance[i] = sum_{j,k} (x[j, i, k] - mean[i])^2 / (batch*spatial - 1), the unbiased one"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.variance_cpu(x, mean, batch, filters, spatial, variance)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    with nogil:
        in_variance_cpu(f64, px, pm, b, f, s, pv)


def normalize_cpu(x, mean, variance, batch, filters, spatial):
    """x = (x - mean[i]) / (sqrt(variance[i]) + 1e-6), in place"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.normalize_cpu(x, mean, variance, batch, filters, spatial)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    with nogil:
        in_normalize_cpu(f64, px, pm, pv, b, f, s)


def axpy_cpu(N, ALPHA, X, INCX, Y, INCY):
    """Y[i*INCY] += ALPHA * X[i*INCX] for i < N"""
    cdef size_t n, incx, incy
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx, incy = check.axpy_cpu(N, ALPHA, X, INCX, Y, INCY)
    cdef void *px = data(X)
    cdef void *py = data(Y)
    with nogil:
        in_axpy_cpu(f64, n, alpha, px, incx, py, incy)


def scal_cpu(N, ALPHA, X, INCX):
    """X[i*INCX] *= ALPHA for i < N"""
    cdef size_t n, incx
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx = check.scal_cpu(N, ALPHA, X, INCX)
    cdef void *px = data(X)
    with nogil:
        in_scal_cpu(f64, n, alpha, px, incx)


def sgd_momentum_cpu(p, grad, velocity, lr, momentum, weight_decay):
    """One SGD step in place, PyTorch's rule: velocity = momentum * velocity + grad (+ weight_decay
    * p); p -= lr * velocity. The bits of scal_cpu and axpy_cpu doing it in turn, in one pass."""
    cdef size_t n
    cdef double rate, mom, decay
    cdef bint f64
    f64, n, rate, mom, decay = check.sgd_momentum_cpu(p, grad, velocity, lr, momentum,
                                                      weight_decay)
    cdef void *pp = data(p)
    cdef void *pg = data(grad)
    cdef void *pv = data(velocity)
    with nogil:
        in_sgd_momentum_cpu(f64, n, rate, mom, decay, pp, pg, pv)


def copy_cpu(N, X, INCX, Y, INCY):
    """Y[i*INCY] = X[i*INCX] for i < N"""
    cdef size_t n, incx, incy
    cdef bint f64
    f64, n, incx, incy = check.copy_cpu(N, X, INCX, Y, INCY)
    cdef void *px = data(X)
    cdef void *py = data(Y)
    with nogil:
        in_copy_cpu(f64, n, px, incx, py, incy)


def fill_cpu(N, ALPHA, X, INCX):
    """X[i*INCX] = ALPHA for i < N"""
    cdef size_t n, incx
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx = check.fill_cpu(N, ALPHA, X, INCX)
    cdef void *px = data(X)
    with nogil:
        in_fill_cpu(f64, n, alpha, px, incx)


def scale_bias(output, scales, batch, n, size):
    """output[b, i, :] *= scales[i]"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.scale_bias(output, scales, batch, n, size)
    cdef void *po = data(output)
    cdef void *ps = data(scales)
    with nogil:
        in_scale_bias(f64, po, ps, b, c, s)


def add_bias(output, biases, batch, n, size):
    """output[b, i, :] += biases[i]"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.add_bias(output, biases, batch, n, size)
    cdef void *po = data(output)
    cdef void *pb = data(biases)
    with nogil:
        in_add_bias(f64, po, pb, b, c, s)


def backward_bias(bias_updates, delta, batch, n, size):
    """bias_updates[i] += sum_{b,k} delta[b, i, k] (accumulates, as Darknet's does)"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.backward_bias(bias_updates, delta, batch, n, size)
    cdef void *pu = data(bias_updates)
    cdef void *pd = data(delta)
    with nogil:
        in_backward_bias(f64, pu, pd, b, c, s)


def backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates):
    """scale_updates[f] += sum_{b,k} delta * x_norm (accumulates, as Darknet's does)"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates)
    cdef void *px = data(x_norm)
    cdef void *pd = data(delta)
    cdef void *pu = data(scale_updates)
    with nogil:
        in_backward_scale_cpu(f64, px, pd, b, c, s, pu)


def mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta):
    """mean_delta[i] = -sum_{j,k} delta / sqrt(variance[i] + 1e-5)"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta)
    cdef void *pd = data(delta)
    cdef void *pv = data(variance)
    cdef void *pm = data(mean_delta)
    with nogil:
        in_mean_delta_cpu(f64, pd, pv, b, f, s, pm)


def variance_delta_cpu(x, delta, mean, variance, batch, filters, spatial, variance_delta):
    """variance_delta[i] = sum_{j,k} delta * (x - mean[i]) * -1/2 * (variance[i] + 1e-5)^(-3/2)"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.variance_delta_cpu(x, delta, mean, variance, batch, filters, spatial, variance_delta)
    cdef void *px = data(x)
    cdef void *pd = data(delta)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    cdef void *pvd = data(variance_delta)
    with nogil:
                    in_variance_delta_cpu(f64, px, pd, pm, pv, b, f, s, pvd)


def normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch, filters, spatial,
                        delta):
    """delta = delta / sqrt(variance + 1e-5) + variance_delta * 2 (x - mean) / M + mean_delta / M,
    M = batch*spatial, in place"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch, filters, spatial, delta)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    cdef void *pmd = data(mean_delta)
    cdef void *pvd = data(variance_delta)
    cdef void *pd = data(delta)
    with nogil:
                    in_normalize_delta_cpu(f64, px, pm, pv, pmd, pvd, b, f, s, pd)


# Darknet's convolution lowering and gemm live beside these in the same API (DESIGN.md); they are
# built with the convolution kernels.
from .conv import col2im_cpu, gemm, im2col_cpu  # noqa: E402
