/* batchnorm_template.h: the whole BatchNorm layer in two flavours, instantiated for
 * real = float and double by batchnorm.c.
 *
 * Legend: x, y, dy, dx are (B, C, S), NCHW with S = H*W; mean, invstd, gamma, beta and the
 * rolling statistics are (C); M = B*S values per channel. In the exact flavour each tensor may
 * be a channel slice of a larger one (an Inception branch writing its channels of the
 * concatenation and reading its channels of the gradient; a 1x1 convolution stacked with others
 * giving its channels of their output, and taking dL/dx into its channels of their gradient):
 * images x_image values apart for x and dx, y_image for y, dy_image for dy and y_relu (C * S
 * when contiguous).
 *
 * exact: the BN paper's transform with the biased batch variance and eps inside the root,
 *     xhat = (x - mean) * invstd,  invstd = 1 / sqrt(var + eps),  y = gamma * xhat + beta,
 * and its true gradient. Passes over the tensor: forward, one read of x for the statistics,
 * one read of x and one write of y; backward, one read of dy and x for the two sums, one read
 * of both and one write of dx. In training the second read comes from L2 where it can: a chunk
 * of channels (in_cached_channels) is normalised, or its gradient written, right after its
 * sums.
 * BN + ReLU fused (relu / y_relu, both flavours): the forward stores max(y, 0) (NaN kept), the
 * backward reads the forward's output y and counts dy as 0 where y <= 0, so a ReLU after a
 * BatchNorm costs no pass over memory of its own (one more read of y in the backward) and no
 * buffer.
 * darknet: forward_batchnorm_layer / backward_batchnorm_layer, composed of the blas routines
 * step by step (unbiased variance, eps outside the root forward and inside it backward).
 */

#include "plane_template.h"

#define PARALLEL_OVER(n) IN_PRAGMA(omp parallel for schedule(static) if ((n) >= IN_PARALLEL_MIN))

/* y = (x - mean) * (gamma * invstd) + beta, then max(y, 0) when relu, for channels [c0, c1) */
IN_HOT static void NAME(normalize_channels)(real *y, const real *x, const real *mean,
                                            const real *invstd, const real *gamma,
                                            const real *beta, size_t c0, size_t c1, size_t B,
                                            size_t S, size_t x_image, size_t y_image, int relu)
{
    for (size_t j = 0; j < B; ++j)
        for (size_t c = c0; c < c1; ++c) {
            real *yp = y + j * y_image + c * S;
            const real *xp = x + j * x_image + c * S;
            if (relu)
                NAME(plane_affine_dev_relu)(yp, xp, mean[c], gamma[c] * invstd[c], beta[c], S);
            else
                NAME(plane_affine_dev)(yp, xp, mean[c], gamma[c] * invstd[c], beta[c], S);
        }
}

/* normalize_channels over all channels */
static void NAME(normalize_affine)(real *y, const real *x, const real *mean, const real *invstd,
                                   const real *gamma, const real *beta, size_t B, size_t C,
                                   size_t S, size_t x_image, size_t y_image, int relu)
{
    IN_FOR_CHANNEL_CHUNKS(B * C * S, C, c0, c1)
    NAME(normalize_channels)(y, x, mean, invstd, gamma, beta, c0, c1, B, S, x_image, y_image,
                             relu);
}

/* Training forward: batch statistics from shifted sums in double, s1 = sum (x - K) and
 * s2 = sum (x - K)^2 with K the channel's first value: var = s2/M - (s1/M)^2 cancels only
 * ((mean - K)/std)^2 times the double rounding, where the naive E[x^2] - E[x]^2 cancels
 * (mean/std)^2, 1e12 at mean 1e4, std 1e-2. One pass over x (each plane's second read, for s2,
 * comes from L1). Saved as mean and invstd for the backward; rolling = (1 - momentum) *
 * rolling + momentum * batch statistic, with the unbiased variance var * M / (M - 1) as PyTorch keeps it when `unbiased` (then M > 1,
 * checked by the caller), else the biased var as CS231N keeps it. */
