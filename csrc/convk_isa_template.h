/* convk_isa_template.h: the ISA-specific half of the convolution kernels, for one real type
 * (NAME, real) and one ISA level (ISA, see convk_isa.h), included by convk_template.h once per
 * level: the same source becomes zmm, ymm or xmm code according to the level's vector size and
 * target attribute. Functions are named F(f) = in_f_isa<level>_<f32|f64>.
 *
 * The direct GEMM's tile (forward and dL/dx): GMR output channels x GNR = GNV*LANES pixels,
 * accumulators acc[GMR][GNV]:
 *     acc[i][v] += broadcast(a[k, i]) * b[k, v*LANES .. v*LANES + LANES - 1]   for each tap k
 * or, for GEMMs of many rows (the plan's choice, g->mr), the taller MR x NR tile (NR =
 * NV*LANES). dL/dw runs the same microkernel on the MR x NR tile with pixels as the sum:
 * A = dY (channels x pixels) and B = col^T (pixels x taps), both packed transposed (see
 * dw_task); Winograd's products use MR x NR too.
 */

#define DESC IN_NAME3(IN_CONVK_ISA, ISA, _DESC)
#define VBYTES IN_CONVK_FIELD(VBYTES, DESC)
#define MR IN_CONVK_FIELD(MR, DESC)
#define NV IN_CONVK_FIELD(NV, DESC)
#define GMR IN_CONVK_FIELD(GMR, DESC)
#define GNV IN_CONVK_FIELD(GNV, DESC)
#define LANES ((size_t)VBYTES / sizeof(real))
#define NR (NV * LANES)
#define GNR (GNV * LANES)
/* dL/dw's packing reads rows of dY and of x far apart, too many streams for the hardware
 * prefetcher: each row read asks for its line AHEAD values (256 bytes) on. */
#define AHEAD (256 / sizeof(real))
#define KERNEL IN_NAME3(IN_CONVK_ISA, ISA, _TARGET) IN_CONVK_CONTRACT
#define F(f) NAME(IN_NAME3(f, _isa, ISA))
#define vec F(vec)
#define ivec F(ivec)

typedef real vec __attribute__((vector_size(VBYTES)));
/* a vector at any address of a real (the microkernel's col rows read in place) */
typedef real F(uvec) __attribute__((vector_size(VBYTES), aligned(sizeof(real)), may_alias));
#if IN_DOUBLE
typedef long long ivec __attribute__((vector_size(VBYTES)));
#else
typedef int ivec __attribute__((vector_size(VBYTES)));
#endif

/* *v = max(*v, 0) lane by lane, NaN kept: v where !(v < 0), else +0 */
KERNEL static inline void F(relu)(vec *v)
{
    *v = (vec)((ivec)*v & ~(ivec)(*v < 0));
}

/* dst[q] = src[q] for q < n, 2 <= n <= 2*chunk, as two blocks of `chunk` values (a constant
 * once inlined), the first from 0, the second ending at n (they may overlap). */
#define IN_COPY_TWO_(chunk)                                                                  \
    do {                                                                                     \
        real a[chunk], b[chunk];                                                             \
        memcpy(a, src, sizeof a), memcpy(b, src + len - (chunk), sizeof b);                  \
        memcpy(dst, a, sizeof a), memcpy(dst + len - (chunk), b, sizeof b);                  \
    } while (0)

/* dst[q] = src[q] for q < len: whole vectors, the last one ending at len (it may overlap the
 * one before: the same values twice); below a vector, two blocks of the largest power of two
 * it holds twice at most (a run of 14 floats on AVX-512: two of 8). Never touches past len. */
KERNEL static inline void F(copy_run)(real *dst, const real *src, size_t len)
{
    vec v;
    if (len < LANES) {
        if (LANES > 8 && len >= 8) IN_COPY_TWO_(8);
        else if (LANES > 4 && len >= 4) IN_COPY_TWO_(4);
        else if (len >= 2) IN_COPY_TWO_(2);
        else if (len) dst[0] = src[0];
        return;
    }
    for (size_t q = 0; q + LANES < len; q += LANES) {
        memcpy(&v, src + q, sizeof v);
        memcpy(dst + q, &v, sizeof v);
    }
    memcpy(&v, src + len - LANES, sizeof v);
    memcpy(dst + len - LANES, &v, sizeof v);
}
#undef IN_COPY_TWO_

/* The col rows of a block of pixels (implicit im2col), for taps tap[0..rows):
 *     dst[q*ld + run.dst + t] = src[run.src + tap[q] + t]   for each run, t < run.len
 * and 0 in columns [width, ld). A run at a time down all the rows: one copy loop of fixed
 * length (nv vectors, a constant once inlined) a row for a panel-wide run. Rows of x far apart
 * are too many streams for the hardware prefetcher, so the copy asks for the lines of a panel
 * 4 ahead. */
KERNEL static inline __attribute__((always_inline)) void F(pack_rows)(
    real *dst, size_t ld, size_t width, const real *src, const size_t *tap, size_t rows,
    const in_convk_run *rs, size_t nruns, size_t nv)
{
    for (size_t k = 0; k < nruns; ++k) {
        real *d = dst + rs[k].dst;
        const real *s = src + rs[k].src;
        if (rs[k].len == nv * LANES)
            for (size_t q = 0; q < rows; ++q) {
                vec v[IN_CONVK_TILE_NV_MAX];
                memcpy(v, s + tap[q], nv * sizeof(vec));
                memcpy(d + q * ld, v, nv * sizeof(vec));
                for (size_t line = 0; line < nv * sizeof(vec); line += 64) /* a later panel's */
                    __builtin_prefetch((const char *)(s + tap[q] + 4 * nv * LANES) + line);
            }
        else
            for (size_t q = 0; q < rows; ++q) F(copy_run)(d + q * ld, s + tap[q], rs[k].len);
    }
    for (size_t q = 0; width < ld && q < rows; ++q)
        memset(dst + q * ld + width, 0, (ld - width) * sizeof(real));
}

/* The microkernel of an mr x nv tile (constants once inlined, at most the largest tile's):
 *     cout[i*ldo + t] = (cin ? cin[i*ldi + t] : 0) + sum_{k < kc} A[i, k] b_k[t]
 * for i < mr, t < nv*LANES, A[i, k] = a[(i / PANEL)*pstride + k*PANEL + i % PANEL] (mr / PANEL
 * packed weight panels), col row k at b_k = b + k*ldb (a packed panel: ldb = nv*LANES; or the
 * source itself, any alignment), or, with taps (a row panel read in place), b_k = b + tap[k];
 * cin and cout aligned rows (cin may be cout). */
