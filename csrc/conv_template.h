/* conv_template.h: 2-D convolution (cross-correlation, as every deep-learning library means it)
 * and the linear layer, lowered to GEMM, for real = float and double (conv.c instantiates it).
 *
 * Legend: x (B, C, H, W); w (OC, C, kh, kw), read as the matrix (OC, K), K = C*kh*kw; bias (OC);
 * y (B, OC, oh, ow), ohw = oh*ow; strides sh, sw; paddings ph, pw (see im2col_template.h).
 *     y[b, o, p] = sum_r w[o, r] * col_b[r, p] + bias[o]
 * The GEMMs run on blocks, chosen by in_conv2d_plan (conv.c):
 * - small maps (G > 1): a 7x7 or 14x14 map alone makes a GEMM with 49 or 196 columns, too thin
 *   for the BLAS to be fast, so G images are lowered side by side into one col (K, G*ohw) and
 *   one GEMM does them all; its (OC, G*ohw) result Y is then scattered to y.
 * - large maps (G = 1): R output rows of one image at a time, so that col (K, R*ow) stays in the
 *   last-level cache between im2col writing it and the GEMM reading it; the GEMM writes its
 *   (OC, R*ow) block straight into y (row stride ohw).
 * Threads: blocks are shared out among OpenMP threads, each lowering and multiplying its own
 * blocks with a single-threaded BLAS (the caller sets the BLAS to one thread for the call).
 * Measured on 2 cores, this beats a serial lowering between two-threaded GEMMs by 1.2-1.7x:
 * there, the other core's BLAS thread reads col lines still dirty in this core's cache, and
 * the lowering runs on one core. Lowering with OpenMP between multi-threaded BLAS calls is
 * worse still (2-20x slower): the idle threads of both pools spin against each other.
 * work holds, per thread: col, K*G*R*ow values (none for a 1x1 stride-1 unpadded convolution
 * with G = 1: x_b itself is col); Y or dY, OC*G*ohw, when G > 1; with threads > 1, a partial
 * dw of OC*K for the backward.
 */

#include "plane_template.h"

/* dst[o, b*S + k] = src[b, o, k] for b < g: g images of (O, S) side by side as one (O, g*S) */
static void NAME(images_to_matrix)(real *dst, const real *src, size_t g, size_t O, size_t S)
{
    for (size_t p = 0; p < g * O; ++p)
        memcpy(dst + (p % O) * g * S + (p / O) * S, src + p * S, S * sizeof(real));
}

/* dst[b, o, k] = src[o, b*S + k] + bias[o] (bias may be NULL): the inverse of images_to_matrix */
static void NAME(matrix_to_images)(real *dst, const real *src, const real *bias, size_t g,
                                   size_t O, size_t S)
{
    for (size_t p = 0; p < g * O; ++p) {
        const real *s = src + (p % O) * g * S + (p / O) * S;
        real *d = dst + p * S;
        real add = bias ? bias[p % O] : 0;
        for (size_t k = 0; k < S; ++k) d[k] = s[k] + add;
    }
}

/* 1x1, stride 1, no padding and one image per GEMM: x_b itself is the col matrix */
static int NAME(direct)(const in_conv_plan *c)
{
    return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->ph == 0 && c->pw == 0
           && c->G == 1;
}

/* Forward of images [b0, b0 + g): col = im2col(block); y_block = w * col (+ bias). One GEMM of
 * 2*OC*K*columns flops per block; passes: col written once (from cache when it fits), y
 * written once (plus one read-and-write for the bias when the GEMM writes y directly). */
static void NAME(forward_images)(const in_conv_plan *c, real *y, real *work,
                                 const real *x, const real *w, const real *bias, size_t b0,
                                 size_t g)
{
    const size_t K = c->K, OC = c->OC, ow = c->ow, ohw = c->oh * ow;
    const int direct = NAME(direct)(c);
    const real *xb = x + b0 * c->C * c->H * c->W;
    real *yb = y + b0 * OC * ohw, *col = work, *Y = work + (direct ? 0 : K * c->G * c->R * ow);
    if (direct) {
        NAME(gemm)(0, 0, OC, ohw, K, 1, w, K, xb, ohw, 0, yb, ohw);
    } else if (g > 1) {
        NAME(im2col)(col, xb, g, c->C, c->H, c->W, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, 0,
                     c->oh, 0);
        NAME(gemm)(0, 0, OC, g * ohw, K, 1, w, K, col, g * ohw, 0, Y, g * ohw);
        NAME(matrix_to_images)(yb, Y, bias, g, OC, ohw);
        return;
    } else {
        for (size_t y0 = 0; y0 < c->oh; y0 += c->R) {
            size_t y1 = c->oh - y0 < c->R ? c->oh : y0 + c->R, n = (y1 - y0) * ow;
            NAME(im2col)(col, xb, 1, c->C, c->H, c->W, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw,
                         y0, y1, 0);
            NAME(gemm)(0, 0, OC, n, K, 1, w, K, col, n, 0, yb + y0 * ow, ohw);
        }
    }
    for (size_t o = 0; bias && o < OC; ++o) NAME(plane_shift)(yb + o * ohw, bias[o], ohw);
}

