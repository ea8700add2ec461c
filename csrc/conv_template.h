/* conv_template.h: 2-D convolution (cross-correlation, as every deep-learning library means it)
 * and the linear layer, lowered to GEMM, for real = float and double (conv.c instantiates it).
 *
 * Legend: x (B, C, H, W); w (OC, C, kh, kw), read as the matrix (OC, K), K = C*kh*kw; bias (OC);
 * y (B, OC, oh, ow), ohw = oh*ow; strides sh, sw; paddings ph, pw (see im2col_template.h).
 *     y[b, o, p] = sum_r w[o, r] * col_b[r, p] + bias[o]
 * Images go through the GEMM in groups of G (the caller's choice, 1 on large maps): a
 * 7x7 or 14x14 map alone makes a GEMM with 49 or 196 columns, too thin for the BLAS to be fast,
 * so g images are lowered side by side into one col (K, g*ohw) and one GEMM does them all; its
 * (OC, g*ohw) result is then scattered to y. The workspace holds col and that result;
 * a 1x1 stride-1 unpadded convolution of single images needs neither (col_b is x_b itself).
 * work holds K*G*ohw values for col, plus OC*G*ohw when G > 1; nothing in that 1x1 case.
 */

#define PARALLEL_OVER(n) IN_PRAGMA(omp parallel for schedule(static) if ((n) >= IN_PARALLEL_MIN))

/* dst[o, b*S + k] = src[b, o, k] for b < g: g images of (O, S) side by side as one (O, g*S) */
/* 1x1, stride 1, no padding: x itself is the col matrix of one image */
static int NAME(pointwise)(size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw)
{
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

static void NAME(images_to_matrix)(real *dst, const real *src, size_t g, size_t O, size_t S)
{
    PARALLEL_OVER(g * O * S)
    for (size_t p = 0; p < g * O; ++p)
        memcpy(dst + (p % O) * g * S + (p / O) * S, src + p * S, S * sizeof(real));
}

/* dst[b, o, k] = src[o, b*S + k] + bias[o] (bias may be NULL): the inverse of images_to_matrix */
static void NAME(matrix_to_images)(real *dst, const real *src, const real *bias, size_t g,
                                   size_t O, size_t S)
{
    PARALLEL_OVER(g * O * S)
    for (size_t p = 0; p < g * O; ++p) {
        const real *s = src + (p % O) * g * S + (p / O) * S;
        real *d = dst + p * S;
        real add = bias ? bias[p % O] : 0;
        for (size_t k = 0; k < S; ++k) d[k] = s[k] + add;
    }
}

/* Forward, group by group: col = im2col(x group); Y = w * col; y = Y (+ bias). One GEMM of
 * 2*OC*K*g*ohw flops per group; passes: one write of col, one write of y (plus one
 * read-and-write of y for the bias when the GEMM writes y directly). */
void NAME(conv2d_forward)(real *y, real *work, const real *x, const real *w, const real *bias,
                          size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh, size_t kw,
                          size_t sh, size_t sw, size_t ph, size_t pw, size_t G)
{
    const size_t oh = (H + 2 * ph - kh) / sh + 1, ow = (W + 2 * pw - kw) / sw + 1;
    const size_t ohw = oh * ow, K = C * kh * kw;
    const int direct = NAME(pointwise)(kh, kw, sh, sw, ph, pw) && G == 1;
    real *col = work, *Y = work + (direct ? 0 : K * G * ohw);
    for (size_t b0 = 0; b0 < B; b0 += G) {
        size_t g = B - b0 < G ? B - b0 : G, n = g * ohw;
        const real *xb = x + b0 * C * H * W;
        real *yb = y + b0 * OC * ohw;
        if (!direct) NAME(im2col)(col, xb, g, C, H, W, kh, kw, sh, sw, ph, pw);
        NAME(gemm)(0, 0, OC, n, K, 1, w, K, direct ? xb : col, n, 0, g > 1 ? Y : yb, n);
        if (g > 1) NAME(matrix_to_images)(yb, Y, bias, g, OC, ohw);
        else if (bias) NAME(add_bias)(yb, bias, 1, OC, ohw);
    }
}

/* Backward, the true gradients:
 *     dbias[o] = sum_{b,p} dy[b, o, p]                     (overwritten)
 *     dw = sum_groups dY * col^T            (OC, K)        (overwritten)
 *     dcol = w^T * dY; dx = col2im(dcol)    (K, g*ohw)     (dx may be NULL: not computed)
 * dY is the group's dy as one (OC, g*ohw) matrix; col is recomputed from x (cheaper to lower
 * again than to keep B*K*ohw values from the forward), then reused for dcol. */
void NAME(conv2d_backward)(real *dx, real *dw, real *dbias, real *work, const real *dy,
                           const real *x, const real *w, size_t B, size_t C, size_t H, size_t W,
                           size_t OC, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                           size_t pw, size_t G)
{
    const size_t oh = (H + 2 * ph - kh) / sh + 1, ow = (W + 2 * pw - kw) / sw + 1;
    const size_t ohw = oh * ow, K = C * kh * kw;
    const int direct = NAME(pointwise)(kh, kw, sh, sw, ph, pw) && G == 1;
    real *col = work, *dY = work + (direct ? 0 : K * G * ohw);
    if (dbias) {
        memset(dbias, 0, OC * sizeof(real));
        NAME(backward_bias)(dbias, dy, B, OC, ohw);
    }
    if (dx) memset(dx, 0, B * C * H * W * sizeof(real));
    for (size_t b0 = 0; b0 < B; b0 += G) {
        size_t g = B - b0 < G ? B - b0 : G, n = g * ohw;
        const real *xb = x + b0 * C * H * W, *dyb = dy + b0 * OC * ohw, *Yg = dyb;
        real *dxb = dx ? dx + b0 * C * H * W : NULL;
        if (g > 1) {
            NAME(images_to_matrix)(dY, dyb, g, OC, ohw);
            Yg = dY;
        }
        if (!direct) NAME(im2col)(col, xb, g, C, H, W, kh, kw, sh, sw, ph, pw);
        /* dw (+)= dY (OC, n) * col^T (n, K) */
        NAME(gemm)(0, 1, OC, K, n, 1, Yg, n, direct ? xb : col, n, b0 == 0 ? 0 : 1, dw, K);
        if (!dx) continue;
        if (direct) {  /* dx_b = w^T (K, OC) * dy_b (OC, ohw), written in place */
            NAME(gemm)(1, 0, K, n, OC, 1, w, K, Yg, n, 0, dxb, n);
            continue;
        }
        NAME(gemm)(1, 0, K, n, OC, 1, w, K, Yg, n, 0, col, n);
        NAME(col2im)(col, dxb, g, C, H, W, kh, kw, sh, sw, ph, pw);
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

#undef PARALLEL_OVER
