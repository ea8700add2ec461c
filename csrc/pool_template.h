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
#define IN_POOL_KERNEL_COLUMNS 64  /* kernels up to this wide have their tap ranges computed once */
#define IN_POOL_CHUNK 512  /* values a buffer of the same-size and tiled passes holds */

/* The forward passes stream through x plane by plane, in order; the hardware's prefetcher alone
 * leaves one core reading at about 2/3 of its copy bandwidth (3x3/2 pools at batch 16, measured),
 * so each step asks for the values it will read IN_POOL_PREFETCH bytes on. */
#define IN_POOL_PREFETCH 4096

#ifndef IN_POOL_GEOMETRY
#define IN_POOL_GEOMETRY
/* A sliding window's geometry: input H x W, output oh x ow, kernel kh x kw, strides sh, sw,
 * paddings ph, pw. */
typedef struct { size_t H, W, oh, ow, kh, kw, sh, sw, ph, pw; } in_pool_geometry;

/* The row passes work on a padded row r of this length: pw fill values, the W pixels, fill up
 * to the last window's end (which ceil mode may put past the right padding). */
static inline size_t in_pool_row_length(in_pool_geometry g)
{
    size_t last = (g.ow - 1) * g.sw + g.kw, image = g.pw + g.W;
    return last > image ? last : image;
}
#endif

#ifndef IN_POOL_INVALID_FLAG
#define IN_POOL_INVALID_FLAG
/* The calling thread's invalid-operation flag (the status of its vector unit): read, cleared,
 * set back. On x86-64 the SSE status register (MXCSR, bit 0) alone: reading it takes a few
 * cycles, where fetestexcept and feclearexcept also store and reload the x87 environment (about
 * 0.1 us a call, which cost more than the kernel saved on a 28x28 plane). */
#if defined(__GNUC__) && defined(__x86_64__)
static inline int in_invalid_raised(void) { return __builtin_ia32_stmxcsr() & 1; }
static inline void in_invalid_set(int raised)
{
    __builtin_ia32_ldmxcsr((__builtin_ia32_stmxcsr() & ~1u) | (raised ? 1u : 0u));
}
#else
static inline int in_invalid_raised(void) { return fetestexcept(FE_INVALID) != 0; }
static inline void in_invalid_set(int raised)
{
    if (raised) feraiseexcept(FE_INVALID);
    else feclearexcept(FE_INVALID);
}
#endif
#endif

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

/* The running maximum m after v: a NaN wins (a later NaN replaces an earlier one, whose
 * payload is lost; every NaN equals no value, so nothing downstream tells them apart). v > m ? v
 * : m is one vector max instruction (which gives m when either is NaN), and the select on v a
 * compare and a blend: three instructions, in the form GCC 12 keeps (`m != m ? m : ...` makes it
 * spill the chained selects of a 3-row fold into a dozen mask operations). Of two equal values
 * it keeps m, which only tells -0 from +0. */
static inline real NAME(max_nan)(real m, real v)
{
    real larger = v > m ? v : m;
    return v != v ? v : larger;
}

/* r[k] = max(r[k], row[k]) for k < n: one more window row folded into the running row */
static inline void NAME(fold_max)(real *r, const real *row, size_t n)
{
    for (size_t k = 0; k < n; ++k) r[k] = NAME(max_nan)(r[k], row[k]);
}

/* Prefetches the cache lines of the n values from x + IN_POOL_PREFETCH bytes on (an address
 * past the end of x is harmless: a prefetch never faults) */
static inline void NAME(prefetch)(const real *x, size_t n)
{
    uintptr_t at = (uintptr_t)x + IN_POOL_PREFETCH;
    for (size_t a = 0; a < n * sizeof(real); a += 64)
        __builtin_prefetch((const void *)(at + a), 0, 3);
}

/* Asks for the cache lines of the n values from y on, to be written: the next chunk's output,
 * while this one runs. An arena's output is often out of cache (the weights of a network's
 * layers stream through it): a 192 x 28x28 pool at batch 1 took 94 us writing to memory against
 * 55 us to cache. An integer address: y + n may lie past the output's end. */
static inline void NAME(prefetch_output)(real *y, size_t n)
{
    uintptr_t at = (uintptr_t)y;
    for (size_t a = 0; a < n * sizeof(real); a += 64) __builtin_prefetch((void *)(at + a), 1, 3);
}

/* The running maximum's row (or column) f after v, number i: i when v is the first larger value
 * or the first NaN (m, the maximum before v, is not), else f; the first of equal values keeps its
 * place, so f ends at the first pixel max_nan's maximum equals (a NaN: the first NaN) */
static inline real NAME(first_place)(real f, real m, real v, real i)
{
    int take = (v > m) | ((v != v) & (m == m));
    return take ? i : f;
}

/* r[k] = max over i < count of x[k + i*W], k < n (a NaN wins): count rows W apart folded in
 * one pass, one read of each and one write of r. With a (a forward that keeps its taps, else
 * NULL) also a[k] = i0 + the first i holding r[k] (first_place), a real so that its selects run
 * in r's lanes. */
static inline void NAME(max_rows)(real *restrict r, real *restrict a, const real *restrict x,
                                  size_t W, size_t count, size_t n, real i0)
{
    if (!a) {
        for (size_t k = 0; k < n; ++k) {
            real m = x[k];
            for (size_t i = 1; i < count; ++i) m = NAME(max_nan)(m, x[k + i * W]);
            r[k] = m;
        }
        return;
    }
    for (size_t k = 0; k < n; ++k) {
        real m = x[k], f = i0;
        for (size_t i = 1; i < count; ++i) {
            real v = x[k + i * W];
            f = NAME(first_place)(f, m, v, i0 + (real)i);
            m = NAME(max_nan)(m, v);
        }
        r[k] = m, a[k] = f;
    }
}

/* max_rows with a, for a count that is no constant: a pass a row, vectorised over k whatever
 * count (max_rows' loop over k vectorises with count a constant only, its rows unrolled) */
static inline void NAME(first_rows)(real *restrict r, real *restrict a, const real *restrict x,
                                    size_t W, size_t count, size_t n, real i0)
{
    for (size_t k = 0; k < n; ++k) r[k] = x[k], a[k] = i0;
    for (size_t i = 1; i < count; ++i) {
        real at = i0 + (real)i;
        for (size_t k = 0; k < n; ++k) {
            real v = x[k + i * W];
            a[k] = NAME(first_place)(a[k], r[k], v, at);
            r[k] = NAME(max_nan)(r[k], v);
        }
    }
}

/* r[k] = sum over i < count of x[k + i*W] in double, k < n: max_rows' sum */
static inline void NAME(sum_rows)(double *restrict r, const real *restrict x, size_t W,
                                  size_t count, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        double s = x[k];
        for (size_t i = 1; i < count; ++i) s += x[k + i * W];
        r[k] = s;
    }
}

/* max_rows (average 0, r reals) or sum_rows (average 1, r doubles), the counts of a 3-row
 * window (3, and 2 at a padded edge) constants: the inner loop unrolled, the outer vectorised */
static inline void NAME(window_rows)(void *r, const real *x, size_t W, size_t count, size_t n,
                                     int average)
{
    if (average && count == 3) NAME(sum_rows)(r, x, W, 3, n);
    else if (average && count == 2) NAME(sum_rows)(r, x, W, 2, n);
    else if (average) NAME(sum_rows)(r, x, W, count, n);
    else if (count == 3) NAME(max_rows)(r, NULL, x, W, 3, n, 0);
    else if (count == 2) NAME(max_rows)(r, NULL, x, W, 2, n, 0);
    else NAME(max_rows)(r, NULL, x, W, count, n, 0);
}

/* y[ox] = max over j < kw of r[ox*s + j], ox < ow: the kernel's columns of a folded row, in one
 * pass with vector lanes across ox (stride 2: even and odd lanes shuffled apart) */
static inline void NAME(max_columns)(real *restrict y, const real *restrict r, size_t ow,
                                     size_t kw, size_t s)
{
    for (size_t ox = 0; ox < ow; ++ox) {
        real m = r[ox * s];
        for (size_t j = 1; j < kw; ++j) m = NAME(max_nan)(m, r[ox * s + j]);
        y[ox] = m;
    }
}

/* The search for each window's first maximum, over n outputs: tap[k] = number[q] of the first
 * tap q < taps (in the window's row-major order) whose pixel D[at[q] + k] equals the window's
 * maximum t[k], or -1 when none does. The taps run backwards (last window row and column
 * first), so the match that stays is the first; int32 lanes, as wide as float's, and a bit
 * select kept in a register across the taps: with taps a constant (9, the 3x3 windows) the tap
 * loop unrolls and the loop over k vectorises, one store of tap an output. A NaN maximum equals
 * nothing here (see first_maxima). */
static inline void NAME(match_taps)(int32_t *restrict tap, const real *restrict t,
                                    const real *restrict D, const size_t *restrict at,
                                    const int32_t *restrict number, size_t taps, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        int32_t found = -1;
        for (size_t q = taps; q-- > 0;) {
            int32_t match = -(int32_t)(D[at[q] + k] == t[k]);  /* all ones or 0 */
            found = (number[q] & match) | (found & ~match);
        }
        tap[k] = found;
    }
}

/* The plane index of the first pixel of output column ox's window (rows [y0, y1)), in
 * row-major order, equal to t (a NaN to a NaN); -1 when there is none. One window, scalar: for
 * the windows match_taps leaves without a match. */