/* Backward of images [b0, b0 + g), the true gradients:
 *     dw (+)= dY * col^T                    (OC, K)        (overwritten when first)
 *     dcol = w^T * dY; dx = col2im(dcol)    (K, columns)   (dx may be NULL: not computed)
 * dY is the block's dy as an (OC, columns) matrix (gathered when G > 1, a view of dy
 * otherwise); col is lowered again from x (cheaper than keeping B*K*ohw values from the
 * forward), then reused for dcol. */
static void NAME(backward_images)(const in_conv_plan *c, real *dx, real *dw, real *work,
                                  const real *dy, const real *x, const real *w, size_t b0,
                                  size_t g, int first)
{
    const size_t K = c->K, OC = c->OC, ow = c->ow, ohw = c->oh * ow, ld = g * ohw;
    const int direct = NAME(direct)(c);
    const size_t rows = g > 1 ? c->oh : c->R, image = c->C * c->H * c->W;
    const real *xb = x + b0 * image, *Yg = dy + b0 * OC * ohw;
    real *dxb = dx ? dx + b0 * image : NULL, *col = work;
    if (dx) memset(dxb, 0, g * image * sizeof(real));
    if (g > 1) {
        real *dY = work + (direct ? 0 : K * c->G * c->R * ow);
        NAME(images_to_matrix)(dY, Yg, g, OC, ohw);
        Yg = dY;
    }
    if (direct) {  /* dw += dy_b x_b^T; dx_b = w^T dy_b, written in place */
        NAME(gemm)(0, 1, OC, K, ohw, 1, Yg, ohw, xb, ohw, first ? 0 : 1, dw, K);
        if (dx) NAME(gemm)(1, 0, K, ohw, OC, 1, w, K, Yg, ohw, 0, dxb, ohw);
        return;
    }
    for (size_t y0 = 0; y0 < c->oh; y0 += rows) {
        size_t y1 = c->oh - y0 < rows ? c->oh : y0 + rows, n = g * (y1 - y0) * ow;
        const real *dYb = Yg + y0 * ow;  /* y0 = 0 when g > 1 */
        NAME(im2col)(col, xb, g, c->C, c->H, c->W, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, y0,
                     y1, 0);
        NAME(gemm)(0, 1, OC, K, n, 1, dYb, ld, col, n, first && y0 == 0 ? 0 : 1, dw, K);
        if (!dx) continue;
        NAME(gemm)(1, 0, K, n, OC, 1, w, K, dYb, ld, 0, col, n);
        NAME(col2im)(col, dxb, g, c->C, c->H, c->W, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, y0,
                     y1, 0);
    }
}

/* Forward over all blocks of G images: with threads > 1, each OpenMP thread takes whole blocks,
 * lowering and multiplying them in its own share of work (the caller makes the BLAS
 * single-threaded meanwhile: col stays in the cache of the core that wrote it). */
void NAME(conv2d_forward)(const in_conv_plan *c, real *y, real *work, const real *x,
                          const real *w, const real *bias)
{
    const size_t blocks = (c->B + c->G - 1) / c->G, per = c->work / (size_t)c->threads;
    IN_PRAGMA(omp parallel for schedule(static, 1) num_threads(c->threads) if (c->threads > 1))
    for (size_t i = 0; i < blocks; ++i) {
        size_t b0 = i * c->G, g = c->B - b0 < c->G ? c->B - b0 : c->G;
        NAME(forward_images)(c, y, work + (size_t)in_thread_num() * per, x, w, bias, b0, g);
    }
}

/* Backward over all blocks, threaded like the forward; dw and dbias are overwritten:
 *     dbias[o] = sum_{b,p} dy[b, o, p]   (sums in double, on the calling thread)
 *     dw = sum over threads of each thread's partial sum over its blocks (thread 0 sums into dw
 *     itself, the others into the last OC*K values of their share of work). */
