/* conv.h: 2-D convolution and linear layers, forward and backward, float and double (see
 * conv_template.h for the math and layouts). The caller checks every size: strides >= 1, the
 * kernel fits the padded input, GEMM sizes fit an int, 1 <= G <= B, R >= 1 (R = oh when G > 1),
 * threads >= 1, work is large enough (threads shares, see conv_template.h), and, when threads > 1,
 * that the BLAS runs single-threaded meanwhile.
 */
#ifndef IN_CONV_H
#define IN_CONV_H

#include <stddef.h>

#include "common.h"

#define IN_CONV_DECLARE(real, sfx)                                                              \
    void in_conv2d_forward_##sfx(real *y, real *work, const real *x, const real *w,             \
                                 const real *bias, size_t B, size_t C, size_t H, size_t W,      \
                                 size_t OC, size_t kh, size_t kw, size_t sh, size_t sw,         \
                                 size_t ph, size_t pw, size_t G, size_t R, int threads);        \
    void in_conv2d_backward_##sfx(real *dx, real *dw, real *dbias, real *work, const real *dy,  \
                                  const real *x, const real *w, size_t B, size_t C, size_t H,   \
                                  size_t W, size_t OC, size_t kh, size_t kw, size_t sh,         \
                                  size_t sw, size_t ph, size_t pw, size_t G, size_t R,          \
                                  int threads);                                                 \
    void in_linear_forward_##sfx(real *y, const real *x, const real *w, const real *bias,       \
                                 size_t N, size_t Fin, size_t Fout);                            \
    void in_linear_backward_##sfx(real *dx, real *dw, real *dbias, const real *dy,              \
                                  const real *x, const real *w, size_t N, size_t Fin,           \
                                  size_t Fout);

IN_CONV_DECLARE(float, f32)
IN_CONV_DECLARE(double, f64)

#endif