static int64_t NAME(first_maximum)(real t, const real *xp, in_pool_geometry g, size_t y0,
                                   size_t y1, size_t ox)
{
    for (size_t iy = y0; iy < y1; ++iy)
        for (size_t j = 0; j < g.kw; ++j) {
            size_t ix = ox * g.sw + j - g.pw;  /* wraps around when left of the row */
            real v = ix < g.W ? xp[iy * g.W + ix] : 0;
            if (ix < g.W && (v == t || (v != v && t != t))) return (int64_t)(iy * g.W + ix);
        }
    return -1;
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

/* The search for each window's first maximum works, IN_POOL_CHUNK outputs at a time (R output
 * rows, from r0), on a copy of the input rows they read in which every tap of every output is
 * one run: D, x padded with NaN (which equals nothing) and split by row phase py = (iy + ph) %
 * sh and column phase px = (ix + pw) % sw, Rq = R + (kh-1)/sh rows of Wq = ow + (kw-1)/sw
 * values a phase:
 *     D[((py*sw + px)*Rq + ry)*Wq + cx] = x[(r0 + ry)*sh + py - ph, cx*sw + px - pw]   (NaN outside x)
 * so tap (i, j) of output (r0 + oy, ox) is D[at(i, j) + oy*Wq + ox], at(i, j) = ((i % sh)*sw +
 * j % sw)*Rq*Wq + (i / sh)*Wq + j / sw: a run over the chunk's outputs in a grid of row stride
 * Wq (columns ow .. Wq - 1 are lanes no one reads). One buffer a thread: D (and Wq values of
 * slack past it for those lanes), y in the grid (t), the tap numbers of the grid (tap); a chunk's
 * stay in L1. Tap q = i*kw + j: its run at[q] = at(i, j) and its number[q] = (i << shift) | j. */
typedef struct {
    real *D, *t;
    int32_t *tap, *number;
    size_t *at, R, Rq, Wq;
    unsigned shift;
} NAME(search);

/* The buffers for geometry g, or D NULL when there is no memory */
static NAME(search) NAME(search_alloc)(in_pool_geometry g)
{
    NAME(search) s;
    s.Wq = g.ow + (g.kw - 1) / g.sw;
    s.R = s.Wq < IN_POOL_CHUNK ? IN_POOL_CHUNK / s.Wq : 1;
    s.R = s.R < g.oh ? s.R : g.oh;
    s.Rq = s.R + (g.kh - 1) / g.sh;
    /* the checks keep kh << shift below 2^31 */
    for (s.shift = 0; ((size_t)1 << s.shift) < g.kw; ++s.shift) {}
    size_t nD = g.sh * g.sw * s.Rq * s.Wq + s.Wq, n = s.R * s.Wq, taps = g.kh * g.kw;
    s.at = malloc(taps * sizeof(size_t));
    s.D = s.at ? malloc((nD + n) * sizeof(real) + (n + taps) * sizeof(int32_t)) : NULL;
    if (!s.D) return s;
    s.t = s.D + nD;
    s.tap = (int32_t *)(s.t + n);
    s.number = s.tap + n;
    for (size_t i = 0; i < g.kh; ++i)
        for (size_t j = 0; j < g.kw; ++j) {
            s.at[i * g.kw + j] = ((i % g.sh) * g.sw + j % g.sw) * s.Rq * s.Wq + i / g.sh * s.Wq
                                 + j / g.sw;
            s.number[i * g.kw + j] = (int32_t)((i << s.shift) | j);
        }
    return s;
}

/* Frees what search_alloc allocated */
static void NAME(search_free)(NAME(search) *s)
{
    free(s->D);
    free(s->at);
}

/* D of the chunk from output row r0 of plane xp (see above), one phase row at a time; the
 * slack NaN too */
IN_HOT static void NAME(search_rows)(const NAME(search) *s, const real *xp, in_pool_geometry g,
                                     size_t r0)
{
    real *d = s->D;
    for (size_t py = 0; py < g.sh; ++py)
        for (size_t px = 0; px < g.sw; ++px) {
            size_t lo, hi; /* the columns cx whose pixel lies in x */
            in_valid_range(&lo, &hi, (ptrdiff_t)px - (ptrdiff_t)g.pw, g.sw, g.W, s->Wq);
            for (size_t ry = 0; ry < s->Rq; ++ry, d += s->Wq) {
                ptrdiff_t iy = (ptrdiff_t)((r0 + ry) * g.sh + py) - (ptrdiff_t)g.ph;
                size_t a = iy >= 0 && iy < (ptrdiff_t)g.H ? lo : s->Wq, b = a < hi ? hi : a;
                size_t at = (size_t)(iy < 0 ? 0 : iy) * g.W + px - g.pw; /* + cx*sw, cx >= a */
                for (size_t cx = 0; cx < a; ++cx) d[cx] = (real)NAN;
                if (g.sw == 1 && a < b) /* strides 1 and 2 (GoogLeNet's): their own loops */
                    memcpy(d + a, xp + at + a, (b - a) * sizeof(real));
                else if (g.sw == 2)
                    for (size_t cx = a; cx < b; ++cx) d[cx] = xp[at + cx * 2];
                else
                    for (size_t cx = a; cx < b; ++cx) d[cx] = xp[at + cx * g.sw];
                for (size_t cx = b; cx < s->Wq; ++cx) d[cx] = (real)NAN;
            }
        }
    for (size_t cx = 0; cx < s->Wq; ++cx) d[cx] = (real)NAN;
}

/* dxp[pos[k]] += dy[k] for k < n in order (so a pixel sums its gradients in output order),
 * skipping positions outside [0, HW); returns how many were skipped. */
static inline size_t NAME(scatter)(real *dxp, const real *dy, const int64_t *pos, size_t n,
                                   size_t HW)
{
    size_t bad = 0;
    for (size_t k = 0; k < n; ++k) {
        if (pos[k] < 0 || (uint64_t)pos[k] >= HW) {
            ++bad;
            continue;
        }
        dxp[pos[k]] += dy[k];
    }
    return bad;
}

/* pos[oy*ow + ox] = the plane index iy*W + ix of the first pixel of window (oy, ox), in the
 * window's row-major order, equal to its maximum yp[oy*ow + ox] (a NaN to a NaN); -1 when none
 * is (yp is not this plane's maximum). A chunk of R output rows at a time, its lanes across all
 * of the chunk's outputs, tap by tap backwards (match_taps: the match that stays is the first),
 * tap number (i << shift) | j; NaN maxima, which equal nothing there, searched again one by one
 * (first_maximum). One read of x and y; with y from max_plane, pos is the argmax of the scan
 * "the first larger pixel or the first NaN takes".
 * With dxp (the backward), pos holds one chunk's positions (R*ow), scattered at once: dxp's rows
 * zeroed as the chunk's windows reach them (so they are in L1), then dxp[pos] += dyp in output
 * order; returns the number of positions outside the plane (skipped), else 0. */
IN_HOT static size_t NAME(first_maxima)(int64_t *pos, real *dxp, const real *dyp, const real *yp,
                                        const real *xp, const NAME(search) *s,
                                        in_pool_geometry g)
{
    unsigned shift = s->shift;
    size_t taps = g.kh * g.kw, zeroed = 0, bad = 0; /* dxp's rows [0, zeroed) are zero */
    int64_t W = (int64_t)g.W, mask = ((int64_t)1 << shift) - 1;
    for (size_t r0 = 0; r0 < g.oh; r0 += s->R) {
        size_t Wq = s->Wq, rows = g.oh - r0 < s->R ? g.oh - r0 : s->R, n = rows * Wq;
        NAME(search_rows)(s, xp, g, r0);
        for (size_t oy = 0; oy < rows; ++oy) {
            real *t = s->t + oy * Wq;
            memcpy(t, yp + (r0 + oy) * g.ow, g.ow * sizeof(real));
            for (size_t ox = g.ow; ox < Wq; ++ox) t[ox] = (real)NAN;
        }
        if (taps == 9) NAME(match_taps)(s->tap, s->t, s->D, s->at, s->number, 9, n);
        else if (taps == 4) NAME(match_taps)(s->tap, s->t, s->D, s->at, s->number, 4, n);
        else NAME(match_taps)(s->tap, s->t, s->D, s->at, s->number, taps, n);
        /* pixel (oy*sh + i - ph, ox*sw + j - pw) of tap (i, j), vectorised over ox; then the
         * windows without a match (tap -1) one by one */
        for (size_t oy = r0; oy < r0 + rows; ++oy) {
            const int32_t *tap = s->tap + (oy - r0) * Wq;
            int64_t *row = pos + (dxp ? oy - r0 : oy) * g.ow;
            int64_t at = ((int64_t)(oy * g.sh) - (int64_t)g.ph) * W - (int64_t)g.pw;
            int32_t any = 0; /* < 0 when some window has no match */
            for (size_t ox = 0; ox < g.ow; ++ox) {
                row[ox] = at + (int64_t)(ox * g.sw) + (tap[ox] >> shift) * W + (tap[ox] & mask);
                any |= tap[ox];
            }
            for (size_t ox = 0; any < 0 && ox < g.ow; ++ox) {
                size_t y0, y1;
                if (tap[ox] >= 0) continue;
                NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
                row[ox] = NAME(first_maximum)(yp[oy * g.ow + ox], xp, g, y0, y1, ox);
            }
        }
        if (!dxp) continue;
        /* the rows up to the chunk's last window's end zeroed, then the chunk scattered */
        size_t end = (r0 + rows - 1) * g.sh + g.kh - g.ph;
        end = end < g.H ? end : g.H;
        if (end > zeroed) memset(dxp + zeroed * g.W, 0, (end - zeroed) * g.W * sizeof(real));
        zeroed = end > zeroed ? end : zeroed;
        bad += NAME(scatter)(dxp, dyp + r0 * g.ow, pos, rows * g.ow, g.H * g.W);
    }
    if (dxp && zeroed < g.H) memset(dxp + zeroed * g.W, 0, (g.H - zeroed) * g.W * sizeof(real));
    return bad;
}

/* valid[2j], valid[2j + 1] = the output columns whose tap at kernel column j is inside the
 * row (for kernels up to IN_POOL_KERNEL_COLUMNS wide); returns valid, or NULL for a wider one. */
static size_t *NAME(tap_ranges)(size_t *valid, in_pool_geometry g)
{
    if (g.kw > IN_POOL_KERNEL_COLUMNS) return NULL;
    for (size_t j = 0; j < g.kw; ++j)
        in_valid_range(valid + 2 * j, valid + 2 * j + 1, (ptrdiff_t)j - (ptrdiff_t)g.pw, g.sw,
                       g.W, g.ow);
    return valid;
}

/* The column factor of each output column's divisor, cols[ox]: its window's width within the
 * padded row (count_include_pad) or within the image. */
static void NAME(column_counts)(double *cols, in_pool_geometry g, int count_include_pad)
{
    for (size_t ox = 0; ox < g.ow; ++ox) {
        size_t x0, x1, padded = NAME(window)(&x0, &x1, ox, g.kw, g.sw, g.pw, g.W);
        cols[ox] = (double)(count_include_pad ? padded : x1 - x0);
    }
}

/* s[ox] = sum over j < kw of r[ox*s + j], ox < ow: the kernel's columns of a summed row */
static inline void NAME(sum_columns)(double *sums, const double *r, size_t ow, size_t kw, size_t s)
{
    for (size_t ox = 0; ox < ow; ++ox) sums[ox] = r[ox * s];
    for (size_t j = 1; j < kw; ++j)
        for (size_t ox = 0; ox < ow; ++ox) sums[ox] += r[ox * s + j];
}

/* One plane of average pooling, in double: output row oy sums its window rows into
 * r[pw .. pw + W) (the rest of r holds 0), sums the kernel's columns of r into sums, and divides
 * by the window's size: rows (counted as count_include_pad says) times cols[ox]. */
IN_HOT static void NAME(avg_plane)(real *y, const real *xp, double *r, double *sums,
                                   const double *cols, in_pool_geometry g, int count_include_pad)
{
    size_t L = in_pool_row_length(g);
    for (size_t k = 0; k < L; ++k) r[k] = 0;
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1, padded = NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        double rows = (double)(count_include_pad ? padded : y1 - y0);
        NAME(prefetch)(xp + y1 * g.W, g.sh * g.W);
        NAME(window_rows)(r + g.pw, xp + y0 * g.W, g.W, y1 - y0, g.W, 1);
        if (g.sw == 1) NAME(sum_columns)(sums, r, g.ow, g.kw, 1);
        else if (g.sw == 2) NAME(sum_columns)(sums, r, g.ow, g.kw, 2);
        else NAME(sum_columns)(sums, r, g.ow, g.kw, g.sw);
        real *yr = y + oy * g.ow;
        for (size_t ox = 0; ox < g.ow; ++ox) yr[ox] = (real)(sums[ox] / (rows * cols[ox]));
    }
}

/* Same-size stride 1 (sh = sw = 1, oh = H and ow = W, i.e. 2ph = kh - 1 and 2pw = kw - 1:
 * Inception's 3x3/1 pad 1 pool branches). y and x share their layout, so each pass runs flat
 * over a chunk of the P*H stacked rows, q its flat index: whole planes, as many as make about
 * IN_POOL_CHUNK values (the rows of a 7x7 plane are too short for loops of their own), or rows
 * of one larger plane:
 *     b[q] = op over i < kh of x[q + (i - ph)*W]   where that row lies in q's plane
 *     y[q] = op over j < kw of b[q + j - pw]       where that column lies in q's row
 * (op max, or the sum times one over the window's divisor), taps in order. Each tap's load is
 * unconditional and the mask a select on q's place in its plane, pos[q] + off (pos[q] = q % HW,
 * off = the chunk's first row times W) or in its row (col[q] = q % W): the same arrays serve
 * every chunk. So a chunk reads the rows of the planes either side and masks them out: x must be
 * readable ph rows either side of it (a chunk at either end of x is copied into a buffer with
 * that slack first), and b has pw values of slack either side. Two passes over a chunk in L1:
 * one read of x, one write of y. */
static inline int NAME(same_size)(in_pool_geometry g)
{
    return g.sh == 1 && g.sw == 1 && g.oh == g.H && g.ow == g.W && g.H * g.W <= INT32_MAX / 4;
}

/* A same-size pass's chunks (see above): `planes` planes of `rows` rows; whole planes (rows =
 * H) up to IN_POOL_CHUNK values, else rows of one plane, at least kh of them */
static inline void NAME(same_chunks)(size_t *planes, size_t *rows, in_pool_geometry g)
{
    size_t HW = g.H * g.W, r = IN_POOL_CHUNK / g.W;
    *planes = HW <= IN_POOL_CHUNK ? IN_POOL_CHUNK / HW : 1;
    *rows = HW <= IN_POOL_CHUNK ? g.H : r > g.kh ? r : g.kh;
}

/* b[q] = max over i < kh of x[q + (i - ph)*W] over the rows in q's plane, those with pos[q] +
 * off + (i - ph)*W in [0, HW) (the centre row, i = ph, always), folded in order of i from -inf
 * (so the bits are max_rows' over the same rows; max_nan(-inf, t) is t, so the first row is
 * taken as it is), q < n */
static inline void NAME(max_rows_in_plane)(real *restrict b, const real *restrict x,
                                          const int32_t *restrict pos, ptrdiff_t off, size_t n,
                                          size_t kh, size_t ph, size_t W, size_t HW)
{
    for (size_t q = 0; q < n; ++q) {
        real m = (real)-INFINITY;
        for (size_t i = 0; i < kh; ++i) {
            ptrdiff_t d = ((ptrdiff_t)i - (ptrdiff_t)ph) * (ptrdiff_t)W;
            int inside = (i == ph) | ((uint32_t)(pos[q] + (int32_t)(off + d)) < (uint32_t)HW);
            real t = x[(ptrdiff_t)q + d], v = i == 0 ? t : NAME(max_nan)(m, t);
            m = inside ? v : m;
        }
        b[q] = m;
    }
}

