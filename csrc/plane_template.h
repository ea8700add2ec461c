/* plane_template.h: the inner loops that the BatchNorm passes are made of, instantiated for
 * real = float and real = double by the file that includes it (NAME() adds the suffix).
 *
 * A plane is one (image j, channel i) slice of an NCHW tensor: `n` = H*W contiguous values.
 * Every pass over a tensor is a loop over planes calling one of these. Sums accumulate in
 * double whatever `real` is (PyTorch's habit): float sums lose the variance of data far from 0.
 */

/* Inlined into the kernels that call them, and so compiled for each ISA the kernel is cloned
 * for (IN_HOT in common.h); not every includer uses every loop. */
#define PLANE_FN static inline IN_MAYBE_UNUSED

/* The sums below keep IN_LANES independent partial sums, which the compiler turns into several
 * vector accumulators: one accumulator would wait on the add latency at every step (a reduction
 * may not be reordered without -ffast-math), this way the loop runs at memory speed. Each
 * result is a fixed-order sum: the same inputs give the same bits on every run. */

/* sum_k x[k] */
PLANE_FN double NAME(plane_sum)(const real *x, size_t n)
{
    double acc[IN_LANES] = {0}, s = 0;
    size_t k = 0;
    for (; k + IN_LANES <= n; k += IN_LANES)
        for (size_t j = 0; j < IN_LANES; ++j) acc[j] += x[k + j];
    for (; k < n; ++k) s += x[k];
    return s + in_lanes_total(acc);
}

/* t[k] = x[k] where y[k] > 0, else 0, k < n (t may be x): a ReLU's mask applied, its dL/dx
 * when y is its output (both loads unconditional: a select, which vectorises) */
PLANE_FN void NAME(plane_masked)(real *t, const real *x, const real *y, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        real v = x[k];
        t[k] = y[k] > 0 ? v : 0;
    }
}

/* The masked sums mask IN_MASK_RUN values at a time into a buffer on the stack and sum
 * that with the plain loops (a branch an element mispredicts on a ReLU's mask, and GCC 12.2
 * neither vectorises a select inside the lane sums nor gets `acc += y > 0 ? x : 0` right over
 * 16 lanes: 53 for 77 on n = 20; this way 10x faster than the branches, measured). */
#define IN_MASK_RUN 512

/* sum_k x[k] * y[k] */
PLANE_FN double NAME(plane_dot)(const real *x, const real *y, size_t n)
{
    double acc[IN_LANES] = {0}, s = 0;
    size_t k = 0;
    for (; k + IN_LANES <= n; k += IN_LANES)
        for (size_t j = 0; j < IN_LANES; ++j) acc[j] += (double)x[k + j] * y[k + j];
    for (; k < n; ++k) s += (double)x[k] * y[k];
    return s + in_lanes_total(acc);
}

/* sum_k (x[k] - m)^2, the difference taken in double */
PLANE_FN double NAME(plane_sumsq_dev)(const real *x, double m, size_t n)
{
    double acc[IN_LANES] = {0}, s = 0;
    size_t k = 0;
    for (; k + IN_LANES <= n; k += IN_LANES)
        for (size_t j = 0; j < IN_LANES; ++j) acc[j] += ((double)x[k + j] - m) * ((double)x[k + j] - m);
    for (; k < n; ++k) s += ((double)x[k] - m) * ((double)x[k] - m);
    return s + in_lanes_total(acc);
}

/* sum_k (x[k] - m) */
PLANE_FN double NAME(plane_sum_dev)(const real *x, double m, size_t n)
{
    double acc[IN_LANES] = {0}, s = 0;
    size_t k = 0;
    for (; k + IN_LANES <= n; k += IN_LANES)
        for (size_t j = 0; j < IN_LANES; ++j) acc[j] += (double)x[k + j] - m;
    for (; k < n; ++k) s += (double)x[k] - m;
    return s + in_lanes_total(acc);
}

/* sum_k d[k] * (x[k] - m) */
PLANE_FN double NAME(plane_dot_dev)(const real *d, const real *x, double m, size_t n)
{
    double acc[IN_LANES] = {0}, s = 0;
    size_t k = 0;
    for (; k + IN_LANES <= n; k += IN_LANES)
        for (size_t j = 0; j < IN_LANES; ++j) acc[j] += d[k + j] * ((double)x[k + j] - m);
    for (; k < n; ++k) s += d[k] * ((double)x[k] - m);
    return s + in_lanes_total(acc);
}

/* sums[0] = sum_k d[k] and sums[1] = sum_k d[k] (x[k] - m) where y[k] > 0 (dy masked by a
 * ReLU's output y), a run at a time: each run masked once into a buffer on the stack, then both
 * sums read it from L1 */