void NAME(conv2d_backward)(const in_conv_plan *c, real *dx, real *dw, real *dbias, real *work,
                           const real *dy, const real *x, const real *w)
{
    const size_t OC = c->OC, K = c->K, ohw = c->oh * c->ow;
    const size_t blocks = (c->B + c->G - 1) / c->G, per = c->work / (size_t)c->threads;
    const size_t partial = per - (c->threads > 1 ? OC * K : 0);  /* offset of a thread's dw */
    int team = 1;
    for (size_t o = 0; dbias && o < OC; ++o) {
        double sum = 0;
        for (size_t b = 0; b < c->B; ++b) sum += NAME(plane_sum)(dy + (b * OC + o) * ohw, ohw);
        dbias[o] = (real)sum;
    }
    IN_PRAGMA(omp parallel num_threads(c->threads) if (c->threads > 1))
    {
        int t = in_thread_num(), first = 1;
        real *mine = work + (size_t)t * per, *dwt = t == 0 ? dw : mine + partial;
        if (t == 0) team = in_team_size();
        for (size_t i = (size_t)t; i < blocks; i += (size_t)in_team_size()) {
            size_t b0 = i * c->G, g = c->B - b0 < c->G ? c->B - b0 : c->G;
            NAME(backward_images)(c, dx, dwt, mine, dy, x, w, b0, g, first);
            first = 0;
        }
        if (first) memset(dwt, 0, OC * K * sizeof(real));
    }
    for (int t = 1; t < team; ++t) {
        const real *dwt = work + (size_t)t * per + partial;
        for (size_t k = 0; k < OC * K; ++k) dw[k] += dwt[k];
    }
}

/* Linear layer: x (N, Fin), w (Fout, Fin) as PyTorch stores it, bias (Fout), y (N, Fout).
 *     y = x w^T + bias;   dx = dy w;   dw = dy^T x;   dbias = sum_n dy   (dw, dbias overwritten)
 * The forward of a few rows (N <= IN_LINEAR_DOT_ROWS: inference's batches) is dot products that
 * read each row of w once for all rows of x, outputs shared among the threads; a GEMM packs the
 * whole of w first (OpenBLAS, 1024 -> 1000 on one row: 0.37 ms; these, 0.06 ms on one thread,
 * on an AVX-512 host; on Zen 3, 0.14 ms and 1.2 ms for 16 rows). */
#define IN_LINEAR_DOT_ROWS 16
#define IN_LINEAR_LANES 16 /* partial sums of a dot product: lane l sums the terms k = l mod 16 */

/* IN_LINEAR_LANES partial sums as IN_LINEAR_VECS vectors of 32 bytes: held in ymm registers on
 * AVX2, where a 64-byte vector type lives on the stack and moves through integer registers (4x
 * slower on Zen 3). vec_in: an unaligned vector of x or w, read in place. */
typedef real NAME(vec) __attribute__((vector_size(32)));
typedef real NAME(vec_in) __attribute__((vector_size(32), aligned(sizeof(real)), may_alias));
#define IN_LINEAR_VEC_REALS (32 / sizeof(real))
#define IN_LINEAR_VECS (IN_LINEAR_LANES / IN_LINEAR_VEC_REALS)

/* y[n*Fout + j] = bias[j] + the dot product of row n < rows of x (Fin apart) with row j < outs
 * of w (wo, Fin apart), as IN_LINEAR_LANES partial sums added in lane order: the same bits on
 * every ISA and thread count. rows and outs constants once inlined: rows*outs sums in registers,
 * each load of x or w shared by outs or rows of them. */