/* t where kept, else -0 (s + -0 is s, bit for bit), chosen by t's bits: on a select on the
 * value GCC moves the add or conversion to double that follows into its branches, where it may
 * trap (a signalling NaN), and vectorises the loop only with AVX-512's masks */
static inline real NAME(kept_or_minus_zero)(int kept, real t)
{
#if IN_DOUBLE
    typedef uint64_t bits;
#else
    typedef uint32_t bits;
#endif
    bits u, sign = (bits)1 << (8 * sizeof(real) - 1), keep = (bits)0 - (bits)kept;
    memcpy(&u, &t, sizeof u);
    u = (u & keep) | (sign & ~keep);
    memcpy(&t, &u, sizeof t);
    return t;
}

/* b[q] = the sum over the same rows in double, in order of i, the rows outside as -0 (s + -0
 * is s, bit for bit: so the bits are sum_rows'), q < n */
static inline void NAME(sum_rows_in_plane)(double *restrict b, const real *restrict x,
                                          const int32_t *restrict pos, ptrdiff_t off, size_t n,
                                          size_t kh, size_t ph, size_t W, size_t HW)
{
    for (size_t q = 0; q < n; ++q) {
        double s = 0;
        for (size_t i = 0; i < kh; ++i) {
            ptrdiff_t d = ((ptrdiff_t)i - (ptrdiff_t)ph) * (ptrdiff_t)W;
            int inside = (i == ph) | ((uint32_t)(pos[q] + (int32_t)(off + d)) < (uint32_t)HW);
            double a = NAME(kept_or_minus_zero)(inside, x[(ptrdiff_t)q + d]);
            s = i == 0 ? a : s + a;
        }
        b[q] = s;
    }
}

/* max_rows_in_plane (average 0, b reals) or sum_rows_in_plane (average 1, b doubles), the
 * 3-row window's sizes constants */
static inline void NAME(rows_in_plane)(void *b, const real *x, const int32_t *pos, ptrdiff_t off,
                                       size_t n, in_pool_geometry g, int average)
{
    size_t HW = g.H * g.W;
    if (average && g.kh == 3) NAME(sum_rows_in_plane)(b, x, pos, off, n, 3, 1, g.W, HW);
    else if (average) NAME(sum_rows_in_plane)(b, x, pos, off, n, g.kh, g.ph, g.W, HW);
    else if (g.kh == 3) NAME(max_rows_in_plane)(b, x, pos, off, n, 3, 1, g.W, HW);
    else NAME(max_rows_in_plane)(b, x, pos, off, n, g.kh, g.ph, g.W, HW);
}

/* Whether tap d = j - pw of output q (column col[q], stride s) lies inside its row of W: the
 * taps d in [0, s) always do (W >= s*ow, see max_tiled; or b holds -inf there, see max_plane) */
static inline int NAME(tap_inside)(int32_t col, ptrdiff_t d, size_t s, size_t W)
{
    return (d >= 0 && d < (ptrdiff_t)s) || (uint32_t)(col * (int32_t)s + (int32_t)d) < (uint32_t)W;
}

/* y[q] = max over j < kw of b[q*s + j - pw] where that tap is inside (tap_inside), q < n, the
 * tap j = pw first. The taps' loads are unconditional and the mask a select: with kw, pw and s
 * constants, GCC 12 vectorises this form (not one that folds the tap j = pw in). Masking every
 * output costs less than redoing a row's edge outputs apart (measured: 1.7x slower on 28-wide
 * rows). */
static inline void NAME(max_taps)(real *restrict y, const real *restrict b,
                                  const int32_t *restrict col, size_t n, size_t kw, size_t pw,
                                  size_t s, size_t W)
{
    for (size_t q = 0; q < n; ++q) {
        real m = b[q * s];
        for (size_t j = 0; j < kw; ++j) {
            if (j == pw) continue;
            ptrdiff_t d = (ptrdiff_t)j - (ptrdiff_t)pw;
            real v = NAME(max_nan)(m, b[(ptrdiff_t)(q * s) + d]);
            m = NAME(tap_inside)(col[q], d, s, W) ? v : m;
        }
        y[q] = m;
    }
}

/* tap[q] = the least i*kw + j over max_taps' taps inside equal to y[q] (a NaN to a NaN), i =
 * a[q*s + j - pw] (max_rows' first row of that column), q < n: the window's first maximum in
 * row-major order, since a column's first row holding the maximum is its first pixel holding
 * it. A second pass over the chunk in L1, in max_taps' form; reals, as bytes would make GCC 12
 * run 64 outputs a vector iteration and up to 63 in its scalar epilogue (tap_bytes converts). */
static inline void NAME(first_taps)(real *restrict tap, const real *restrict y,
                                    const real *restrict b, const real *restrict a,
                                    const int32_t *restrict col, size_t n, size_t kw, size_t pw,
                                    size_t s, size_t W)
{
    for (size_t q = 0; q < n; ++q) {
        real m = y[q], first = 255; /* above every tap: kernels of up to 255 taps keep them */
        for (size_t j = 0; j < kw; ++j) {
            ptrdiff_t d = (ptrdiff_t)j - (ptrdiff_t)pw, at = (ptrdiff_t)(q * s) + d;
            real v = b[at], t = a[at] * (real)kw + (real)j;
            int equal = (v == m) | ((v != v) & (m != m));
            real least = t < first ? t : first;
            first = NAME(tap_inside)(col[q], d, s, W) & equal ? least : first;
        }
        tap[q] = first;
    }
}

/* first_taps for any kw: a pass over the chunk for each kernel column j, vectorised over q
 * (first_taps' loop over q vectorises with kw a constant only, its taps unrolled) */
static inline void NAME(first_taps_by_column)(real *restrict tap, const real *restrict y,
                                              const real *restrict b, const real *restrict a,
                                              const int32_t *restrict col, size_t n, size_t kw,
                                              size_t pw, size_t s, size_t W)
{
    for (size_t q = 0; q < n; ++q) tap[q] = 255;
    for (size_t j = 0; j < kw; ++j) {
        ptrdiff_t d = (ptrdiff_t)j - (ptrdiff_t)pw;
        for (size_t q = 0; q < n; ++q) {
            ptrdiff_t at = (ptrdiff_t)(q * s) + d;
            real m = y[q], v = b[at], t = a[at] * (real)kw + (real)j;
            int equal = (v == m) | ((v != v) & (m != m));
            real least = t < tap[q] ? t : tap[q];
            tap[q] = NAME(tap_inside)(col[q], d, s, W) & equal ? least : tap[q];
        }
    }
}

/* bytes[q] = t[q], q < n: first_taps' taps as bytes */
static inline void NAME(tap_bytes)(uint8_t *restrict bytes, const real *restrict t, size_t n)
{
    for (size_t q = 0; q < n; ++q) bytes[q] = (uint8_t)(int32_t)t[q]; /* GCC 12 vectorises this */
}

/* y[q] = inverse[q] * the sum over j < kw of b[q + j - pw] where col[q] + j - pw lies in
 * [0, W), centre tap first, q < n (as max_taps) */
static inline void NAME(sum_taps)(real *restrict y, const double *restrict b,
                                  const int32_t *restrict col, const double *restrict inverse,
                                  size_t n, size_t kw, size_t pw, size_t W)
{
    for (size_t q = 0; q < n; ++q) {
        double s = b[q];
        for (size_t j = 0; j < kw; ++j) {
            if (j == pw) continue;
            ptrdiff_t d = (ptrdiff_t)j - (ptrdiff_t)pw;
            double v = b[(ptrdiff_t)q + d];
            s += (uint32_t)(col[q] + (int32_t)d) < (uint32_t)W ? v : 0;
        }
        y[q] = (real)(s * inverse[q]);
    }
}

/* max_taps (inverse NULL, b reals) or sum_taps (b doubles) of n outputs, 3-wide windows with
 * their sizes constants */
static inline void NAME(window_columns)(real *y, const void *b, const int32_t *col,
                                        const double *inverse, size_t n, in_pool_geometry g)
{
    if (inverse && g.kw == 3) NAME(sum_taps)(y, b, col, inverse, n, 3, 1, g.W);
    else if (inverse) NAME(sum_taps)(y, b, col, inverse, n, g.kw, g.pw, g.W);
    else if (g.kw == 3) NAME(max_taps)(y, b, col, n, 3, 1, 1, g.W);
    else NAME(max_taps)(y, b, col, n, g.kw, g.pw, 1, g.W);
}

/* One same-size chunk of n values (see above): y[q], q < n, from x (readable ph rows either
 * side), off its first row times W; max pooling (inverse NULL) or average pooling (inverse[q]
 * one over output q's divisor); b the chunk buffer (doubles; reals for max) past its slack. In
 * a chunk of one plane (or part of one) the values whose window rows all lie in the plane are
 * one run that needs no mask (window_rows: the same folds, so the same bits). */
IN_HOT static void NAME(same_chunk)(real *y, const real *x, size_t off, size_t n, double *b,
                                    const int32_t *pos, const int32_t *col, const double *inverse,
                                    in_pool_geometry g)
{
    size_t HW = g.H * g.W, S = g.ph * g.W, lo = n, hi = n;
    size_t size = inverse ? sizeof(double) : sizeof(real); /* of b's values */
    char *bytes = (char *)b;
    int average = inverse != NULL;
    if (n <= HW) { /* [lo, hi): rows ph .. H - ph - 1 of the plane */
        lo = off < S ? S - off < n ? S - off : n : 0;
        hi = HW - S > off + lo ? HW - S - off < n ? HW - S - off : n : lo;
    }
    NAME(prefetch)(x + n, n);
    NAME(rows_in_plane)(b, x, pos, (ptrdiff_t)off, lo, g, average);
    if (hi > lo) NAME(window_rows)(bytes + lo * size, x + lo - S, g.W, g.kh, hi - lo, average);
    NAME(rows_in_plane)(bytes + hi * size, x + hi, pos + hi, (ptrdiff_t)off, n - hi, g, average);
    NAME(window_columns)(y, b, col, inverse, n, g);
}

/* inverse[oy*ow + ox] = 1 / output (oy, ox)'s divisor: its window's rows (counted as
 * count_include_pad says) times cols[ox] (column_counts) */
static void NAME(inverse_divisors)(double *inverse, const double *cols, in_pool_geometry g,
                                   int count_include_pad)
{
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1, padded = NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        double rows = (double)(count_include_pad ? padded : y1 - y0);
        for (size_t ox = 0; ox < g.ow; ++ox) inverse[oy * g.ow + ox] = 1 / (rows * cols[ox]);
    }
}

/* The buffers of a same-size pass's chunks at the start of a thread's buf (doubles): b (L values
 * and pw of slack either side, zeros), then pos and col (L int32 each, see above); returns the
 * rest of buf */
static double *NAME(same_buffers)(double *buf, int32_t **pos, int32_t **col, size_t L,
                                  in_pool_geometry g)
{
    memset(buf, 0, (L + 2 * g.pw) * sizeof(double));
    *pos = (int32_t *)(buf + L + 2 * g.pw);
    *col = *pos + L;
    for (size_t q = 0; q < L; ++q)
        (*pos)[q] = (int32_t)(q % (g.H * g.W)), (*col)[q] = (int32_t)(q % g.W);
    return (double *)(*col + L);
}

/* The same-size passes (see above) of P planes into y, their chunks shared among the threads:
 * max pooling (average_include_pad < 0) or average pooling (count_include_pad =
 * average_include_pad). Each thread's buffers, in doubles: same_buffers', inverse (the
 * divisors' inverses, for L values or a plane), cols (ow) and stage (a chunk at either end of x
 * with ph rows either side). Returns 0, or -1 when some thread had no memory. */
