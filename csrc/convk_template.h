/* convk_template.h: the convolution kernels of convk.h for one real type (convk.c instantiates
 * it for float and double): preparing the source, packing weights, dbias, and the drivers that
 * share the work among OpenMP threads and call the ISA's tasks (convk_isa_template.h).
 * See convk.h for the legend and the math of each pass. */

/* The fused store: out pixel (b, Y, X) of channel o goes to y[b*image + o*chan + Y*row +
 * X*col] = act(scale[o] * sum + shift[o] (+ y[...])); scale, shift may be NULL (1, 0); act is
 * ReLU or the identity. The forward writes maps whole (row = ow, col = 1), a dL/dx phase every
 * sh-th row and sw-th column of dx. */
typedef struct {
    real *y;
    size_t image, chan, row, col;
    const real *scale, *shift;
    int relu, accumulate;
} NAME(epilogue);

#define IN_ISA_TEMPLATE "convk_isa_template.h"
#include "isa_levels.h"

typedef void (*NAME(gemm_task_fn))(const in_convk_gemm *, const NAME(epilogue) *, const real *,
                                   const real *, real *, real *, size_t, size_t, size_t, size_t);
typedef void (*NAME(dw_task_fn))(const in_convk_plan *, const in_convk_gemm *, const real *,
                                 const real *, size_t, const real *, real *, real *, real *,
                                 double *, size_t, size_t, size_t, size_t, size_t, size_t, int);

typedef void (*NAME(dy_sum_fn))(double *, double *, const real *, const real *, size_t);
typedef void (*NAME(wino_task_fn))(const in_convk_wino *, const NAME(epilogue) *, const real *,
                                   size_t, const real *, real *, real *, size_t, size_t, size_t,
                                   size_t);

static const struct {
    NAME(gemm_task_fn) gemm_task;
    NAME(dw_task_fn) dw_task;
    NAME(dy_sum_fn) plane_dy_sum;
    NAME(wino_task_fn) wino_task;
} NAME(kernels)[IN_CONVK_LEVELS] = {
    {NAME(gemm_task_isa0), NAME(dw_task_isa0), NAME(plane_dy_sum_isa0), NAME(wino_task_isa0)},
#if IN_CONVK_X86
    {NAME(gemm_task_isa1), NAME(dw_task_isa1), NAME(plane_dy_sum_isa1), NAME(wino_task_isa1)},
    {NAME(gemm_task_isa2), NAME(dw_task_isa2), NAME(plane_dy_sum_isa2), NAME(wino_task_isa2)},
#else
    {0, 0, 0, 0},
    {0, 0, 0, 0},
#endif
    {NAME(gemm_task_isa3), NAME(dw_task_isa3), NAME(plane_dy_sum_isa3), NAME(wino_task_isa3)},
};

/* One plane of P from one plane of the input (see in_convk_gemm): P[Y, X] = in[Y - top,
 * X - left] (0 outside the input, or where mask <= 0), column X stored at phase X % sw,
 * position X / sw. */