KERNEL static inline __attribute__((always_inline)) void F(ukr_tile)(
    const int mr, const int nv, size_t kc, const real *a, size_t pstride, const real *b,
    size_t ldb, const size_t *tap, const real *cin, size_t ldi, real *cout, size_t ldo)
{
    vec acc[IN_CONVK_TILE_MR_MAX][IN_CONVK_TILE_NV_MAX];
    for (int i = 0; i < mr; ++i)
        for (int v = 0; v < nv; ++v) acc[i][v] = (vec){0};
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; ++k) {
        const F(uvec) *bk = (const F(uvec) *)(tap ? b + tap[k] : b + k * ldb);
        for (int i = 0; i < mr; ++i) {
            const real *ak = a + i / IN_CONVK_PANEL * pstride + k * IN_CONVK_PANEL;
            vec ai = ak[i % IN_CONVK_PANEL] - (vec){0}; /* broadcast; x - 0 == x: folds away */
            for (int v = 0; v < nv; ++v) acc[i][v] += ai * bk[v];
        }
    }
    for (int i = 0; i < mr; ++i)
        for (int v = 0; v < nv; ++v) {
            vec *o = (vec *)(cout + i * ldo + v * LANES);
            *o = cin ? *(const vec *)(cin + i * ldi + v * LANES) + acc[i][v] : acc[i][v];
        }
}

/* The MR x NR tile (dL/dw's, Winograd's, the direct GEMM's of many rows). A packed panel's
 * stride is a constant in its own copy of the loop (a variable one measured 1-3 % slower). */
KERNEL static void F(ukr)(size_t kc, const real *a, size_t pstride, const real *b, size_t ldb,
                          const real *cin, size_t ldi, real *cout, size_t ldo)
{
    if (ldb == NR) F(ukr_tile)(MR, NV, kc, a, pstride, b, NR, 0, cin, ldi, cout, ldo);
    else F(ukr_tile)(MR, NV, kc, a, pstride, b, ldb, 0, cin, ldi, cout, ldo);
}

/* the direct GEMM's GMR x GNR tile, as ukr */
KERNEL static void F(gemm_ukr)(size_t kc, const real *a, size_t pstride, const real *b,
                               size_t ldb, const real *cin, size_t ldi, real *cout, size_t ldo)
{
    if (ldb == GNR) F(ukr_tile)(GMR, GNV, kc, a, pstride, b, GNR, 0, cin, ldi, cout, ldo);
    else F(ukr_tile)(GMR, GNV, kc, a, pstride, b, ldb, 0, cin, ldi, cout, ldo);
}

/* ukr_tile at the tile's rows (tall: MR, else GMR) and nv vectors (1 .. its NV or GNV): on a
 * packed panel, rows the full width apart (tap NULL: the last panel of a map at batch 1, 196
 * pixels being three panels of 64 and one of 4: the same sums, no multiplies of the zero
 * columns), or on a row panel read in place at its taps (in_convk_panel_in_place). */
#define IN_UKR_WIDTH_(rows, nv_, nr)                                                          \
    (tap ? F(ukr_tile)(rows, nv_, kc, a, pstride, b, 0, tap, cin, ldi, cout, ldo)             \
         : F(ukr_tile)(rows, nv_, kc, a, pstride, b, nr, 0, cin, ldi, cout, ldo))
KERNEL static void F(ukr_width)(int tall, size_t nv, size_t kc, const real *a, size_t pstride,
                                const real *b, const size_t *tap, const real *cin, size_t ldi,
                                real *cout, size_t ldo)
{
    /* the widths up to NV or GNV only (a wider one would not fit the registers) */
    if (tall && nv == 1) IN_UKR_WIDTH_(MR, 1, NR);
    else if (tall && NV > 2 && nv == 2) IN_UKR_WIDTH_(MR, 2, NR);
    else if (tall && NV > 3 && nv == 3) IN_UKR_WIDTH_(MR, 3, NR);
    else if (tall) IN_UKR_WIDTH_(MR, NV, NR);
    else if (nv == 1) IN_UKR_WIDTH_(GMR, 1, GNR);
    else if (GNV > 2 && nv == 2) IN_UKR_WIDTH_(GMR, 2, GNR);
    else if (GNV > 3 && nv == 3) IN_UKR_WIDTH_(GMR, 3, GNR);
    else IN_UKR_WIDTH_(GMR, GNV, GNR);
}
#undef IN_UKR_WIDTH_

/* rep[k*PANEL + i] = col[k*ld] for i < PANEL, k < kc: one pixel's column of a packed panel,
 * each value repeated as often as a weight panel has rows (ukr_column's operand) */
KERNEL static void F(repeat_column)(real *rep, const real *col, size_t ld, size_t kc)
{
    for (size_t k = 0; k < kc; ++k)
        for (size_t i = 0; i < IN_CONVK_PANEL; ++i) rep[k * IN_CONVK_PANEL + i] = col[k * ld];
}

/* One pixel alone (see gemm_task_tile): cout[i*ldo] = (cin ? cin[i*ldi] : 0) + sum_{k < kc}
 * A[i, k] col[k] for i < mr, weight panel by weight panel: its values a[k*PANEL + i] (flat f =
 * k*PANEL + i) times rep[f] (repeat_column), 3*LANES at a time into three vectors, so that
 * lane l of vector v sums the products f = v*LANES + l (mod 3*LANES), all of row f % PANEL (3*LANES
 * is a multiple of PANEL = 6); the flat tail into the same lanes; then each row's lanes in order.
 * As a vector of the tile, that pixel would fill 1 lane of LANES. */
KERNEL static void F(ukr_column)(size_t mr, size_t kc, const real *a, size_t pstride,
                                 const real *rep, const real *cin, size_t ldi, real *cout,
                                 size_t ldo)
{
    enum { GROUP = 3 * LANES };
    size_t n = kc * IN_CONVK_PANEL, whole = n / GROUP * GROUP;
    for (size_t p = 0; p < mr; p += IN_CONVK_PANEL) {
        const real *ap = a + p / IN_CONVK_PANEL * pstride;
        vec acc[3] = {{0}, {0}, {0}};
        real lane[GROUP];
        for (size_t f = 0; f < whole; f += GROUP)
            for (int v = 0; v < 3; ++v) {
                vec w, x;
                memcpy(&w, ap + f + v * LANES, sizeof w), memcpy(&x, rep + f + v * LANES, sizeof x);
                acc[v] += w * x;
            }
        memcpy(lane, acc, sizeof lane);
        for (size_t f = whole; f < n; ++f) lane[f - whole] += ap[f] * rep[f];
        for (size_t i = 0; i < IN_CONVK_PANEL; ++i) {
            real sum = 0;
            for (size_t l = i; l < GROUP; l += IN_CONVK_PANEL) sum += lane[l];
            cout[(p + i) * ldo] = cin ? cin[(p + i) * ldi] + sum : sum;
        }
    }
}