static int NAME(pool_same)(real *y, const real *x, size_t P, in_pool_geometry g,
                           int average_include_pad)
{
    size_t planes, rows, W = g.W, HW = g.H * W, S = g.ph * W, total = P * HW;
    NAME(same_chunks)(&planes, &rows, g);
    size_t L = planes * rows * W, I = L > HW ? L : HW, per_plane = (g.H + rows - 1) / rows;
    size_t chunks = (P + planes - 1) / planes * per_plane;
    size_t count = L + 2 * g.pw + I + g.ow + L + L + 2 * S;
    int failed = 0;
    IN_PRAGMA(omp parallel if (total >= IN_PARALLEL_MIN))
    {
        double *b = malloc(count * sizeof(double)), *inverse = NULL;
        int32_t *pos = NULL, *col = NULL;
        real *stage = NULL;
        if (!b) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        } else {
            inverse = NAME(same_buffers)(b, &pos, &col, L, g);
            double *cols = inverse + I;
            stage = (real *)(cols + g.ow);
            memset(stage, 0, (L + 2 * S) * sizeof(real));
            if (average_include_pad >= 0) {
                NAME(column_counts)(cols, g, average_include_pad);
                NAME(inverse_divisors)(inverse, cols, g, average_include_pad);
                for (size_t q = HW; q < I; ++q) inverse[q] = inverse[q - HW];
            }
        }
        IN_PRAGMA(omp for schedule(static))
        for (size_t c = 0; c < chunks; ++c) {
            if (!b) continue;
            size_t p0 = c / per_plane * planes, r0 = c % per_plane * rows;
            size_t r1 = g.H - r0 < rows ? g.H : r0 + rows, at = p0 * HW + r0 * W;
            size_t n = (P - p0 < planes ? P - p0 : planes) * (r1 - r0) * W;
            const real *src = x + at;
            if (at < S || total - at - n < S) { /* copied with what lies within x either side */
                size_t before = at < S ? at : S, after = total - at - n < S ? total - at - n : S;
                memcpy(stage + S - before, src - before, (before + n + after) * sizeof(real));
                src = stage + S;
            }
            NAME(prefetch_output)(y + at + n, n); /* the next chunk's, about */
            NAME(same_chunk)(y + at, src, r0 * W, n, b + g.pw, pos, col,
                             average_include_pad < 0 ? NULL : inverse + r0 * W, g);
        }
        free(b);
    }
    return failed ? -1 : 0;
}

/* max_taps of a chunk's n outputs into y, then first_taps into tap (NULL: none), the 3-wide
 * windows of strides 2 and 1 (GoogLeNet's pools, and same-size ones when they keep taps) with
 * their sizes constants */
IN_HOT static void NAME(tiled_columns)(real *y, real *tap, const real *b, const real *a,
                                       const int32_t *col, size_t n, in_pool_geometry g)
{
    int stride2 = g.kw == 3 && g.sw == 2 && g.pw == 0, stride1 = g.kw == 3 && g.sw == 1 && g.pw == 1;
    if (stride2) NAME(max_taps)(y, b, col, n, 3, 0, 2, g.W);
    else if (stride1) NAME(max_taps)(y, b, col, n, 3, 1, 1, g.W);
    else NAME(max_taps)(y, b, col, n, g.kw, g.pw, g.sw, g.W);
    if (!tap) return;
    if (stride2) NAME(first_taps)(tap, y, b, a, col, n, 3, 0, 2, g.W);
    else if (stride1) NAME(first_taps)(tap, y, b, a, col, n, 3, 1, 1, g.W);
    else NAME(first_taps_by_column)(tap, y, b, a, col, n, g.kw, g.pw, g.sw, g.W);
}

/* One plane of max pooling. Output row oy folds its window rows into r[pw .. pw + W) (the rest
 * of r holds -inf, which never wins), then takes the kernel's columns of r: two passes over a
 * row in L1, the 3x3 windows of strides 1 and 2 (GoogLeNet's) with their sizes constants. With
 * taps (NULL: none) also the first maxima: the rows' first rows into a (L values, kh outside
 * the row, no window's), then tiled_columns over the row (col = 0 .. ow - 1; the taps as reals
 * at a + L, ow of them). */
IN_HOT static void NAME(max_plane)(real *y, uint8_t *taps, const real *xp, real *r, real *a,
                                   const int32_t *col, in_pool_geometry g)
{
    size_t L = in_pool_row_length(g);
    for (size_t k = 0; k < L; ++k) r[k] = (real)-INFINITY;
    for (size_t k = 0; taps && k < L; ++k) a[k] = (real)g.kh;
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1;
        NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        NAME(prefetch)(xp + y1 * g.W, g.sh * g.W);
        real *yr = y + oy * g.ow;
        if (taps) {
            NAME(first_rows)(r + g.pw, a + g.pw, xp + y0 * g.W, g.W, y1 - y0, g.W,
                             (real)(y0 + g.ph - oy * g.sh));
            NAME(tiled_columns)(yr, a + L, r + g.pw, a + g.pw, col, g.ow, g);
            NAME(tap_bytes)(taps + oy * g.ow, a + L, g.ow);
            continue;
        }
        NAME(window_rows)(r + g.pw, xp + y0 * g.W, g.W, y1 - y0, g.W, 0);
        if (g.kw == 3 && g.sw == 2) NAME(max_columns)(yr, r, g.ow, 3, 2);
        else if (g.kw == 3 && g.sw == 1) NAME(max_columns)(yr, r, g.ow, 3, 1);
        else NAME(max_columns)(yr, r, g.ow, g.kw, g.sw);
    }
}

/* y = max pooling of x (average_include_pad < 0; taps its first maxima, NULL: none) or average
 * pooling (count_include_pad = average_include_pad): the same-size passes where they apply
 * (y alone), else plane by plane, each thread with its own row buffers. Returns 0, or -1 when
 * those could not be allocated. */
static int NAME(pool_planes)(real *y, uint8_t *taps, const real *x, size_t P, in_pool_geometry g,
                             int average_include_pad)
{
    if (NAME(same_size)(g) && !taps) return NAME(pool_same)(y, x, P, g, average_include_pad);
    /* per thread, in doubles (max pooling uses them as reals): r (L values), sums (ow) and
     * cols (ow); with taps a (L + ow) and col (ow) */
    size_t L = in_pool_row_length(g), n = g.oh * g.ow, kept = taps ? 1 : 0;
    int failed = 0;
    IN_PRAGMA(omp parallel if (P * g.H * g.W >= IN_PARALLEL_MIN))
    {
        double *r = malloc((L + 2 * g.ow + kept * (L + 2 * g.ow)) * sizeof(double));
        double *sums = NULL, *cols = NULL;
        int32_t *col = NULL;
        if (!r) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        } else {
            sums = r + L;
            cols = sums + g.ow;
            col = (int32_t *)(cols + g.ow + L + g.ow);
            for (size_t ox = 0; taps && ox < g.ow; ++ox) col[ox] = (int32_t)ox;
            if (average_include_pad >= 0) NAME(column_counts)(cols, g, average_include_pad);
        }
        IN_PRAGMA(omp for schedule(static))
        for (size_t p = 0; p < P; ++p) {
            real *yp = y + p * n;
            const real *xp = x + p * g.H * g.W;
            if (!r) continue;
            if (average_include_pad < 0)
                NAME(max_plane)(yp, taps ? taps + p * n : NULL, xp, (real *)r,
                                (real *)(cols + g.ow), col, g);
            else
                NAME(avg_plane)(yp, xp, r, sums, cols, g, average_include_pad);
        }
        free(r);
    }
    return failed ? -1 : 0;
}

/* ---- max pooling's forward on maps whose output columns tile the rows (strides over 1, W =
 * sw*ow: GoogLeNet's 3x3/2 ceil-mode pools, 112 -> 56 .. 14 -> 7; or W up to sw*(ow + 1):
 * Inception v3's floor-mode pools on odd maps up to IN_POOL_TILED_ODD_MAX wide, 35 -> 17 and
 * 17 -> 8) ----
 * Rows of 14 to 112 values make per-row loops mostly overhead, so a thread runs through its
 * output rows R = p*oh + oy (p the plane) in chunks of whole rows, planes running on, two passes
 * over a chunk in L1, from a buffer b (row stride bw = sw*tw, tw = ow, or ow + 1 when W >
 * sw*ow), r the row's number in the chunk:
 *     b[r*bw + k] = max over the window's rows iy of x[p, iy, k]           (k < W)
 *     t[q] = max over j < kw of b[q*sw + j - pw], where col[q]*sw + j - pw lies in [0, W)
 * the second over the chunk's flat index q (col[q] = q % tw, the same in every chunk of whole
 * rows): bw = sw*tw puts output q's window at b[q*sw - pw ..] (max_taps). t is y (row stride
 * ow) when tw = ow; otherwise a buffer whose rows have one output more (its window partly past
 * the row, never read) and whose first ow outputs a row are copied to y. The first pass folds a
 * row in runs of IN_POOL_RUN_BYTES, the last ending up to a run past the row's end: there it
 * reads x's next rows (never past x: checked) and writes what the next row's runs write over
 * (rows in order) or b's slack. One read of x, one write of y. */
#define IN_POOL_RUN_BYTES 64  /* a vector of AVX-512 (two of AVX2, four of SSE) */
/* The widest W > sw*ow rows tiled: the row path is as fast on longer ones (one thread, 3x3/2:
 * 17 -> 8 2.5x faster tiled at batch 1 and 16, 35 -> 17 1.4x and 1.15x; 71 -> 35 1.15x faster
 * at batch 1 but 1.2x slower at 16, 147 -> 73 1.15x and 1.7x slower, reading x from memory) */
#define IN_POOL_TILED_ODD_MAX 64

/* Whether the tiled passes run: the output columns tile the rows (W up to sw*(ow + 1)), for a
 * forward that keeps taps (`taps`) at any width (64 x 147 -> 73, batch 16, one thread: 8.8 ms
 * tiled with taps, the row path's 3.3 without), without only up to IN_POOL_TILED_ODD_MAX
 * values when W > sw*ow; the same-size maps of a forward without taps tiled apart (see
 * max_pool2d_forward). */
static inline int NAME(tiled)(in_pool_geometry g, int taps)
{
    int odd = g.W > g.sw * g.ow && g.W <= g.sw * (g.ow + 1);
    int tiles = g.W == g.sw * g.ow || (odd && (taps || g.W <= IN_POOL_TILED_ODD_MAX));
    return tiles && !NAME(same_size)(g);
}

/* Outputs a row of the chunk's column pass: ow, or ow + 1 when W > sw*ow (see above) */
static inline size_t NAME(tile_width)(in_pool_geometry g)
{
    return g.ow + (g.W > g.sw * g.ow);
}

/* Output rows per chunk: as many as keep b near IN_POOL_CHUNK values */
static inline size_t NAME(chunk_rows)(in_pool_geometry g)
{
    return g.W < IN_POOL_CHUNK ? IN_POOL_CHUNK / g.W : 1;
}

/* b[k] = max over i < count of x[k + i*W] for k < n rounded up to whole runs: max_rows over
 * runs of a constant length */
static inline void NAME(max_runs)(real *restrict b, real *restrict a, const real *restrict x,
                                  size_t W, size_t count, size_t n, real i0)
{
    const size_t run = IN_POOL_RUN_BYTES / sizeof(real);
    for (size_t k = 0; k < n; k += run)
        NAME(max_rows)(b + k, a ? a + k : NULL, x + k, W, count, run, i0);
}

/* b[k], k < W, of one output row whose count window rows start at x (rows W apart), and a[k]
 * (NULL: none) their first rows from kernel row i0 (max_rows): in runs, or (runs 0: they would
 * read past x's end) in one loop; the counts of a 3-row window (3, and 2 at a clipped edge)
 * constants, other counts' first rows by first_rows */
static inline void NAME(tiled_row)(real *b, real *a, const real *x, size_t W, size_t count,
                                   int runs, real i0)
{
    if (a && (!runs || (count != 3 && count != 2))) NAME(first_rows)(b, a, x, W, count, W, i0);
    else if (!runs) NAME(max_rows)(b, NULL, x, W, count, W, 0);
    else if (count == 3) NAME(max_runs)(b, a, x, W, 3, W, i0);
    else if (count == 2) NAME(max_runs)(b, a, x, W, 2, W, i0);
    else NAME(max_runs)(b, NULL, x, W, count, W, 0);
}

/* tiled_row of m output rows whose count window rows start step values apart from x, into b's
 * (and a's) rows bw apart; bound the first row start whose runs would read past x; rows of one
 * run (W up to a run) of 3-row windows in one loop with the sizes constants (a loop of tiled_row
 * takes 7% longer on 14 -> 7). Too large to inline into max_tiled with the taps' loops: its
 * own copies for each instruction set (as tiled_columns). */
IN_HOT static void NAME(tiled_rows)(real *b, real *a, size_t bw, const real *x,
                                    const real *bound, size_t W, size_t step, size_t count,
                                    size_t m, real i0)
{
    const size_t run = IN_POOL_RUN_BYTES / sizeof(real);
    if (W <= run && count == 3 && x + (m - 1) * step < bound)
        for (size_t i = 0; i < m; ++i)
            NAME(max_rows)(b + i * bw, a ? a + i * bw : NULL, x + i * step, W, 3, run, i0);
    else
        for (size_t i = 0; i < m; ++i)
            NAME(tiled_row)(b + i * bw, a ? a + i * bw : NULL, x + i * step, W, count,
                            x + i * step < bound, i0);
}