static void NAME(prep_plane)(real *P, const real *in, const real *mask, const in_convk_gemm *g)
{
    ptrdiff_t Ws = (ptrdiff_t)g->Ws;
    size_t ix0 = g->left < 0 ? (size_t)(-g->left) : 0;
    size_t ix1 = Ws > g->left ? min_size(g->Wi, (size_t)(Ws - g->left)) : 0;
    for (size_t Y = 0; Y < g->Hs; ++Y) {
        real *row = P + Y * g->rowstride;
        ptrdiff_t ty = (ptrdiff_t)Y - g->top;
        if (ty < 0 || (size_t)ty >= g->Hi || ix0 >= ix1) {
            memset(row, 0, g->rowstride * sizeof(real));
            continue;
        }
        const real *s = in + (size_t)ty * g->Wi + ix0;
        const real *m = mask ? mask + (size_t)ty * g->Wi + ix0 : 0;
        size_t X = (size_t)(g->left + (ptrdiff_t)ix0), phase = X % g->sw, xq = X / g->sw;
        if (g->sw == 1) { /* the common case: a padded copy, zeros written only beside it */
            real *t = row + X;
            memset(row, 0, X * sizeof(real));
            memset(t + (ix1 - ix0), 0, (g->rowstride - X - (ix1 - ix0)) * sizeof(real));
            if (m)
                for (size_t q = 0; q < ix1 - ix0; ++q) {
                    real v = s[q]; /* both loads unconditional: it vectorises */
                    t[q] = m[q] > 0 ? v : 0;
                }
            else
                memcpy(t, s, (ix1 - ix0) * sizeof(real));
            continue;
        }
        /* a phase at a time: input columns q, q + sw, ... land side by side (a strided read
         * that vectorises, where going through the columns in order did not) */
        memset(row, 0, g->rowstride * sizeof(real));
        for (size_t q0 = 0, sw = g->sw; q0 < sw && q0 < ix1 - ix0; ++q0) {
            real *t = row + (phase + q0) % sw * g->Wq + xq + (phase + q0) / sw;
            size_t n = cdiv(ix1 - ix0 - q0, sw);
            if (m)
                for (size_t q = 0; q < n; ++q) {
                    real v = s[q0 + q * sw];
                    t[q] = m[q0 + q * sw] > 0 ? v : 0;
                }
            else
                for (size_t q = 0; q < n; ++q) t[q] = s[q0 + q * sw];
        }
    }
}

/* The sum of the n values of d where mask > 0 (everywhere when mask is NULL), in double: LANES
 * partial sums, then added in order. One plane of dY: its part of dL/dbias. */
static double NAME(plane_total)(int isa, const real *d, const real *mask, size_t n)
{
    double acc[16] = {0}, s = 0; /* LANES <= 16 */
    NAME(kernels)[isa].plane_dy_sum(acc, &s, d, mask, n);
    for (size_t l = 0; l < 16; ++l) s += acc[l];
    return s;
}

/* P for all B*C planes of in (B, C, Hi, Wi), its images `image` values apart (C*Hi*Wi, or more
 * for a channel slice of a larger tensor; mask alike); returns P. One pass reading in, one
 * writing P. With totals: totals[q] = plane_total of plane q of in (masked), read again while
 * it is in cache (dL/dbias from dL/dx's pass over dY). */
static const real *NAME(prepare)(real *P, const real *in, const real *mask,
                                 const in_convk_gemm *g, size_t B, size_t image, int threads,
                                 double *totals, int isa)
{
    size_t planes = B * g->C, hw = g->Hi * g->Wi;
    IN_PRAGMA(omp parallel for num_threads(threads)
              if (threads > 1 && planes * hw >= IN_PARALLEL_MIN))
    for (size_t q = 0; q < planes; ++q) {
        size_t at = q / g->C * image + q % g->C * hw;
        NAME(prep_plane)(P + q * g->plane, in + at, mask ? mask + at : 0, g);
        if (totals) totals[q] = NAME(plane_total)(isa, in + at, mask ? mask + at : 0, hw);
    }
    return P;
}

/* wp[(m / PANEL)*PANEL*K + r*PANEL + m % PANEL] = A[m, r] (0 for rows M <= m < up(M, PAD)),
 * where A is w (M = OC, K) itself (g NULL), or the weights of dL/dx phase g (M = C, K =
 * OC*kh'*kw'): A[c, (o*kh' + a)*kw' + e] = w[o, c, i0 + sh*(kh'-1-a), j0 + sw*(kw'-1-e)]. */
