/* conv_template.h: 2-D convolution (cross-correlation, as every deep-learning library means it)
 * and the linear layer, lowered to GEMM, for real = float and double (conv.c instantiates it).
 *
 * Legend: x (B, C, H, W); w (OC, C, kh, kw), read as the matrix (OC, K), K = C*kh*kw; bias (OC);
 * y (B, OC, oh, ow), ohw = oh*ow; strides sh, sw; paddings ph, pw (see im2col_template.h).
 *     y[b, o, p] = sum_r w[o, r] * col_b[r, p] + bias[o]
 * The GEMMs run on blocks, chosen by the caller:
 * - small maps (G > 1): a 7x7 or 14x14 map alone makes a GEMM with 49 or 196 columns, too thin
 *   for the BLAS to be fast, so G images are lowered side by side into one col (K, G*ohw) and
 *   one GEMM does them all; its (OC, G*ohw) result Y is then scattered to y.
 * - large maps (G = 1): R output rows of one image at a time, so that col (K, R*ow) stays in the
 *   last-level cache between im2col writing it and the GEMM reading it; the GEMM writes its
 *   (OC, R*ow) block straight into y (row stride ohw).
 * work holds col, K*G*R*ow values, plus Y, OC*G*ohw, when G > 1. A 1x1 stride-1 unpadded
 * convolution with G = 1 needs no work at all: x_b itself is col.
 * The loops here stay on the calling thread: between multi-threaded BLAS calls, an OpenMP team
 * and the BLAS's own idle threads spin against each other (measured on 2 cores with OpenMP
 * lowering: 2-20x slower). Serial lowering costs 5-15% next to the GEMMs on one thread; on two,
 * more (the other core's BLAS thread reads col lines still dirty in this core's cache).
 */

