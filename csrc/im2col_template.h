/* im2col_template.h: convolution lowering (Darknet's src/im2col.c, src/col2im.c), general form,
 * instantiated for real = float and double by im2col.c.
 *
 * Legend: im is n images of (C, H, W), NCHW; the kernel is kh x kw, strides sh, sw, paddings
 * ph, pw; the output map is oh x ow with oh = (H + 2 ph - kh) / sh + 1 (likewise ow). Only the
 * output rows y0 <= y < y1 are lowered (a block of the map: all of it is y0 = 0, y1 = oh);
 * m = (y1 - y0) * ow columns per image. col is (K, n*m) row-major, K = C*kh*kw,
 * row r = (c*kh + i)*kw + j, column b*m + (y - y0)*ow + x:
 *     col[r, b*m + (y - y0)*ow + x] = im[b, c, y*sh - ph + i, x*sw - pw + j]   (0 outside)
 * so one GEMM W(OC, K) * col(K, n*m) convolves n images (or a block of rows) at once. With
 * n = 1 and all rows it is exactly Darknet's data_col. col2im is the transpose: it adds every
 * col entry back onto its pixel. `parallel` = 0 keeps a call on the calling thread (the
 * convolution interleaves them with multi-threaded BLAS calls, whose idle threads spin).
 */

#define PARALLEL_OVER(n) \
    IN_PRAGMA(omp parallel for schedule(static) if (parallel && (n) >= IN_PARALLEL_MIN))

/* dst[x] = src[x*s + off] for x < ow, 0 where that falls outside [0, W) */
IN_HOT static void NAME(gather_row)(real *dst, const real *src, ptrdiff_t off, size_t s,
                                    size_t W, size_t ow)
{
    size_t lo, hi;
    in_valid_range(&lo, &hi, off, s, W, ow);
    for (size_t x = 0; x < lo; ++x) dst[x] = 0;
    if (s == 1) {
        if (hi > lo) memcpy(dst + lo, src + (ptrdiff_t)lo + off, (hi - lo) * sizeof(real));
    } else {
        for (size_t x = lo; x < hi; ++x) dst[x] = src[(ptrdiff_t)(x * s) + off];
    }
    for (size_t x = hi; x < ow; ++x) dst[x] = 0;
}

/* dst[x*s + off] += src[x] for the x whose target lies in [0, W) */
IN_HOT static void NAME(scatter_add_row)(real *dst, const real *src, ptrdiff_t off, size_t s,
                                         size_t W, size_t ow)
{
    size_t lo, hi;
    in_valid_range(&lo, &hi, off, s, W, ow);
    for (size_t x = lo; x < hi; ++x) dst[(ptrdiff_t)(x * s) + off] += src[x];
}

/* col (K, n*m) from rows [y0, y1) of n images' output, see the legend. One pass writing col. */
void NAME(im2col)(real *col, const real *im, size_t n, size_t C, size_t H, size_t W, size_t kh,
                  size_t kw, size_t sh, size_t sw, size_t ph, size_t pw, size_t y0, size_t y1,
                  int parallel)
{
    const size_t ow = in_out_size(W, kw, sw, pw), m = (y1 - y0) * ow;
    const size_t K = C * kh * kw, ld = n * m;
    const int pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    PARALLEL_OVER(K * ld)
    for (size_t q = 0; q < n * K; ++q) {  /* one (image b, row r) slice per iteration */
        size_t b = q / K, r = q % K;
        size_t c = r / (kh * kw), i = r / kw % kh, j = r % kw;
        const real *plane = im + (b * C + c) * H * W;
        real *dst = col + r * ld + b * m;
        if (pointwise) {  /* 1x1: the block of rows is contiguous in the image */
            memcpy(dst, plane + y0 * W, m * sizeof(real));
            continue;
        }
        for (size_t y = y0; y < y1; ++y) {
            ptrdiff_t iy = (ptrdiff_t)(y * sh + i) - (ptrdiff_t)ph;
            real *out = dst + (y - y0) * ow;
            if (iy < 0 || iy >= (ptrdiff_t)H) memset(out, 0, ow * sizeof(real));
            else NAME(gather_row)(out, plane + (size_t)iy * W, (ptrdiff_t)j - (ptrdiff_t)pw, sw, W,
                                  ow);
        }
    }
}

/* im[b, c, y*sh - ph + i, x*sw - pw + j] += col[r, b*m + (y - y0)*ow + x]: the adjoint of
 * im2col, adding into im (Darknet's col2im_cpu adds too). Parallel over planes, so no two
 * threads write the same pixel. */
void NAME(col2im)(const real *col, real *im, size_t n, size_t C, size_t H, size_t W, size_t kh,
                  size_t kw, size_t sh, size_t sw, size_t ph, size_t pw, size_t y0, size_t y1,
                  int parallel)
{
    const size_t ow = in_out_size(W, kw, sw, pw), m = (y1 - y0) * ow, ld = n * m;
    PARALLEL_OVER(C * kh * kw * ld)
    for (size_t p = 0; p < n * C; ++p) {
        size_t b = p / C, c = p % C;
        real *plane = im + p * H * W;
        for (size_t r = c * kh * kw; r < (c + 1) * kh * kw; ++r) {
            size_t i = r / kw % kh, j = r % kw;
            const real *src = col + r * ld + b * m;
            for (size_t y = y0; y < y1; ++y) {
                ptrdiff_t iy = (ptrdiff_t)(y * sh + i) - (ptrdiff_t)ph;
                if (iy < 0 || iy >= (ptrdiff_t)H) continue;
                NAME(scatter_add_row)(plane + (size_t)iy * W, src + (y - y0) * ow,
                                      (ptrdiff_t)j - (ptrdiff_t)pw, sw, W, ow);
            }
        }
    }
}

#undef PARALLEL_OVER