static void NAME(pack_panels)(real *wp, const real *w, size_t M, size_t K, const in_convk_plan *p,
                              const in_convk_gemm *g, int threads)
{
    size_t panels = up(M, IN_CONVK_PAD) / IN_CONVK_PANEL;
    IN_PRAGMA(omp parallel num_threads(threads) if (threads > 1 && M * K >= IN_PARALLEL_MIN))
    {
        size_t pb = in_share_begin(panels), pe = in_share_end(panels);
        for (size_t pn = pb; pn < pe; ++pn) {
            real *d = wp + pn * IN_CONVK_PANEL * K;
            size_t m0 = pn * IN_CONVK_PANEL, rows = m0 < M ? min_size(IN_CONVK_PANEL, M - m0) : 0;
            if (rows < IN_CONVK_PANEL) memset(d, 0, IN_CONVK_PANEL * K * sizeof(real));
            for (size_t r = 0; !g && r < K; ++r) /* rows of w in order, panel rows in order */
                for (size_t i = 0; i < rows; ++i) d[r * IN_CONVK_PANEL + i] = w[(m0 + i) * K + r];
        }
        /* dL/dx: o outermost, so that w is read in order (w[o, m0 .. m0+5] is one run) */
        for (size_t o = 0; g && o < p->OC; ++o)
            for (size_t pn = pb; pn < pe; ++pn) {
                size_t m0 = pn * IN_CONVK_PANEL, khw = p->kh * p->kw;
                size_t rows = m0 < M ? min_size(IN_CONVK_PANEL, M - m0) : 0;
                real *d = wp + (pn * K + o * g->kh * g->kw) * IN_CONVK_PANEL; /* row r of o */
                for (size_t a = 0; a < g->kh; ++a)
                    for (size_t e = 0; e < g->kw; ++e, d += IN_CONVK_PANEL) {
                        size_t ki = g->i0 + p->sh * (g->kh - 1 - a);
                        size_t kj = g->j0 + p->sw * (g->kw - 1 - e);
                        const real *src = w + ((o * p->C + m0) * p->kh + ki) * p->kw + kj;
                        for (size_t i = 0; i < rows; ++i) d[i] = src[i * khw];
                    }
            }
    }
}

/* Winograd's weights for M output rows and K summed channels: U[m, k] = G g G^T for g the 3x3
 * kernel at w + m*ms + k*ks, flipped when flip (g[i][j] = kernel[2-i][2-j]), in double, stored
 * as 16 matrices U_t (M, K) packed like pack_panels' (K taps): wp[t*up(M, PAD)*K + (m / PANEL)*
 * PANEL*K + k*PANEL + m % PANEL] = U[m, k][t] (0 for rows M <= m < up(M, PAD)). The forward's:
 * M = OC, K = C, ms = 9C, ks = 9; dL/dx's U'[c, o] (w'[c, o, a, e] = w[o, c, 2-a, 2-e]): M = C,
 * K = OC, ms = 9, ks = 9C, flip. 9 values read, 16 written per (m, k). */
static void NAME(pack_wino)(real *wp, const real *w, size_t M, size_t K, size_t ms, size_t ks,
                            int flip, int threads)
{
    enum { P = IN_CONVK_PANEL };
    size_t panels = up(M, IN_CONVK_PAD) / P, usize = panels * P * K;
    IN_PRAGMA(omp parallel for num_threads(threads) if (threads > 1 && M * K >= IN_PARALLEL_MIN))
    for (size_t pm = 0; pm < panels; ++pm)
        for (size_t k = 0; k < K; ++k) {
            /* the panel's P rows side by side (lane i: row pm*P + i), so that each step below is
             * one loop over the lanes and the 16 results land in 16 runs of P values */
            double g[9][P] = {{0}}, h[4][3][P], u[16][P]; /* h = G g (4x3), u = h G^T */
            for (size_t i = 0; i < P && pm * P + i < M; ++i)
                for (size_t q = 0; q < 9; ++q)
                    g[q][i] = w[(pm * P + i) * ms + k * ks + (flip ? 8 - q : q)];
            for (size_t j = 0; j < 3; ++j)
                for (size_t i = 0; i < P; ++i) {
                    h[0][j][i] = g[j][i], h[3][j][i] = g[6 + j][i];
                    h[1][j][i] = 0.5 * (g[j][i] + g[3 + j][i] + g[6 + j][i]);
                    h[2][j][i] = 0.5 * (g[j][i] - g[3 + j][i] + g[6 + j][i]);
                }
            for (size_t r = 0; r < 4; ++r)
                for (size_t i = 0; i < P; ++i) {
                    u[4 * r][i] = h[r][0][i], u[4 * r + 3][i] = h[r][2][i];
                    u[4 * r + 1][i] = 0.5 * (h[r][0][i] + h[r][1][i] + h[r][2][i]);
                    u[4 * r + 2][i] = 0.5 * (h[r][0][i] - h[r][1][i] + h[r][2][i]);
                }
            real *d = wp + (pm * K + k) * P;
            for (size_t t = 0; t < 16; ++t)
                for (size_t i = 0; i < P; ++i) d[t * usize + i] = (real)u[t][i];
        }
}