IN_HOT void NAME(batchnorm_forward_train)(real *y, real *mean, real *invstd, const real *x,
                                          const real *gamma, const real *beta, real *rolling_mean,
                                          real *rolling_variance, size_t B, size_t C, size_t S,
                                          size_t x_image, size_t y_image, double eps,
                                          double momentum, int unbiased, int relu)
{
    const double M = (double)(B * S), correction = unbiased ? M / (M - 1.) : 1.;
    size_t chunk = in_cached_channels(B, S, 2, sizeof(real)); /* x read again, y written */
    IN_FOR_CHANNEL_CHUNKS_OF(B * C * S, C, chunk, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_SHIFTED_SUMS, x, NULL, NULL, NULL, c0, c1, B, S, x_image,
                           x_image);
        for (size_t c = c0; c < c1; ++c) {
            double shift = x[c * S], d = acc[2 * (c - c0)] / M;
            double var = acc[2 * (c - c0) + 1] / M - d * d;
            if (var < 0) var = 0; /* rounding; keeps NaN */
            mean[c] = (real)(shift + d);
            invstd[c] = (real)(1. / sqrt(var + eps));
            rolling_mean[c] = (real)((1. - momentum) * rolling_mean[c] + momentum * (shift + d));
            rolling_variance[c] =
                (real)((1. - momentum) * rolling_variance[c] + momentum * var * correction);
        }
        NAME(normalize_channels)(y, x, mean, invstd, gamma, beta, c0, c1, B, S, x_image, y_image,
                                 relu);
    }
}

/* Inference forward: normalise with the rolling statistics; mean and invstd are written as in
 * training so that the backward (a frozen BatchNorm) takes the same arguments. */
IN_HOT void NAME(batchnorm_forward_eval)(real *y, real *mean, real *invstd, const real *x,
                                         const real *gamma, const real *beta,
                                         const real *rolling_mean, const real *rolling_variance,
                                         size_t B, size_t C, size_t S, size_t x_image,
                                         size_t y_image, double eps, int relu)
{
    for (size_t c = 0; c < C; ++c) {
        mean[c] = rolling_mean[c];
        invstd[c] = (real)(1. / sqrt(rolling_variance[c] + eps));
    }
    NAME(normalize_affine)(y, x, mean, invstd, gamma, beta, B, C, S, x_image, y_image, relu);
}

/* Backward of the exact flavour.
 *   dbeta  = sum dy
 *   dgamma = sum dy * xhat
 * training, the statistics depend on x (BN paper, eq. for dL/dx_i, collected per channel):
 *   dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
 *      = dy * a + (x - mean) * b + c,   a = gamma * invstd,  b = -a * invstd * dgamma / M,
 *                                       c = -a * dbeta / M
 * inference, the statistics are constants: dx = dy * a.
 * y_relu (NULL or the fused forward's output): dy is read as dy * (y_relu > 0) throughout. */
IN_HOT void NAME(batchnorm_backward)(real *dx, real *dgamma, real *dbeta, const real *dy,
                                     const real *y_relu, const real *x, const real *mean, const real *invstd,
                                     const real *gamma, size_t B, size_t C, size_t S,
                                     size_t x_image, size_t dy_image, int training)
{
    const double M = (double)(B * S);
    size_t chunk = in_cached_channels(B, S, y_relu ? 3 : 2, sizeof(real)); /* read again */
    IN_FOR_CHANNEL_CHUNKS_OF(B * C * S, C, chunk, c0, c1) {
        double acc[2 * IN_CHUNK]; /* sum dy, sum dy * (x - mean) */
        NAME(channel_sums)(acc, IN_DY_SUMS, dy, x, y_relu, mean, c0, c1, B, S, dy_image,
                           x_image);
        for (size_t c = c0; c < c1; ++c) {
            dbeta[c] = (real)acc[2 * (c - c0)];
            dgamma[c] = (real)(acc[2 * (c - c0) + 1] * invstd[c]);
        }
        for (size_t j = 0; j < B; ++j)
            for (size_t c = c0; c < c1; ++c) {
                double a = (double)gamma[c] * invstd[c];
                double b = training ? -a * invstd[c] * dgamma[c] / M : 0.;
                double cc = training ? -a * dbeta[c] / M : 0.;
                size_t at = j * dy_image + c * S, xt = j * x_image + c * S; /* dx's and x's */
                if (y_relu)
                    NAME(plane_grad_where)(dx + xt, dy + at, y_relu + at, x + xt, mean[c],
                                           (real)a, (real)b, (real)cc, S);
                else
                    NAME(plane_grad)(dx + xt, dy + at, x + xt, mean[c], (real)a, (real)b,
                                     (real)cc, S);
            }
    }
}

