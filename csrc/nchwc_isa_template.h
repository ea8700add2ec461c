/* nchwc_isa_template.h: the NCHWc direct convolution (nchwc.h) for one ISA level (ISA, see
 * convk_isa.h), included by nchwc.c once per level: the same source becomes zmm, ymm or xmm
 * code by the level's vector size and target attribute. Functions are F(f) = f_isa<level>.
 *
 * The tile: fb <= FB blocks of output channels x px (PX or 1) pixels of one output row,
 * accumulators acc[f][v][p], one vector of LANES output channels each (BV vectors a block):
 *     acc[f][v][p] += broadcast(x[c, iy, ix_p, l]) * wp[f, c, i, j, l, v*LANES ...]
 * for the tile's channel blocks c, kernel rows i and columns j (those inside the input: no
 * bounds checks inside) and lanes l < cl (BLK for a blocked input, 1 for a plain one). The
 * weights of one block row are FB*PX FMAs for FB loads and PX broadcasts.
 */

#define DESC IN_NAME3(IN_CONVK_ISA, ISA, _DESC)
#define TILE IN_NAME3(IN_NCHWC_ISA, ISA, _TILE)
#define VBYTES IN_CONVK_FIELD(VBYTES, DESC)
#define FB IN_CONVK_APPLY_(IN_NCHWC_FB_, (TILE))
#define PX IN_CONVK_APPLY_(IN_NCHWC_PX_, (TILE))
#define LANES ((size_t)VBYTES / sizeof(float))
#define BLK (VBYTES == 64 ? 16 : 8)
#define BV (BLK / (int)LANES)
#define KERNEL IN_NAME3(IN_CONVK_ISA, ISA, _TARGET) IN_CONVK_CONTRACT
#define INLINE KERNEL static inline __attribute__((always_inline))
#define F(f) IN_NAME3(f, _isa, ISA)
#define vec F(vec)
#define ivec F(ivec)

typedef float vec __attribute__((vector_size(VBYTES)));
typedef int ivec __attribute__((vector_size(VBYTES)));

/* One tile: sums over nc channel blocks x nky kernel rows x nkx kernel columns, added to bias
 * (first group of channel blocks) or to the partial sums in y (later groups); ReLU on the last
 * group when relu. w and y point at the tile's first weight and output; x at the first tap of
 * its first pixel, or (checked: a border tile) at column 0 of its first kernel row, the pixels'
 * columns then being ix + p*sw + j, those outside [0, W) read from a block of zeros. */
INLINE void F(tile)(const in_nchwc_tile *t, const int fb, const int px, const int cl,
                    const int checked)
{
    vec acc[FB][BV][PX];
    for (int f = 0; f < fb; ++f)
        for (int v = 0; v < BV; ++v)
            for (int p = 0; p < px; ++p) {
                if (!t->first) memcpy(&acc[f][v][p], t->y + f * t->yf + p * BLK + v * LANES,
                                      sizeof(vec));
                else if (t->bias) memcpy(&acc[f][v][p], t->bias + f * BLK + v * LANES, sizeof(vec));
                else acc[f][v][p] = (vec){0};
            }
    for (size_t c = 0; c < t->nc; ++c)
        for (size_t i = 0; i < t->nky; ++i) {
            /* a pointer per pixel and per filter block: every load below is one of them plus a
             * constant (one pointer per (block, lane) pair would not fit the registers) */
            const float *row = t->x + c * t->xc + i * t->xr, *xs[PX], *ws[FB];
            for (int p = 0; p < px; ++p) xs[p] = row + p * t->xp;
            for (int f = 0; f < fb; ++f) ws[f] = t->w + c * t->wc + i * t->wr + f * t->wf;
            for (size_t j = 0; j < t->nkx; ++j) {
                const float *xj[PX];
                for (int p = 0; p < px; ++p) {
                    size_t col = (size_t)(t->ix + (ptrdiff_t)(p * t->sw + j)); /* checked */
                    xj[p] = !checked ? xs[p] + j * cl : col < t->W ? row + col * cl : in_nchwc_zeros;
                }
#pragma GCC unroll 16
                for (int l = 0; l < cl; ++l) {
                    vec xb[PX];
                    for (int p = 0; p < px; ++p) xb[p] = xj[p][l] - (vec){0}; /* broadcast */
                    for (int f = 0; f < fb; ++f)
                        for (int v = 0; v < BV; ++v) {
                            vec wv;
                            memcpy(&wv, ws[f] + l * BLK + v * LANES, sizeof wv);
                            for (int p = 0; p < px; ++p) acc[f][v][p] += xb[p] * wv;
                        }
                }
                for (int f = 0; f < fb; ++f) ws[f] += cl * BLK;
            }
        }
    for (int f = 0; f < fb; ++f)
        for (int v = 0; v < BV; ++v)
            for (int p = 0; p < px; ++p) {
                vec a = acc[f][v][p];
                if (t->last && t->relu) a = (vec)((ivec)a & ~(ivec)(a < 0)); /* max(a, 0), NaN kept */
                memcpy(t->y + f * t->yf + p * BLK + v * LANES, &a, sizeof a);
            }
}

/* The pixels of the next tile when `left` remain in the row: PX, else the most of PX/2, 2, 1
 * (the tile sizes compiled) */
static inline size_t F(tile_pixels)(size_t left)
{
    return left >= PX ? PX : left >= PX / 2 && PX / 2 > 2 ? PX / 2 : left >= 2 ? 2 : 1;
}

/* t with fb (1..FB) filter blocks and px (F(tile_pixels)'s sizes) pixels as compile-time
 * constants, checked (a border or the row's last pixels) or not (PX interior pixels) */