void NAME(convk_plan_pack_weights)(const in_convk_plan *p, real *wp, const real *w)
{
    if (p->wino) NAME(pack_wino)(wp, w, p->OC, p->C, 9 * p->C, 9, 0, 1);
    else NAME(pack_panels)(wp, w, p->OC, p->K, 0, 0, 1);
}

size_t NAME(convk_work_size)(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                             size_t kw, size_t sh, size_t sw, size_t ph, size_t pw, int threads)
{
    in_convk_plan p;
    in_convk_plan_init(&p, sizeof(real), B, C, H, W, OC, kh, kw, sh, sw, ph, pw, threads);
    return p.work;
}

/* out = A col(src) through the epilogue: the tasks (m chunk, n block) of g, numbered m chunk
 * first, in one contiguous range a thread, claimed a task at a time (in_convk_claim: its own
 * range in order, then the others'; a task's arithmetic does not depend on its thread, so the
 * bits do not either), each thread with its own panels and partial sums in work. A thread's
 * tasks are then neighbours: conv1's row tasks share source rows in its own caches, and where
 * the rows are split among the threads (gemm_blocking) each keeps to its share of the weights.
 * Against tasks handed out in turn, 2 threads, alternating calls (tests/c/convk.sh ab): conv1
 * 1.04-1.09x, 4b 1x1 1.05x at batch 8 and 1.03x at batch 1, 3b 5x5 1.02x; 1 thread 1.00x. */
static void NAME(run_gemm)(const in_convk_gemm *g, const NAME(epilogue) *e, const real *src,
                           const real *a, real *work, int isa, int threads)
{
    NAME(gemm_task_fn) task = NAME(kernels)[isa].gemm_task;
    size_t tasks = g->n_blocks * g->m_chunks, parts = (size_t)threads;
    in_convk_range ranges[parts];
    in_convk_ranges(ranges, tasks, parts);
    IN_PRAGMA(omp parallel num_threads(threads) if (threads > 1))
    {
        size_t self = in_convk_thread(), q;
        real *bbuf = work + self * g->thread_stride;
        real *cpart = bbuf + up(g->bpack, IN_CONVK_ALIGN);
        while (in_convk_claim(ranges, tasks, parts, self, &q)) {
            size_t mi = q / g->n_blocks, nb = q % g->n_blocks;
            task(g, e, src, a, bbuf, cpart, mi * g->mc, min_size(g->M, (mi + 1) * g->mc),
                 nb * g->nc, min_size(g->N, (nb + 1) * g->nc));
        }
    }
}

/* Winograd's convolution g (see in_convk_wino) of src (images `image` values apart) by the
 * packed U, through the epilogue: the tasks (tile block, row chunk) handed out one at a time to
 * whichever thread is free, each thread with its V and M in work. */
static void NAME(run_wino)(const in_convk_wino *g, const NAME(epilogue) *e, const real *src,
                           size_t image, const real *u, real *base, int isa, int threads)
{
    NAME(wino_task_fn) task = NAME(kernels)[isa].wino_task;
    size_t tasks = g->n_blocks * g->m_chunks;
    IN_PRAGMA(omp parallel num_threads(threads) if (threads > 1))
    {
        real *vbuf = base + g->threads_at + in_convk_thread() * g->thread_stride;
        IN_PRAGMA(omp for schedule(dynamic, 1) nowait)
        for (size_t q = 0; q < tasks; ++q) {
            size_t nb = q / g->m_chunks, mi = q % g->m_chunks;
            task(g, e, src, image, u, vbuf, vbuf + g->vsize, mi * g->mc,
                 min_size(g->M, (mi + 1) * g->mc), nb * g->nt, min_size(g->tiles, (nb + 1) * g->nt));
        }
    }
}

