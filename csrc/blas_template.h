/* blas_template.h: Darknet's blas routines (src/blas.c), same names, argument order and
 * arithmetic, instantiated for real = float and double by blas.c.
 *
 * Legend: x is (batch, filters, spatial), NCHW with spatial = H*W, Darknet's index
 * j*filters*spatial + i*spatial + k. M = batch*spatial values per channel.
 * Differences from Darknet, none of which changes a result beyond rounding: size_t sizes, sums
 * in double, per-channel constants (sqrt, pow) hoisted out of the inner loops, OpenMP across
 * channels or planes once the tensor is large enough.
 * Darknet's `delta` is the negative gradient; every routine is linear in it, so a true gradient
 * goes in and comes out just the same.
 */

#include "plane_template.h"

#define PARALLEL_OVER(n) IN_PRAGMA(omp parallel for schedule(static) if ((n) >= IN_PARALLEL_MIN))

/* mean[i] = sum_{j,k} x / M */
IN_HOT void NAME(mean_cpu)(const real *x, size_t batch, size_t filters, size_t spatial, real *mean)
{
    IN_FOR_CHANNEL_CHUNKS(batch * filters * spatial, filters, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_SUM, x, NULL, NULL, NULL, c0, c1, batch, spatial,
                           filters * spatial, filters * spatial);
        for (size_t i = c0; i < c1; ++i)
            mean[i] = (real)(acc[2 * (i - c0)] / (double)(batch * spatial));
    }
}

/* variance[i] = sum_{j,k} (x - mean[i])^2 / (M - 1): the unbiased estimate; M > 1 (checked by
 * the caller: Darknet divides by zero there) */
IN_HOT void NAME(variance_cpu)(const real *x, const real *mean, size_t batch, size_t filters,
                               size_t spatial, real *variance)
{
    IN_FOR_CHANNEL_CHUNKS(batch * filters * spatial, filters, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_SUMSQ_DEV, x, NULL, NULL, mean, c0, c1, batch, spatial,
                           filters * spatial, filters * spatial);
        for (size_t i = c0; i < c1; ++i)
            variance[i] = (real)(acc[2 * (i - c0)] / (double)(batch * spatial - 1));
    }
}

/* x = (x - mean) / (sqrt(variance) + 1e-6): Darknet's epsilon, outside the root */
IN_HOT void NAME(normalize_cpu)(real *x, const real *mean, const real *variance, size_t batch,
                                size_t filters, size_t spatial)
{
    PARALLEL_OVER(batch * filters * spatial)
    for (size_t p = 0; p < batch * filters; ++p) {
        size_t i = p % filters;
        real d = (real)(sqrt(variance[i]) + .000001f);
        NAME(plane_div_dev)(x + p * spatial, mean[i], d, spatial);
    }
}

/* Spans of X and Y overlap, but are not the same span: threads would race and memcpy is
 * undefined, so the loop runs serially, in Darknet's order (X == Y itself is elementwise-safe). */
static int NAME(partial_overlap)(const real *X, size_t INCX, const real *Y, size_t INCY, size_t N)
{
    const real *x_end = X + (N - 1) * INCX + 1, *y_end = Y + (N - 1) * INCY + 1;
    return N > 0 && X < y_end && Y < x_end && !(X == Y && INCX == INCY);
}

/* Y += ALPHA * X, strided */
IN_HOT void NAME(axpy_cpu)(size_t N, real ALPHA, const real *X, size_t INCX, real *Y, size_t INCY)
{
    PARALLEL_OVER(NAME(partial_overlap)(X, INCX, Y, INCY, N) ? 0 : N)
    for (size_t i = 0; i < N; ++i) Y[i * INCY] += ALPHA * X[i * INCX];
}

/* X *= ALPHA, strided */
IN_HOT void NAME(scal_cpu)(size_t N, real ALPHA, real *X, size_t INCX)
{
    PARALLEL_OVER(N)
    for (size_t i = 0; i < N; ++i) X[i * INCX] *= ALPHA;
}

/* One step of SGD with momentum (PyTorch's rule), in place, i < N:
 *     v[i] = momentum * v[i] + g[i] (+ decay * p[i]);   p[i] = p[i] - lr * v[i]
 * each product and sum rounded in that order, as the scal_cpu / axpy_cpu calls it replaces
 * (v *= momentum; v += g; v += decay * p when decay is nonzero; p += -lr * v) round them: the
 * same bits in one pass over p, g and v instead of three or four. */
IN_HOT void NAME(sgd_momentum_cpu)(size_t N, real lr, real momentum, real decay, real *p,
                                   const real *g, real *v)
{
    real step = -lr;
    PARALLEL_OVER(N)
    for (size_t i = 0; i < N; ++i) {
        real vi = momentum * v[i] + g[i];
        if (decay != 0) vi = vi + decay * p[i]; /* not 0 * p: a -0 or NaN in p stays out */
        v[i] = vi;
        p[i] = p[i] + step * vi;
    }
}

