/* pool_template.h: max, average, adaptive average and global average pooling, forward and
 * backward, for real = float and double (pool.c instantiates it).
 *
 * Legend: x, dx (B, C, H, W); y, dy (B, C, oh, ow); P = B*C planes; kernel kh x kw, strides sh,
 * sw, paddings ph, pw. Window (oy, ox) covers rows oy*sh - ph .. oy*sh - ph + kh - 1 (likewise
 * columns); the caller computes oh, ow (floor or ceil mode, PyTorch's rule: the last window
 * starts inside the image or its left padding) and checks ph <= kh/2, pw <= kw/2, so every
 * window holds at least one pixel. Padding is never a value: max ignores it, average counts it
 * or not (count_include_pad) but never sums it.
 */

#include "plane_template.h"

#define PARALLEL_OVER(n) IN_PRAGMA(omp parallel for schedule(static) if ((n) >= IN_PARALLEL_MIN))
#define IN_POOL_LANES 128
#define IN_POOL_SPAN 1024  /* columns of the folded row of max pooling without argmax */
#define IN_POOL_KERNEL_COLUMNS 64  /* kernels up to this wide have their tap ranges computed once */

/* The window [*start, *end) of output index o along one axis, clipped to [0, n); returns its
 * length before clipping to the image but after clipping to the padded image (PyTorch's
 * count_include_pad divisor along this axis). */
static size_t NAME(window)(size_t *start, size_t *end, size_t o, size_t k, size_t s, size_t p,
                           size_t n)
{
    ptrdiff_t a = (ptrdiff_t)(o * s) - (ptrdiff_t)p, b = a + (ptrdiff_t)k;
    if (b > (ptrdiff_t)(n + p)) b = (ptrdiff_t)(n + p);
    size_t padded = (size_t)(b - a);
    *start = a < 0 ? 0 : (size_t)a;
    *end = b > (ptrdiff_t)n ? n : (size_t)b;
    return padded;
}

/* One window tap for output columns [lo, hi) of a lane block starting at c0: pixel
 * row[ox*s + off] against the running maximum m (the first tap, best < 0, always takes). */
static inline void NAME(max_tap)(real *m, int64_t *best, const real *row, size_t row_start,
                                 ptrdiff_t off, size_t s, size_t c0, size_t lo, size_t hi)
{
    for (size_t ox = lo; ox < hi; ++ox) {
        size_t k = ox - c0, at = (size_t)((ptrdiff_t)(ox * s) + off);
        real v = row[at];
        int take = (best[k] < 0) | (v > m[k]) | ((v != v) & (m[k] == m[k]));
        m[k] = take ? v : m[k];
        best[k] = take ? (int64_t)(row_start + at) : best[k];
    }
}

/* The output columns [*lo, *hi) within [c0, c0 + n) whose tap at kernel column j (offset off)
 * falls inside the row: from valid (computed once per call) or, for a kernel wider than
 * IN_POOL_KERNEL_COLUMNS (valid NULL), computed here. */
static inline void NAME(tap_range)(size_t *lo, size_t *hi, const size_t *valid, size_t j,
                                   ptrdiff_t off, size_t sw, size_t W, size_t ow, size_t c0,
                                   size_t n)
{
    if (valid) {
        *lo = valid[2 * j];
        *hi = valid[2 * j + 1];
    } else {
        in_valid_range(lo, hi, off, sw, W, ow);
    }
    *lo = *lo > c0 ? *lo : c0;
    *hi = *hi < c0 + n ? *hi : c0 + n;
}

/* One window tap without argmax (inference): m starts at -inf, a larger pixel or a first NaN
 * takes, so the maximum (a NaN wins) is the one max_tap finds, with half its work. */
static inline void NAME(max_tap_value)(real *m, const real *row, ptrdiff_t off, size_t s,
                                       size_t c0, size_t lo, size_t hi)
{
    for (size_t ox = lo; ox < hi; ++ox) {
        real v = row[(size_t)((ptrdiff_t)(ox * s) + off)], *mk = m + (ox - c0);
        *mk = ((v > *mk) | ((v != v) & (*mk == *mk))) ? v : *mk;
    }
}

/* Output columns [c0, c0 + n) of one output row of max pooling, window rows [y0, y1); arow
 * NULL: no argmax (inference). Lanes run across output columns: for each window row and kernel
 * column, every output column compares its pixel at once. (Window by window, the compares form
 * one long dependency chain.) Taps are visited in the window's row-major order, so the first
 * maximum wins, as it would. Strides 1 and 2 get their own copy of the tap loop, which the
 * compiler vectorises. */