/* What a forward that keeps its taps (taps, else NULL) adds to max_tiled's chunks: a, b's
 * first rows (max_rows), ta, the chunk's taps as reals (first_taps; rows of tw), and first[oy],
 * the kernel row of output row oy's first window row (above 0 where the window is clipped at
 * the top; the same along a span, whose rows are not) */
typedef struct {
    uint8_t *taps;
    real *a, *ta;
    const size_t *first;
} NAME(tiled_taps);

/* Output rows [R0, R1) of the P planes of x into y (see above), b the chunk buffer past its pw
 * values of slack, col its column numbers, at[oy] and count[oy] the offset y0*W and the number
 * of output row oy's window rows, span[oy] the number of rows from oy on whose windows have as
 * many rows, each sh rows down (a plane's inner rows: one call of tiled_rows, 12% faster on
 * 28 -> 14 than row by row); the 3-wide stride-2 windows with their sizes constants. The
 * runs of a kh-row window from xs read up to reach values on. The hardware's prefetcher keeps
 * up with rows of one run (its loads step by sh*W), not with longer ones read from memory: those
 * ask for a chunk's rows 2*IN_POOL_PREFETCH bytes on (10% faster than one) when x has over
 * IN_POOL_STREAM_BYTES (at batch 16, 112 -> 56: 3x faster, 28 -> 14: 1.6x; a cost of 10% on
 * 28 -> 14 from L2 or L3). */
#define IN_POOL_STREAM_BYTES ((size_t)2 << 20)
IN_HOT static void NAME(max_tiled)(real *y, const real *x, size_t P, real *b, real *t,
                                   NAME(tiled_taps) k, const int32_t *col, const size_t *at,
                                   const size_t *count, const size_t *span, size_t R0,
                                   size_t R1, in_pool_geometry g)
{
    const size_t run = IN_POOL_RUN_BYTES / sizeof(real);
    size_t rows = NAME(chunk_rows)(g), HW = g.H * g.W, oy = R0 % g.oh;
    size_t tw = NAME(tile_width)(g), bw = g.sw * tw;
    size_t reach = (g.kh - 1) * g.W + (g.W + run - 1) / run * run;
    const real *xp = x + R0 / g.oh * HW;  /* plane R / oh */
    const real *bound = P * HW >= reach ? x + P * HW - reach + 1 : x;  /* runs from below it */
    for (size_t c0 = R0, c1; c0 < R1; c0 = c1) {
        c1 = R1 - c0 < rows ? R1 : c0 + rows;
        NAME(prefetch_output)(y + c1 * g.ow, (c1 - c0) * g.ow); /* the next chunk's, about */
        if (g.W > run && P * HW * sizeof(real) > IN_POOL_STREAM_BYTES)
            NAME(prefetch)(xp + at[oy] + IN_POOL_PREFETCH / sizeof(real), (c1 - c0) * g.sh * g.W);
        for (size_t r = 0, m; r < c1 - c0; r += m) {
            m = span[oy] < c1 - c0 - r ? span[oy] : c1 - c0 - r;
            NAME(tiled_rows)(b + r * bw, k.a ? k.a + r * bw : NULL, bw, xp + at[oy], bound,
                             g.W, g.sh * g.W, count[oy], m, k.a ? (real)k.first[oy] : 0);
            if ((oy += m) == g.oh) oy = 0, xp += HW;
        }
        size_t n = (c1 - c0) * tw;
        real *out = tw == g.ow ? y + c0 * g.ow : t;
        NAME(tiled_columns)(out, k.taps ? k.ta : NULL, b, k.a, col, n, g);
        if (k.taps && tw == g.ow) NAME(tap_bytes)(k.taps + c0 * g.ow, k.ta, n);
        for (size_t r = 0; out == t && r < c1 - c0; ++r) {
            memcpy(y + (c0 + r) * g.ow, t + r * tw, g.ow * sizeof(real));
            if (k.taps) NAME(tap_bytes)(k.taps + (c0 + r) * g.ow, k.ta + r * tw, g.ow);
        }
    }
}

/* y = max pooling of P tiled planes (see above), and taps (NULL: none) its first maxima, each
 * thread with its share of the output rows and its own buffers: b (chunk_rows rows of bw, pw
 * values of slack before, a run or kw after), t and col (chunk_rows rows of tw), at, count and
 * span (oh); with taps also a (as b), ta (as t) and first (oh). Returns 0, or -1 when some
 * thread had no memory. */
static int NAME(max_forward_tiled)(real *y, uint8_t *taps, const real *x, size_t P,
                                   in_pool_geometry g)
{
    size_t rows = NAME(chunk_rows)(g), run = IN_POOL_RUN_BYTES / sizeof(real);
    size_t tw = NAME(tile_width)(g), n = g.pw + rows * g.sw * tw + (run > g.kw ? run : g.kw);
    size_t kept = taps ? 1 : 0; /* the buffers of the taps: 0 or 1 times their sizes */
    int failed = 0;
    IN_PRAGMA(omp parallel if (P * g.H * g.W >= IN_PARALLEL_MIN))
    {
        size_t *at = malloc((3 + kept) * g.oh * sizeof(size_t)
                            + ((1 + kept) * n + (1 + kept) * rows * tw) * sizeof(real)
                            + rows * tw * sizeof(int32_t));
        if (!at) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        } else {
            size_t *count = at + g.oh, *span = count + g.oh, *first = span + g.oh, y0, y1;
            real *b = (real *)(first + kept * g.oh), *a = b + n, *t = a + kept * n;
            real *ta = t + rows * tw;
            int32_t *col = (int32_t *)(ta + kept * rows * tw);
            NAME(tiled_taps) k = {taps, taps ? a + g.pw : NULL, ta, first};
            for (size_t oy = 0; oy < g.oh; ++oy) {
                NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
                at[oy] = y0 * g.W;
                count[oy] = y1 - y0;
                if (taps) first[oy] = y0 + g.ph - oy * g.sh;
            }
            for (size_t oy = g.oh; oy-- > 0;) {
                int next = oy + 1 < g.oh && count[oy + 1] == count[oy]
                           && at[oy + 1] == at[oy] + g.sh * g.W;
                span[oy] = next ? span[oy + 1] + 1 : 1;
            }
            memset(b, 0, (1 + kept) * n * sizeof(real));
            for (size_t q = 0; q < rows * tw; ++q) col[q] = (int32_t)(q % tw);
            NAME(max_tiled)(y, x, P, b + g.pw, t, k, col, at, count, span,
                            in_share_begin(P * g.oh), in_share_end(P * g.oh), g);
        }
        free(at);
    }
    return failed ? -1 : 0;
}

/* ---- max pooling's backward on a same-size stride-1 plane (Inception's branch pools) ----
 * Three vectorised passes over the whole plane instead of first_maxima's positions and scalar
 * scatter, flat indices over whole rows (q = oy*W + ox; rows of x and y are both W long, and
 * pw = (kw - 1)/2), tap (i, j) of output q at pixel q + (i - ph)*W + j - pw:
 *     rows:   m[p] = max of pixel p's row window (columns j - pw of p inside the row) and
 *             a[p] = its first column j holding m[p];
 *     taps:   T[q] = i*kw + a[r] for the first window row i whose m[r] (r = q + (i - ph)*W)
 *             equals y[q]: the first row holding the maximum holds its first pixel in row-major
 *             order, at its first column holding it. -1 when none does; a NaN maximum (equal to
 *             nothing) is searched again alone (first_maximum: the first NaN);
 *     gather: dx[p] = the sum over the windows w that hold pixel p as tap (i, j) = T[w] of dy[w],
 *             the taps backwards, w = p - (i - ph)*W - (j - pw) then runs in output order: the
 *             adds of the scatter in output order (dx = 0, dx[pos] += dy), so the same bits.
 *             w's column, col[p] - (j - pw), must lie in the row: a tap past the row's end
 *             (taps the forward kept may be corrupted) names no pixel, matched by none.
 * A row window's columns are masked by col[p] = p % W; window rows need no mask: x and dy are
 * copied, m and T written, past `slack` values either side that hold NaN in x and m (equal to
 * nothing), -1 in T (no tap), 0 in dy. Planes up to IN_POOL_SAME_PLANE values; larger ones
 * search. The backward from the forward's taps (max_pool2d_backward_taps) runs the gather alone,
 * on T copied from them. */
#define IN_POOL_SAME_PLANE 4096

typedef struct {
    real *x, *m, *dy;  /* copies of a plane's x and dy, the row maxima; past their slack */
    int32_t *a, *T, *col;
    size_t slack;
} NAME(same_backward);

static inline int NAME(same_backward_fits)(in_pool_geometry g)
{
    return NAME(same_size)(g) && g.H * g.W <= IN_POOL_SAME_PLANE &&
           g.oh * g.ow <= IN_POOL_SAME_PLANE;
}

/* The buffers for geometry g (same_backward_fits), or x NULL when there is no memory: slack
 * (kh + 1)*W + kw covers every tap of every position either side. */
static NAME(same_backward) NAME(same_backward_alloc)(in_pool_geometry g)
{
    NAME(same_backward) s;
    size_t W = g.W, HW = g.H * W, n = g.oh * W, S = (g.kh + 1) * W + g.kw;
    size_t reals = 2 * (HW + 2 * S) + n + 2 * S, ints = HW + n + 2 * S + HW;
    s.slack = S;
    s.x = malloc(reals * sizeof(real) + ints * sizeof(int32_t));
    if (!s.x) return s;
    for (size_t k = 0; k < 2 * (HW + 2 * S); ++k) s.x[k] = (real)NAN;
    s.m = s.x + HW + 2 * S;
    s.dy = s.m + HW + 2 * S;
    memset(s.dy, 0, (n + 2 * S) * sizeof(real));
    s.a = (int32_t *)(s.dy + n + 2 * S);
    s.T = s.a + HW;
    for (size_t k = 0; k < n + 2 * S; ++k) s.T[k] = -1;
    s.col = s.T + n + 2 * S;
    for (size_t p = 0; p < HW; ++p) s.col[p] = (int32_t)(p % W);
    s.x += S, s.m += S, s.dy += S, s.T += S;
    return s;
}

/* m[p], a[p], p < HW, from the copy x (see above) */
static inline void NAME(same_row_maxima)(real *restrict m, int32_t *restrict a,
                                         const real *restrict x, const int32_t *restrict col,
                                         size_t HW, size_t kw, size_t W)
{
    ptrdiff_t pw = (ptrdiff_t)(kw - 1) / 2;
    for (size_t p = 0; p < HW; ++p) {
        real best = x[p];
        int32_t first = (int32_t)pw;
        for (ptrdiff_t j = 0; j < (ptrdiff_t)kw; ++j) {
            real v = x[(ptrdiff_t)p + j - pw];
            int inside = (uint32_t)(col[p] + (int32_t)(j - pw)) < (uint32_t)W;
            best = inside && v > best ? v : best;
        }
        for (ptrdiff_t j = (ptrdiff_t)kw; j-- > 0;) {
            int inside = (uint32_t)(col[p] + (int32_t)(j - pw)) < (uint32_t)W;
            first = inside && x[(ptrdiff_t)p + j - pw] == best ? (int32_t)j : first;
        }
        m[p] = best, a[p] = first;
    }
}

/* T[q], q < n, from m and a (see above); returns how many are -1 */
static inline size_t NAME(same_first_taps)(int32_t *restrict T, const real *restrict m,
                                           const int32_t *restrict a, const real *restrict y,
                                           size_t n, size_t kh, size_t kw, size_t ph, size_t W)
{
    size_t misses = 0;
    for (size_t q = 0; q < n; ++q) {
        int32_t found = -1;
        for (size_t i = kh; i-- > 0;) {
            ptrdiff_t r = (ptrdiff_t)q + ((ptrdiff_t)i - (ptrdiff_t)ph) * (ptrdiff_t)W;
            found = m[r] == y[q] ? (int32_t)(i * kw) + a[r] : found;
        }
        T[q] = found;
        misses += found < 0;
    }
    return misses;
}

/* dx[p], p < HW, from T and the copy dy (see above); returns the number of taps matched: every
 * tap naming a pixel of the map is, once (by that pixel) */
