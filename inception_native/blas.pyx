# cython: language_level=3
"""Darknet's blas routines (src/blas.c), native, in float32 and float64.

Same names, argument order and arithmetic as Darknet; results are written in place into the
arrays passed and every routine returns None. Arrays may have any shape whose element count
fits the sizes; they must be C-contiguous float32 or float64, all of one dtype. Every argument
is checked before memory is touched, then the C kernel runs with the GIL released.
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp

from . import _checks as check

cnp.import_array()

cdef extern from "blas.h" nogil:
    void in_mean_cpu_f32(const float *x, size_t batch, size_t filters, size_t spatial, float *mean)
    void in_mean_cpu_f64(const double *x, size_t batch, size_t filters, size_t spatial, double *mean)
    void in_variance_cpu_f32(const float *x, const float *mean, size_t batch, size_t filters,
                             size_t spatial, float *variance)
    void in_variance_cpu_f64(const double *x, const double *mean, size_t batch, size_t filters,
                             size_t spatial, double *variance)
    void in_normalize_cpu_f32(float *x, const float *mean, const float *variance, size_t batch,
                              size_t filters, size_t spatial)
    void in_normalize_cpu_f64(double *x, const double *mean, const double *variance, size_t batch,
                              size_t filters, size_t spatial)
    void in_axpy_cpu_f32(size_t N, float ALPHA, const float *X, size_t INCX, float *Y, size_t INCY)
    void in_axpy_cpu_f64(size_t N, double ALPHA, const double *X, size_t INCX, double *Y, size_t INCY)
    void in_scal_cpu_f32(size_t N, float ALPHA, float *X, size_t INCX)
    void in_scal_cpu_f64(size_t N, double ALPHA, double *X, size_t INCX)
    void in_copy_cpu_f32(size_t N, const float *X, size_t INCX, float *Y, size_t INCY)
    void in_copy_cpu_f64(size_t N, const double *X, size_t INCX, double *Y, size_t INCY)
    void in_fill_cpu_f32(size_t N, float ALPHA, float *X, size_t INCX)
    void in_fill_cpu_f64(size_t N, double ALPHA, double *X, size_t INCX)
    void in_scale_bias_f32(float *output, const float *scales, size_t batch, size_t n, size_t size)
    void in_scale_bias_f64(double *output, const double *scales, size_t batch, size_t n, size_t size)
    void in_add_bias_f32(float *output, const float *biases, size_t batch, size_t n, size_t size)
    void in_add_bias_f64(double *output, const double *biases, size_t batch, size_t n, size_t size)
    void in_backward_bias_f32(float *bias_updates, const float *delta, size_t batch, size_t n,
                              size_t size)
    void in_backward_bias_f64(double *bias_updates, const double *delta, size_t batch, size_t n,
                              size_t size)
    void in_backward_scale_cpu_f32(const float *x_norm, const float *delta, size_t batch, size_t n,
                                   size_t size, float *scale_updates)
    void in_backward_scale_cpu_f64(const double *x_norm, const double *delta, size_t batch,
                                   size_t n, size_t size, double *scale_updates)
    void in_mean_delta_cpu_f32(const float *delta, const float *variance, size_t batch,
                               size_t filters, size_t spatial, float *mean_delta)
    void in_mean_delta_cpu_f64(const double *delta, const double *variance, size_t batch,
                               size_t filters, size_t spatial, double *mean_delta)
    void in_variance_delta_cpu_f32(const float *x, const float *delta, const float *mean,
                                   const float *variance, size_t batch, size_t filters,
                                   size_t spatial, float *variance_delta)
    void in_variance_delta_cpu_f64(const double *x, const double *delta, const double *mean,
                                   const double *variance, size_t batch, size_t filters,
                                   size_t spatial, double *variance_delta)
    void in_normalize_delta_cpu_f32(const float *x, const float *mean, const float *variance,
                                    const float *mean_delta, const float *variance_delta,
                                    size_t batch, size_t filters, size_t spatial, float *delta)
    void in_normalize_delta_cpu_f64(const double *x, const double *mean, const double *variance,
                                    const double *mean_delta, const double *variance_delta,
                                    size_t batch, size_t filters, size_t spatial, double *delta)


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
        if f64: in_mean_cpu_f64(<double *>px, b, f, s, <double *>pm)
        else: in_mean_cpu_f32(<float *>px, b, f, s, <float *>pm)


def variance_cpu(x, mean, batch, filters, spatial, variance):
    """variance[i] = sum_{j,k} (x[j, i, k] - mean[i])^2 / (batch*spatial - 1), the unbiased one"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.variance_cpu(x, mean, batch, filters, spatial, variance)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    with nogil:
        if f64: in_variance_cpu_f64(<double *>px, <double *>pm, b, f, s, <double *>pv)
        else: in_variance_cpu_f32(<float *>px, <float *>pm, b, f, s, <float *>pv)