IN_HOT static void NAME(max_pool_columns)(real *yrow, int64_t *arow, const real *xp, size_t W,
                                          size_t y0, size_t y1, const size_t *valid, size_t ow,
                                          size_t kw, size_t sw, size_t pw, size_t c0, size_t n)
{
    real m[IN_POOL_LANES];
    int64_t best[IN_POOL_LANES];
    for (size_t k = 0; k < n; ++k) {
        m[k] = arow ? 0 : (real)-INFINITY;
        best[k] = -1;  /* no tap yet */
    }
    /* Without argmax, the window rows fold first into one row v of the columns these windows
     * touch (contiguous loads), then the kernel's columns run on v alone. */
    ptrdiff_t first = (ptrdiff_t)(c0 * sw) - (ptrdiff_t)pw;
    size_t a = first < 0 ? 0 : (size_t)first, b = (c0 + n - 1) * sw + kw - pw;
    b = b < W ? b : W;
    if (!arow && a < b && b - a <= IN_POOL_SPAN) {
        real v[IN_POOL_SPAN];
        memcpy(v, xp + y0 * W + a, (b - a) * sizeof(real));
        for (size_t iy = y0 + 1; iy < y1; ++iy) {
            const real *row = xp + iy * W + a;
            for (size_t k = 0; k < b - a; ++k)
                v[k] = ((row[k] > v[k]) | ((row[k] != row[k]) & (v[k] == v[k]))) ? row[k] : v[k];
        }
        for (size_t j = 0; j < kw; ++j) {
            ptrdiff_t off = (ptrdiff_t)j - (ptrdiff_t)pw;
            size_t lo, hi;
            NAME(tap_range)(&lo, &hi, valid, j, off, sw, W, ow, c0, n);
            if (sw == 1) NAME(max_tap_value)(m, v, off - (ptrdiff_t)a, 1, c0, lo, hi);
            else if (sw == 2) NAME(max_tap_value)(m, v, off - (ptrdiff_t)a, 2, c0, lo, hi);
            else NAME(max_tap_value)(m, v, off - (ptrdiff_t)a, sw, c0, lo, hi);
        }
        y0 = y1;  /* done: the loop below has no rows left */
    }
    for (size_t iy = y0; iy < y1; ++iy) {
        for (size_t j = 0; j < kw; ++j) {
            ptrdiff_t off = (ptrdiff_t)j - (ptrdiff_t)pw;
            size_t lo, hi;
            NAME(tap_range)(&lo, &hi, valid, j, off, sw, W, ow, c0, n);
            const real *row = xp + iy * W;
            if (!arow && sw == 1) NAME(max_tap_value)(m, row, off, 1, c0, lo, hi);
            else if (!arow && sw == 2) NAME(max_tap_value)(m, row, off, 2, c0, lo, hi);
            else if (!arow) NAME(max_tap_value)(m, row, off, sw, c0, lo, hi);
            else if (sw == 1) NAME(max_tap)(m, best, row, iy * W, off, 1, c0, lo, hi);
            else if (sw == 2) NAME(max_tap)(m, best, row, iy * W, off, 2, c0, lo, hi);
            else NAME(max_tap)(m, best, row, iy * W, off, sw, c0, lo, hi);
        }
    }
    memcpy(yrow + c0, m, n * sizeof(real));
    if (arow) memcpy(arow + c0, best, n * sizeof(int64_t));
}

/* y = max over the window, argmax = its plane index iy*W + ix (the first maximum; NaN wins,
 * as in PyTorch); argmax NULL: y alone (inference). One read of x, one write of y (and argmax). */