/* Whether a panel of cnt < nr columns (nr: its tile's) is whole vectors, if any, and one lone
 * column (49 = 3*16 + 1: a 7x7 map at batch 1; 17 of GoogLeNet's 49 Winograd tiles at 14x14;
 * 289 = 9*32 + 1: a 17x17 map on the 32-pixel tall tile) */
KERNEL static inline int F(lone)(size_t cnt, size_t nr)
{
    return cnt < nr && cnt % LANES == 1;
}

/* A packed panel of cnt columns, rows NR or GNR apart, that its mr x nv tile (tall: MR x NV)
 * would leave part empty (cnt <= nr - LANES, or lone): the vectors it fills by ukr_width; a
 * lone last column by ukr_column instead, from rep (its column repeated, repeat_column). */
KERNEL static void F(ukr_partial)(int tall, size_t mr, size_t cnt, size_t nr, size_t kc,
                                  const real *a, size_t pstride, const real *b, const real *rep,
                                  const real *cin, size_t ldi, real *cout, size_t ldo)
{
    if (!F(lone)(cnt, nr)) {
        F(ukr_width)(tall, cdiv(cnt, LANES), kc, a, pstride, b, 0, cin, ldi, cout, ldo);
        return;
    }
    if (cnt > LANES) F(ukr_width)(tall, cnt / LANES, kc, a, pstride, b, 0, cin, ldi, cout, ldo);
    F(ukr_column)(mr, kc, a, pstride, rep, cin ? cin + cnt - 1 : 0, ldi, cout + cnt - 1, ldo);
}

/* The fused epilogue of one tile t (rows o0 .. o0+rows, nr columns a row, a constant once
 * inlined) into y, one output segment at a time (see NAME(epilogue)):
 *     y[seg.src + o*chan + q*col] = act(scale[o] * t[o - o0, seg.dst + q] + shift[o] (+ y[...]))
 * whole vectors where the output is contiguous, then one by one (the same arithmetic). */
KERNEL static inline __attribute__((always_inline)) void F(store_tile)(
    const NAME(epilogue) *e, const real *t, size_t nr, size_t o0, size_t rows,
    const in_convk_run *sg, size_t nseg)
{
    for (size_t i = 0; i < rows; ++i) {
        size_t o = o0 + i;
        real s = e->scale ? e->scale[o] : 1, h = e->shift ? e->shift[o] : 0;
        for (size_t k = 0; k < nseg; ++k) {
            real *y = e->y + sg[k].src + o * e->chan;
            const real *v = t + i * nr + sg[k].dst;
            size_t q = 0, len = sg[k].len, col = e->col;
            /* a later tile's row (its every line when contiguous): too many streams for the
             * hardware prefetcher (one a channel) */
            for (size_t line = 0; line < (col == 1 ? nr * sizeof(real) : 1); line += 64)
                __builtin_prefetch((char *)(y + 2 * nr * col) + line, 1);
            for (; col == 1 && q + LANES <= len; q += LANES) {
                vec a, old;
                memcpy(&a, v + q, sizeof a);
                if (e->scale) a = a * s + h;
                else if (e->shift) a = a + h;
                if (e->accumulate) memcpy(&old, y + q, sizeof old), a = a + old;
                if (e->relu) F(relu)(&a);
                memcpy(y + q, &a, sizeof a);
            }
            for (; q < len; ++q) {
                real a = v[q];
                if (e->scale) a = a * s + h;
                else if (e->shift) a = a + h;
                if (e->accumulate) a = a + y[q * col];
                if (e->relu) a = a < 0 ? 0 : a;
                y[q * col] = a;
            }
        }
    }
}

/* Asks for the cache lines of the packed weights a of the tile at row i (rows [i, i + mr)
 * within m1), taps [k0, k0 + kc) of K: while a tile runs, the next tile's panels, K values
 * apart, each a short stream the hardware prefetcher would start cold. In a network every
 * layer reads its weights from memory (frozen v3, batch 1: 1.05x on 1 thread, 1.07x on 2). */
KERNEL static inline void F(prefetch_tile)(const real *a, size_t i, size_t mr, size_t m1,
                                           size_t K, size_t k0, size_t kc)
{
    size_t first = i / IN_CONVK_PANEL, end = cdiv(min_size(i + mr, m1), IN_CONVK_PANEL);
    for (size_t p = i < m1 ? first : end; p < end; ++p) {
        const char *panel = (const char *)(a + (p * K + k0) * IN_CONVK_PANEL);
        for (size_t at = 0; at < kc * IN_CONVK_PANEL * sizeof(real); at += 64)
            __builtin_prefetch(panel + at);
    }
}

/* Asks for rows [q0, q1) of a col panel read in place (row q: nr values at b + q*ldb): while
 * a panel's tiles run, the next panel's rows, a share per tile. Each row is a stream of its
 * own, too many for the hardware prefetcher. */
KERNEL static inline void F(prefetch_rows)(const real *b, size_t ldb, size_t q0, size_t q1,
                                           size_t nr)
{
    for (size_t q = q0; q < q1; ++q) {
        const char *row = (const char *)(b + q * ldb);
        for (size_t line = 0; line < nr * sizeof(real); line += 64) __builtin_prefetch(row + line);
        __builtin_prefetch(row + nr * sizeof(real) - 1);
    }
}

/* One task: rows [m0, m1) x pixels [n0, n1) of out = A col, on the mr x nv tile (constants
 * once inlined: GMR x GNV or MR x NV). For each K block of kc taps: pack the task's col panels
 * (kc x nr each, in_convk_panel) into bbuf, but those the source holds as they are
 * (in_convk_panel_in_place: read in place, rows a plane apart or at their taps), then for each
 * panel sweep the rows with the microkernel (the panel stays in L1, the weights block in L2).
 * The sums of K blocks before the last wait in cpart (rows x nc); the last block's tile goes
 * through the epilogue. */
