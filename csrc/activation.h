/* activation.h: ReLU, a per-channel affine map, inverted dropout, channel concatenation and
 * softmax cross-entropy with label smoothing, forward and backward, float and double (see
 * activation_template.h). The caller checks sizes, p < 1 and 0 <= labels < K. */
#ifndef IN_ACTIVATION_H
#define IN_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* dropout's draw for element i: an integer in [0, 2^24), uniform */
#define IN_UNIFORM24_ONE 16777216.0
uint32_t in_uniform24(uint64_t seed, size_t i);

#define IN_ACTIVATION_DECLARE(real, sfx)                                                        \
    void in_relu_forward_##sfx(real *y, const real *x, size_t n);                               \
    void in_relu_backward_##sfx(real *dx, const real *dy, const real *y, size_t n);             \
    void in_channel_affine_forward_##sfx(real *y, const real *x, const real *scale,             \
                                         const real *shift, size_t B, size_t C, size_t S,       \
                                         size_t x_image, size_t y_image, int relu);             \
    void in_dropout_forward_##sfx(real *y, real *mask, const real *x, size_t n, double p,       \
                                  uint64_t seed);                                               \
    void in_dropout_backward_##sfx(real *dx, const real *dy, const real *mask, size_t n);       \
    void in_concat_forward_##sfx(real *y, const real *x, size_t B, size_t Cx, size_t Cy,        \
                                 size_t offset, size_t S);                                      \
    void in_concat_backward_##sfx(real *dx, const real *dy, size_t B, size_t Cx, size_t Cy,     \
                                  size_t offset, size_t S);                                     \
    double in_softmax_cross_entropy_forward_##sfx(real *probs, const real *logits,              \
                                                  const int64_t *labels, size_t N, size_t K,    \
                                                  double e);                                    \
    void in_softmax_cross_entropy_backward_##sfx(real *dlogits, const real *probs,              \
                                                 const int64_t *labels, size_t N, size_t K,     \
                                                 double e, double dloss);

IN_ACTIVATION_DECLARE(float, f32)
IN_ACTIVATION_DECLARE(double, f64)

/* Darknet's leaky and logistic activations and the softmax, forward and backward; the caller
 * checks sizes and slope >= 0 */
#define IN_DARKNET_ACTIVATION_DECLARE(real, sfx)                                                \
    void in_leaky_relu_forward_##sfx(real *y, const real *x, size_t n, double slope);           \
    void in_leaky_relu_backward_##sfx(real *dx, const real *dy, const real *y, size_t n,        \
                                      double slope);                                            \
    void in_logistic_forward_##sfx(real *y, const real *x, size_t n);                           \
    void in_logistic_backward_##sfx(real *dx, const real *dy, const real *y, size_t n);         \
    void in_softmax_forward_##sfx(real *y, const real *x, size_t N, size_t K);                  \
    void in_softmax_backward_##sfx(real *dx, const real *dy, const real *y, size_t N, size_t K);

IN_DARKNET_ACTIVATION_DECLARE(float, f32)
IN_DARKNET_ACTIVATION_DECLARE(double, f64)

#endif