static inline size_t NAME(same_gather)(real *restrict dx, const int32_t *restrict T,
                                       const real *restrict dy, const int32_t *restrict col,
                                       size_t HW, size_t kh, size_t kw, size_t ph, size_t W)
{
    ptrdiff_t pw = (ptrdiff_t)(kw - 1) / 2;
    uint32_t matched = 0; /* up to kh*kw*HW < 2^32 */
    for (size_t p = 0; p < HW; ++p) {
        real sum = 0;
        for (size_t i = kh; i-- > 0;)
            for (ptrdiff_t j = (ptrdiff_t)kw; j-- > 0;) {
                ptrdiff_t w = (ptrdiff_t)p - ((ptrdiff_t)i - (ptrdiff_t)ph) * (ptrdiff_t)W - j + pw;
                int match = (T[w] == (int32_t)(i * kw + (size_t)j))
                            & ((uint32_t)(col[p] - (int32_t)(j - pw)) < (uint32_t)W);
                sum += NAME(kept_or_minus_zero)(match, dy[w]); /* w within the slack */
                matched += (uint32_t)match;
            }
        dx[p] = sum;
    }
    return matched;
}

/* One same-size plane's dx (see above), the 3x3 windows' sizes constants; returns the number of
 * windows without a match */
IN_HOT static size_t NAME(same_backward_plane)(real *dxp, const real *dyp, const real *yp,
                                               const real *xp, const NAME(same_backward) *s,
                                               in_pool_geometry g)
{
    size_t n = g.oh * g.W, HW = g.H * g.W, none = 0, misses;
    int three = g.kh == 3 && g.kw == 3;
    memcpy(s->x, xp, HW * sizeof(real));
    memcpy(s->dy, dyp, n * sizeof(real));
    if (three) NAME(same_row_maxima)(s->m, s->a, s->x, s->col, HW, 3, g.W);
    else NAME(same_row_maxima)(s->m, s->a, s->x, s->col, HW, g.kw, g.W);
    if (three) misses = NAME(same_first_taps)(s->T, s->m, s->a, yp, n, 3, 3, g.ph, g.W);
    else misses = NAME(same_first_taps)(s->T, s->m, s->a, yp, n, g.kh, g.kw, g.ph, g.W);
    for (size_t q = 0; misses && q < n; ++q) { /* NaN maxima, and windows without a match */
        if (s->T[q] >= 0) continue;
        size_t oy = q / g.W, ox = q % g.W, y0, y1;
        NAME(window)(&y0, &y1, oy, g.kh, 1, g.ph, g.H);
        int64_t at = yp[q] != yp[q] ? NAME(first_maximum)(yp[q], xp, g, y0, y1, ox) : -1;
        if (at < 0) {
            ++none;
            continue;
        }
        size_t i = (size_t)at / g.W + g.ph - oy, j = (size_t)at % g.W + g.pw - ox;
        s->T[q] = (int32_t)(i * g.kw + j);
    }
    if (three) NAME(same_gather)(dxp, s->T, s->dy, s->col, HW, 3, 3, 1, g.W);
    else NAME(same_gather)(dxp, s->T, s->dy, s->col, HW, g.kh, g.kw, g.ph, g.W);
    return none;
}

/* One same-size plane's dx from its taps tp (see above), the 3x3 windows' sizes constants;
 * returns the number of taps naming no pixel of the map */
IN_HOT static size_t NAME(same_taps_plane)(real *dxp, const real *dyp, const uint8_t *tp,
                                           const NAME(same_backward) *s, in_pool_geometry g)
{
    size_t HW = g.H * g.W, matched;
    for (size_t q = 0; q < HW; ++q) s->T[q] = tp[q];
    memcpy(s->dy, dyp, HW * sizeof(real));
    if (g.kh == 3 && g.kw == 3) matched = NAME(same_gather)(dxp, s->T, s->dy, s->col, HW, 3, 3, 1, g.W);
    else matched = NAME(same_gather)(dxp, s->T, s->dy, s->col, HW, g.kh, g.kw, g.ph, g.W);
    return HW - matched;
}

/* dx of P same-size planes (see above), each thread with its own buffers: from the taps (taps
 * not NULL) or by the search in x and y. Returns the number of windows without a match (of taps
 * naming no pixel), or SIZE_MAX when some thread had no memory. */
static size_t NAME(same_planes)(real *dx, const real *dy, const real *y, const real *x,
                                const uint8_t *taps, size_t P, in_pool_geometry g)
{
    size_t bad = 0, HW = g.H * g.W, n = g.oh * g.ow;
    int failed = 0;
    IN_PRAGMA(omp parallel if (P * HW >= IN_PARALLEL_MIN))
    {
        NAME(same_backward) s = NAME(same_backward_alloc)(g);
        if (!s.x) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        }
        IN_PRAGMA(omp for schedule(static) reduction(+:bad))
        for (size_t p = 0; p < P; ++p) {
            if (!s.x) continue;
            if (taps) bad += NAME(same_taps_plane)(dx + p * HW, dy + p * n, taps + p * n, &s, g);
            else bad += NAME(same_backward_plane)(dx + p * HW, dy + p * n, y + p * n, x + p * HW, &s, g);
        }
        free(s.x ? s.x - s.slack : NULL);
    }
    return failed ? SIZE_MAX : bad;
}

/* Same-size max pools on planes over this many values run tiled, whose chunks run on across
 * planes: one thread, batch 16, 28x28 2.5x faster than the same-size passes (192 planes: 0.91
 * against 2.27 ms), 17x17 1.8x, 35x35 1.6x; batch 1 2.2-2.4x. The same-size passes stay faster
 * on 14x14 (1.4x) and smaller planes (7x7: 3.3x). */
#define IN_POOL_SAME_TILED 256
/* y (and taps, NULL: none) by the tiled passes or the row passes, whichever fits g */
static int NAME(max_forward_exact)(real *y, uint8_t *taps, const real *x, size_t P,
                                   in_pool_geometry g)
{
    int same_tiled = NAME(same_size)(g) && (taps || g.H * g.W > IN_POOL_SAME_TILED);
    if (NAME(tiled)(g, taps != NULL) || same_tiled)
        return NAME(max_forward_tiled)(y, taps, x, P, g);
    return NAME(pool_planes)(y, taps, x, P, g, -1);
}

/* ---- max pooling's forward on planes without NaN, a plane at a time: same-size 3x3/1
 * (Inception's pool branches on 28x28 and larger planes) and 3x3/2 without padding (the pools
 * between stages) ----
 * On values without NaN, max_nan's select never fires and the plain maximum v > m ? v : m (one
 * vector instruction) gives its bits. So a plane is pooled with plain maxima, in the same order
 * of taps as the passes above (-0 and +0 keep their order too): window rows first, in order,
 * into b, then b's columns, the centre column first. Same-size, flat over the plane:
 *     b[q] = max of x[q - W], x[q], x[q + W] within the plane
 *     y[q] = max of b[q], b[q - 1], b[q + 1] within q's row
 * 3x3/2, output row by output row (rows 2oy .. 2oy + 2 within the plane; b's values past W are
 * -inf, which leaves a maximum as it is):
 *     b[q] = max of x[2oy*W + q], x[(2oy + 1)*W + q], x[(2oy + 2)*W + q]
 *     y[oy*ow + ox] = max of b[2ox], b[2ox + 1], b[2ox + 2]
 * Every x value is an operand of a > in the first pass (a 3x3/2 window of one row is the last
 * row of the window before), and > is a signalling comparison (C99 Annex F; x86's maxps,
 * AArch64's fcmgt): a NaN raises the invalid flag, and a plane that raised it is pooled again
 * by the passes above (max_forward_exact). The flag costs nothing in the loops, where a NaN
 * test of each value read cost 4-13 % on 28x28 (Intel Xeon) and took all of the gain on 3x3/2
 * planes; whether this build raises it is checked once (flags_nan). Measured one thread, hot,
 * against the passes above: same-size 192 x 28x28 1.5-1.7x on Zen 5, 1.8-2.0x on an Intel Xeon
 * (batch 16: 1.9x); 3x3/2 on the Xeon 112 -> 56 1.3-1.4x, 56 -> 28 and 71 -> 35 1.4-1.5x. Smaller
 * same-size planes keep the same-size chunks (7x7 and 14x14 run as fast or faster there, many
 * planes a chunk; stacked here, flat with their edge rows masked, 0.65-0.75x). */
#define IN_POOL_PLANE_MAX 12544 /* 112 x 112: a same-size plane's b within L2 */
/* 3x3/2 planes with narrower rows keep the tiled passes: the row loops' scalar tails took the
 * gain (28 -> 14 0.99x, 14 -> 7 0.76x) */
#define IN_POOL_PLANE_ROW_MIN 32

static inline real NAME(larger)(real m, real v) { return v > m ? v : m; }

/* Whether g's planes are pooled by plain_plane (above) */
static inline int NAME(plain_planes)(in_pool_geometry g)
{
    size_t HW = g.H * g.W;
    int window3 = g.kh == 3 && g.kw == 3 && g.H >= 3 && g.W >= 3;
    int same3 = g.ph == 1 && g.pw == 1 && NAME(same_size)(g) && HW > IN_POOL_SAME_TILED
                && HW <= IN_POOL_PLANE_MAX;
    int stride2 = g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.W >= IN_POOL_PLANE_ROW_MIN;
    return window3 && (same3 || stride2);
}

/* One same-size 3x3/1 plane (see above), H, W >= 2; b holds HW values and one either side,
 * col[q] = q % W */
IN_HOT static void NAME(same3_plane)(real *restrict y, const real *restrict x, real *restrict b,
                                     const int32_t *restrict col, size_t H, size_t W)
{
    size_t HW = H * W;
    int last = (int)W - 1;
    for (size_t q = 0; q < W; ++q) b[q] = NAME(larger)(x[q], x[q + W]);
    for (size_t q = W; q < HW - W; ++q)
        b[q] = NAME(larger)(NAME(larger)(x[q - W], x[q]), x[q + W]);
    for (size_t q = HW - W; q < HW; ++q) b[q] = NAME(larger)(x[q - W], x[q]);
    for (size_t q = 0; q < HW; ++q) {
        real m = b[q], left = NAME(larger)(m, b[q - 1]);
        m = col[q] != 0 ? left : m;
        real right = NAME(larger)(m, b[q + 1]);
        y[q] = col[q] != last ? right : m;
    }
}

/* One 3x3/2 plane without padding (see above), H, W >= 3; b holds W values and two -inf after */
IN_HOT static void NAME(stride2_plane)(real *restrict y, const real *restrict x, real *restrict b,
                                       size_t H, size_t W, size_t oh, size_t ow)
{
    for (size_t oy = 0; oy < oh; ++oy, y += ow) {
        const real *r = x + 2 * oy * W;
        size_t rows = H - 2 * oy;
        if (rows >= 3)
            for (size_t q = 0; q < W; ++q)
                b[q] = NAME(larger)(NAME(larger)(r[q], r[q + W]), r[q + 2 * W]);
        else if (rows == 2)
            for (size_t q = 0; q < W; ++q) b[q] = NAME(larger)(r[q], r[q + W]);
        else memcpy(b, r, W * sizeof(real));
        for (size_t ox = 0; ox < ow; ++ox)
            y[ox] = NAME(larger)(NAME(larger)(b[2 * ox], b[2 * ox + 1]), b[2 * ox + 2]);
    }
}

/* Buffers of plain_plane for g: b (with its edges) and, same-size, col */
typedef struct { real *b; int32_t *col; } NAME(plane_buffers);

/* The buffers for g's planes, or b NULL when there was no memory */
static NAME(plane_buffers) NAME(plane_buffers_new)(in_pool_geometry g)
{
    NAME(plane_buffers) k = {NULL, NULL};
    if (!NAME(same_size)(g)) {
        k.b = malloc((g.W + 2) * sizeof(real));
        if (k.b) k.b[g.W] = k.b[g.W + 1] = (real)-INFINITY;
        return k;
    }
    size_t HW = g.H * g.W;
    k.b = calloc(HW + 2, sizeof(real));
    k.col = malloc(HW * sizeof(int32_t));
    if (!k.col) free(k.b), k.b = NULL;
    for (size_t q = 0, c = 0; k.b && q < HW; ++q, c = c + 1 == g.W ? 0 : c + 1)
        k.col[q] = (int32_t)c;
    return k;
}

/* One plane of g (plain_planes(g)) by its kernel above */
static void NAME(plain_plane)(real *y, const real *x, NAME(plane_buffers) k, in_pool_geometry g)
{
    if (k.col) NAME(same3_plane)(y, x, k.b + 1, k.col, g.H, g.W);
    else NAME(stride2_plane)(y, x, k.b, g.H, g.W, g.oh, g.ow);
}