/* The pass of the forward's GEMM (dL/dw's too) that starts at image b0: g for its images (the
 * plan's p->images, fewer for the last), and its source: x's images themselves (x_image values
 * apart), or their padded copy P, written at base. */
static const real *NAME(pass_source)(in_convk_gemm *g, const in_convk_plan *p, real *base,
                                     const real *x, size_t x_image, size_t b0)
{
    size_t n = min_size(p->images, p->B - b0);
    *g = p->fwd;
    if (n < p->images) in_convk_fwd_pass(g, p, n);
    if (g->direct) {
        g->image = x_image;
        return x + b0 * x_image;
    }
    return NAME(prepare)(base, x + b0 * x_image, 0, g, n, x_image, p->threads, 0, p->isa);
}

/* Forward: y[b*y_image + o*ohw + p] = act(scale[o] * (w col)[o, n] + shift[o] (+ y)), col
 * read from x's images x_image values apart.
 * Passes: P written once (none for an unpadded stride-1 x), y written once (read once more
 * when accumulating); col panels live in L1/L2 only. A Winograd plan reads x once a channel
 * chunk (run_wino), V and M living in L2 only. */
void NAME(convk_forward)(const in_convk_plan *p, real *y, size_t y_image, real *work,
                         const real *x, size_t x_image, const real *w, const real *wp,
                         const real *scale, const real *shift, int relu, int accumulate)
{
    real *base = in_convk_aligned(work);
    if (p->wino) { /* the whole batch: Winograd reads x itself, no padded copy */
        const NAME(epilogue) e = {y, y_image, p->oh * p->ow, p->ow, 1, scale, shift, relu,
                                  accumulate};
        if (!wp) {
            NAME(pack_wino)(base + p->wg.upack_at, w, p->OC, p->C, 9 * p->C, 9, 0, p->threads);
            wp = base + p->wg.upack_at;
        }
        NAME(run_wino)(&p->wg, &e, x, x_image, wp, base, p->isa, p->threads);
        return;
    }
    if (!wp) {
        NAME(pack_panels)(base + p->fwd_wpack_at, w, p->OC, p->K, 0, 0, p->threads);
        wp = base + p->fwd_wpack_at;
    }
    for (size_t b0 = 0; b0 < p->B; b0 += p->images) {
        in_convk_gemm g;
        const real *src = NAME(pass_source)(&g, p, base, x, x_image, b0);
        const NAME(epilogue) e = {y + b0 * y_image, y_image, p->oh * p->ow, p->ow, 1, scale,
                                  shift, relu, accumulate};
        NAME(run_gemm)(&g, &e, src, wp, base + p->fwd_threads_at, p->isa, p->threads);
    }
}

/* totals[b*OC + o] = plane_total(dY[b, o]) for every plane: one pass over dy (and the mask) */
static void NAME(plane_totals)(double *totals, const real *dy, const real *mask, size_t B,
                               size_t OC, size_t ohw, size_t image, int isa, int threads)
{
    IN_PRAGMA(omp parallel for num_threads(threads)
              if (threads > 1 && B * OC * ohw >= IN_PARALLEL_MIN))
    for (size_t q = 0; q < B * OC; ++q) {
        size_t at = q / OC * image + q % OC * ohw;
        totals[q] = NAME(plane_total)(isa, dy + at, mask ? mask + at : 0, ohw);
    }
}

/* dbias[o] = the sum over b < B, in order, of totals[b*OC + o]: the images' plane totals, or
 * (B = dw_pixel_groups) the pixel groups' row sums */
static void NAME(bias_from_totals)(real *dbias, const double *totals, size_t B, size_t OC)
{
    for (size_t o = 0; o < OC; ++o) {
        double s = 0;
        for (size_t b = 0; b < B; ++b) s += totals[b * OC + o];
        dbias[o] = (real)s;
    }
}