KERNEL static inline __attribute__((always_inline)) void F(gemm_task_tile)(
    size_t mr, size_t nv, const in_convk_gemm *g, const NAME(epilogue) *e, const real *src,
    const real *a, real *bbuf, real *cpart, size_t m0, size_t m1, size_t n0, size_t n1)
{
    size_t tap[IN_CONVK_KC_MAX], nr = nv * LANES;
    in_convk_run rs[IN_CONVK_MAX_RUNS];
    real tile[IN_CONVK_TILE_MR_MAX * IN_CONVK_TILE_NV_MAX * LANES] __attribute__((aligned(64)));
    real rep[IN_CONVK_KC_MAX * IN_CONVK_PANEL]; /* a lone last pixel's column, repeated */
    size_t panels = in_convk_panel_count(g, n0, n1, nr);
    for (size_t kb = 0; kb < g->k_blocks; ++kb) {
        size_t k0 = kb * g->kc, kc = min_size(g->K, k0 + g->kc) - k0, last = kb + 1 == g->k_blocks;
        in_convk_taps(tap, g, k0, k0 + kc);
        for (size_t jp = 0; jp < panels; ++jp) {
            size_t c0, cnt = in_convk_panel(g, n0, n1, nr, jp, &c0);
            if (in_convk_panel_in_place(g, c0, cnt, nr) != SIZE_MAX) continue;
            size_t nruns = in_convk_runs(rs, g, c0, cnt);
            F(pack_rows)(bbuf + jp * kc * nr, nr, cnt, src, tap, kc, rs, nruns, nv);
        }
        for (size_t jp = 0; jp < panels; ++jp) {
            size_t c0, cnt = in_convk_panel(g, n0, n1, nr, jp, &c0);
            size_t nseg = last ? in_convk_segments(rs, g->oh, g->ow, e->image, e->row, e->col, c0,
                                                   cnt)
                               : 0;
            size_t at = in_convk_panel_in_place(g, c0, cnt, nr);
            const real *bp = at == SIZE_MAX ? bbuf + jp * kc * nr
                             : g->row_panels ? src + at : src + at + tap[0];
            size_t ldb = at != SIZE_MAX ? g->plane : nr;
            /* the next panel, if read in place a plane a row: this K block's next, or the next
             * block's first (a row panel's rows are mostly the current one's) */
            size_t more = jp + 1 < panels, nc0 = more ? c0 + nr : n0, nk0 = more ? k0 : k0 + kc;
            size_t nat = nk0 < g->K && !g->row_panels
                             ? in_convk_panel_in_place(g, nc0, min_size(nr, n1 - nc0), nr)
                             : SIZE_MAX;
            size_t nrows = nat != SIZE_MAX ? min_size(g->K, nk0 + g->kc) - nk0 : 0;
            const real *next = nrows ? src + nat + nk0 * g->plane : src;
            int partial = cnt <= nr - LANES || F(lone)(cnt, nr); /* packed: cnt < nr */
            if (F(lone)(cnt, nr)) F(repeat_column)(rep, bp + cnt - 1, nr, kc);
            for (size_t i = m0; i < m1; i += mr) {
                const real *ap = a + (i / IN_CONVK_PANEL * g->K + k0) * IN_CONVK_PANEL;
                size_t t = (i - m0) / mr, tiles = cdiv(m1 - m0, mr);
                if (jp == 0) F(prefetch_tile)(a, i + mr, mr, m1, g->K, k0, kc);
                F(prefetch_rows)(next, g->plane, t * nrows / tiles, (t + 1) * nrows / tiles, nr);
                real *cp = cpart + (i - m0) * g->nc + (c0 - n0), *cout = last ? tile : cp;
                const real *cin = kb ? cp : 0;
                size_t ldo = last ? nr : g->nc, pstride = IN_CONVK_PANEL * g->K;
                if (g->row_panels) /* whole vectors (see gemm_blocking) */
                    F(ukr_width)(mr == MR && nv == NV, cnt / LANES, kc, ap, pstride, bp, tap, cin,
                                 g->nc, cout, ldo);
                else if (partial) /* the map's last panel */
                    F(ukr_partial)(mr == MR && nv == NV, mr, cnt, nr, kc, ap, pstride, bp, rep,
                                   cin, g->nc, cout, ldo);
                else if (mr == MR && nv == NV)
                    F(ukr)(kc, ap, pstride, bp, ldb, cin, g->nc, cout, ldo);
                else F(gemm_ukr)(kc, ap, pstride, bp, ldb, cin, g->nc, cout, ldo);
                if (last) F(store_tile)(e, tile, nr, i, min_size(mr, g->M - i), rs, nseg);
            }
        }
    }
}

/* gemm_task_tile on the plan's tile (g->mr: see gemm_blocking in convk.c) */
KERNEL static void F(gemm_task)(const in_convk_gemm *g, const NAME(epilogue) *e, const real *src,
                                const real *a, real *bbuf, real *cpart, size_t m0, size_t m1,
                                size_t n0, size_t n1)
{
    if (g->mr == MR && g->nr == NR)
        F(gemm_task_tile)(MR, NV, g, e, src, a, bbuf, cpart, m0, m1, n0, n1);
    else
        F(gemm_task_tile)(GMR, GNV, g, e, src, a, bbuf, cpart, m0, m1, n0, n1);
}

/* acc[l] += sum over q = l (mod LANES) of dY[q] = (mask[q] > 0 ? d[q] : 0) (mask may be NULL),
 * q < n, in double; the tail past whole vectors goes to *tail: dL/dbias of one plane. The
 * partial sums live in vectors of the register's width (float: the low and the high half of
 * each vector widened apart; a vector of LANES doubles would be split through the stack). */
KERNEL static void F(plane_dy_sum)(double *acc, double *tail, const real *d, const real *mask,
                                   size_t n)
{
    typedef double dvec __attribute__((vector_size(VBYTES)));
    enum { HALF = VBYTES / sizeof(double) }; /* doubles a vector: LANES (double), LANES / 2 */
    dvec s[LANES / HALF];
    size_t q = 0;
    memcpy(s, acc, sizeof s);
    for (; q + LANES <= n; q += LANES) {
        vec v, m;
        memcpy(&v, d + q, sizeof v);
        if (mask) memcpy(&m, mask + q, sizeof m), v = (vec)((ivec)v & (ivec)(m > 0));
#if IN_DOUBLE
        s[0] += v;
#else
        typedef float hvec __attribute__((vector_size(VBYTES / 2)));
        hvec lo, hi;
        memcpy(&lo, &v, sizeof lo), memcpy(&hi, (const char *)&v + sizeof lo, sizeof hi);
        s[0] += __builtin_convertvector(lo, dvec), s[1] += __builtin_convertvector(hi, dvec);
#endif
    }
    memcpy(acc, s, sizeof s);
    for (; q < n; ++q) *tail += mask && !(mask[q] > 0) ? 0 : (double)d[q];
}

/* r[i][c] <- r[c][i] for i, c < LANES: a LANES x LANES block transposed in place, in log2(LANES)
 * stages of constant two-vector shuffles; stage b swaps bit b of the row with bit b of the
 * column (rows i and i + b, i & b == 0, trade their off-diagonal b-wide blocks):
 *     r'[i][c] = c & b ? r[i + b][c - b] : r[i][c],  r'[i + b][c] = c & b ? r[i + b][c] : r[i][c + b]
 * On AVX2 float: vperm2f128 (b = 4), vshufps (b = 2), and two uops for b = 1. The lane lists
 * are spelled out (a shuffle's mask must be a constant), for the lane counts of the levels. */
