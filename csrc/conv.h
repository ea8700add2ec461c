/* conv.h: 2-D convolution and linear layers, forward and backward, float and double (see
 * conv_template.h for the math and layouts). The caller checks every size: strides >= 1, the
 * kernel fits the padded input, GEMM sizes fit an int, the plan was made for these arrays, work
 * holds plan.work values, and, when plan.threads > 1, that the BLAS runs single-threaded
 * meanwhile.
 */
#ifndef IN_CONV_H
#define IN_CONV_H

#include <stddef.h>

#include "common.h"

/* The plan of one convolution (shape, blocking, threads, workspace), made once per layer and
 * input shape by in_conv2d_plan and passed to every call; the only place the blocking and the
 * workspace layout are decided (conv_template.h has the reasons).
 *   G > 1: G images lowered side by side into one GEMM (small maps);
 *   G = 1: R output rows of one image per GEMM (large maps), col stays in the last-level cache.
 * work: workspace values the calls need (0: none), for `threads` threads. */
typedef struct {
    size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw;  /* the shape, as the caller gave it */
    size_t oh, ow, K;                               /* output map; K = C*kh*kw */
    size_t G, R;
    int threads;
    size_t work;
} in_conv_plan;

/* Blocking targets: a GEMM of at least IN_CONV_MIN_COLUMNS columns; a col block of about
 * IN_CONV_BLOCK_VALUES values (4 MiB of float32: stays in the last-level cache); a 1x1 stride-1
 * convolution reads x in place and is grouped only on maps smaller than IN_CONV_POINTWISE_ALONE
 * pixels (measured: 28x28 faster alone, 7x7 faster grouped). */
#define IN_CONV_MIN_COLUMNS 1024
#define IN_CONV_BLOCK_VALUES ((size_t)1 << 20)
#define IN_CONV_POINTWISE_ALONE 512

/* threads: the OpenMP threads available (no more are used than images); min_columns and
 * block_values: the targets above (tests pass others to exercise every blocking). */
in_conv_plan in_conv2d_plan(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                            size_t kw, size_t sh, size_t sw, size_t ph, size_t pw, int threads,
                            size_t min_columns, size_t block_values);

#define IN_CONV_DECLARE(real, sfx)                                                              \
    void in_conv2d_forward_##sfx(const in_conv_plan *p, real *y, real *work, const real *x,     \
                                 const real *w, const real *bias);                              \
    void in_conv2d_backward_##sfx(const in_conv_plan *p, real *dx, real *dw, real *dbias,       \
                                  real *work, const real *dy, const real *x, const real *w);    \
    void in_linear_forward_##sfx(real *y, const real *x, const real *w, const real *bias,       \
                                 size_t N, size_t Fin, size_t Fout);                            \
    void in_linear_backward_##sfx(real *dx, real *dw, real *dbias, const real *dy,              \
                                  const real *x, const real *w, size_t N, size_t Fin,           \
                                  size_t Fout);

IN_CONV_DECLARE(float, f32)
IN_CONV_DECLARE(double, f64)

#endif