void NAME(max_pool2d_forward)(real *y, int64_t *argmax, const real *x, size_t P, size_t H,
                              size_t W, size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                              size_t sw, size_t ph, size_t pw)
{
    size_t ranges[2 * IN_POOL_KERNEL_COLUMNS];
    size_t *valid = kw <= IN_POOL_KERNEL_COLUMNS ? ranges : NULL;
    for (size_t j = 0; valid && j < kw; ++j)
        in_valid_range(valid + 2 * j, valid + 2 * j + 1, (ptrdiff_t)j - (ptrdiff_t)pw, sw, W, ow);
    PARALLEL_OVER(P * H * W)
    for (size_t p = 0; p < P; ++p) {
        for (size_t oy = 0; oy < oh; ++oy) {
            size_t y0, y1, r = (p * oh + oy) * ow;
            NAME(window)(&y0, &y1, oy, kh, sh, ph, H);
            for (size_t c0 = 0; c0 < ow; c0 += IN_POOL_LANES)
                NAME(max_pool_columns)(y + r, argmax ? argmax + r : NULL, x + p * H * W, W, y0,
                                       y1, valid, ow, kw, sw, pw, c0,
                                       ow - c0 < IN_POOL_LANES ? ow - c0 : IN_POOL_LANES);
        }
    }
}

/* dx = 0, then dx[argmax] += dy. Returns the number of argmax entries outside [0, H*W), which
 * are skipped (the wrapper raises): a corrupted argmax never writes out of bounds. */
size_t NAME(max_pool2d_backward)(real *dx, const real *dy, const int64_t *argmax, size_t P,
                                 size_t HW, size_t ohw)
{
    size_t bad = 0;
    PARALLEL_OVER(P * HW)
    for (size_t p = 0; p < P; ++p) {
        real *dxp = dx + p * HW;
        memset(dxp, 0, HW * sizeof(real));
        for (size_t k = 0; k < ohw; ++k) {
            int64_t i = argmax[p * ohw + k];
            if (i < 0 || (uint64_t)i >= HW) {
#ifdef _OPENMP
#pragma omp atomic
#endif
                ++bad;
                continue;
            }
            dxp[i] += dy[p * ohw + k];
        }
    }
    return bad;
}

/* sum of the rectangle rows [y0, y1) x columns [x0, x1) of a plane of width W, row by row, in
 * double */
static inline double NAME(rect_sum)(const real *xp, size_t W, size_t y0, size_t y1, size_t x0,
                                    size_t x1)
{
    double sum = 0;
    for (size_t iy = y0; iy < y1; ++iy)
        for (size_t ix = x0; ix < x1; ++ix) sum += xp[iy * W + ix];
    return sum;
}

/* g added to every pixel of the rectangle rows [y0, y1) x columns [x0, x1) */
static inline void NAME(rect_add)(real *dxp, size_t W, size_t y0, size_t y1, size_t x0,
                                  size_t x1, real g)
{
    for (size_t iy = y0; iy < y1; ++iy)
        for (size_t ix = x0; ix < x1; ++ix) dxp[iy * W + ix] += g;
}

#ifndef IN_POOL_AXIS
#define IN_POOL_AXIS
/* How one axis of n pixels is pooled to m outputs: a sliding window (kernel k, stride s,
 * padding p) or, with k = 0, adaptively (PyTorch's adaptive_avg_pool2d: output i averages
 *     [floor(i*n/m), ceil((i+1)*n/m)),
 * never empty and inside [0, n); 14 -> 4: [0,4) [3,7) [7,11) [10,14); m > n repeats pixels,
 * 2 -> 3: [0,1) [0,2) [1,2). The caller checks 1 <= m, n < 2^31, so (i+1)*n fits.) */
typedef struct { size_t n, m, k, s, p; } in_pool_axis;

/* The divisor of window rows [y0, y1) x columns [x0, x1), of padded lengths ny, nx. */
static inline double in_pool_divisor(size_t ny, size_t nx, size_t y0, size_t y1, size_t x0,
                                     size_t x1, int count_include_pad)
{
    return (double)(count_include_pad ? ny * nx : (y1 - y0) * (x1 - x0));
}
#endif

/* The window [*start, *end) of output o along axis a; returns its length counting the padding
 * (the count_include_pad divisor's factor; adaptive windows have none). */
static size_t NAME(axis_window)(size_t *start, size_t *end, size_t o, in_pool_axis a)
{
    if (a.k)
        return NAME(window)(start, end, o, a.k, a.s, a.p, a.n);
    *start = o * a.n / a.m;
    *end = ((o + 1) * a.n + a.m - 1) / a.m;
    return *end - *start;
}