#define IN_LANES_PP_ (VBYTES / (IN_DOUBLE ? 8 : 4))
#define IN_L2_(f, b) f(0, b), f(1, b)
#define IN_L4_(f, b) IN_L2_(f, b), f(2, b), f(3, b)
#define IN_L8_(f, b) IN_L4_(f, b), f(4, b), f(5, b), f(6, b), f(7, b)
#define IN_L16_(f, b) IN_L8_(f, b), f(8, b), f(9, b), f(10, b), f(11, b), f(12, b), f(13, b), \
                      f(14, b), f(15, b)
#if IN_LANES_PP_ == 2
#define IN_LANE_LIST_ IN_L2_
#elif IN_LANES_PP_ == 4
#define IN_LANE_LIST_ IN_L4_
#elif IN_LANES_PP_ == 8
#define IN_LANE_LIST_ IN_L8_
#else
#define IN_LANE_LIST_ IN_L16_
#endif
#define IN_LO_(c, b) ((c) & (b) ? (c) - (b) + IN_LANES_PP_ : (c))
#define IN_HI_(c, b) ((c) & (b) ? (c) + IN_LANES_PP_ : (c) + (b))
#define IN_STAGE_(b)                                                                           \
    for (size_t i = 0; i < LANES; ++i)                                                         \
        if (!(i & (b))) {                                                                      \
            vec lo = __builtin_shuffle(r[i], r[i + (b)], (ivec){IN_LANE_LIST_(IN_LO_, b)});     \
            r[i + (b)] = __builtin_shuffle(r[i], r[i + (b)], (ivec){IN_LANE_LIST_(IN_HI_, b)}); \
            r[i] = lo;                                                                         \
        }
KERNEL static inline void F(transpose)(vec *r)
{
#if IN_LANES_PP_ > 8
    IN_STAGE_(8)
#endif
#if IN_LANES_PP_ > 4
    IN_STAGE_(4)
#endif
#if IN_LANES_PP_ > 2
    IN_STAGE_(2)
#endif
    IN_STAGE_(1)
}
#undef IN_STAGE_
#undef IN_LO_
#undef IN_HI_
#undef IN_LANE_LIST_
#undef IN_L16_
#undef IN_L8_
#undef IN_L4_
#undef IN_L2_
#undef IN_LANES_PP_

/* LANES pixels of a panel of dY: t[l*PANEL + i] = dY[row i, pixel l] for i < PANEL (0 for rows
 * i >= n), rows ohw apart from d (and mask). Rows LANES at a time, each loaded whole (row
 * min(i, n - 1), zeroed past n: loops of constant length, so r stays in registers), then
 * transposed, each pixel's values stored together. */
KERNEL static inline void F(pack_dy_block)(real *t, const real *d, const real *mask, size_t ohw,
                                           size_t n)
{
#pragma GCC unroll 4
    for (size_t i1 = 0; i1 < IN_CONVK_PANEL; i1 += LANES) {
        vec r[LANES];
#pragma GCC unroll 16
        for (size_t i = 0; i < LANES; ++i) {
            size_t row = min_size(i1 + i, n - 1) * ohw;
            ivec keep = (ivec){0} - (i1 + i < n);
            vec m;
            memcpy(&r[i], d + row, sizeof r[i]);
            if (mask) memcpy(&m, mask + row, sizeof m), keep &= (ivec)(m > 0);
            r[i] = (vec)((ivec)r[i] & keep);
            if (i1 + i < n) {
                __builtin_prefetch(d + row + AHEAD);
                if (mask) __builtin_prefetch(mask + row + AHEAD);
            }
        }
        F(transpose)(r);
#pragma GCC unroll 16
        for (size_t l = 0; l < LANES; ++l)
            memcpy(t + l * IN_CONVK_PANEL + i1, &r[l], min_size(LANES, IN_CONVK_PANEL - i1) * sizeof(real));
    }
}

/* dY packed as the microkernel's A for channels [m0, m1) and the pixel block of segments sg
 * (cnt pixels): abuf[(i / PANEL)*PANEL*cnt + k*PANEL + i % PANEL] = dY[m0 + i, pixel k] (dy
 * where mask > 0, or everywhere when mask is NULL), 0 for rows m1 - m0 <= i < rows. LANES
 * pixels at a time (pack_dy_block); a segment's last block ends at its end (it may overlap the
 * one before: the same values twice); one by one below LANES pixels. */
KERNEL static void F(pack_dy_t)(real *abuf, size_t cnt, const real *dy, const real *mask,
                                size_t ohw, size_t m0, size_t m1, size_t rows,
                                const in_convk_run *sg, size_t nseg)
{
    for (size_t i0 = 0; i0 < rows; i0 += IN_CONVK_PANEL) {
        real *d = abuf + i0 * cnt;
        size_t n = m1 - m0 > i0 ? min_size(IN_CONVK_PANEL, m1 - m0 - i0) : 0;
        if (n < IN_CONVK_PANEL) memset(d, 0, IN_CONVK_PANEL * cnt * sizeof(real));
        for (size_t k = 0; n && k < nseg; ++k) {
            size_t len = sg[k].len, at = sg[k].src + (m0 + i0) * ohw;
            real *t = d + sg[k].dst * IN_CONVK_PANEL;
            for (size_t q = 0; len < LANES && q < len; ++q)
                for (size_t i = 0; i < n; ++i) {
                    real v = dy[at + i * ohw + q]; /* both loads unconditional: a select */
                    t[q * IN_CONVK_PANEL + i] = mask && !(mask[at + i * ohw + q] > 0) ? 0 : v;
                }
            for (size_t q = 0, more = len >= LANES; more; q += LANES) {
                if (q + LANES >= len) q = len - LANES, more = 0;
                F(pack_dy_block)(t + q * IN_CONVK_PANEL, dy + at + q, mask ? mask + at + q : 0,
                                 ohw, n);
            }
        }
    }
}

/* col^T packed as the microkernel's B panel for taps tap[0..ntaps) (0 < ntaps <= NR) and the
 * pixel block of runs rs: bbuf[k*NR + t] = col[tap t, pixel k], 0 for t >= ntaps. LANES taps x
 * LANES pixels at a time: each tap's LANES pixels loaded (tap min(t, ntaps - 1), zeroed past
 * ntaps), transposed, stored as LANES rows of the panel; a run's last block ends at its end
 * (it may overlap the one before; a run shorter than LANES reads the values before it and
 * stores its own rows only); one by one where that would read before src. */