/* Whether plain_plane, as built, raises the invalid flag for a NaN at every place of a plane
 * (the vector loops and their scalar tails) and not without one: a same-size 5 x 17 and an 8 x
 * 35 -> 4 x 17, checked on first use */
static int NAME(flags_nan_checked) = -1;
static int NAME(flags_nan)(void)
{
    enum { HW = 8 * 35 };
    if (NAME(flags_nan_checked) >= 0) return NAME(flags_nan_checked);
    in_pool_geometry gs[2] = {{5, 17, 5, 17, 3, 3, 1, 1, 1, 1}, {8, 35, 4, 17, 3, 3, 2, 2, 0, 0}};
    real x[HW], y[HW];
    int saved = in_invalid_raised(), works = 1;
    for (int k = 0; k < 2 && works; ++k) {
        NAME(plane_buffers) buf = NAME(plane_buffers_new)(gs[k]);
        works = buf.b != NULL;
        for (int at = -1; works && at < (int)(gs[k].H * gs[k].W); ++at) {
            for (int q = 0; q < HW; ++q) x[q] = (real)((q * 7) % 11) - 5;
            if (at >= 0) x[at] = (real)NAN;
            in_invalid_set(0);
            NAME(plain_plane)(y, x, buf, gs[k]);
            works = in_invalid_raised() == (at >= 0);
        }
        free(buf.b);
        free(buf.col);
    }
    in_invalid_set(saved);
    return NAME(flags_nan_checked) = works;
}

/* y = max pooling of P planes of g (plain_planes(g) and flags_nan()), each thread with its own
 * buffers; each thread's invalid flag is left as it was. Returns 0, or -1 when some thread had
 * no memory. */
static int NAME(max_forward_plain)(real *y, const real *x, size_t P, in_pool_geometry g)
{
    size_t HW = g.H * g.W, OHW = g.oh * g.ow;
    int failed = 0;
    IN_PRAGMA(omp parallel if (P * HW >= IN_PARALLEL_MIN))
    {
        NAME(plane_buffers) k = NAME(plane_buffers_new)(g);
        int saved = in_invalid_raised();
        in_invalid_set(0);
        if (!k.b) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        }
        IN_PRAGMA(omp for schedule(static))
        for (size_t p = 0; p < P; ++p) {
            real *yp = y + p * OHW;
            const real *xp = x + p * HW;
            if (!k.b) continue;
            NAME(plain_plane)(yp, xp, k, g);
            if (!in_invalid_raised()) continue;
            if (NAME(max_forward_exact)(yp, NULL, xp, 1, g)) {
                IN_PRAGMA(omp atomic write)
                failed = 1;
            }
            in_invalid_set(0); /* raised again by the NaN there */
        }
        in_invalid_set(saved);
        free(k.b);
        free(k.col);
    }
    return failed ? -1 : 0;
}

/* y = max over the window (a NaN wins). argmax (NULL: none, the fast path inference takes) =
 * its plane index iy*W + ix, the first maximum in the window's row-major order, found by a
 * second look at the windows (first_maxima): a second read of x and y and a write of argmax.
 * taps (NULL: none; training keeps them, kernels of up to IN_POOL_TAPS_MAX taps) = the same
 * maximum's tap i*kw + j in its window, found by the same passes as y (max_rows' first rows,
 * max_taps, first_taps): one byte an output more written, x read once (same-size maps take the
 * tiled passes then, as the same-size chunks have no room for the first rows; and so do those
 * of planes over IN_POOL_SAME_TILED values). Without taps, planes without NaN of the kinds
 * plain_planes names take max_forward_plain. Returns 0, or -1 when the buffers could not be
 * allocated. */
int NAME(max_pool2d_forward)(real *y, int64_t *argmax, uint8_t *taps, const real *x, size_t P,
                             size_t H, size_t W, size_t oh, size_t ow, size_t kh, size_t kw,
                             size_t sh, size_t sw, size_t ph, size_t pw)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    int failed = 0;
    int plain = !taps && NAME(plain_planes)(g) && NAME(flags_nan)();
    if (plain ? NAME(max_forward_plain)(y, x, P, g) : NAME(max_forward_exact)(y, taps, x, P, g))
        return -1;
    if (!argmax) return 0;
    IN_PRAGMA(omp parallel if (P * H * W >= IN_PARALLEL_MIN))
    {
        NAME(search) s = NAME(search_alloc)(g);
        if (!s.D) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        }
        IN_PRAGMA(omp for schedule(static))
        for (size_t p = 0; p < P; ++p)
            if (s.D)
                NAME(first_maxima)(argmax + p * oh * ow, NULL, NULL, y + p * oh * ow,
                                   x + p * H * W, &s, g);
        NAME(search_free)(&s);
    }
    return failed ? -1 : 0;
}

/* dx = 0, then dx[the pixel of window q's tap taps[q]] += dy[q] in output order: the bits of
 * max_pool2d_backward given the argmax those taps name. Plane by plane, its dx zeroed just
 * before (in L1); same-size planes by the vectorised gather (same_taps_plane). Returns the
 * number of taps naming no pixel of the map (skipped; the wrapper raises: corrupted taps never
 * write out of bounds), or SIZE_MAX when the gather's buffers could not be allocated. */
size_t NAME(max_pool2d_backward_taps)(real *dx, const real *dy, const uint8_t *taps, size_t P,
                                      size_t H, size_t W, size_t oh, size_t ow, size_t kh,
                                      size_t kw, size_t sh, size_t sw, size_t ph, size_t pw)
{
    ptrdiff_t row[256], column[256]; /* tap t's pixel from its window's corner; t >= kh*kw: none */
    for (size_t t = 0; t < 256; ++t) {
        int tap = t < kh * kw;
        row[t] = tap ? (ptrdiff_t)(t / kw) : (ptrdiff_t)(H + kh); /* below every window */
        column[t] = tap ? (ptrdiff_t)(t % kw) : 0;
    }
    size_t bad = 0, HW = H * W, n = oh * ow;
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    if (NAME(same_backward_fits)(g)) return NAME(same_planes)(dx, dy, NULL, NULL, taps, P, g);
    IN_PRAGMA(omp parallel for schedule(static) reduction(+:bad) if (P * HW >= IN_PARALLEL_MIN))
    for (size_t p = 0; p < P; ++p) {
        real *dxp = dx + p * HW;
        const real *dyp = dy + p * n;
        const uint8_t *tp = taps + p * n;
        memset(dxp, 0, HW * sizeof(real));
        for (size_t oy = 0; oy < oh; ++oy) {
            ptrdiff_t y0 = (ptrdiff_t)(oy * sh) - (ptrdiff_t)ph;
            for (size_t ox = 0, q = oy * ow; ox < ow; ++ox, ++q) {
                ptrdiff_t iy = y0 + row[tp[q]];
                ptrdiff_t ix = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw + column[tp[q]];
                if ((size_t)iy < H && (size_t)ix < W) dxp[(size_t)iy * W + (size_t)ix] += dyp[q];
                else ++bad;
            }
        }
    }
    return bad;
}

/* dx = 0, then dx[argmax] += dy. Returns the number of argmax entries outside [0, H*W), which
 * are skipped (the wrapper raises): a corrupted argmax never writes out of bounds. */
size_t NAME(max_pool2d_backward)(real *dx, const real *dy, const int64_t *argmax, size_t P,
                                 size_t HW, size_t ohw)
{
    size_t bad = 0;
    IN_PRAGMA(omp parallel for schedule(static) reduction(+:bad) if (P * HW >= IN_PARALLEL_MIN))
    for (size_t p = 0; p < P; ++p) {
        memset(dx + p * HW, 0, HW * sizeof(real));
        bad += NAME(scatter)(dx + p * HW, dy + p * ohw, argmax + p * ohw, ohw, HW);
    }
    return bad;
}

/* The same gradient without an argmax: per plane, each window's first maximum found again by
 * comparing x with y (first_maxima), a chunk of output rows at a time into a buffer of their
 * positions, then dx[pos] += dy, dx's rows zeroed just before (in L1). Reads x, y and dy once,
 * writes dx once; gives the bits max_pool2d_backward gives with max_pool2d_forward's argmax.
 * Returns the number of windows holding no pixel equal to their y (skipped; the wrapper raises),
 * or SIZE_MAX when the buffers could not be allocated. */
size_t NAME(max_pool2d_backward_search)(real *dx, const real *dy, const real *x, const real *y,
                                        size_t P, size_t H, size_t W, size_t oh, size_t ow,
                                        size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                                        size_t pw)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    size_t bad = 0;
    int failed = 0;
    if (NAME(same_backward_fits)(g)) return NAME(same_planes)(dx, dy, y, x, NULL, P, g);
    IN_PRAGMA(omp parallel if (P * H * W >= IN_PARALLEL_MIN))
    {
        NAME(search) s = NAME(search_alloc)(g);
        int64_t *pos = s.D ? malloc(s.R * ow * sizeof(int64_t)) : NULL;
        if (!pos) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        }
        IN_PRAGMA(omp for schedule(static) reduction(+:bad))
        for (size_t p = 0; p < P; ++p) {
            if (!pos) continue;
            bad += NAME(first_maxima)(pos, dx + p * H * W, dy + p * oh * ow, y + p * oh * ow,
                                      x + p * H * W, &s, g);
        }
        free(pos);
        NAME(search_free)(&s);
    }
    return failed ? SIZE_MAX : bad;
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
 * adjoint of the forward (adaptive windows; sliding ones take avg_plane_backward). */
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
 * PyTorch's default) or within the image. The forward returns 0, or -1 when its row buffers
 * could not be allocated. */
int NAME(avg_pool2d_forward)(real *y, const real *x, size_t P, size_t H, size_t W, size_t oh,
                             size_t ow, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                             size_t pw, int count_include_pad)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    return NAME(pool_planes)(y, NULL, x, P, g, count_include_pad != 0);
}

/* d[k*s] += share[k] for k < n: one window tap's part of a row of shares */
static inline void NAME(spread_tap)(real *restrict d, const real *restrict share, size_t s,
                                    size_t n)
{
    for (size_t k = 0; k < n; ++k) d[k * s] += share[k];
}

/* One plane of the average pooling's backward, the adjoint of avg_plane: dx = 0, then each
 * output's share, dy[oy, ox] / its divisor (rows times columns, as the forward counts them), is
 * added to every pixel of its window. Per output row, IN_POOL_LANES shares at a time, added
 * window tap by window tap (row iy, kernel column j) to dx's row iy at columns ox*sw + j - pw:
 * lanes across output columns, as first_maxima's. A pixel sums its shares output row by output
 * row. One read of dy, kh*kw/(sh*sw) read-adds of dx per pixel (from L1). */
IN_HOT static void NAME(avg_plane_backward)(real *dxp, const real *dyp, in_pool_geometry g,
                                            const size_t *valid, int count_include_pad)
{
    real share[IN_POOL_LANES];
    memset(dxp, 0, g.H * g.W * sizeof(real));
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1, x0, x1, padded = NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        double rows = (double)(count_include_pad ? padded : y1 - y0);
        for (size_t c0 = 0; c0 < g.ow; c0 += IN_POOL_LANES) {
            size_t n = g.ow - c0 < IN_POOL_LANES ? g.ow - c0 : IN_POOL_LANES;
            for (size_t k = 0; k < n; ++k) {
                size_t wide = NAME(window)(&x0, &x1, c0 + k, g.kw, g.sw, g.pw, g.W);
                double cols = (double)(count_include_pad ? wide : x1 - x0);
                share[k] = (real)(dyp[oy * g.ow + c0 + k] / (rows * cols));
            }
            for (size_t iy = y0; iy < y1; ++iy)
                for (size_t j = 0; j < g.kw; ++j) {
                    ptrdiff_t off = (ptrdiff_t)j - (ptrdiff_t)g.pw;
                    size_t lo, hi;
                    NAME(tap_range)(&lo, &hi, valid, j, off, g.sw, g.W, g.ow, c0, n);
                    if (lo >= hi) continue;
                    real *d = dxp + iy * g.W + (size_t)((ptrdiff_t)(lo * g.sw) + off);
                    const real *part = share + (lo - c0);
                    if (g.sw == 1) NAME(spread_tap)(d, part, 1, hi - lo);
                    else if (g.sw == 2) NAME(spread_tap)(d, part, 2, hi - lo);
                    else NAME(spread_tap)(d, part, g.sw, hi - lo);
                }
        }
    }
}

