/* blas.h: Darknet's blas routines (names and argument order kept), float and double.
 * in_mean_cpu_f32(x, batch, filters, spatial, mean) is Darknet's mean_cpu on floats; _f64 on
 * doubles. Sizes are size_t; the Python wrappers check them against the arrays first.
 * in_sgd_momentum_cpu is ours: the optimiser's scal/axpy sequence in one pass. */
#ifndef IN_BLAS_H
#define IN_BLAS_H

#include "common.h"

#define IN_BLAS_DECLARE(real, sfx)                                                              \
    void in_mean_cpu_##sfx(const real *x, size_t batch, size_t filters, size_t spatial,         \
                           real *mean);                                                         \
    void in_variance_cpu_##sfx(const real *x, const real *mean, size_t batch, size_t filters,   \
                               size_t spatial, real *variance);                                 \
    void in_normalize_cpu_##sfx(real *x, const real *mean, const real *variance, size_t batch,  \
                                size_t filters, size_t spatial);                                \
    void in_axpy_cpu_##sfx(size_t N, real ALPHA, const real *X, size_t INCX, real *Y,           \
                           size_t INCY);                                                        \
    void in_scal_cpu_##sfx(size_t N, real ALPHA, real *X, size_t INCX);                         \
    void in_sgd_momentum_cpu_##sfx(size_t N, real lr, real momentum, real decay, real *p,       \
                                   const real *g, real *v);                                     \
    void in_copy_cpu_##sfx(size_t N, const real *X, size_t INCX, real *Y, size_t INCY);         \
    void in_fill_cpu_##sfx(size_t N, real ALPHA, real *X, size_t INCX);                         \
    void in_scale_bias_##sfx(real *output, const real *scales, size_t batch, size_t n,          \
                             size_t size);                                                      \
    void in_add_bias_##sfx(real *output, const real *biases, size_t batch, size_t n,            \
                           size_t size);                                                        \
    void in_backward_bias_##sfx(real *bias_updates, const real *delta, size_t batch, size_t n,  \
                                size_t size);                                                   \
    void in_backward_scale_cpu_##sfx(const real *x_norm, const real *delta, size_t batch,       \
                                     size_t n, size_t size, real *scale_updates);               \
    void in_mean_delta_cpu_##sfx(const real *delta, const real *variance, size_t batch,         \
                                 size_t filters, size_t spatial, real *mean_delta);             \
    void in_variance_delta_cpu_##sfx(const real *x, const real *delta, const real *mean,        \
                                     const real *variance, size_t batch, size_t filters,        \
                                     size_t spatial, real *variance_delta);                     \
    void in_normalize_delta_cpu_##sfx(const real *x, const real *mean, const real *variance,    \
                                      const real *mean_delta, const real *variance_delta,       \
                                      size_t batch, size_t filters, size_t spatial, real *delta);

IN_BLAS_DECLARE(float, f32)
IN_BLAS_DECLARE(double, f64)

#endif