/* y[p, oy, ox] = the window's sum (in double) / its divisor; one read of x, one write of y. */
static void NAME(average_forward)(real *y, const real *x, size_t P, in_pool_axis rows,
                                  in_pool_axis cols, int count_include_pad)
{
    size_t H = rows.n, W = cols.n, oh = rows.m, ow = cols.m;
    PARALLEL_OVER(P * H * W)
    for (size_t p = 0; p < P; ++p) {
        for (size_t oy = 0; oy < oh; ++oy) {
            size_t y0, y1, x0, x1;
            size_t ny = NAME(axis_window)(&y0, &y1, oy, rows);
            for (size_t ox = 0; ox < ow; ++ox) {
                size_t nx = NAME(axis_window)(&x0, &x1, ox, cols);
                double sum = NAME(rect_sum)(x + p * H * W, W, y0, y1, x0, x1);
                y[(p * oh + oy) * ow + ox] =
                    (real)(sum / in_pool_divisor(ny, nx, y0, y1, x0, x1, count_include_pad));
            }
        }
    }
}

/* dx = 0, then every window adds dy[p, oy, ox] / its divisor to each of its pixels: the
 * adjoint of the forward. */
static void NAME(average_backward)(real *dx, const real *dy, size_t P, in_pool_axis rows,
                                   in_pool_axis cols, int count_include_pad)
{
    size_t H = rows.n, W = cols.n, oh = rows.m, ow = cols.m;
    PARALLEL_OVER(P * H * W)
    for (size_t p = 0; p < P; ++p) {
        real *dxp = dx + p * H * W;
        memset(dxp, 0, H * W * sizeof(real));
        for (size_t oy = 0; oy < oh; ++oy) {
            size_t y0, y1, x0, x1;
            size_t ny = NAME(axis_window)(&y0, &y1, oy, rows);
            for (size_t ox = 0; ox < ow; ++ox) {
                size_t nx = NAME(axis_window)(&x0, &x1, ox, cols);
                double d = in_pool_divisor(ny, nx, y0, y1, x0, x1, count_include_pad);
                NAME(rect_add)(dxp, W, y0, y1, x0, x1, (real)(dy[(p * oh + oy) * ow + ox] / d));
            }
        }
    }
}

/* Average pooling: the divisor is the window's size within the padded image (count_include_pad,
 * PyTorch's default) or within the image. */
void NAME(avg_pool2d_forward)(real *y, const real *x, size_t P, size_t H, size_t W, size_t oh,
                              size_t ow, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                              size_t pw, int count_include_pad)
{
    NAME(average_forward)(y, x, P, (in_pool_axis){H, oh, kh, sh, ph},
                          (in_pool_axis){W, ow, kw, sw, pw}, count_include_pad);
}

void NAME(avg_pool2d_backward)(real *dx, const real *dy, size_t P, size_t H, size_t W, size_t oh,
                               size_t ow, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                               size_t pw, int count_include_pad)
{
    NAME(average_backward)(dx, dy, P, (in_pool_axis){H, oh, kh, sh, ph},
                           (in_pool_axis){W, ow, kw, sw, pw}, count_include_pad);
}

/* Adaptive average pooling H x W -> oh x ow (in_pool_axis with k = 0): the mean of each window. */
void NAME(adaptive_avg_pool2d_forward)(real *y, const real *x, size_t P, size_t H, size_t W,
                                       size_t oh, size_t ow)
{
    NAME(average_forward)(y, x, P, (in_pool_axis){H, oh, 0, 0, 0}, (in_pool_axis){W, ow, 0, 0, 0},
                          0);
}

void NAME(adaptive_avg_pool2d_backward)(real *dx, const real *dy, size_t P, size_t H, size_t W,
                                        size_t oh, size_t ow)
{
    NAME(average_backward)(dx, dy, P, (in_pool_axis){H, oh, 0, 0, 0},
                           (in_pool_axis){W, ow, 0, 0, 0}, 0);
}

/* y[p] = sum_k x[p, k] / S, summed in double */
void NAME(global_avg_pool_forward)(real *y, const real *x, size_t P, size_t S)
{
    PARALLEL_OVER(P * S)
    for (size_t p = 0; p < P; ++p) y[p] = (real)(NAME(plane_sum)(x + p * S, S) / (double)S);
}

/* dx[p, k] = dy[p] / S */
void NAME(global_avg_pool_backward)(real *dx, const real *dy, size_t P, size_t S)
{
    PARALLEL_OVER(P * S)
    for (size_t p = 0; p < P; ++p) {
        real g = (real)(dy[p] / (double)S);
        for (size_t k = 0; k < S; ++k) dx[p * S + k] = g;
    }
}

#undef PARALLEL_OVER
#undef IN_POOL_LANES
