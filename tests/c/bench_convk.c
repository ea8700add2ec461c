/* bench_convk.c: GFLOP/s of the convolution kernels (csrc/convk.c) on GoogLeNet's and Inception
 * v3's layers, per ISA path and thread count, against this machine's FMA peak measured in the
 * same run (independent FMA chains in registers, built the same way) and, when a BLAS is given,
 * against the im2col + BLAS sgemm path of csrc/conv.c (the package's previous default).
 * Medians of interleaved rounds (every configuration once per round): the machine is shared.
 *   tests/c/convk.sh bench [-r rounds] [-b 16,1] [-i avx2,portable] [-t 1,2] [-p fbxwp]
 *                          [-l layer-substring] [-B path/to/libopenblas.so] [-w d,w]
 * -w: d direct, w Winograd F(2x2, 3x3) forced (3x3 stride-1 layers, passes f, p, b and x: the
 * forward and dL/dx; path shown as <isa>+w); dL/dw runs the same either way.
 * FLOPs: 2*B*OC*oh*ow*C*kh*kw per pass (the backward counts dx and dw: twice that).
 * On one thread it also counts the CPU time of the thread: flops per CPU second against the FMA
 * loop's is the efficiency without the time other processes took the core (wall time on a
 * shared machine includes it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "conv.h"
#include "convk.h"
#include "convk_isa.h"
#include "gemm.h"
#include "nchwc.h"
#include "timing.h"

typedef struct {
    const char *name;
    size_t C, H, W, OC, kh, kw, sh, sw, ph, pw;
} layer;

static const layer layers[] = {
    {"g.conv1 7x7/2 3->64 @224", 3, 224, 224, 64, 7, 7, 2, 2, 3, 3},
    {"g.conv2 3x3 64->192 @56", 64, 56, 56, 192, 3, 3, 1, 1, 1, 1},
    {"g.3a 1x1 192->64 @28", 192, 28, 28, 64, 1, 1, 1, 1, 0, 0},
    {"g.3a 3x3 96->128 @28", 96, 28, 28, 128, 3, 3, 1, 1, 1, 1},
    {"g.3a 5x5 16->32 @28", 16, 28, 28, 32, 5, 5, 1, 1, 2, 2},
    {"g.4e 3x3 160->320 @14", 160, 14, 14, 320, 3, 3, 1, 1, 1, 1},
    {"g.4a 1x1 480->304 @14", 480, 14, 14, 304, 1, 1, 1, 1, 0, 0},
    {"g.4b 1x1 512->64 @14", 512, 14, 14, 64, 1, 1, 1, 1, 0, 0},
    {"g.5b 1x1 832->384 @7", 832, 7, 7, 384, 1, 1, 1, 1, 0, 0},
    {"g.5b 3x3 192->384 @7", 192, 7, 7, 384, 3, 3, 1, 1, 1, 1},
    {"v3.5b 5x5 48->64 @35", 48, 35, 35, 64, 5, 5, 1, 1, 2, 2},
    {"v3.6b 1x7 128->128 @17", 128, 17, 17, 128, 1, 7, 1, 1, 0, 3},
    {"v3.6e 1x7 192->192 @17", 192, 17, 17, 192, 1, 7, 1, 1, 0, 3},
    {"v3.6e 7x1 192->192 @17", 192, 17, 17, 192, 7, 1, 1, 1, 3, 0},
    {"v3.6a 3x3/2 288->384 @35", 288, 35, 35, 384, 3, 3, 2, 2, 0, 0},
    {"v3.7b 3x3 448->384 @8", 448, 8, 8, 384, 3, 3, 1, 1, 1, 1},
    {"v3.2a 3x3 32->32 @149 p0", 32, 149, 149, 32, 3, 3, 1, 1, 0, 0},
    {"v3.2b 3x3 32->64 @147", 32, 147, 147, 64, 3, 3, 1, 1, 1, 1},
    {"v3.4a 3x3 80->192 @73 p0", 80, 73, 73, 192, 3, 3, 1, 1, 0, 0},
    {"v3.5b 3x3 64->96 @35", 64, 35, 35, 96, 3, 3, 1, 1, 1, 1},
    {"v3.5b 3x3 96->96 @35", 96, 35, 35, 96, 3, 3, 1, 1, 1, 1},
};
#define NLAYERS (sizeof layers / sizeof layers[0])

/* CPU seconds the calling thread ran */
static double cycles(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* ---- FMA peak: 12 independent chains acc = acc * m + c per vector, per ISA ---- */
#define PEAK_BODY(vbytes)                                                                      \
    typedef float v __attribute__((vector_size(vbytes)));                                      \
    v acc[12], m = seed - (v){0}, c = 1e-7f - (v){0};                                          \
    for (int i = 0; i < 12; ++i) acc[i] = (float)i - (v){0};                                   \
    for (long it = 0; it < iters; ++it)                                                        \
        for (int i = 0; i < 12; ++i) acc[i] = acc[i] * m + c;                                  \
    float s = 0;                                                                               \
    for (int i = 0; i < 12; ++i) s += acc[i][0];                                               \
    return s;

IN_CONVK_CONTRACT static float peak_portable(long iters, float seed) { PEAK_BODY(16) }
#if IN_CONVK_X86
IN_CONVK_ISA1_TARGET IN_CONVK_CONTRACT static float peak_avx2(long iters, float seed) { PEAK_BODY(32) }
IN_CONVK_ISA2_TARGET IN_CONVK_CONTRACT static float peak_avx512(long iters, float seed) { PEAK_BODY(64) }
#endif

/* GFLOP/s of the peak loop of `level` on `threads` threads (each runs the loop), median of 5 */
static double fma_peak(int level, int threads, double *per_cycle)
{
    long iters = 20000000;
    int lanes = level == IN_CONVK_AVX512 ? 16 : level == IN_CONVK_AVX2 ? 8 : 4;
    double t[5], cyc[5], sink = 0;
    for (int r = 0; r < 5; ++r) {
        double t0 = now(), c0 = cycles();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        {
            float seed = 0.999999f;
#if IN_CONVK_X86
            if (level == IN_CONVK_AVX512) sink += peak_avx512(iters, seed);
            else if (level == IN_CONVK_AVX2) sink += peak_avx2(iters, seed);
            else
#endif
                sink += peak_portable(iters, seed);
        }
        t[r] = now() - t0, cyc[r] = cycles() - c0;
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    qsort(cyc, 5, sizeof cyc[0], cmp_double);
    if (sink == 12345) puts("");
    /* per iteration: 12 vectors of `lanes` multiply-adds, 2 flops each */
    double fl = 2.0 * 12 * lanes * iters * threads;
    *per_cycle = threads == 1 ? fl / cyc[2] / 1e9 : 0;
    return fl / t[2] / 1e9;
}

/* ---- the baseline: csrc/conv.c (im2col + BLAS sgemm), blocked as inception_native does ---- */
static int have_blas = 0;

static int load_blas(const char *path)
{
    void *h = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : 0;
    if (!h) return 0;
    in_sgemm_fn s = (in_sgemm_fn)dlsym(h, "scipy_sgemm_");
    in_dgemm_fn d = (in_dgemm_fn)dlsym(h, "scipy_dgemm_");
    void (*threads)(int) = (void (*)(int))dlsym(h, "scipy_openblas_set_num_threads");
    if (!s) s = (in_sgemm_fn)dlsym(h, "sgemm_"), d = (in_dgemm_fn)dlsym(h, "dgemm_");
    if (!threads) threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (!s || !d) return 0;
    if (threads) threads(1); /* conv.c threads its blocks itself, with a 1-thread BLAS */
    in_gemm_set_blas(s, d);
    return 1;
}

/* ---- one measured configuration ---- */
/* f: forward with weights packed beforehand; p: forward packing them in the call (as the Python
 * wrapper does); b: backward (dx, dw, dbias); x: dx alone; w: dw and dbias alone; n: the NCHWc
 * direct forward (csrc/nchwc.h: blocked x and y, plain x for a 3-channel layer, weights packed
 * beforehand) */
static const char PASSES[] = "fbxwpn";

typedef struct {
    const layer *L;
    size_t B;
    int level, threads, pass; /* level -1: the im2col + BLAS baseline; pass: see PASSES */
    int wino;                 /* IN_CONVK_WINO_OFF or _ALWAYS */
    double t[64], cyc[64];
} config;

typedef struct {
    float *x, *w, *wp, *y, *dy, *dx, *dw, *db, *work;
} buffers;

static void run(config *c, buffers *b, int round)
{
    const layer *L = c->L;
    size_t B = c->B, oh = (L->H + 2 * L->ph - L->kh) / L->sh + 1;
    size_t ow = (L->W + 2 * L->pw - L->kw) / L->sw + 1;
    double t0 = now(), c0 = cycles();
    if (c->level >= 0) {
        in_convk_plan p;
        in_convk_set_isa(c->level);
        in_convk_set_winograd(c->wino);
        in_convk_plan_init(&p, sizeof(float), B, L->C, L->H, L->W, L->OC, L->kh, L->kw, L->sh,
                           L->sw, L->ph, L->pw, c->threads);
        if (c->pass == 5) {
            size_t blk = in_nchwc_block(c->level);
            int plain = L->C % blk != 0;
            in_nchwc_conv nc = {B, L->C, L->H, L->W, L->OC, L->kh, L->kw, L->sh, L->sw, L->ph,
                                L->pw, oh, ow, L->C * L->H * L->W, L->OC * oh * ow, plain,
                                c->level, c->threads};
            in_nchwc_pack_weights_f32(b->wp, b->w, L->OC, L->C, L->kh, L->kw, blk, plain);
            t0 = now(), c0 = cycles();
            in_nchwc_forward_f32(&nc, b->y, b->x, b->wp, b->db, 1);
        } else if (c->pass == 0 || c->pass == 4) {
            in_convk_plan_pack_weights_f32(&p, b->wp, b->w);
            t0 = now(), c0 = cycles(); /* pass f: packing per weight update, not timed */
            in_convk_forward_f32(&p, b->y, L->OC * oh * ow, b->work, b->x, L->C * L->H * L->W,
                                 b->w, c->pass == 0 ? b->wp : 0, 0, b->db, 1, 0);
        } else {
            in_convk_backward_f32(&p, c->pass == 3 ? 0 : b->dx, c->pass == 2 ? 0 : b->dw,
                                  c->pass == 2 ? 0 : b->db, b->work, b->dy, b->y, L->OC * oh * ow, b->x,
                                  L->C * L->H * L->W, b->w, 0);
        }
    } else {
        in_conv_plan p = in_conv2d_plan(B, L->C, L->H, L->W, L->OC, L->kh, L->kw, L->sh, L->sw,
                                        L->ph, L->pw, c->threads, IN_CONV_MIN_COLUMNS,
                                        IN_CONV_BLOCK_VALUES);
        if (c->pass == 0)
            in_conv2d_forward_f32(&p, b->y, b->work, b->x, b->w, b->db);
        else
            in_conv2d_backward_f32(&p, c->pass == 3 ? 0 : b->dx, b->dw, b->db, b->work, b->dy,
                                   b->x, b->w);
    }
    c->t[round] = now() - t0, c->cyc[round] = cycles() - c0;
}

static double flops(const config *c)
{
    const layer *L = c->L;
    size_t oh = (L->H + 2 * L->ph - L->kh) / L->sh + 1, ow = (L->W + 2 * L->pw - L->kw) / L->sw + 1;
    return 2.0 * c->B * L->OC * oh * ow * L->C * L->kh * L->kw * (c->pass == 1 ? 2 : 1);
}

static int in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 5;
    const char *batches = "16,1", *isas = "avx512,avx2,portable,im2col", *threads = "1,2";
    const char *passes = "fb", *filter = "", *blas = getenv("INCEPTION_BLAS"), *winos = "d";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-r")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-b")) batches = argv[i + 1];
        else if (!strcmp(argv[i], "-i")) isas = argv[i + 1];
        else if (!strcmp(argv[i], "-t")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "-p")) passes = argv[i + 1];
        else if (!strcmp(argv[i], "-l")) filter = argv[i + 1];
        else if (!strcmp(argv[i], "-B")) blas = argv[i + 1];
        else if (!strcmp(argv[i], "-w")) winos = argv[i + 1];
    }
    rounds = rounds < 1 ? 1 : rounds > 64 ? 64 : rounds;
    have_blas = in_list(isas, "im2col") && load_blas(blas);

    double peak[IN_CONVK_LEVELS][3] = {{0}}, peak_cycle[IN_CONVK_LEVELS] = {0}, pc;
    printf("FMA peak loop, float32 GFLOP/s (median of 5) [GFLOP per CPU second]:\n");
    for (int l = 0; l < 3; ++l)
        for (int t = 1; t <= 2; ++t)
            if (in_convk_isa_supported(l) && in_list(threads, t == 1 ? "1" : "2")) {
                peak[l][t] = fma_peak(l, t, &pc);
                if (t == 1) peak_cycle[l] = pc;
                printf("  %-9s %d thread%s %7.1f", in_convk_level_name(l), t, t > 1 ? "s" : " ",
                       peak[l][t]);
                if (t == 1 && pc > 0) printf("  [%.1f]", pc);
                printf("\n");
            }
    int best = in_convk_isa_supported(IN_CONVK_AVX512) ? IN_CONVK_AVX512
               : in_convk_isa_supported(IN_CONVK_AVX2) ? IN_CONVK_AVX2 : IN_CONVK_PORTABLE;

    static config cs[4096];
    size_t n = 0;
    for (size_t li = 0; li < NLAYERS; ++li) {
        if (!strstr(layers[li].name, filter)) continue;
        for (const char *bp = batches; *bp; bp += strcspn(bp, ",") + (bp[strcspn(bp, ",")] != 0)) {
            size_t B = (size_t)atol(bp);
            for (int pass = 0; pass < 6; ++pass) {
                if (!strchr(passes, PASSES[pass])) continue;
                for (int level = -1; level < 3; ++level) {
                    if (level < 0 ? !have_blas || pass >= 2
                                  : !in_convk_isa_supported(level) ||
                                        !in_list(isas, in_convk_level_name(level)))
                        continue;
                    const layer *L = &layers[li];
                    int can_wino = level >= 0 && pass != 3 && pass != 5 && L->kh == 3
                                   && L->kw == 3 && L->sh == 1 && L->sw == 1;
                    for (int wi = 0; wi < 2; ++wi) {
                        if (!in_list(winos, wi ? "w" : "d") || (wi && !can_wino)) continue;
                        for (int t = 1; t <= 2; ++t)
                            if (in_list(threads, t == 1 ? "1" : "2"))
                                cs[n++] = (config){L, B, level, t, pass,
                                                   wi ? IN_CONVK_WINO_ALWAYS : IN_CONVK_WINO_OFF,
                                                   {0}, {0}};
                    }
                }
            }
        }
    }
    /* buffers for the largest layer and batch */
    size_t mx = 0, mw = 0, my = 0, mwork = 0;
    for (size_t i = 0; i < n; ++i) {
        const layer *L = cs[i].L;
        size_t B = cs[i].B, oh = (L->H + 2 * L->ph - L->kh) / L->sh + 1;
        size_t ow = (L->W + 2 * L->pw - L->kw) / L->sw + 1, K = L->C * L->kh * L->kw;
        size_t nx = B * L->C * L->H * L->W, nw = L->OC * K, ny = B * L->OC * oh * ow;
        in_convk_set_winograd(cs[i].wino);
        size_t wk = in_convk_work_size_f32(B, L->C, L->H, L->W, L->OC, L->kh, L->kw, L->sh, L->sw,
                                           L->ph, L->pw, 2);
        size_t base = in_conv2d_plan(B, L->C, L->H, L->W, L->OC, L->kh, L->kw, L->sh, L->sw,
                                     L->ph, L->pw, 2, IN_CONV_MIN_COLUMNS, IN_CONV_BLOCK_VALUES)
                          .work;
        mx = nx > mx ? nx : mx, mw = nw > mw ? nw : mw, my = ny > my ? ny : my;
        mwork = wk > mwork ? wk : mwork, mwork = base > mwork ? base : mwork;
    }
    buffers b;
    size_t sizes[] = {mx, mw, 2 * mw + 16 * 12 * 4096, my, my, mx, mw, 4096, mwork};
    float **ptrs[] = {&b.x, &b.w, &b.wp, &b.y, &b.dy, &b.dx, &b.dw, &b.db, &b.work};
    unsigned seed = 1;
    for (int i = 0; i < 9; ++i) {
        *ptrs[i] = malloc(sizes[i] * sizeof(float));
        for (size_t k = 0; k < sizes[i]; ++k) {
            seed = seed * 1103515245u + 12345u;
            (*ptrs[i])[k] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        }
    }
    for (size_t i = 0; i < n; ++i) run(&cs[i], &b, 0); /* warm-up */
    for (int r = 0; r < rounds; ++r)
        for (size_t i = 0; i < n; ++i) run(&cs[i], &b, r);
    printf("\n%-26s %3s %-4s %-9s %2s %9s %8s %7s %7s %8s %6s\n", "layer", "B", "pass", "path", "T",
           "ms", "GFLOP/s", "%peak", "spread", "%cpu", "best");
    for (size_t i = 0; i < n; ++i) {
        config *c = &cs[i];
        qsort(c->t, (size_t)rounds, sizeof c->t[0], cmp_double);
        qsort(c->cyc, (size_t)rounds, sizeof c->cyc[0], cmp_double);
        double med = c->t[rounds / 2], g = flops(c) / med / 1e9;
        double pk = peak[best][c->threads], cyc = c->cyc[rounds / 2];
        char path[32];
        snprintf(path, sizeof path, "%s%s", c->level < 0 ? "im2col" : in_convk_level_name(c->level),
                 c->wino ? "+w" : "");
        printf("%-26s %3zu %-4s %-9s %2d %9.3f %8.1f %6.1f%% %6.1f%%", c->L->name, c->B,
               (const char *[]){"fwd", "bwd", "dx", "dw", "fwd+", "nchw"}[c->pass], path,
               c->threads, med * 1e3, g, pk > 0 ? 100 * g / pk : 0,
               100 * (c->t[rounds - 1] - c->t[0]) / med);
        if (c->threads == 1 && cyc > 0 && peak_cycle[best] > 0)
            printf(" %7.1f%% %5.1f%%", 100 * flops(c) / cyc / 1e9 / peak_cycle[best],
                   100 * flops(c) / c->cyc[0] / 1e9 / peak_cycle[best]);
        printf("\n");
    }
    printf("\n%%peak: GFLOP/s against the %s FMA loop's at the same thread count; spread: (max -"
           " min) / median over %d rounds; %%cpu (1 thread): GFLOP per CPU second of the thread "
           "against the FMA loop's (median; best: of the round with the least CPU time).\n", in_convk_level_name(best), rounds);
    return 0;
}