KERNEL static void F(pack_cols_t)(real *bbuf, const real *src, const size_t *tap, size_t ntaps,
                                  const in_convk_run *rs, size_t nruns)
{
    size_t first_tap = tap[0];
    for (size_t t = 1; t < ntaps; ++t) first_tap = min_size(first_tap, tap[t]);
    for (size_t k = 0; k < nruns; ++k) {
        const real *s = src + rs[k].src;
        real *d = bbuf + rs[k].dst * NR;
        ptrdiff_t len = (ptrdiff_t)rs[k].len, lanes = (ptrdiff_t)LANES;
        int behind = len < lanes && rs[k].src + first_tap + len < LANES; /* before src */
        for (ptrdiff_t q = 0; behind && q < len; ++q)
            for (size_t t = 0; t < NR; ++t) d[q * NR + t] = t < ntaps ? s[tap[t] + q] : 0;
        for (ptrdiff_t q = 0, more = !behind; more; q += lanes) {
            if (q + lanes >= len) q = len - lanes, more = 0;
#pragma GCC unroll 4
            for (size_t t0 = 0; t0 < NR; t0 += LANES) {
                vec r[LANES];
#pragma GCC unroll 16
                for (size_t t = 0; t < LANES; ++t) {
                    const real *row = s + tap[min_size(t0 + t, ntaps - 1)] + q;
                    memcpy(&r[t], row, sizeof r[t]);
                    r[t] = (vec)((ivec)r[t] & ((ivec){0} - (t0 + t < ntaps)));
                    if (t0 + t < ntaps) __builtin_prefetch(row + AHEAD);
                }
                F(transpose)(r);
#pragma GCC unroll 16
                for (ptrdiff_t l = q < 0 ? -q : 0; l < lanes; ++l)
                    memcpy(d + (q + l) * NR + t0, &r[l], sizeof r[l]);
            }
        }
    }
}

/* sums[i] += the sum over the block's cnt pixels k of dY[row i, pixel k], i < n, in double,
 * from dY packed by pack_dy_t (panels of PANEL rows, a pixel's values together, 0 past n):
 * each panel as flat runs of 3*LANES values (a whole number of pixels, PANEL dividing it)
 * summed into as many partial sums, which then fold into the panel's rows. */
KERNEL static void F(dy_row_sums)(double *sums, const real *abuf, size_t cnt, size_t n)
{
    enum { PERIOD = 3 * LANES };
    for (size_t i0 = 0; i0 < n; i0 += IN_CONVK_PANEL) {
        const real *a = abuf + i0 * cnt;
        size_t total = cnt * IN_CONVK_PANEL, q = 0;
        double part[PERIOD] = {0}, row[IN_CONVK_PANEL] = {0};
        for (; q + PERIOD <= total; q += PERIOD)
            for (size_t u = 0; u < PERIOD; ++u) part[u] += a[q + u];
        for (size_t u = 0; u < PERIOD; ++u) row[u % IN_CONVK_PANEL] += part[u];
        for (; q < total; ++q) row[q % IN_CONVK_PANEL] += a[q];
        for (size_t i = 0; i < min_size(IN_CONVK_PANEL, n - i0); ++i) sums[i0 + i] += row[i];
    }
}

/* dL/dw for channels [m0, m1), taps [t0, t1) and pixels [n0, n1) of one pass (g: its images):
 *     cpart[o - m0, r - t0] (+)= sum over pixel blocks n (in order) of
 *                                sum_{k in n} dY[o, k] col[r, k]
 * a GEMM (channels x taps) whose sum runs over the pixels: for each block of dkc pixels, pack
 * dY's rows (A, in L2), then for each NR taps pack their col^T panel (B, dkc x NR, in L1 once
 * packed) and add the tiles of every row into cpart (rows of up(t1 - t0, NR)), the task's sums
 * over the passes so far (set by the first pass's first block). With bias (else NULL): also
 * bias[o - m0] += the sum of dY[o, k] over the pixels (dy_row_sums of each packed block). */
KERNEL static void F(dw_task)(const in_convk_plan *p, const in_convk_gemm *g, const real *dy,
                              const real *mask, size_t dy_image, const real *src, real *abuf,
                              real *bbuf, real *cpart, double *bias, size_t m0, size_t m1,
                              size_t t0, size_t t1, size_t n0, size_t n1, int first)
{
    size_t tap[NR];
    in_convk_run rs[IN_CONVK_MAX_RUNS], sg[IN_CONVK_MAX_RUNS];
    size_t rows = up(m1 - m0, MR), panels = cdiv(t1 - t0, NR), ld = panels * NR;
    for (size_t b = n0; b < n1; b += p->dkc) {
        size_t cnt = min_size(p->dkc, n1 - b);
        size_t nseg = in_convk_segments(sg, g->oh, g->ow, dy_image, g->ow, 1, b, cnt);
        F(pack_dy_t)(abuf, cnt, dy, mask, g->oh * g->ow, m0, m1, rows, sg, nseg);
        if (bias) F(dy_row_sums)(bias, abuf, cnt, m1 - m0);
        size_t nruns = in_convk_runs(rs, g, b, cnt);
        for (size_t jp = 0; jp < panels; ++jp) {
            size_t r0 = t0 + jp * NR, r1 = min_size(t1, r0 + NR);
            in_convk_taps(tap, g, r0, r1);
            F(pack_cols_t)(bbuf, src, tap, r1 - r0, rs, nruns);
            for (size_t i = 0; i < rows; i += MR) {
                real *cp = cpart + i * ld + jp * NR;
                F(ukr)(cnt, abuf + i * cnt, IN_CONVK_PANEL * cnt, bbuf, NR,
                       first && b == n0 ? 0 : cp, ld, cp, ld);
            }
        }
    }
}

/* ---- Winograd F(2x2, 3x3) (see convk.h) ---- */

/* The 4x4 patches d of LANES tiles side by side in a tile row, all inside the source, the
 * first at xc (the next 2 columns on): d[i][j] lane l = xc[i*W + 2l + j], the even and odd
 * columns of row i from xc (j = 0, 1) and from xc + 2 (j = 2, 3), split by shuffles. */
KERNEL static inline void F(wino_patches)(vec d[4][4], const real *xc, ptrdiff_t W)
{
    ivec even, odd;
    for (size_t l = 0; l < LANES; ++l) even[l] = 2 * l, odd[l] = 2 * l + 1;
    for (ptrdiff_t i = 0; i < 4; ++i)
        for (int j = 0; j < 4; j += 2) {
            vec a, b;
            memcpy(&a, xc + i * W + j, sizeof a), memcpy(&b, xc + i * W + j + LANES, sizeof b);
            d[i][j] = __builtin_shuffle(a, b, even), d[i][j + 1] = __builtin_shuffle(a, b, odd);
        }
}

/* B^T d B (see wino_input) of the patches d, lane by lane (LANES tiles), stored at dst + t*vt
 * (t = 4i + j). */