/* dw[o, r] = the sum, in order, of the pixel groups' sums of the task holding (o, r): task q
 * = (group*dw_groups + tap group)*dw_chunks + channel chunk, its sums in rows of up(taps, dnr). */
static void NAME(dw_sum_groups)(real *dw, const real *sums, const in_convk_plan *p)
{
    size_t tasks = p->dw_groups * p->dw_chunks;
    IN_PRAGMA(omp parallel for num_threads(p->threads) if (p->threads > 1) schedule(static))
    for (size_t q = 0; q < tasks; ++q) {
        size_t m0 = q % p->dw_chunks * p->dmc, m1 = min_size(p->OC, m0 + p->dmc);
        size_t t0 = q / p->dw_chunks * p->dnc, t1 = min_size(p->K, t0 + p->dnc);
        size_t ld = up(t1 - t0, p->dnr);
        for (size_t i = 0; i < m1 - m0; ++i) {
            real *d = dw + (m0 + i) * p->K + t0;
            memcpy(d, sums + q * p->dw_tile + i * ld, (t1 - t0) * sizeof(real));
            for (size_t gp = 1; gp < p->dw_pixel_groups; ++gp) {
                const real *s = sums + (gp * tasks + q) * p->dw_tile + i * ld;
                for (size_t t = 0; t < t1 - t0; ++t) d[t] += s[t];
            }
        }
    }
}

/* Backward, the true gradients (dx, dw, dbias each skipped when NULL, overwritten otherwise;
 * dx += instead when dx_accumulate, the sum of an Inception block's branches); dy and y_relu
 * (B, OC, oh, ow) with images dy_image values apart (OC*oh*ow, or more for channel slices of a
 * larger tensor: an Inception branch reading its part of the block's dL/dy):
 *     dbias = sum dY;  dw = dY col(x)^T (tasks own disjoint channels x taps, each summing over
 *     all pixels in order: no reduction, the same bits on any thread count);  dx phase by
 *     phase (in_convk_dx_phase), each w' col(dY), dx_images images a pass, or for a Winograd
 *     plan by Winograd (p->wdx, U' packed first) from P(dY), dx_images images a pass;  dY = dy
 *     masked by y_relu > 0 when y_relu is given; x and dx with images x_image values apart. */