PLANE_FN void NAME(plane_dy_sums_where)(double *sums, const real *d, const real *y, const real *x,
                                        double m, size_t n)
{
    real t[IN_MASK_RUN];
    sums[0] = sums[1] = 0;
    for (size_t k = 0; k < n; k += IN_MASK_RUN) {
        size_t len = n - k < IN_MASK_RUN ? n - k : IN_MASK_RUN;
        NAME(plane_masked)(t, d + k, y + k, len);
        sums[0] += NAME(plane_sum)(t, len);
        sums[1] += NAME(plane_dot_dev)(t, x + k, m, len);
    }
}

/* acc[2(c - c0)], acc[2(c - c0) + 1] = the reduction `op` over the planes of channel c, images
 * in order, for c in [c0, c1). `center` is the per-channel m of the *_DEV and DY ops; the shift
 * of IN_SHIFTED_SUMS is the channel's first value. `b` is the second operand of DOT ops.
 * `mask`, for IN_DY_SUMS only, NULL or a ReLU's output: a counts as 0 where mask <= 0.
 * a and mask are (B, C, S) with images a_image apart (C * S, or more for a channel slice of a
 * larger tensor), b likewise b_image apart. */
PLANE_FN void NAME(channel_sums)(double *acc, in_reduction op, const real *a, const real *b,
                                 const real *mask, const real *center, size_t c0, size_t c1,
                                 size_t B, size_t S, size_t a_image, size_t b_image)
{
    for (size_t i = 0; i < 2 * (c1 - c0); ++i) acc[i] = 0;
    for (size_t j = 0; j < B; ++j)
        for (size_t c = c0; c < c1; ++c) {
            const size_t at = j * a_image + c * S, bt = j * b_image + c * S;
            double *s = acc + 2 * (c - c0);
            switch (op) {
            case IN_SUM: s[0] += NAME(plane_sum)(a + at, S); break;
            case IN_DOT: s[0] += NAME(plane_dot)(a + at, b + bt, S); break;
            case IN_SUMSQ_DEV: s[0] += NAME(plane_sumsq_dev)(a + at, center[c], S); break;
            case IN_DOT_DEV: s[0] += NAME(plane_dot_dev)(a + at, b + bt, center[c], S); break;
            case IN_SHIFTED_SUMS: /* see batchnorm_forward_train; the second read hits L1 */
                s[0] += NAME(plane_sum_dev)(a + at, a[c * S], S);
                s[1] += NAME(plane_sumsq_dev)(a + at, a[c * S], S);
                break;
            case IN_DY_SUMS: /* sum dy, sum dy (x - m): the second read of the plane hits L1 */
                if (mask) {
                    double plane[2];
                    NAME(plane_dy_sums_where)(plane, a + at, mask + at, b + bt, center[c], S);
                    s[0] += plane[0];
                    s[1] += plane[1];
                } else {
                    s[0] += NAME(plane_sum)(a + at, S);
                    s[1] += NAME(plane_dot_dev)(a + at, b + bt, center[c], S);
                }
                break;
            }
        }
}

/* y[k] = (x[k] - m) * a + b; y may be x */
PLANE_FN void NAME(plane_affine_dev)(real *y, const real *x, real m, real a, real b, size_t n)
{
    for (size_t k = 0; k < n; ++k) y[k] = (x[k] - m) * a + b;
}

/* y[k] = max((x[k] - m) * a + b, 0), NaN kept (a ReLU in the store); y may be x */
PLANE_FN void NAME(plane_affine_dev_relu)(real *y, const real *x, real m, real a, real b, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        real t = (x[k] - m) * a + b;
        y[k] = t < 0 ? 0 : t;
    }
}

/* y[k] = (x[k] - m) / d, in place (Darknet's normalize_cpu divides) */
PLANE_FN void NAME(plane_div_dev)(real *x, real m, real d, size_t n)
{
    for (size_t k = 0; k < n; ++k) x[k] = (x[k] - m) / d;
}

/* out[k] = g[k] * a + (x[k] - m) * b + c; out may be g */
PLANE_FN void NAME(plane_grad)(real *out, const real *g, const real *x, real m, real a, real b,
                               real c, size_t n)
{
    for (size_t k = 0; k < n; ++k) out[k] = g[k] * a + (x[k] - m) * b + c;
}

/* out[k] = (y[k] > 0 ? g[k] : 0) * a + (x[k] - m) * b + c: plane_grad of g masked by a ReLU's
 * output y; out may be g */
PLANE_FN void NAME(plane_grad_where)(real *out, const real *g, const real *y, const real *x, real m,
                                     real a, real b, real c, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        real v = g[k]; /* loaded whatever the mask: a select, not a branch */
        out[k] = (y[k] > 0 ? v : 0) * a + (x[k] - m) * b + c;
    }
}

/* x[k] = max(x[k] + s, 0), NaN kept */
PLANE_FN void NAME(plane_shift_relu)(real *x, real s, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        real t = x[k] + s;
        x[k] = t < 0 ? 0 : t;
    }
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