/* Y = X, strided */
void NAME(copy_cpu)(size_t N, const real *X, size_t INCX, real *Y, size_t INCY)
{
    if (NAME(partial_overlap)(X, INCX, Y, INCY, N)) {
        for (size_t i = 0; i < N; ++i) Y[i * INCY] = X[i * INCX];
        return;
    }
    if (INCX == 1 && INCY == 1) {
        /* contiguous: memcpy in blocks shared across threads runs at copy bandwidth */
        const size_t block = (size_t)1 << 16;
        PARALLEL_OVER(N)
        for (size_t start = 0; start < N; start += block)
            memcpy(Y + start, X + start, (N - start < block ? N - start : block) * sizeof(real));
        return;
    }
    PARALLEL_OVER(N)
    for (size_t i = 0; i < N; ++i) Y[i * INCY] = X[i * INCX];
}

/* X = ALPHA, strided */
IN_HOT void NAME(fill_cpu)(size_t N, real ALPHA, real *X, size_t INCX)
{
    PARALLEL_OVER(N)
    for (size_t i = 0; i < N; ++i) X[i * INCX] = ALPHA;
}

/* output[b, i, :] *= scales[i] */
IN_HOT void NAME(scale_bias)(real *output, const real *scales, size_t batch, size_t n, size_t size)
{
    PARALLEL_OVER(batch * n * size)
    for (size_t p = 0; p < batch * n; ++p)
        NAME(plane_scale)(output + p * size, scales[p % n], size);
}

/* output[b, i, :] += biases[i] */
IN_HOT void NAME(add_bias)(real *output, const real *biases, size_t batch, size_t n, size_t size)
{
    PARALLEL_OVER(batch * n * size)
    for (size_t p = 0; p < batch * n; ++p)
        NAME(plane_shift)(output + p * size, biases[p % n], size);
}

/* bias_updates[i] += sum_{b,k} delta[b, i, k]: dL/dbeta, accumulated as Darknet does */
IN_HOT void NAME(backward_bias)(real *bias_updates, const real *delta, size_t batch, size_t n,
                                size_t size)
{
    IN_FOR_CHANNEL_CHUNKS(batch * n * size, n, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_SUM, delta, NULL, NULL, NULL, c0, c1, batch, size,
                           n * size, n * size);
        for (size_t i = c0; i < c1; ++i) bias_updates[i] += (real)acc[2 * (i - c0)];
    }
}

/* scale_updates[f] += sum_{b,k} delta * x_norm: dL/dgamma of y = gamma * x_norm + beta */
IN_HOT void NAME(backward_scale_cpu)(const real *x_norm, const real *delta, size_t batch, size_t n,
                                     size_t size, real *scale_updates)
{
    IN_FOR_CHANNEL_CHUNKS(batch * n * size, n, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_DOT, delta, x_norm, NULL, NULL, c0, c1, batch, size,
                           n * size, n * size);
        for (size_t f = c0; f < c1; ++f) scale_updates[f] += (real)acc[2 * (f - c0)];
    }
}

/* mean_delta[i] = -sum_{j,k} delta / sqrt(variance[i] + 1e-5): the BN paper's dL/dmu, without
 * the term through the variance (zero for the biased variance, since sum (x - mu) = 0) */
IN_HOT void NAME(mean_delta_cpu)(const real *delta, const real *variance, size_t batch,
                                 size_t filters, size_t spatial, real *mean_delta)
{
    IN_FOR_CHANNEL_CHUNKS(batch * filters * spatial, filters, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_SUM, delta, NULL, NULL, NULL, c0, c1, batch, spatial,
                           filters * spatial, filters * spatial);
        for (size_t i = c0; i < c1; ++i)
            mean_delta[i] = (real)(acc[2 * (i - c0)] * (-1. / sqrt(variance[i] + .00001f)));
    }
}

/* variance_delta[i] = sum_{j,k} delta * (x - mean) * -1/2 (variance + 1e-5)^(-3/2): dL/dsigma^2 */
IN_HOT void NAME(variance_delta_cpu)(const real *x, const real *delta, const real *mean,
                                     const real *variance, size_t batch, size_t filters,
                                     size_t spatial, real *variance_delta)
{
    IN_FOR_CHANNEL_CHUNKS(batch * filters * spatial, filters, c0, c1) {
        double acc[2 * IN_CHUNK];
        NAME(channel_sums)(acc, IN_DOT_DEV, delta, x, NULL, mean, c0, c1, batch, spatial,
                           filters * spatial, filters * spatial);
        for (size_t i = c0; i < c1; ++i)
            variance_delta[i] =
                (real)(acc[2 * (i - c0)] * -.5 * pow(variance[i] + .00001f, (float)(-3. / 2.)));
    }
}

/* delta = delta / sqrt(variance + 1e-5) + variance_delta * 2 (x - mean) / M + mean_delta / M:
 * dL/dx, the BN paper's last backward equation */
IN_HOT void NAME(normalize_delta_cpu)(const real *x, const real *mean, const real *variance,
                                      const real *mean_delta, const real *variance_delta,
                                      size_t batch, size_t filters, size_t spatial, real *delta)
{
    double M = (double)(batch * spatial);
    PARALLEL_OVER(batch * filters * spatial)
    for (size_t p = 0; p < batch * filters; ++p) {
        size_t f = p % filters;
        real a = (real)(1. / sqrt(variance[f] + .00001f));
        real b = (real)(variance_delta[f] * 2. / M);
        real c = (real)(mean_delta[f] / M);
        real *d = delta + p * spatial;
        NAME(plane_grad)(d, d, x + p * spatial, mean[f], a, b, c, spatial);
    }
}

#undef PARALLEL_OVER