/* 1x1, stride 1, no padding: x itself is the col matrix of one image */
static int NAME(pointwise)(size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw)
{
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

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

/* Forward, block by block: col = im2col(block); y_block = w * col (+ bias). One GEMM of
 * 2*OC*K*columns flops per block; passes: col written once (from cache when it fits), y
 * written once (plus one read-and-write for the bias when the GEMM writes y directly). */
void NAME(conv2d_forward)(real *y, real *work, const real *x, const real *w, const real *bias,
                          size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh, size_t kw,
                          size_t sh, size_t sw, size_t ph, size_t pw, size_t G, size_t R)
{
    const size_t oh = (H + 2 * ph - kh) / sh + 1, ow = (W + 2 * pw - kw) / sw + 1;
    const size_t ohw = oh * ow, K = C * kh * kw;
    const int direct = NAME(pointwise)(kh, kw, sh, sw, ph, pw) && G == 1;
    real *col = work, *Y = work + K * G * R * ow;
    for (size_t b0 = 0; b0 < B; b0 += G) {
        size_t g = B - b0 < G ? B - b0 : G;
        const real *xb = x + b0 * C * H * W;
        real *yb = y + b0 * OC * ohw;
        if (direct) {
            NAME(gemm)(0, 0, OC, ohw, K, 1, w, K, xb, ohw, 0, yb, ohw);
        } else if (g > 1) {
            NAME(im2col)(col, xb, g, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 0);
            NAME(gemm)(0, 0, OC, g * ohw, K, 1, w, K, col, g * ohw, 0, Y, g * ohw);
            NAME(matrix_to_images)(yb, Y, bias, g, OC, ohw);
            continue;
        } else {
            for (size_t y0 = 0; y0 < oh; y0 += R) {
                size_t n = (oh - y0 < R ? oh - y0 : R) * ow;
                NAME(im2col)(col, xb, 1, C, H, W, kh, kw, sh, sw, ph, pw, y0, y0 + n / ow, 0);
                NAME(gemm)(0, 0, OC, n, K, 1, w, K, col, n, 0, yb + y0 * ow, ohw);
            }
        }
        for (size_t o = 0; bias && o < OC; ++o) NAME(plane_shift)(yb + o * ohw, bias[o], ohw);
    }
}

/* Backward, the true gradients, block by block as the forward:
 *     dbias[o] = sum_{b,p} dy[b, o, p]                     (overwritten; sums in double)
 *     dw = sum_blocks dY * col^T            (OC, K)        (overwritten)
 *     dcol = w^T * dY; dx = col2im(dcol)    (K, columns)   (dx may be NULL: not computed)
 * dY is the block's dy as an (OC, columns) matrix (gathered when G > 1, a view of dy
 * otherwise); col is lowered again from x (cheaper than keeping B*K*ohw values from the
 * forward), then reused for dcol. */
void NAME(conv2d_backward)(real *dx, real *dw, real *dbias, real *work, const real *dy,
                           const real *x, const real *w, size_t B, size_t C, size_t H, size_t W,
                           size_t OC, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                           size_t pw, size_t G, size_t R)
{
    const size_t oh = (H + 2 * ph - kh) / sh + 1, ow = (W + 2 * pw - kw) / sw + 1;
    const size_t ohw = oh * ow, K = C * kh * kw;
    const int direct = NAME(pointwise)(kh, kw, sh, sw, ph, pw) && G == 1;
    real *col = work, *dY = work + K * G * R * ow;
    for (size_t o = 0; dbias && o < OC; ++o) {
        double sum = 0;
        for (size_t b = 0; b < B; ++b) sum += NAME(plane_sum)(dy + (b * OC + o) * ohw, ohw);
        dbias[o] = (real)sum;
    }
    if (dx) memset(dx, 0, B * C * H * W * sizeof(real));
    for (size_t b0 = 0; b0 < B; b0 += G) {
        size_t g = B - b0 < G ? B - b0 : G, ld = g * ohw, rows = g > 1 ? oh : R;
        const real *xb = x + b0 * C * H * W, *Yg = dy + b0 * OC * ohw;
        real *dxb = dx ? dx + b0 * C * H * W : NULL;
        if (g > 1) {
            NAME(images_to_matrix)(dY, Yg, g, OC, ohw);
            Yg = dY;
        }
        if (direct) {  /* dw += dy_b x_b^T; dx_b = w^T dy_b, written in place */
            NAME(gemm)(0, 1, OC, K, ohw, 1, Yg, ohw, xb, ohw, b0 == 0 ? 0 : 1, dw, K);
            if (dx) NAME(gemm)(1, 0, K, ohw, OC, 1, w, K, Yg, ohw, 0, dxb, ohw);
            continue;
        }
        for (size_t y0 = 0; y0 < oh; y0 += rows) {
            size_t y1 = oh - y0 < rows ? oh : y0 + rows, n = g * (y1 - y0) * ow;
            const real *dYb = Yg + y0 * ow;  /* y0 = 0 when g > 1 */
            NAME(im2col)(col, xb, g, C, H, W, kh, kw, sh, sw, ph, pw, y0, y1, 0);
            NAME(gemm)(0, 1, OC, K, n, 1, dYb, ld, col, n, b0 == 0 && y0 == 0 ? 0 : 1, dw, K);
            if (!dx) continue;
            NAME(gemm)(1, 0, K, n, OC, 1, w, K, dYb, ld, 0, col, n);
            NAME(col2im)(col, dxb, g, C, H, W, kh, kw, sh, sw, ph, pw, y0, y1, 0);
        }
    }
}

/* Linear layer: x (N, Fin), w (Fout, Fin) as PyTorch stores it, bias (Fout), y (N, Fout).
 *     y = x w^T + bias;   dx = dy w;   dw = dy^T x;   dbias = sum_n dy   (dw, dbias overwritten) */
void NAME(linear_forward)(real *y, const real *x, const real *w, const real *bias, size_t N,
                          size_t Fin, size_t Fout)
{
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