KERNEL static inline void F(wino_bt)(const vec d[4][4], real *dst, size_t vt)
{
    vec r[4][4];
    for (int j = 0; j < 4; ++j) {
        r[0][j] = d[0][j] - d[2][j], r[1][j] = d[1][j] + d[2][j];
        r[2][j] = d[2][j] - d[1][j], r[3][j] = d[1][j] - d[3][j];
    }
    for (size_t i = 0; i < 4; ++i) { /* vector by vector (an array of them would be copied
                                        through the stack in 16-byte pieces) */
        real *o = dst + 4 * i * vt;
        vec t0 = r[i][0] - r[i][2], t1 = r[i][1] + r[i][2], t2 = r[i][2] - r[i][1],
            t3 = r[i][1] - r[i][3];
        memcpy(o, &t0, sizeof t0), memcpy(o + vt, &t1, sizeof t1);
        memcpy(o + 2 * vt, &t2, sizeof t2), memcpy(o + 3 * vt, &t3, sizeof t3);
    }
}

/* Winograd's input transform of tiles [n0, n0 + cnt) and channels [c0, c0 + kc) of g's
 * source src (images `image` values apart), written as the microkernel's B panels, one per t
 * and NR tiles:
 *     v[t*vt + (l / NR*kc + k)*NR + l % NR] = (B^T d B)[t]
 * d the 4x4 patch of channel c0 + k under tile n0 + l (0 outside the source), 0 for lanes
 * cnt <= l < panels*NR. B^T d is rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3); then the same on
 * columns. A channel at a time, its tiles in order (src read along its rows, each of the 16
 * panels written in order), LANES tiles at once: side by side inside the source, their patches
 * by wino_patches; else each tile's patch gathered into its lane, value by value. */
KERNEL static void F(wino_input)(real *v, const in_convk_wino *g, const real *src, size_t image,
                                 size_t n0, size_t cnt, size_t c0, size_t kc)
{
    ptrdiff_t H = (ptrdiff_t)g->Hi, W = (ptrdiff_t)g->Wi, y0[IN_CONVK_WINO_NT_MAX],
              x0[IN_CONVK_WINO_NT_MAX];
    size_t panels = cdiv(cnt, NR), hw = g->Hi * g->Wi, at[IN_CONVK_WINO_NT_MAX];
    unsigned char inside[IN_CONVK_WINO_NT_MAX];
    for (size_t l = 0; l < cnt; ++l) { /* the patch's corner (y0, x0) in image b's plane */
        size_t n = n0 + l, b = n / (g->th * g->tw), ty = n / g->tw % g->th, tx = n % g->tw;
        y0[l] = 2 * (ptrdiff_t)ty - g->top, x0[l] = 2 * (ptrdiff_t)tx - g->left;
        at[l] = b * image + c0 * hw;
        inside[l] = y0[l] >= 0 && x0[l] >= 0 && y0[l] + 4 <= H && x0[l] + 4 <= W;
    }
    for (size_t k = 0; k < kc; ++k)
        for (size_t l0 = 0; l0 < panels * NR; l0 += LANES) {
            real *dst = v + (l0 / NR * kc + k) * NR + l0 % NR;
            size_t last = l0 + LANES - 1;
            vec d[4][4];
            if (last < cnt && (n0 + l0) / g->tw == (n0 + last) / g->tw && inside[l0]
                && inside[last]) {
                F(wino_patches)(d, src + at[l0] + k * hw + y0[l0] * W + x0[l0], W);
                F(wino_bt)(d, dst, g->vt);
                continue;
            }
            real lanes[4][4][LANES]; /* lanes[i][j][l - l0]: d[i][j] of tile l */
            for (size_t l = l0; l <= last; ++l) {
                const real *xc = src + (l < cnt ? at[l] + k * hw : 0);
                for (ptrdiff_t i = 0; i < 4; ++i)
                    for (ptrdiff_t j = 0; j < 4; ++j) {
                        real x = 0;
                        if (l < cnt && inside[l]) {
                            x = xc[(y0[l] + i) * W + x0[l] + j];
                        } else if (l < cnt) { /* every load from a valid address, kept or not */
                            ptrdiff_t yy = y0[l] + i, xx = x0[l] + j;
                            int in = yy >= 0 && xx >= 0 && yy < H && xx < W;
                            x = xc[in ? yy * W + xx : 0], x = in ? x : 0;
                        }
                        lanes[i][j][l - l0] = x;
                    }
            }
            memcpy(d, lanes, sizeof d);
            F(wino_bt)(d, dst, g->vt);
        }
}

/* The output rows of LANES 2x2 tiles yv (tile l in lane l), 2*LANES values each (tile l's at
 * 2l and 2l + 1): row0 = the lanes of yv[0] and yv[1] interleaved, row1 those of yv[2] and
 * yv[3]. */
KERNEL static inline void F(wino_rows)(real *row0, real *row1, const vec yv[4])
{
    ivec lo, hi;
    for (size_t l = 0; l < LANES; ++l)
        lo[l] = l / 2 + l % 2 * LANES, hi[l] = (LANES + l) / 2 + l % 2 * LANES;
#pragma GCC unroll 4 /* else GCC copies the vectors through the stack in 16-byte pieces */
    for (size_t q = 0; q < 4; ++q) { /* row q / 2, its half q % 2 */
        vec a = __builtin_shuffle(yv[q / 2 * 2], yv[q / 2 * 2 + 1], q % 2 ? hi : lo);
        memcpy((q / 2 ? row1 : row0) + q % 2 * LANES, &a, sizeof a);
    }
}

/* y[q] = v[q] for q < len, or, accumulating, y[q] = act(y[q] + v[q]): a run of an output row */
KERNEL static inline void F(wino_store_run)(const NAME(epilogue) *e, real *y, const real *v,
                                            size_t len)
{
    if (!e->accumulate) {
        F(copy_run)(y, v, len);
        return;
    }
    for (size_t q = 0; q < len; ++q) {
        real a = y[q] + v[q];
        y[q] = e->relu && a < 0 ? 0 : a;
    }
}

/* Winograd's output transform of M (row i of M_t at m[t*mt + i*nt], tiles in columns) for
 * rows [o0, o0 + rows) and tiles [n0, n0 + cnt) of g, through the epilogue:
 *     Y = A^T M A: rows s = m0 + m1 + m2, q = m1 - m2 - m3, then the same on columns;
 *     y[pixel (2ty + a, 2tx + e)] = act(scale[o] * Y[a, e] + shift[o] (+ y)), those inside the
 *     oh x ow map.
 * Vectors of LANES tiles (ReLU too when not accumulating); into contiguous output rows, their
 * rows (wino_rows) straight into y where the LANES tiles lie whole along one tile row, else a
 * run of tiles along a tile row at a time; else one pixel at a time. */