void NAME(convk_backward)(const in_convk_plan *p, real *dx, real *dw, real *dbias, real *work,
                          const real *dy, const real *y_relu, size_t dy_image, const real *x,
                          size_t x_image, const real *w, int dx_accumulate)
{
    real *base = in_convk_aligned(work);
    size_t B = p->B, C = p->C, OC = p->OC;
    /* dL/dbias from the planes' totals, taken by dL/dx's first pass over dY (pending until
     * then) or by a pass of their own */
    double *totals = (double *)(base + p->dbias_at), *pending = dbias && dx ? totals : 0;
    /* without dL/dx, from dL/dw's packed dY instead (no pass of its own over dY and the mask):
     * a pixel group's row sums (groups x OC) by its tasks of the first tap group */
    double *rows = dbias && !dx && dw ? totals : 0;
    if (dw) {
        NAME(dw_task_fn) task = NAME(kernels)[p->isa].dw_task;
        size_t tasks = p->dw_groups * p->dw_chunks, groups = p->dw_pixel_groups;
        real *sums = base + p->dw_sums_at;
        if (rows) memset(rows, 0, groups * OC * sizeof(double));
        for (size_t b0 = 0; b0 < B; b0 += p->images) {
            in_convk_gemm g;
            const real *src = NAME(pass_source)(&g, p, base, x, x_image, b0);
            const real *dyb = dy + b0 * dy_image;
            const real *mask = y_relu ? y_relu + b0 * dy_image : 0;
            size_t span = up(cdiv(g.N, groups), p->dkc);
            IN_PRAGMA(omp parallel num_threads(p->threads) if (p->threads > 1))
            {
                real *abuf = base + p->dw_threads_at + in_convk_thread() * p->dw_stride;
                real *bbuf = abuf + up(up(p->dmc, IN_CONVK_PAD) * p->dkc, IN_CONVK_ALIGN);
                IN_PRAGMA(omp for schedule(dynamic, 1) nowait)
                for (size_t q = 0; q < groups * tasks; ++q) {
                    size_t gi = q % tasks / p->dw_chunks, mi = q % p->dw_chunks;
                    size_t n0 = min_size(g.N, q / tasks * span);
                    double *bias = rows && gi == 0 ? rows + q / tasks * OC + mi * p->dmc : 0;
                    task(p, &g, dyb, mask, dy_image, src, abuf, bbuf, sums + q * p->dw_tile, bias,
                         mi * p->dmc, min_size(OC, (mi + 1) * p->dmc), gi * p->dnc,
                         min_size(p->K, (gi + 1) * p->dnc), n0, min_size(g.N, n0 + span),
                         b0 == 0);
                }
            }
        }
        NAME(dw_sum_groups)(dw, sums, p);
    }
    if (dx && p->wino) { /* dx = the convolution of P(dY) by w' (p->wdx, see convk.h's top) */
        real *u = base + p->wdx.upack_at, *P = base + p->dx_src_at;
        NAME(pack_wino)(u, w, C, OC, 9, 9 * C, 1, p->threads);
        for (size_t b0 = 0; b0 < B; b0 += p->dx_images) {
            size_t n = min_size(p->dx_images, B - b0);
            in_convk_gemm src;
            in_convk_wino g = p->wdx; /* the last pass: fewer tiles */
            in_convk_wino_dx_source(&src, p, n);
            g.tiles = n * g.th * g.tw, g.n_blocks = cdiv(g.tiles, g.nt);
            NAME(prepare)(P, dy + b0 * dy_image, y_relu ? y_relu + b0 * dy_image : 0, &src, n,
                          dy_image, p->threads, pending ? pending + b0 * OC : 0, p->isa);
            const NAME(epilogue) e = {dx + b0 * x_image, x_image, p->H * p->W, p->W, 1, 0, 0, 0,
                                      dx_accumulate};
            NAME(run_wino)(&g, &e, P, src.image, u, base, p->isa, p->threads);
        }
        pending = 0;
    } else if (dx) {
        if (!dx_accumulate && (p->kh < p->sh || p->kw < p->sw)) /* phases with no tap: dx = 0 */
            for (size_t b = 0; b < B; ++b)
                memset(dx + b * x_image, 0, C * p->H * p->W * sizeof(real));
        for (size_t ry = 0; ry < p->sh; ++ry)
            for (size_t rx = 0; rx < p->sw; ++rx) {
                in_convk_gemm g;
                if (!in_convk_dx_phase(&g, p, ry, rx, p->dx_images)) continue;
                NAME(pack_panels)(base, w, C, g.K, p, &g, p->threads);
                for (size_t b0 = 0; b0 < B; b0 += p->dx_images) {
                    size_t n = min_size(p->dx_images, B - b0);
                    if (n < p->dx_images) in_convk_dx_phase(&g, p, ry, rx, n);
                    const NAME(epilogue) e = {dx + b0 * x_image + ry * p->W + rx, x_image,
                                              p->H * p->W, p->sh * p->W, p->sw, 0, 0, 0,
                                              dx_accumulate};
                    NAME(prepare)(base + p->dx_src_at, dy + b0 * dy_image,
                                  y_relu ? y_relu + b0 * dy_image : 0, &g, n, dy_image,
                                  p->threads, pending ? pending + b0 * OC : 0, p->isa);
                    NAME(run_gemm)(&g, &e, base + p->dx_src_at, base, base + p->dx_threads_at,
                                   p->isa, p->threads);
                }
                pending = 0;
            }
    }
    if (rows) {
        NAME(bias_from_totals)(dbias, rows, p->dw_pixel_groups, OC);
    } else if (dbias) {
        if (!dx || pending) /* no pass over dY took them */
            NAME(plane_totals)(totals, dy, y_relu, B, OC, p->oh * p->ow, dy_image, p->isa,
                               p->threads);
        NAME(bias_from_totals)(dbias, totals, B, OC);
    }
}
