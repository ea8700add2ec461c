/* nchwc.c: the NCHWc direct convolution of nchwc.h: its geometry and tasks, the weight packing,
 * then the kernels of each ISA level (nchwc_isa_template.h) and the driver that shares the tasks
 * among OpenMP threads. The ISA level is convk's (convk.h): one switch for both. */
#include "nchwc.h"

#include <string.h>

#include "common.h"
#include "convk.h"
#include "convk_isa.h"

/* Weights of a group of channel blocks (FB filter blocks x gc channel blocks) stay in L1 while
 * a task sweeps its output row; a pointwise convolution's line is cut into tasks of LINE_PIXELS
 * output pixels (a multiple of every PX). */
#define GROUP_BYTES 16384
#define LINE_PIXELS 96
/* A task's outputs (FB filter blocks x its rows x its columns) stay in L1 or L2 while it adds
 * one group of channel blocks after another */
#define TASK_BYTES 16384
/* Flops a thread must have for a convolution to use it (as convk.c: about 0.2 ms) */
#define THREAD_FLOPS 16e6

static const size_t vbytes[IN_CONVK_LEVELS] = {
    IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA0_DESC), IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA1_DESC),
    IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA2_DESC), IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA3_DESC)};
static const size_t tile_fb[IN_CONVK_LEVELS] = {
    IN_CONVK_APPLY_(IN_NCHWC_FB_, (IN_NCHWC_ISA0_TILE)),
    IN_CONVK_APPLY_(IN_NCHWC_FB_, (IN_NCHWC_ISA1_TILE)),
    IN_CONVK_APPLY_(IN_NCHWC_FB_, (IN_NCHWC_ISA2_TILE)),
    IN_CONVK_APPLY_(IN_NCHWC_FB_, (IN_NCHWC_ISA3_TILE))};

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

size_t in_nchwc_block(int isa) { return vbytes[isa] == 64 ? 16 : 8; }

/* ---- packing ---- */

void in_nchwc_pack_weights_f32(float *wp, const float *w, size_t OC0, size_t C, size_t kh,
                               size_t kw, size_t blk, int plain)
{
    size_t OCb = cdiv(OC0, blk), cl = plain ? 1 : blk, Cb = C / cl, khw = kh * kw;
    for (size_t ob = 0; ob < OCb; ++ob)
        for (size_t cb = 0; cb < Cb; ++cb)
            for (size_t r = 0; r < khw; ++r)
                for (size_t ci = 0; ci < cl; ++ci) {
                    float *d = wp + (((ob * Cb + cb) * khw + r) * cl + ci) * blk;
                    for (size_t co = 0; co < blk; ++co) {
                        size_t o = ob * blk + co, c = cb * cl + ci;
                        d[co] = o < OC0 ? w[(o * C + c) * khw + r] : 0;
                    }
                }
}

/* ---- geometry ---- */

/* The convolution as the kernels run it: a pointwise one (1x1, stride 1, no padding) on the
 * map seen as one line of H*W pixels (1 x HW), cut into tasks of LINE_PIXELS; any other a row
 * a task. Strides of x (channel block, row), of wp (channel block, kernel row, filter block)
 * and of y (filter block), in elements; blocks of cl lanes (blk, or 1 for a plain x). */
typedef struct {
    size_t H, W, kh, kw, sh, sw, ph, pw, oh, ow;
    size_t Cb, gc;              /* channel blocks, per group */
    size_t OCb, fb, groups;     /* filter blocks, at most per task, groups of them */
    size_t chunk, chunks;       /* output columns per task, tasks per output row */
    size_t rows, row_blocks;    /* output rows per task, tasks per column chunk */
    size_t lo, hi;              /* output columns whose every kernel column is inside */
    int line;                   /* a pointwise convolution's map as one line */
    int weights_outer;          /* tasks ordered filter group first (see in_nchwc_task_of) */
    size_t xc, xr, wc, wr, wf, yf, x_image, y_image;
    size_t B, tasks;
    int threads;
} in_nchwc_geom;

/* What one tile reads and writes (see nchwc_isa_template.h) */
typedef struct {
    const float *x, *w, *bias;
    float *y;
    size_t nc, nky, nkx;
    size_t xc, xr, xp, wc, wr, wf, yf;
    ptrdiff_t ix;          /* a border tile's first column */
    size_t sw, W;
    int first, last, relu;
} in_nchwc_tile;

/* what a border tile reads outside the input: one block of zeros (cl <= 16 lanes) */
static const float in_nchwc_zeros[16];

