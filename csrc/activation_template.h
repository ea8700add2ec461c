/* activation_template.h: elementwise layers and the loss, forward and backward, for
 * real = float and double (activation.c instantiates it).
 *
 * Legend: n elements; x, y, dy, dx, mask of n; logits, probs, dlogits (N, K) with labels (N).
 * ReLU keeps its output for the backward (y > 0 <=> x > 0), so both directions may run in place.
 */

#define PARALLEL_OVER(n) IN_PRAGMA(omp parallel for schedule(static) if ((n) >= IN_PARALLEL_MIN))

/* y = max(x, 0); y may be x. NaN stays NaN. */
void NAME(relu_forward)(real *y, const real *x, size_t n)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? 0 : x[i];
}

/* y[b, c, s] = act(x[b, c, s] * scale[c] + shift[c]) for b < B, c < C, s < S, the images
 * x_image and y_image values apart (each tensor C-contiguous or a channel slice of a larger
 * one); scale NULL: the product skipped; act ReLU (NaN stays NaN) when relu, else the identity.
 * One pass where copy, scale_bias, add_bias and relu_forward take four, with their bits: the
 * product and the sum are rounded apart (ISO C mode does not contract them into an FMA). y may
 * be x. */
void NAME(channel_affine_forward)(real *y, const real *x, const real *scale, const real *shift,
                                  size_t B, size_t C, size_t S, size_t x_image, size_t y_image,
                                  int relu)
{
    PARALLEL_OVER(B * C * S)
    for (size_t q = 0; q < B * C; ++q) {
        size_t b = q / C, c = q % C;
        const real *xp = x + b * x_image + c * S;
        real *yp = y + b * y_image + c * S, h = shift[c];
        for (size_t s = 0; s < S; ++s) {
            real v = (scale ? xp[s] * scale[c] : xp[s]) + h;
            yp[s] = relu && v < 0 ? 0 : v;
        }
    }
}

/* dx = dy where y > 0, else 0; dx may be dy. Both loads unconditional: a select, which
 * vectorises (a conditional load of dy became a branch an element: 10x slower on a ReLU's
 * mask, measured). */
IN_HOT void NAME(relu_backward)(real *dx, const real *dy, const real *y, size_t n)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) {
        real d = dy[i];
        dx[i] = y[i] > 0 ? d : 0;
    }
}

/* Inverted dropout: element i is kept when u_i >= p, u_i = in_uniform24(seed, i) in [0, 1);
 * mask = kept / (1 - p), y = x * mask (y may be x). p < 1 (checked by the caller). */
void NAME(dropout_forward)(real *y, real *mask, const real *x, size_t n, double p, uint64_t seed)
{
    const real scale = (real)(1.0 / (1.0 - p));
    const double threshold = p * IN_UNIFORM24_ONE;
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) {
        mask[i] = (double)in_uniform24(seed, i) >= threshold ? scale : 0;
        y[i] = x[i] * mask[i];
    }
}

/* dx = dy * mask; dx may be dy (also dropout's inverse: mask is the Jacobian's diagonal) */
void NAME(dropout_backward)(real *dx, const real *dy, const real *mask, size_t n)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * mask[i];
}

/* Channel concatenation of one input: y[b, offset + c, :] = x[b, c, :] for c < Cx, y having Cy
 * channels of S values. concat_backward (the split) is the same copy the other way. */
void NAME(concat_forward)(real *y, const real *x, size_t B, size_t Cx, size_t Cy, size_t offset,
                          size_t S)
{
    PARALLEL_OVER(B * Cx * S)
    for (size_t b = 0; b < B; ++b)
        memcpy(y + (b * Cy + offset) * S, x + b * Cx * S, Cx * S * sizeof(real));
}

void NAME(concat_backward)(real *dx, const real *dy, size_t B, size_t Cx, size_t Cy,
                           size_t offset, size_t S)
{
    PARALLEL_OVER(B * Cx * S)
    for (size_t b = 0; b < B; ++b)
        memcpy(dx + b * Cx * S, dy + (b * Cy + offset) * S, Cx * S * sizeof(real));
}

/* Softmax cross-entropy with label smoothing e, mean over the N rows, one row at a time in double:
 *     m = max_k z_k,  lse = m + log sum_k exp(z_k - m),  probs_k = exp(z_k - lse)
 *     q = (1 - e) onehot(label) + e / K
 *     loss_n = -sum_k q_k log probs_k = lse - (1 - e) z_label - (e / K) sum_k z_k
 * Subtracting the max keeps exp() <= 1: logits of 1e4 neither overflow nor lose the loss.
 * Returns the mean loss; probs are written for the backward. */