def normalize_cpu(x, mean, variance, batch, filters, spatial):
    """x = (x - mean[i]) / (sqrt(variance[i]) + 1e-6), in place"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.normalize_cpu(x, mean, variance, batch, filters, spatial)
    cdef void *px = data(x)
    cdef void *pm = data(mean)
    cdef void *pv = data(variance)
    with nogil:
        if f64: in_normalize_cpu_f64(<double *>px, <double *>pm, <double *>pv, b, f, s)
        else: in_normalize_cpu_f32(<float *>px, <float *>pm, <float *>pv, b, f, s)


def axpy_cpu(N, ALPHA, X, INCX, Y, INCY):
    """Y[i*INCY] += ALPHA * X[i*INCX] for i < N"""
    cdef size_t n, incx, incy
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx, incy = check.axpy_cpu(N, ALPHA, X, INCX, Y, INCY)
    cdef void *px = data(X)
    cdef void *py = data(Y)
    with nogil:
        if f64: in_axpy_cpu_f64(n, alpha, <double *>px, incx, <double *>py, incy)
        else: in_axpy_cpu_f32(n, <float>alpha, <float *>px, incx, <float *>py, incy)


def scal_cpu(N, ALPHA, X, INCX):
    """X[i*INCX] *= ALPHA for i < N"""
    cdef size_t n, incx
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx = check.scal_cpu(N, ALPHA, X, INCX)
    cdef void *px = data(X)
    with nogil:
        if f64: in_scal_cpu_f64(n, alpha, <double *>px, incx)
        else: in_scal_cpu_f32(n, <float>alpha, <float *>px, incx)


def copy_cpu(N, X, INCX, Y, INCY):
    """Y[i*INCY] = X[i*INCX] for i < N"""
    cdef size_t n, incx, incy
    cdef bint f64
    f64, n, incx, incy = check.copy_cpu(N, X, INCX, Y, INCY)
    cdef void *px = data(X)
    cdef void *py = data(Y)
    with nogil:
        if f64: in_copy_cpu_f64(n, <double *>px, incx, <double *>py, incy)
        else: in_copy_cpu_f32(n, <float *>px, incx, <float *>py, incy)


def fill_cpu(N, ALPHA, X, INCX):
    """X[i*INCX] = ALPHA for i < N"""
    cdef size_t n, incx
    cdef double alpha
    cdef bint f64
    f64, n, alpha, incx = check.fill_cpu(N, ALPHA, X, INCX)
    cdef void *px = data(X)
    with nogil:
        if f64: in_fill_cpu_f64(n, alpha, <double *>px, incx)
        else: in_fill_cpu_f32(n, <float>alpha, <float *>px, incx)


def scale_bias(output, scales, batch, n, size):
    """output[b, i, :] *= scales[i]"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.scale_bias(output, scales, batch, n, size)
    cdef void *po = data(output)
    cdef void *ps = data(scales)
    with nogil:
        if f64: in_scale_bias_f64(<double *>po, <double *>ps, b, c, s)
        else: in_scale_bias_f32(<float *>po, <float *>ps, b, c, s)


def add_bias(output, biases, batch, n, size):
    """output[b, i, :] += biases[i]"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.add_bias(output, biases, batch, n, size)
    cdef void *po = data(output)
    cdef void *pb = data(biases)
    with nogil:
        if f64: in_add_bias_f64(<double *>po, <double *>pb, b, c, s)
        else: in_add_bias_f32(<float *>po, <float *>pb, b, c, s)


def backward_bias(bias_updates, delta, batch, n, size):
    """bias_updates[i] += sum_{b,k} delta[b, i, k] (accumulates, as Darknet's does)"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.backward_bias(bias_updates, delta, batch, n, size)
    cdef void *pu = data(bias_updates)
    cdef void *pd = data(delta)
    with nogil:
        if f64: in_backward_bias_f64(<double *>pu, <double *>pd, b, c, s)
        else: in_backward_bias_f32(<float *>pu, <float *>pd, b, c, s)


def backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates):
    """scale_updates[f] += sum_{b,k} delta * x_norm (accumulates, as Darknet's does)"""
    cdef size_t b, c, s
    cdef bint f64
    f64, b, c, s = check.backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates)
    cdef void *px = data(x_norm)
    cdef void *pd = data(delta)
    cdef void *pu = data(scale_updates)
    with nogil:
        if f64: in_backward_scale_cpu_f64(<double *>px, <double *>pd, b, c, s, <double *>pu)
        else: in_backward_scale_cpu_f32(<float *>px, <float *>pd, b, c, s, <float *>pu)


def mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta):
    """mean_delta[i] = -sum_{j,k} delta / sqrt(variance[i] + 1e-5)"""
    cdef size_t b, f, s
    cdef bint f64
    f64, b, f, s = check.mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta)
    cdef void *pd = data(delta)
    cdef void *pv = data(variance)
    cdef void *pm = data(mean_delta)
    with nogil:
        if f64: in_mean_delta_cpu_f64(<double *>pd, <double *>pv, b, f, s, <double *>pm)
        else: in_mean_delta_cpu_f32(<float *>pd, <float *>pv, b, f, s, <float *>pm)


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
        if f64:
            in_variance_delta_cpu_f64(<double *>px, <double *>pd, <double *>pm, <double *>pv,
                                      b, f, s, <double *>pvd)
        else:
            in_variance_delta_cpu_f32(<float *>px, <float *>pd, <float *>pm, <float *>pv,
                                      b, f, s, <float *>pvd)


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
        if f64:
            in_normalize_delta_cpu_f64(<double *>px, <double *>pm, <double *>pv, <double *>pmd,
                                       <double *>pvd, b, f, s, <double *>pd)
        else:
            in_normalize_delta_cpu_f32(<float *>px, <float *>pm, <float *>pv, <float *>pmd,
                                       <float *>pvd, b, f, s, <float *>pd)


# Darknet's convolution lowering and gemm live beside these in the same API (DESIGN.md); they are
# built with the convolution kernels.
from .conv import col2im_cpu, gemm, im2col_cpu  # noqa: E402