/* Same-size stride 1 (same_size: Inception's 3x3/1 pad 1 pool branches), the backward as a
 * gather: dx[iy, ix] sums the shares s = dy / divisor of the outputs whose window covers pixel
 * (iy, ix), those of rows oy in [iy + ph - kh + 1, iy + ph] and columns ox in
 * [ix + pw - kw + 1, ix + pw] inside the output plane. That is a sum pooling of the shares
 * plane with the same kernel, stride 1 and paddings kh - 1 - ph = ph and kw - 1 - pw = pw: the
 * same geometry, the divisor one. So same_chunk runs it on each plane's shares, in chunks of the
 * plane's rows (same_chunks' rows). */

/* The same-size backward of P planes (see above), each thread with its own buffers, in doubles:
 * same_buffers', inverse (the divisors' inverses, H*W), ones (H*W), cols (ow) and the shares (H*W
 * reals with ph rows of zeros either side). Returns 0, or -1 when some thread had no memory (its planes are not
 * done). */
static int NAME(avg_backward_same)(real *dx, const real *dy, size_t P, in_pool_geometry g,
                                   int count_include_pad)
{
    size_t planes, rows, W = g.W, HW = g.H * W, S = g.ph * W;
    NAME(same_chunks)(&planes, &rows, g);
    size_t L = rows * W, count = L + 2 * g.pw + L + 2 * HW + g.ow + HW + 2 * S;
    int failed = 0;
    IN_PRAGMA(omp parallel if (P * HW >= IN_PARALLEL_MIN))
    {
        double *b = malloc(count * sizeof(double)), *inverse = NULL, *ones = NULL;
        int32_t *pos = NULL, *col = NULL;
        real *shares = NULL;
        if (!b) {
            IN_PRAGMA(omp atomic write)
            failed = 1;
        } else {
            double *cols;
            inverse = NAME(same_buffers)(b, &pos, &col, L, g);
            ones = inverse + HW;
            cols = ones + HW;
            shares = (real *)(cols + g.ow);
            memset(shares, 0, (HW + 2 * S) * sizeof(real));
            shares += S;
            NAME(column_counts)(cols, g, count_include_pad);
            NAME(inverse_divisors)(inverse, cols, g, count_include_pad);
            for (size_t q = 0; q < HW; ++q) ones[q] = 1;
        }
        IN_PRAGMA(omp for schedule(static))
        for (size_t p = 0; p < P; ++p) {
            if (!b) continue;
            for (size_t q = 0; q < HW; ++q) shares[q] = (real)(dy[p * HW + q] * inverse[q]);
            for (size_t r0 = 0; r0 < g.H; r0 += rows) {
                size_t n = ((g.H - r0 < rows ? g.H : r0 + rows) - r0) * W;
                NAME(same_chunk)(dx + p * HW + r0 * W, shares + r0 * W, r0 * W, n,
                                 b + g.pw, pos, col, ones + r0 * W, g);
            }
        }
        free(b);
    }
    return failed ? -1 : 0;
}

/* dx: the same-size path (avg_backward_same) when it applies and has its memory, otherwise
 * avg_plane_backward plane by plane */
void NAME(avg_pool2d_backward)(real *dx, const real *dy, size_t P, size_t H, size_t W, size_t oh,
                               size_t ow, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                               size_t pw, int count_include_pad)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    if (NAME(same_size)(g) && NAME(avg_backward_same)(dx, dy, P, g, count_include_pad) == 0)
        return;
    size_t ranges[2 * IN_POOL_KERNEL_COLUMNS], *valid = NAME(tap_ranges)(ranges, g);
    PARALLEL_OVER(P * H * W)
    for (size_t p = 0; p < P; ++p)
        NAME(avg_plane_backward)(dx + p * H * W, dy + p * oh * ow, g, valid, count_include_pad);
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

#if !IN_DOUBLE
/* ---- the blocked layout NCHWc (float only: frozen float32 inference) ---------------------
 * A blocked tensor of C = CB*blk channels is (B, CB, H, W, blk): channel c is lane c % blk of
 * block c / blk, and the blk lanes of a pixel are contiguous. Image b starts at b*x_image
 * (x_image >= CB*H*W*blk: a block slice t[:, b0:b1] of a larger tensor); a plain tensor's image
 * stride likewise (>= C*H*W: a channel slice). Every kernel runs over the B*CB (image, block)
 * units, and its inner loop over the lanes of one pixel, which the compiler vectorises: blk is
 * 8 or 16, a constant in each inlined copy (NCHWC_LANES). The caller checks blk <= 16. */
#define IN_NCHWC_MAX_LANES 16
#define NCHWC_INLINE static inline __attribute__((always_inline))  /* blk a constant in each copy */
#define NCHWC_LANES(blk, call) \
    do { if ((blk) == 8) call(8); else if ((blk) == 16) call(16); else call(blk); } while (0)

/* y[s*blk + l] = x[l*S + s]: one block of blk plain channel planes (S pixels each) interleaved */
NCHWC_INLINE void NAME(interleave)(real *restrict y, const real *restrict x, size_t S,
                                    size_t blk)
{
    for (size_t s = 0; s < S; ++s)
        for (size_t l = 0; l < blk; ++l) y[s * blk + l] = x[l * S + s];
}

/* y[l*S + s] = x[s*blk + l]: the inverse */
NCHWC_INLINE void NAME(deinterleave)(real *restrict y, const real *restrict x, size_t S,
                                      size_t blk)
{
    for (size_t s = 0; s < S; ++s)
        for (size_t l = 0; l < blk; ++l) y[l * S + s] = x[s * blk + l];
}

/* NCHW (B, CB*blk, S) -> NCHWc (B, CB, S, blk), or back (to_plain) */
IN_HOT void NAME(nchwc_reorder)(real *y, const real *x, size_t B, size_t CB, size_t S, size_t blk,
                                size_t x_image, size_t y_image, int to_plain)
{
    PARALLEL_OVER(B * CB * S * blk)
    for (size_t u = 0; u < B * CB; ++u) {
        size_t b = u / CB, at = (u % CB) * S * blk;  /* block u % CB's offset in either layout */
        real *yu = y + b * y_image + at;
        const real *xu = x + b * x_image + at;
#define NCHWC_REORDER(lanes) \
        (to_plain ? NAME(deinterleave)(yu, xu, S, lanes) : NAME(interleave)(yu, xu, S, lanes))
        NCHWC_LANES(blk, NCHWC_REORDER);
#undef NCHWC_REORDER
    }
}

/* One block of max pooling: y[oy, ox, l] = the maximum (a NaN wins) over the window's pixels
 * inside the image of x[iy, ix, l]. Output row oy starts at -inf and folds in each window tap
 * (iy, j) across the output columns whose tap lies in the image: at stride 1 one contiguous
 * run of (hi - lo)*blk values (fold_max, as the NCHW rows), otherwise blk lanes per column. */
NCHWC_INLINE void NAME(max_block)(real *restrict y, const real *restrict x, in_pool_geometry g,
                                  size_t blk)
{
    size_t row = g.W * blk;
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1, lo, hi;
        real *yr = y + oy * g.ow * blk;
        NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        for (size_t k = 0; k < g.ow * blk; ++k) yr[k] = (real)-INFINITY;
        for (size_t iy = y0; iy < y1; ++iy)
            for (size_t j = 0; j < g.kw; ++j) {
                ptrdiff_t off = (ptrdiff_t)j - (ptrdiff_t)g.pw;
                in_valid_range(&lo, &hi, off, g.sw, g.W, g.ow);
                const real *xr = x + iy * row;  /* tap j of column ox: pixel ox*sw + off */
                if (lo < hi && g.sw == 1)
                    NAME(fold_max)(yr + lo * blk, xr + (size_t)((ptrdiff_t)lo + off) * blk,
                                   (hi - lo) * blk);
                else
                    for (size_t ox = lo; ox < hi; ++ox)
                        NAME(fold_max)(yr + ox * blk,
                                       xr + (size_t)((ptrdiff_t)(ox * g.sw) + off) * blk, blk);
            }
    }
}

/* One block of average pooling: y[oy, ox, l] = the sum in double over the window's pixels
 * inside the image of x[iy, ix, l] (in the window's row-major order), / the window's size
 * (counting the padding or not, as the NCHW kernels do) */
NCHWC_INLINE void NAME(avg_block)(real *restrict y, const real *restrict x, in_pool_geometry g,
                                  int count_include_pad, size_t blk)
{
    for (size_t oy = 0; oy < g.oh; ++oy) {
        size_t y0, y1, x0, x1, rows = NAME(window)(&y0, &y1, oy, g.kh, g.sh, g.ph, g.H);
        for (size_t ox = 0; ox < g.ow; ++ox) {
            size_t cols = NAME(window)(&x0, &x1, ox, g.kw, g.sw, g.pw, g.W);
            double sum[IN_NCHWC_MAX_LANES];
            for (size_t l = 0; l < blk; ++l) sum[l] = 0;
            for (size_t iy = y0; iy < y1; ++iy)
                for (size_t ix = x0; ix < x1; ++ix)
                    for (size_t l = 0; l < blk; ++l) sum[l] += x[(iy * g.W + ix) * blk + l];
            double count = (double)(count_include_pad ? rows * cols : (y1 - y0) * (x1 - x0));
            for (size_t l = 0; l < blk; ++l) y[(oy * g.ow + ox) * blk + l] = (real)(sum[l] / count);
        }
    }
}

/* Max (average_include_pad < 0) or average pooling (count_include_pad = average_include_pad)
 * of a blocked tensor, block by block */
NCHWC_INLINE void NAME(pool_nchwc)(real *y, const real *x, size_t B, size_t CB, size_t blk,
                                   size_t x_image, size_t y_image, in_pool_geometry g,
                                   int average_include_pad)
{
    size_t in = g.H * g.W * blk, out = g.oh * g.ow * blk;
    PARALLEL_OVER(B * CB * in)
    for (size_t u = 0; u < B * CB; ++u) {
        real *yu = y + u / CB * y_image + u % CB * out;
        const real *xu = x + u / CB * x_image + u % CB * in;
#define NCHWC_POOL(lanes)                                                    \
        (average_include_pad < 0 ? NAME(max_block)(yu, xu, g, lanes)         \
                                 : NAME(avg_block)(yu, xu, g, average_include_pad, lanes))
        NCHWC_LANES(blk, NCHWC_POOL);
#undef NCHWC_POOL
    }
}

IN_HOT void NAME(max_pool2d_forward_nchwc)(real *y, const real *x, size_t B, size_t CB,
                                           size_t blk, size_t x_image, size_t y_image, size_t H,
                                           size_t W, size_t oh, size_t ow, size_t kh, size_t kw,
                                           size_t sh, size_t sw, size_t ph, size_t pw)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    NAME(pool_nchwc)(y, x, B, CB, blk, x_image, y_image, g, -1);
}

IN_HOT void NAME(avg_pool2d_forward_nchwc)(real *y, const real *x, size_t B, size_t CB,
                                           size_t blk, size_t x_image, size_t y_image, size_t H,
                                           size_t W, size_t oh, size_t ow, size_t kh, size_t kw,
                                           size_t sh, size_t sw, size_t ph, size_t pw,
                                           int count_include_pad)
{
    in_pool_geometry g = {H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    NAME(pool_nchwc)(y, x, B, CB, blk, x_image, y_image, g, count_include_pad != 0);
}

/* y[c] = sum over the S pixels of lane c % blk of block c / blk, in double, / S: one block */
NCHWC_INLINE void NAME(mean_block)(real *restrict y, const real *restrict x, size_t S,
                                    size_t blk)
{
    double sum[IN_NCHWC_MAX_LANES];
    for (size_t l = 0; l < blk; ++l) sum[l] = 0;
    for (size_t s = 0; s < S; ++s)
        for (size_t l = 0; l < blk; ++l) sum[l] += x[s * blk + l];
    for (size_t l = 0; l < blk; ++l) y[l] = (real)(sum[l] / (double)S);
}

/* y (B, CB*blk), plain = the mean of each channel of a blocked x over its S pixels */
IN_HOT void NAME(global_avg_pool_forward_nchwc)(real *y, const real *x, size_t B, size_t CB,
                                                size_t blk, size_t x_image, size_t S)
{
    PARALLEL_OVER(B * CB * S * blk)
    for (size_t u = 0; u < B * CB; ++u) {
        real *yu = y + u * blk;
        const real *xu = x + u / CB * x_image + u % CB * S * blk;
#define NCHWC_MEAN(lanes) NAME(mean_block)(yu, xu, S, lanes)
        NCHWC_LANES(blk, NCHWC_MEAN);
#undef NCHWC_MEAN
    }
}

#undef NCHWC_LANES
#undef NCHWC_INLINE
#endif
#undef PARALLEL_OVER
#undef IN_POOL_LANES