double NAME(softmax_cross_entropy_forward)(real *probs, const real *logits, const int64_t *labels,
                                           size_t N, size_t K, double e)
{
    double total = 0;
    IN_PRAGMA(omp parallel for schedule(static) reduction(+ : total) if (N * K >= IN_PARALLEL_MIN))
    for (size_t n = 0; n < N; ++n) {
        const real *z = logits + n * K;
        real *pr = probs + n * K;
        double m = z[0], s = 0, zsum = 0;
        for (size_t k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;
        for (size_t k = 0; k < K; ++k) {
            s += exp((double)z[k] - m);
            zsum += z[k];
        }
        double lse = m + log(s);
        for (size_t k = 0; k < K; ++k) pr[k] = (real)exp((double)z[k] - lse);
        total += lse - (1 - e) * z[labels[n]] - e / (double)K * zsum;
    }
    return total / (double)N;
}

/* dlogits = dloss * (probs - q) / N: the gradient of dloss * mean loss; dlogits may be probs */
void NAME(softmax_cross_entropy_backward)(real *dlogits, const real *probs, const int64_t *labels,
                                          size_t N, size_t K, double e, double dloss)
{
    const double a = dloss / (double)N, off = e / (double)K;
    PARALLEL_OVER(N * K)
    for (size_t n = 0; n < N; ++n) {
        for (size_t k = 0; k < K; ++k) {
            double q = off + ((size_t)labels[n] == k ? 1 - e : 0);
            dlogits[n * K + k] = (real)(a * ((double)probs[n * K + k] - q));
        }
    }
}

/* ---- Darknet's activations and softmax (darknet.cfg's leaky, logistic, [softmax]) ---------
 * Each value is computed in double and rounded once, as Darknet's C computes them (its 0.1 and
 * exp() are double): y = x > 0 ? x : slope * x (leaky; Darknet's slope is 0.1) and
 * y = 1 / (1 + exp(-x)) (logistic). Both backwards read the forward's output y, so both
 * directions may run in place: leaky's dy/dx is 1 where y > 0 (<=> x > 0, slope >= 0), else
 * slope; logistic's is y (1 - y). */

/* y = x > 0 ? x : slope * x; y may be x. slope >= 0 (checked by the caller). */
void NAME(leaky_relu_forward)(real *y, const real *x, size_t n, double slope)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : (real)(slope * (double)x[i]);
}

/* dx = dy where y > 0, else slope * dy; dx may be dy */
void NAME(leaky_relu_backward)(real *dx, const real *dy, const real *y, size_t n, double slope)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0 ? dy[i] : (real)(slope * (double)dy[i]);
}

/* y = 1 / (1 + exp(-x)); y may be x */
void NAME(logistic_forward)(real *y, const real *x, size_t n)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) y[i] = (real)(1.0 / (1.0 + exp(-(double)x[i])));
}

/* dx = dy * y * (1 - y); dx may be dy */
void NAME(logistic_backward)(real *dx, const real *dy, const real *y, size_t n)
{
    PARALLEL_OVER(n)
    for (size_t i = 0; i < n; ++i) dx[i] = (real)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
}

/* Softmax of each row of x (N, K), in double: m = max_k x_k, s = sum_k exp(x_k - m),
 * y_k = exp(x_k - m) / s (Darknet's softmax, temperature 1, its sum in double). y may be x. */
void NAME(softmax_forward)(real *y, const real *x, size_t N, size_t K)
{
    PARALLEL_OVER(N * K)
    for (size_t n = 0; n < N; ++n) {
        const real *z = x + n * K;
        real *out = y + n * K;
        double m = z[0], s = 0;
        for (size_t k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;
        for (size_t k = 0; k < K; ++k) s += exp((double)z[k] - m);
        for (size_t k = 0; k < K; ++k) out[k] = (real)(exp((double)z[k] - m) / s);
    }
}

/* The softmax's Jacobian (diag(y) - y y^T) times dy, row by row:
 *     dx_k = y_k (dy_k - sum_j dy_j y_j)
 * dx may be dy (the row's dot product is taken before the row is written). */
void NAME(softmax_backward)(real *dx, const real *dy, const real *y, size_t N, size_t K)
{
    PARALLEL_OVER(N * K)
    for (size_t n = 0; n < N; ++n) {
        const real *g = dy + n * K, *p = y + n * K;
        double dot = 0;
        for (size_t k = 0; k < K; ++k) dot += (double)g[k] * (double)p[k];
        for (size_t k = 0; k < K; ++k) dx[n * K + k] = (real)((double)p[k] * ((double)g[k] - dot));
    }
}

#undef PARALLEL_OVER