/* y[b, i, :] = max(y[b, i, :] + biases[i], 0), NaN kept: add_bias with a ReLU in its store */
static void NAME(add_bias_relu)(real *y, const real *biases, size_t B, size_t C, size_t S)
{
    PARALLEL_OVER(B * C * S)
    for (size_t p = 0; p < B * C; ++p) NAME(plane_shift_relu)(y + p * S, biases[p % C], S);
}

/* Darknet's forward_batchnorm_layer: y = copy(x); in training, mean_cpu, variance_cpu, rolling
 * statistics by scal_cpu(.99) + axpy_cpu(.01), normalize_cpu, x_norm = copy(y); in inference,
 * normalize_cpu with the rolling statistics; then scale_bias, add_bias (add_bias_relu when
 * relu). M > 1 in training. */
void NAME(batchnorm_forward_darknet)(real *y, real *x_norm, real *mean, real *variance,
                                     const real *x, const real *scales, const real *biases,
                                     real *rolling_mean, real *rolling_variance, size_t B, size_t C,
                                     size_t S, int training, int relu)
{
    NAME(copy_cpu)(B * C * S, x, 1, y, 1);
    if (training) {
        NAME(mean_cpu)(y, B, C, S, mean);
        NAME(variance_cpu)(y, mean, B, C, S, variance);
        NAME(scal_cpu)(C, (real).99, rolling_mean, 1);
        NAME(axpy_cpu)(C, (real).01, mean, 1, rolling_mean, 1);
        NAME(scal_cpu)(C, (real).99, rolling_variance, 1);
        NAME(axpy_cpu)(C, (real).01, variance, 1, rolling_variance, 1);
        NAME(normalize_cpu)(y, mean, variance, B, C, S);
        NAME(copy_cpu)(B * C * S, y, 1, x_norm, 1);
    } else {
        NAME(normalize_cpu)(y, rolling_mean, rolling_variance, B, C, S);
    }
    NAME(scale_bias)(y, scales, B, C, S);
    if (relu)
        NAME(add_bias_relu)(y, biases, B, C, S);
    else
        NAME(add_bias)(y, biases, B, C, S);
}

/* Darknet's backward_batchnorm_layer, in place on delta (dy in, dx out); scale_updates and
 * bias_updates accumulate (+=); mean_delta and variance_delta are (C) scratch. mean and variance
 * are the batch statistics of the forward (Darknet passes the rolling ones in inference).
 * y_relu (NULL or the fused forward's output): delta = 0 where y_relu <= 0 first. */
void NAME(batchnorm_backward_darknet)(real *delta, real *scale_updates, real *bias_updates,
                                      real *mean_delta, real *variance_delta,
                                      const real *y_relu, const real *x,
                                      const real *x_norm, const real *mean, const real *variance,
                                      const real *scales, size_t B, size_t C, size_t S)
{
    if (y_relu) {
        PARALLEL_OVER(B * C * S)
        for (size_t p = 0; p < B * C; ++p) NAME(plane_masked)(delta + p * S, delta + p * S, y_relu + p * S, S);
    }
    NAME(backward_bias)(bias_updates, delta, B, C, S);
    NAME(backward_scale_cpu)(x_norm, delta, B, C, S, scale_updates);
    NAME(scale_bias)(delta, scales, B, C, S);
    NAME(mean_delta_cpu)(delta, variance, B, C, S, mean_delta);
    NAME(variance_delta_cpu)(x, delta, mean, variance, B, C, S, variance_delta);
    NAME(normalize_delta_cpu)(x, mean, variance, mean_delta, variance_delta, B, C, S, delta);
}

#undef PARALLEL_OVER
