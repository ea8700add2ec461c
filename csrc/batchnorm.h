/* batchnorm.h: BatchNorm forward/backward, exact and darknet flavours, float and double.
 * Outputs first, then what the backward needs, then inputs and parameters, then sizes; the
 * exact flavour's image strides: see batchnorm_template.h. */
#ifndef IN_BATCHNORM_H
#define IN_BATCHNORM_H

#include "common.h"

#define IN_BATCHNORM_DECLARE(real, sfx)                                                         \
    void in_batchnorm_forward_train_##sfx(real *y, real *mean, real *invstd, const real *x,     \
                                          const real *gamma, const real *beta,                  \
                                          real *rolling_mean, real *rolling_variance, size_t B, \
                                          size_t C, size_t S, size_t x_image, size_t y_image,   \
                                          double eps, double momentum, int unbiased, int relu); \
    void in_batchnorm_forward_eval_##sfx(real *y, real *mean, real *invstd, const real *x,      \
                                         const real *gamma, const real *beta,                   \
                                         const real *rolling_mean,                              \
                                         const real *rolling_variance, size_t B, size_t C,      \
                                         size_t S, size_t x_image, size_t y_image, double eps,  \
                                         int relu);                                             \
    void in_batchnorm_backward_##sfx(real *dx, real *dgamma, real *dbeta, const real *dy,       \
                                     const real *y_relu, const real *x, const real *mean,       \
                                     const real *invstd, const real *gamma, size_t B, size_t C, \
                                     size_t S, size_t x_image, size_t dy_image, int training);  \
    void in_batchnorm_forward_darknet_##sfx(real *y, real *x_norm, real *mean, real *variance,  \
                                            const real *x, const real *scales,                  \
                                            const real *biases, real *rolling_mean,             \
                                            real *rolling_variance, size_t B, size_t C,         \
                                            size_t S, int training, int relu);                  \
    void in_batchnorm_backward_darknet_##sfx(real *delta, real *scale_updates,                  \
                                             real *bias_updates, real *mean_delta,              \
                                             real *variance_delta, const real *y_relu,          \
                                             const real *x, const real *x_norm,                 \
                                             const real *mean,                                  \
                                             const real *variance, const real *scales,          \
                                             size_t B, size_t C, size_t S);

IN_BATCHNORM_DECLARE(float, f32)
IN_BATCHNORM_DECLARE(double, f64)

#endif
