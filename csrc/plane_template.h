/* plane_template.h: the inner loops that the BatchNorm passes are made of, instantiated for
 * real = float and real = double by the file that includes it (NAME() adds the suffix).
 *
 * A plane is one (image j, channel i) slice of an NCHW tensor: `n` = H*W contiguous values.
 * Every pass over a tensor is a loop over planes calling one of these. Sums accumulate in
 * double whatever `real` is (PyTorch's habit): float sums lose the variance of data far from 0.
 */

/* not every includer uses every loop */
#define PLANE_FN IN_HOT static IN_MAYBE_UNUSED

/* sum_k x[k] */
PLANE_FN double NAME(plane_sum)(const real *x, size_t n)
{
    double s = 0;
    IN_SIMD_SUM(s)
    for (size_t k = 0; k < n; ++k) s += x[k];
    return s;
}

/* sum_k x[k] * y[k] */
PLANE_FN double NAME(plane_dot)(const real *x, const real *y, size_t n)
{
    double s = 0;
    IN_SIMD_SUM(s)
    for (size_t k = 0; k < n; ++k) s += (double)x[k] * y[k];
    return s;
}

/* sum_k (x[k] - m)^2, the difference taken in real as Darknet's variance_cpu takes it */
PLANE_FN double NAME(plane_sumsq_dev)(const real *x, real m, size_t n)
{
    double s = 0;
    IN_SIMD_SUM(s)
    for (size_t k = 0; k < n; ++k) {
        double d = x[k] - m;
        s += d * d;
    }
    return s;
}

/* sum_k d[k] * (x[k] - m) */
PLANE_FN double NAME(plane_dot_dev)(const real *d, const real *x, real m, size_t n)
{
    double s = 0;
    IN_SIMD_SUM(s)
    for (size_t k = 0; k < n; ++k) s += (double)d[k] * (x[k] - m);
    return s;
}

/* Shifted sums, one read of x: s1 += sum_k (x[k] - K), s2 += sum_k (x[k] - K)^2.
 * With K a value of the channel, var = (s2 - s1^2/M)/M cancels only ((mean-K)/std)^2 times the
 * double rounding, where the naive E[x^2] - E[x]^2 cancels (mean/std)^2: 1e12 at mean 1e4, std 1e-2. */
PLANE_FN void NAME(plane_shifted_sums)(const real *x, double K, size_t n, double *s1, double *s2)
{
    double a = 0, b = 0;
    IN_SIMD_SUM(a, b)
    for (size_t k = 0; k < n; ++k) {
        double d = (double)x[k] - K;
        a += d;
        b += d * d;
    }
    *s1 += a;
    *s2 += b;
}

/* s1 += sum_k dy[k], s2 += sum_k dy[k] * (x[k] - m): both backward reductions in one read. */
PLANE_FN void NAME(plane_dy_sums)(const real *dy, const real *x, double m, size_t n,
                                       double *s1, double *s2)
{
    double a = 0, b = 0;
    IN_SIMD_SUM(a, b)
    for (size_t k = 0; k < n; ++k) {
        a += dy[k];
        b += dy[k] * ((double)x[k] - m);
    }
    *s1 += a;
    *s2 += b;
}

/* y[k] = (x[k] - m) * a + b; y may be x */
PLANE_FN void NAME(plane_affine_dev)(real *y, const real *x, real m, real a, real b, size_t n)
{
    for (size_t k = 0; k < n; ++k) y[k] = (x[k] - m) * a + b;
}

/* y[k] = (x[k] - m) / d, in place (Darknet's normalize_cpu divides) */
PLANE_FN void NAME(plane_div_dev)(real *x, real m, real d, size_t n)
{
    for (size_t k = 0; k < n; ++k) x[k] = (x[k] - m) / d;
}

/* out[k] = g[k] * a + (x[k] - m) * b + c; out may be g */
PLANE_FN void NAME(plane_grad)(real *out, const real *g, const real *x, real m, real a,
                                    real b, real c, size_t n)
{
    for (size_t k = 0; k < n; ++k) out[k] = g[k] * a + (x[k] - m) * b + c;
}

/* x[k] *= s */
PLANE_FN void NAME(plane_scale)(real *x, real s, size_t n)
{
    for (size_t k = 0; k < n; ++k) x[k] *= s;
}

/* x[k] += s */
PLANE_FN void NAME(plane_shift)(real *x, real s, size_t n)
{
    for (size_t k = 0; k < n; ++k) x[k] += s;
}

#undef PLANE_FN