INLINE void F(tile_fb)(const in_nchwc_tile *t, const int fb, size_t px, int checked, const int cl)
{
    if (!checked) F(tile)(t, fb, PX, cl, 0);
    else if (px == PX) F(tile)(t, fb, PX, cl, 1);
    else if (px == PX / 2 && PX / 2 > 2) F(tile)(t, fb, PX / 2 > 2 ? PX / 2 : 1, cl, 1);
    else if (px == 2) F(tile)(t, fb, 2, cl, 1);
    else F(tile)(t, fb, 1, cl, 1);
}

INLINE void F(tile_any)(const in_nchwc_tile *t, size_t fb, size_t px, int checked, const int cl)
{
#define IN_NCHWC_FB_CASE(n)                                                                    \
    case n:                                                                                    \
        if (n <= FB) F(tile_fb)(t, n <= FB ? n : 1, px, checked, cl);                          \
        break;
    switch (fb) {
        IN_NCHWC_FB_CASE(1)
        IN_NCHWC_FB_CASE(2)
        IN_NCHWC_FB_CASE(3)
        IN_NCHWC_FB_CASE(4)
    }
#undef IN_NCHWC_FB_CASE
}

/* Output row oy, columns [x0, x1), of image b and filter blocks [f0, f0 + t->fb), summed over
 * the channel blocks [c0, c0 + t->nc): PX pixels at a time, unchecked where every kernel column
 * of them lies inside the input ([g->lo, g->hi)), checked at the borders and for the last
 * (x1 - x0) % PX pixels (in tiles of F(tile_pixels)). Kernel rows are cut to the input for the
 * whole row (top and bottom padding shrink the kernel's height), kernel columns to those that
 * reach the input for some pixel of the tile. */
INLINE void F(row)(const in_nchwc_geom *g, in_nchwc_tile *t, float *y, const float *x,
                   const float *wp, size_t b, size_t f0, size_t fb, size_t c0, size_t oy,
                   size_t x0, size_t x1, const int cl)
{
    ptrdiff_t iy0 = (ptrdiff_t)(oy * g->sh) - (ptrdiff_t)g->ph;
    size_t ky0 = iy0 < 0 ? (size_t)-iy0 : 0;
    ptrdiff_t below = (ptrdiff_t)g->H - iy0; /* rows from iy0 to the input's end */
    size_t ky1 = below <= 0 ? 0 : below < (ptrdiff_t)g->kh ? (size_t)below : g->kh;
    t->nky = ky1 > ky0 ? ky1 - ky0 : 0;
    const float *xrow = x + b * g->x_image + c0 * g->xc +
                        (t->nky ? (size_t)(iy0 + (ptrdiff_t)ky0) * g->xr : 0);
    const float *wrow = wp + f0 * g->wf + c0 * g->wc + ky0 * g->wr;
    for (size_t ox = x0; ox < x1;) {
        ptrdiff_t ix = (ptrdiff_t)(ox * g->sw) - (ptrdiff_t)g->pw; /* first pixel's tap 0 */
        size_t n = F(tile_pixels)(x1 - ox), kx0, kx1;
        int checked = n < PX || ox < g->lo || ox + PX > g->hi;
        in_nchwc_columns(&kx0, &kx1, g, ix, ix + (ptrdiff_t)((n - 1) * g->sw));
        t->nkx = kx1 > kx0 ? kx1 - kx0 : 0;
        t->ix = ix + (ptrdiff_t)kx0;
        t->y = y + b * g->y_image + f0 * g->yf + (oy * g->ow + ox) * BLK;
        t->x = xrow + (checked ? 0 : (size_t)t->ix * cl);
        t->w = wrow + kx0 * cl * BLK;
        F(tile_any)(t, fb, n, checked, cl);
        ox += n;
    }
}

/* Task q of g (in_nchwc_task_of): its rows and columns of filter blocks [f0, f0 + fb), a group
 * of channel blocks at a time over all its rows (the group's weights stay in L1, the task's
 * outputs in L1 or L2), on a blocked (cl = BLK) or plain (cl = 1) input. */
INLINE void F(task)(const in_nchwc_geom *g, float *y, const float *x, const float *wp,
                    const float *bias, int relu, size_t q, const int cl)
{
    size_t b, f0, fb, y0, y1, x0, x1;
    in_nchwc_task_of(g, q, &b, &f0, &fb, &y0, &y1, &x0, &x1);
    in_nchwc_tile t = {0};
    t.xc = g->xc, t.xr = g->xr, t.xp = g->sw * cl, t.wc = g->wc, t.wr = g->wr, t.wf = g->wf;
    t.yf = g->yf, t.relu = relu, t.bias = bias ? bias + f0 * BLK : 0, t.sw = g->sw, t.W = g->W;
    for (size_t c0 = 0; c0 < g->Cb; c0 += g->gc) {
        t.nc = min_size(g->gc, g->Cb - c0);
        t.first = c0 == 0, t.last = c0 + t.nc == g->Cb;
        for (size_t oy = y0; oy < y1; ++oy) F(row)(g, &t, y, x, wp, b, f0, fb, c0, oy, x0, x1, cl);
    }
}

KERNEL static void F(task_blocked)(const in_nchwc_geom *g, float *y, const float *x,
                                   const float *wp, const float *bias, int relu, size_t q)
{
    F(task)(g, y, x, wp, bias, relu, q, BLK);
}

KERNEL static void F(task_plain)(const in_nchwc_geom *g, float *y, const float *x,
                                 const float *wp, const float *bias, int relu, size_t q)
{
    F(task)(g, y, x, wp, bias, relu, q, 1);
}

#undef DESC
#undef TILE
#undef VBYTES
#undef FB
#undef PX
#undef LANES
#undef BLK
#undef BV
#undef KERNEL
#undef INLINE
#undef F
#undef vec
#undef ivec