KERNEL static void F(wino_output)(const NAME(epilogue) *e, const in_convk_wino *g, const real *m,
                                  size_t o0, size_t rows, size_t n0, size_t cnt)
{
    size_t at[IN_CONVK_WINO_NT_MAX], ts = g->mt;
    unsigned char two[IN_CONVK_WINO_NT_MAX]; /* bit 0: column 2tx + 1 inside; bit 1: row */
    for (size_t l = 0; l < cnt; ++l) {
        size_t n = n0 + l, b = n / (g->th * g->tw), ty = n / g->tw % g->th, tx = n % g->tw;
        at[l] = b * e->image + 2 * ty * e->row + 2 * tx * e->col;
        two[l] = (unsigned char)((2 * tx + 1 < g->ow) | (2 * (2 * ty + 1 < g->oh)));
    }
    for (size_t i = 0; i < rows; ++i) {
        size_t o = o0 + i;
        real sc = e->scale ? e->scale[o] : 1, sh = e->shift ? e->shift[o] : 0;
        for (size_t l0 = 0; l0 < cnt; l0 += LANES) {
            vec t[16], s[4], q[4], yv[4];
#pragma GCC unroll 16 /* else GCC copies the vectors through the stack in 16-byte pieces */
            for (int k = 0; k < 16; ++k) memcpy(&t[k], m + k * ts + i * g->nt + l0, sizeof t[k]);
            for (int j = 0; j < 4; ++j)
                s[j] = t[j] + t[4 + j] + t[8 + j], q[j] = t[4 + j] - t[8 + j] - t[12 + j];
            yv[0] = s[0] + s[1] + s[2], yv[1] = s[1] - s[2] - s[3];
            yv[2] = q[0] + q[1] + q[2], yv[3] = q[1] - q[2] - q[3];
            for (int k = 0; k < 4; ++k) {
                if (e->scale) yv[k] = yv[k] * sc + sh;
                else if (e->shift) yv[k] = yv[k] + sh;
                if (e->relu && !e->accumulate) F(relu)(&yv[k]);
            }
            size_t end = min_size(cnt, l0 + LANES);
            real *y0 = e->y + at[l0] + o * e->chan;
            if (e->col == 1 && !e->accumulate && end == l0 + LANES && two[end - 1] == 3
                && (n0 + l0) / g->tw == (n0 + end - 1) / g->tw) { /* whole tiles, one tile row */
                F(wino_rows)(y0, y0 + e->row, yv);
                continue;
            }
            if (e->col == 1) {
                real r[2][2 * LANES];
                F(wino_rows)(r[0], r[1], yv);
                for (size_t a = l0, z; a < end; a = z) { /* tiles [a, z): one tile row */
                    for (z = a + 1; z < end && (n0 + z) / g->tw == (n0 + a) / g->tw; ++z) {}
                    size_t len = 2 * (z - a) - !(two[z - 1] & 1); /* the last column may lie out */
                    real *y = e->y + at[a] + o * e->chan;
                    F(wino_store_run)(e, y, r[0] + 2 * (a - l0), len);
                    if (two[a] & 2) F(wino_store_run)(e, y + e->row, r[1] + 2 * (a - l0), len);
                }
                continue;
            }
            for (size_t l = l0; l < end; ++l) {
                real *y = e->y + at[l] + o * e->chan, a[4];
                size_t off[4] = {0, e->col, e->row, e->row + e->col};
                for (int k = 0; k < 4; ++k) a[k] = yv[k][l - l0];
                for (int k = 0; e->accumulate && k < 4; ++k) {
                    if ((k & 1 && !(two[l] & 1)) || (k & 2 && !(two[l] & 2))) continue;
                    a[k] = a[k] + y[off[k]];
                    if (e->relu) a[k] = a[k] < 0 ? 0 : a[k];
                }
                y[0] = a[0];
                if (two[l] & 1) y[off[1]] = a[1];
                if (two[l] & 2) y[off[2]] = a[2];
                if (two[l] == 3) y[off[3]] = a[3];
            }
        }
    }
}

/* One Winograd task of g: rows [m0, m1) x tiles [n0, n1). For each K block: the input
 * transform into vbuf, then M_t (+)= U_t V_t for the 16 t by the microkernel, U_t's block
 * swept over the task's panels (V panels in L1, M in L2); then the output transform. */
KERNEL static void F(wino_task)(const in_convk_wino *g, const NAME(epilogue) *e, const real *src,
                                size_t image, const real *u, real *vbuf, real *mbuf, size_t m0,
                                size_t m1, size_t n0, size_t n1)
{
    size_t cnt = n1 - n0, panels = cdiv(cnt, NR), usize = up(g->M, IN_CONVK_PAD) * g->K;
    real rep[IN_CONVK_KC_MAX * IN_CONVK_PANEL]; /* a lone last tile's column, repeated */
    for (size_t kb = 0; kb < g->c_blocks; ++kb) {
        size_t c0 = kb * g->kc, kc = min_size(g->K, c0 + g->kc) - c0;
        F(wino_input)(vbuf, g, src, image, n0, cnt, c0, kc);
        for (size_t t = 0; t < 16; ++t)
            for (size_t jp = 0; jp < panels; ++jp) {
                const real *vp = vbuf + t * g->vt + jp * kc * NR;
                size_t left = cnt - jp * NR, pstride = IN_CONVK_PANEL * g->K;
                int partial = left <= NR - LANES || F(lone)(left, NR);
                if (F(lone)(left, NR)) F(repeat_column)(rep, vp + left - 1, NR, kc);
                for (size_t i = m0; i < m1; i += MR) {
                    const real *ap = u + t * usize + (i / IN_CONVK_PANEL * g->K + c0) * IN_CONVK_PANEL;
                    /* U streamed from memory (few tile blocks read it: batch 1): the next tile
                     * of U_t, or U_t+1's first (with U in cache, at batch 16, asking cost 2-4 %) */
                    if (jp == 0 && g->stream_u && i + MR < m1)
                        F(prefetch_tile)(u + t * usize, i + MR, MR, m1, g->K, c0, kc);
                    else if (jp == 0 && g->stream_u && t + 1 < 16)
                        F(prefetch_tile)(u + (t + 1) * usize, m0, MR, m1, g->K, c0, kc);
                    real *mp = mbuf + t * g->mt + (i - m0) * g->nt + jp * NR;
                    if (partial)
                        F(ukr_partial)(1, MR, left, NR, kc, ap, pstride, vp, rep, kb ? mp : 0,
                                       g->nt, mp, g->nt);
                    else F(ukr)(kc, ap, pstride, vp, NR, kb ? mp : 0, g->nt, mp, g->nt);
                }
            }
    }
    F(wino_output)(e, g, mbuf, m0, m1 - m0, n0, cnt);
}

#undef DESC
#undef VBYTES
#undef MR
#undef NV
#undef GMR
#undef GNV
#undef LANES
#undef NR
#undef GNR
#undef AHEAD
#undef KERNEL
#undef F
#undef vec
#undef ivec