static void in_nchwc_geometry(in_nchwc_geom *g, const in_nchwc_conv *c)
{
    size_t blk = in_nchwc_block(c->isa), cl = c->plain ? 1 : blk;
    int line = c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->ph == 0 && c->pw == 0;
    memset(g, 0, sizeof *g);
    g->line = line;
    g->H = line ? 1 : c->H, g->W = line ? c->H * c->W : c->W;
    g->kh = c->kh, g->kw = c->kw, g->sh = c->sh, g->sw = c->sw, g->ph = c->ph, g->pw = c->pw;
    g->oh = line ? 1 : c->oh, g->ow = line ? c->oh * c->ow : c->ow;
    g->Cb = c->C / cl;
    g->fb = tile_fb[c->isa];
    g->OCb = c->OC / blk;
    g->groups = cdiv(g->OCb, g->fb);
    /* groups of channel blocks: as few as the budget allows, of even sizes */
    g->gc = max_size(1, GROUP_BYTES / (g->fb * c->kh * c->kw * cl * blk * sizeof(float)));
    g->gc = cdiv(g->Cb, cdiv(g->Cb, g->gc));
    g->chunk = line ? min_size(LINE_PIXELS, g->ow) : g->ow;
    g->chunks = cdiv(g->ow, g->chunk);
    g->rows = max_size(1, TASK_BYTES / (g->fb * g->chunk * blk * sizeof(float)));
    g->rows = cdiv(g->oh, cdiv(g->oh, g->rows)); /* even blocks */
    g->row_blocks = cdiv(g->oh, g->rows);
    g->xc = c->H * c->W * cl, g->xr = g->W * cl;
    g->wr = c->kw * cl * blk, g->wc = c->kh * g->wr, g->wf = g->Cb * g->wc;
    g->yf = c->oh * c->ow * blk;
    g->x_image = c->x_image, g->y_image = c->y_image;
    /* ox*sw - pw >= 0 and ox*sw - pw + kw <= W */
    g->lo = cdiv(g->pw, g->sw);
    g->hi = g->W + g->pw >= g->kw ? (g->W + g->pw - g->kw) / g->sw + 1 : 0;
    g->hi = max_size(g->lo, min_size(g->hi, g->ow));
    g->B = c->B;
    g->weights_outer = c->OC * c->C * c->kh * c->kw > c->C * c->H * c->W;
    g->tasks = c->B * g->groups * g->row_blocks * g->chunks;
    double flops = 2.0 * (double)(c->B * c->OC * c->oh * c->ow) * (double)(c->C * c->kh * c->kw);
    g->threads = (int)max_size(1, min_size((size_t)(c->threads < 1 ? 1 : c->threads),
                                           (size_t)(flops / THREAD_FLOPS)));
}

/* Task q: image b, filter blocks [f0, f0 + fb), output rows [y0, y1), columns [x0, x1) (a row
 * block, or a chunk of a line). The order keeps in cache what is reused most: when a layer's
 * weights outweigh an image (small maps, many channels: Inception's late layers) a filter
 * group's weights serve every image before the next group's (g, b, part); otherwise an image's
 * input serves its groups: (b, g, row block), consecutive tasks sharing the group's weights and
 * input rows, or for a line (b, chunk, g), sharing the chunk's input. */
static void in_nchwc_task_of(const in_nchwc_geom *g, size_t q, size_t *b, size_t *f0, size_t *fb,
                             size_t *y0, size_t *y1, size_t *x0, size_t *x1)
{
    size_t parts = g->row_blocks * g->chunks, part, gi;
    if (g->weights_outer)
        part = q % parts, *b = q / parts % g->B, gi = q / parts / g->B;
    else if (g->line)
        gi = q % g->groups, part = q / g->groups % parts, *b = q / g->groups / parts;
    else
        part = q % parts, gi = q / parts % g->groups, *b = q / parts / g->groups;
    size_t rb = part / g->chunks, k = part % g->chunks;
    *f0 = gi * g->OCb / g->groups, *fb = (gi + 1) * g->OCb / g->groups - *f0; /* even groups */
    *y0 = rb * g->rows, *y1 = min_size(g->oh, *y0 + g->rows);
    *x0 = k * g->chunk, *x1 = min_size(g->ow, *x0 + g->chunk);
}

/* The kernel columns [kx0, kx1) that reach the input for some pixel whose tap 0 is at input
 * column a .. b (a <= b): column a + j < W and b + j >= 0 <=> j in [max(0, -b), min(kw, W -
 * a)); kx1 <= kx0 when none does. */
static void in_nchwc_columns(size_t *kx0, size_t *kx1, const in_nchwc_geom *g, ptrdiff_t a,
                             ptrdiff_t b)
{
    ptrdiff_t right = (ptrdiff_t)g->W - a;
    *kx0 = b < 0 ? (size_t)-b : 0;
    *kx1 = right <= 0 ? 0 : right < (ptrdiff_t)g->kw ? (size_t)right : g->kw;
}

/* ---- kernels ---- */

#define IN_ISA_TEMPLATE "nchwc_isa_template.h"
#include "isa_levels.h"

typedef void (*in_nchwc_task_fn)(const in_nchwc_geom *, float *, const float *, const float *,
                                 const float *, int, size_t);

/* [level][plain] */
static in_nchwc_task_fn task_fn(int isa, int plain)
{
    switch (isa) {
#if IN_CONVK_X86
    case IN_CONVK_AVX2: return plain ? task_plain_isa1 : task_blocked_isa1;
    case IN_CONVK_AVX512: return plain ? task_plain_isa2 : task_blocked_isa2;
#endif
    case IN_CONVK_PORTABLE512: return plain ? task_plain_isa3 : task_blocked_isa3;
    default: return plain ? task_plain_isa0 : task_blocked_isa0;
    }
}

/* The tasks handed out one at a time to whichever thread is free: each output value is
 * computed by one task in a fixed order, so the bits do not depend on the threads. */
void in_nchwc_forward_f32(const in_nchwc_conv *c, float *y, const float *x, const float *wp,
                          const float *bias, int relu)
{
    in_nchwc_geom g;
    in_nchwc_geometry(&g, c);
    in_nchwc_task_fn run = task_fn(c->isa, c->plain);
    IN_PRAGMA(omp parallel for schedule(dynamic, 1) num_threads(g.threads) if (g.threads > 1))
    for (size_t q = 0; q < g.tasks; ++q) run(&g, y, x, wp, bias, relu, q);
}