static inline __attribute__((always_inline)) void NAME(linear_dots)(
    real *y, const real *x, const real *wo, const real *bias, size_t rows, size_t outs,
    size_t Fin, size_t Fout)
{
    NAME(vec) acc[4][2][IN_LINEAR_VECS], b[2][IN_LINEAR_VECS];
    memset(acc, 0, sizeof acc);
    size_t k = 0;
    for (; k + IN_LINEAR_LANES <= Fin; k += IN_LINEAR_LANES) {
        for (size_t j = 0; j < outs; ++j) {
            for (size_t v = 0; v < IN_LINEAR_VECS; ++v)
                b[j][v] = *(const NAME(vec_in) *)(wo + j * Fin + k + v * IN_LINEAR_VEC_REALS);
            /* the next outputs' rows, read once from memory: each pair of rows is two short
             * streams the hardware prefetcher starts cold (a prefetch never faults; an integer
             * address, so that no pointer leaves w) */
            uintptr_t ahead = (uintptr_t)(wo + j * Fin + k) + 2 * outs * Fin * sizeof(real);
            for (size_t line = 0; line < sizeof b[j]; line += 64)
                __builtin_prefetch((const void *)(ahead + line));
        }
        for (size_t n = 0; n < rows; ++n)
            for (size_t v = 0; v < IN_LINEAR_VECS; ++v) {
                NAME(vec) a = *(const NAME(vec_in) *)(x + n * Fin + k + v * IN_LINEAR_VEC_REALS);
                for (size_t j = 0; j < outs; ++j) acc[n][j][v] += a * b[j][v];
            }
    }
    /* the lanes out of the registers (a store each; no element access in the loop above) */
    real lane[4][2][IN_LINEAR_LANES];
    for (size_t n = 0; n < rows; ++n)
        for (size_t j = 0; j < outs; ++j)
            for (size_t v = 0; v < IN_LINEAR_VECS; ++v)
                *(NAME(vec_in) *)&lane[n][j][v * IN_LINEAR_VEC_REALS] = acc[n][j][v];
    for (; k < Fin; ++k)
        for (size_t n = 0; n < rows; ++n)
            for (size_t j = 0; j < outs; ++j)
                lane[n][j][k % IN_LINEAR_LANES] += x[n * Fin + k] * wo[j * Fin + k];
    for (size_t n = 0; n < rows; ++n)
        for (size_t j = 0; j < outs; ++j) {
            real sum = bias ? bias[j] : 0;
            for (size_t l = 0; l < IN_LINEAR_LANES; ++l) sum += lane[n][j][l];
            y[n * Fout + j] = sum;
        }
}

/* The forward of N <= IN_LINEAR_DOT_ROWS rows as dot products: two outputs and four rows of x
 * at a time (8 sums; x's rows stay in L1 while w streams through once) */
IN_HOT static void NAME(linear_forward_dots)(real *y, const real *x, const real *w,
                                             const real *bias, size_t N, size_t Fin, size_t Fout)
{
    IN_PRAGMA(omp parallel for schedule(static) if (Fout * Fin >= IN_PARALLEL_MIN))
    for (size_t o = 0; o < Fout; o += 2) {
        const real *wo = w + o * Fin, *b = bias ? bias + o : NULL;
        size_t n = 0;
        for (; n + 4 <= N && o + 2 <= Fout; n += 4)
            NAME(linear_dots)(y + n * Fout + o, x + n * Fin, wo, b, 4, 2, Fin, Fout);
        for (; o + 2 <= Fout && n < N; ++n)
            NAME(linear_dots)(y + n * Fout + o, x + n * Fin, wo, b, 1, 2, Fin, Fout);
        for (; n < N; ++n)  /* the last output of an odd Fout */
            NAME(linear_dots)(y + n * Fout + o, x + n * Fin, wo, b, 1, 1, Fin, Fout);
    }
}

void NAME(linear_forward)(real *y, const real *x, const real *w, const real *bias, size_t N,
                          size_t Fin, size_t Fout)
{
    if (N <= IN_LINEAR_DOT_ROWS) {
        NAME(linear_forward_dots)(y, x, w, bias, N, Fin, Fout);
        return;
    }
    NAME(gemm)(0, 1, N, Fout, Fin, 1, x, Fin, w, Fin, 0, y, Fout);
    if (bias)
        for (size_t n = 0; n < N; ++n)
            for (size_t o = 0; o < Fout; ++o) y[n * Fout + o] += bias[o];
}

void NAME(linear_backward)(real *dx, real *dw, real *dbias, const real *dy, const real *x,
                           const real *w, size_t N, size_t Fin, size_t Fout)
{
    if (dx) NAME(gemm)(0, 0, N, Fin, Fout, 1, dy, Fout, w, Fin, 0, dx, Fin);
    NAME(gemm)(1, 0, Fout, Fin, N, 1, dy, Fout, x, Fin, 0, dw, Fin);
    if (dbias)
        for (size_t o = 0; o < Fout; ++o) {
            double sum = 0;
            for (size_t n = 0; n < N; ++n) sum += dy[n * Fout + o];
            dbias[o] = (real)sum;
        }
}

