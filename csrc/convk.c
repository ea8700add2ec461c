/* convk.c: the ISA choice and the plan of the convolution kernels (convk.h), then the kernels
 * themselves, float (_f32) and double (_f64), from convk_template.h, each compiled once per ISA
 * level from convk_isa_template.h. */
#define _GNU_SOURCE /* sysconf's cache sizes */
#include "convk.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "convk_isa.h"

/* Blocking budgets (bytes), for 32 KB of L1 and 512 KB of L2 per core or more:
 *   KC (kc_bytes below): a packed col panel (kc x NR) stays in L1 while the microkernel
 *       sweeps the rows;
 *   MC: the packed weights it sweeps (mc x kc) stay in L2;
 *   NC: panels a task packs (kc x nc, nc = NC_PANELS * NR) stay in L2 beside them;
 * dL/dw, the same GEMM with pixels as its sum, uses them alike: a block of pixels as KC (its
 * col^T panel in L1), the packed dY rows as MC (in L2). */
#define MC_BYTES 196608
#define NC_PANELS 8
#define IN_CONVK_KC_MAX 1024     /* taps of a K block or dL/dw tap block (offsets on the stack) */
#define IN_CONVK_MAX_RUNS 256    /* runs of pixels in a panel or dL/dw pixel block */
#define IN_CONVK_ALIGN 16        /* elements: every buffer starts on 64 bytes */
/* Flops a thread must have for the plan to use it: waking an OpenMP thread costs microseconds
 * on an idle machine, a scheduler time slice on a busy one; 4 MFLOP is about 50 us. (At 16
 * MFLOP, 17 of GoogLeNet's 39 frozen convolutions at batch 1 ran on one thread of two; 4: a
 * batch-1 forward on 2 threads 27.5 -> 24.7 ms, medians of 4 interleaved processes.) */
#define THREAD_FLOPS 4e6
/* Winograd: V of a C block (16 x kc x nt) and M (16 x mc x nt) stay in L2 together */
#define WINO_V_BYTES 196608
#define WINO_M_BYTES 393216
#define WINO_MIN_C 32
#define WINO_MIN_OC 32
#define WINO_MIN_TILES 32
/* Tile blocks up to which U counts as streamed from memory (read once or twice a call, batch 1
 * at 14x14) and its task prefetches it; batch 8 at 14x14 has 13 */
#define WINO_STREAM_BLOCKS 4
/* The direct forward takes the taller MR x NV tile from this many output channels on, GMR x
 * GNV below and for dL/dx (see gemm_blocking) */
#define TALL_TILE_M_MIN 96

typedef struct {
    const char *name;
    size_t vbytes, mr, nv, gmr, gnv; /* see convk_isa.h */
} isa_info;
static const isa_info isa_desc[IN_CONVK_LEVELS] = {{IN_CONVK_ISA0_DESC}, {IN_CONVK_ISA1_DESC},
                               {IN_CONVK_ISA2_DESC}, {IN_CONVK_ISA3_DESC}};

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t up(size_t a, size_t m) { return cdiv(a, m) * m; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* A core's L1 data cache in bytes: INCEPTION_NATIVE_L1D_KB's (tests), else the system's, else
 * 32 KB */
static size_t l1d_bytes(void)
{
    const char *env = getenv("INCEPTION_NATIVE_L1D_KB");
    long kb = env ? atol(env) : 0, bytes = 0;
#ifdef _SC_LEVEL1_DCACHE_SIZE
    bytes = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#endif
    return kb > 0 ? (size_t)kb * 1024 : bytes > 0 ? (size_t)bytes : 32768;
}

/* KC: a 32 KB col panel where L1 holds 48 KB or more (Zen 5: the C bench's layers 1.02-1.06x
 * against 16 KB, one thread; fewer K blocks add their partial sums fewer times), else 16 KB
 * (32 KB would not leave the weights and sums room in a 32 KB L1). Read when a plan is made. */
static size_t kc_bytes(void)
{
    return l1d_bytes() >= 49152 ? 32768 : 16384;
}

/* ---- ISA ---- */

int in_convk_isa_supported(int level)
{
    if (level == IN_CONVK_PORTABLE || level == IN_CONVK_PORTABLE512) return 1;
#if IN_CONVK_X86
    __builtin_cpu_init();
    int fma = __builtin_cpu_supports("fma");
    if (level == IN_CONVK_AVX2) return fma && __builtin_cpu_supports("avx2");
    if (level == IN_CONVK_AVX512)
        return fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
    return 0;
}

static int isa_level = -1;

/* the best level, or INCEPTION_NATIVE_ISA's when the CPU runs it */
static int isa_initial(void)
{
    const char *env = getenv("INCEPTION_NATIVE_ISA");
    for (int l = 0; env && l < IN_CONVK_LEVELS; ++l)
        if (strcmp(env, isa_desc[l].name) == 0 && in_convk_isa_supported(l)) return l;
    if (in_convk_isa_supported(IN_CONVK_AVX512)) return IN_CONVK_AVX512;
    if (in_convk_isa_supported(IN_CONVK_AVX2)) return IN_CONVK_AVX2;
    return IN_CONVK_PORTABLE;
}

int in_convk_get_isa(void)
{
    if (isa_level < 0) isa_level = isa_initial();
    return isa_level;
}

int in_convk_set_isa(int level)
{
    if (level < 0 || level >= IN_CONVK_LEVELS || !in_convk_isa_supported(level)) return -1;
    isa_level = level;
    return 0;
}

const char *in_convk_level_name(int level)
{
    return level >= 0 && level < IN_CONVK_LEVELS ? isa_desc[level].name : "unknown";
}

const char *in_convk_isa_name(void) { return in_convk_level_name(in_convk_get_isa()); }

/* ---- Winograd switch ---- */

static int wino_mode = -1;

static const char *const wino_names[] = {"off", "auto", "always"};

/* INCEPTION_NATIVE_WINOGRAD: "0" or "off" turns it off, "always" forces it, else AUTO */
static int wino_initial(void)
{
    const char *env = getenv("INCEPTION_NATIVE_WINOGRAD");
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0)) return IN_CONVK_WINO_OFF;
    if (env && strcmp(env, "always") == 0) return IN_CONVK_WINO_ALWAYS;
    return IN_CONVK_WINO_AUTO;
}

int in_convk_get_winograd(void)
{
    if (wino_mode < 0) wino_mode = wino_initial();
    return wino_mode;
}

int in_convk_set_winograd(int mode)
{
    if (mode < IN_CONVK_WINO_OFF || mode > IN_CONVK_WINO_ALWAYS) return -1;
    wino_mode = mode;
    return 0;
}

const char *in_convk_winograd_name(int mode)
{
    return mode >= IN_CONVK_WINO_OFF && mode <= IN_CONVK_WINO_ALWAYS ? wino_names[mode] : "unknown";
}

/* When Winograd pays (AUTO): its transforms cost about 32 additions per input value (each C
 * block) and 16 per output value, against 9*OC (input) and 9*C (output) multiply-adds saved
 * of 16, so both channel counts must be large enough. Measured (float32, avx2, 1 thread,
 * 28x28, 14x14 and 7x7 maps): 0.64-0.96x with C or OC <= 16, 1.0-1.2x at 24-32, 1.1-1.3x at
 * 48-64, 1.3-1.7x for GoogLeNet's and v3's layers; dL/dx (the rule is symmetric in C and OC,
 * whose roles it swaps) 1.1-1.2x for v3's 32-channel and 8x8 layers, 1.4-1.6x for the others
 * (tests/c/convk.sh bench -p x -w d,w). Its GEMMs' columns are the 2x2 tiles (B*ceil(oh/2)*
 * ceil(ow/2)): fewer than AVX-512's panel of 32 leave lanes empty (avx512, 1 thread, batch 1:
 * v3 7b 448->384 @8, 16 tiles, 1.61 ms against 1.00 ms direct; GoogLeNet 4e @14, 49 tiles,
 * 0.78 against 1.05 ms). Shape only: the packed weights depend on it and are shared by every
 * ISA, thread count and (ConvKPlan.pack) both real types. */
int in_convk_wino_pays(size_t C, size_t OC, size_t tiles)
{
    return C >= WINO_MIN_C && OC >= WINO_MIN_OC && tiles >= WINO_MIN_TILES;
}

/* ---- plan ---- */

size_t in_convk_packed_size(size_t OC, size_t C, size_t kh, size_t kw)
{
    return up(OC, IN_CONVK_PAD) * C * kh * kw;
}

size_t in_convk_plan_packed_size(const in_convk_plan *p)
{
    return p->wino ? 16 * up(p->OC, IN_CONVK_PAD) * p->C
                   : in_convk_packed_size(p->OC, p->C, p->kh, p->kw);
}

/* Winograd's tiles and blocking for g's convolution (its M, K, maps and padding set; see
 * in_convk_wino) of `images` images: kc so that a V panel (kc x nr) stays in L1 (the direct
 * path's K block); nt so that M for all M rows stays in L2 (or one panel and the rows in
 * chunks) and V as well; then smaller tasks until each thread has 2 or more. kc depends on K,
 * the ISA and the L1 size only. Returns the work it needs past `at` (per-thread buffers, then
 * the packed U). */
static size_t wino_blocking(in_convk_wino *g, const in_convk_plan *p, size_t images, size_t at)
{
    size_t T = (size_t)p->threads, A = IN_CONVK_ALIGN, rs = p->real_size, line = 16 * rs;
    size_t mr = isa_desc[p->isa].mr;
    g->th = cdiv(g->oh, 2), g->tw = cdiv(g->ow, 2), g->tiles = images * g->th * g->tw;
    g->mr = mr, g->nr = isa_desc[p->isa].nv * isa_desc[p->isa].vbytes / rs;
    g->c_blocks = cdiv(g->K, max_size(1, kc_bytes() / (g->nr * rs)));
    g->kc = cdiv(g->K, g->c_blocks);
    size_t mrows = up(g->M, mr);
    size_t panels = min_size(WINO_V_BYTES / (line * g->kc * g->nr),
                             WINO_M_BYTES / (line * mrows * g->nr));
    g->nt = min_size(min_size(max_size(1, panels) * g->nr, IN_CONVK_WINO_NT_MAX),
                     up(g->tiles, g->nr));
    size_t mc_max = max_size(mr, WINO_M_BYTES / (line * g->nt) / mr * mr);
    g->m_chunks = cdiv(g->M, mc_max);
    g->mc = up(cdiv(g->M, g->m_chunks), mr);
    g->n_blocks = cdiv(g->tiles, g->nt);
    while (T > 1 && g->n_blocks * g->m_chunks < 2 * T && g->nt > g->nr) {
        g->nt = up(g->nt / 2, g->nr);
        g->n_blocks = cdiv(g->tiles, g->nt);
    }
    while (T > 1 && g->n_blocks * g->m_chunks < 2 * T && g->mc > mr) {
        g->mc = up(g->mc / 2, mr);
        g->m_chunks = cdiv(g->M, g->mc);
    }
    g->stream_u = g->n_blocks <= WINO_STREAM_BLOCKS;
    g->vt = up(g->kc * g->nt, A) + A, g->mt = up(g->mc * g->nt, A) + A;
    g->vsize = 16 * g->vt;
    g->thread_stride = g->vsize + 16 * g->mt;
    g->threads_at = at;
    g->upack_at = at + T * g->thread_stride;
    return g->upack_at + 16 * up(g->M, IN_CONVK_PAD) * g->K;
}

/* The GEMM's source: input (B, C, Hi, Wi) placed at (top, left) of a Hs x Ws map; the
 * convolution over it has kernel kh x kw, strides sh x sw, no padding. */
static void gemm_source(in_convk_gemm *g, size_t M, size_t B, size_t C, size_t Hi, size_t Wi,
                        ptrdiff_t top, ptrdiff_t left, size_t Hs, size_t Ws, size_t kh,
                        size_t kw, size_t sh, size_t sw)
{
    g->M = M, g->C = C, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw;
    g->Hi = Hi, g->Wi = Wi, g->top = top, g->left = left;
    g->Hs = Hs, g->Ws = Ws;
    g->oh = in_out_size(Hs, kh, sh, 0);
    g->ow = in_out_size(Ws, kw, sw, 0);
    g->K = C * kh * kw;
    g->N = B * g->oh * g->ow;
    g->direct = top == 0 && left == 0 && sw == 1 && Hs == Hi && Ws == Wi;
    g->Wq = cdiv(Ws, sw);
    g->rowstride = sw * g->Wq;
    g->plane = Hs * g->rowstride;
    g->image = C * g->plane;
    g->src_size = B * g->image;
}

/* A block size for n items, at most nc and a multiple of unit (a panel, or an output row for
 * row panels), such that the tasks (chunks per block times the blocks) come in a multiple of
 * the threads, if one does with at most twice the blocks, else nc: the last tasks go out one at
 * a time, and an odd count on 2 threads leaves one idle for a task's time. Blocks of whole
 * panels keep each pixel's sums as they were (only the map's last panel is partial). With the
 * rows split first below, GoogLeNet's frozen forward at batch 1 on 2 threads took 16.7 ms
 * against 17.3 (medians of 6 interleaved processes; the rows alone 17.0; batch 16 within the
 * noise). */
static size_t balanced_blocks(size_t n, size_t nc, size_t unit, size_t chunks, size_t threads)
{
    size_t blocks = cdiv(n, nc);
    for (size_t want = blocks; threads > 1 && want <= 2 * blocks; ++want) {
        size_t size = up(cdiv(n, want), unit);
        if (cdiv(n, size) * chunks % threads == 0) return size;
    }
    return nc;
}

/* The tile (tall: MR x NV, else GMR x GNV), then K blocks (independent of the thread count,
 * so results are too), M chunks and N blocks: tasks = n_blocks * m_chunks, at least 4 per
 * thread where the map allows. On AVX-512 (its two tiles differ; AVX2's do not) the forward
 * takes the tall 12 x 32 tile from TALL_TILE_M_MIN output channels on: v3 7b 3x3 1.29x at batch
 * 1, 1.0-1.05x at batch 16 (4e 3x3, 5b 1x1, v3 7b); 6 x 64 below, where 12 rows pad M more (3a
 * 1x1, 64 channels: 1.07x with 6 x 64). dL/dx keeps 6 x 64: 12 x 32 ranged 0.91x (3a 1x1, K =
 * 64) to 1.10x (avx512, 1 thread, tests/c/convk.sh bench -p fx). */
static void gemm_blocking(in_convk_gemm *g, const in_convk_plan *p, int tall)
{
    const isa_info *isa = &isa_desc[p->isa];
    size_t rs = p->real_size, mr = tall ? isa->mr : isa->gmr, nv = tall ? isa->nv : isa->gnv;
    int threads = p->threads;
    g->mr = mr;
    g->nr = nv * isa->vbytes / rs;
    /* Row panels where output rows are whole vectors, at least a panel, and packing would copy
     * rows far apart (any kernel but a 1x1 reading its contiguous source): every tap of a
     * panel is then one run of the source, read in place (GoogLeNet's conv1, rows of 112) */
    g->row_panels = g->ow % (isa->vbytes / rs) == 0 && g->ow >= g->nr
                    && !(g->kh * g->kw == 1 && g->sw == 1 && g->sh * g->rowstride == g->ow);
    size_t unit = g->row_panels ? g->ow : g->nr;
    /* K blocks sized for the wide tile's panels whichever tile runs: a K block's sum is added
     * to the blocks' before it, so the blocks fix the bits, and a network's convolutions give
     * the same bits whether its 1x1s run stacked (tall) or apart */
    size_t kc_max = min_size(IN_CONVK_KC_MAX, max_size(1, kc_bytes() / (isa->gnv * isa->vbytes)));
    g->k_blocks = cdiv(g->K, kc_max);
    g->kc = cdiv(g->K, g->k_blocks);
    size_t mc_max = max_size(mr, MC_BYTES / (g->kc * rs) / mr * mr);
    g->m_chunks = cdiv(g->M, mc_max);
    g->mc = up(cdiv(g->M, g->m_chunks), mr);
    g->nc = min_size(up(NC_PANELS * g->nr, unit), up(g->N, unit));
    g->n_blocks = cdiv(g->N, g->nc);
    /* more weights than pixels (batch 1's 14x14 and 7x7 maps): the threads split the rows
     * first, so that each reads its share of the weights (cold, from L3 or memory), not all
     * (4a 1x1 at batch 1 on 2 threads: 1.25-1.34x, tests/c/convk.sh bench -p f -b 1 -t 2) */
    while (threads > 1 && g->M > g->N && g->m_chunks < (size_t)threads && g->mc > mr) {
        g->mc = up(g->mc / 2, mr);
        g->m_chunks = cdiv(g->M, g->mc);
    }
    while (threads > 1 && g->n_blocks * g->m_chunks < 4 * (size_t)threads && g->nc > unit) {
        g->nc = up(g->nc / 2, unit);
        g->n_blocks = cdiv(g->N, g->nc);
    }
    while (threads > 1 && g->n_blocks * g->m_chunks < 2 * (size_t)threads && g->mc > mr) {
        g->mc = up(g->mc / 2, mr);
        g->m_chunks = cdiv(g->M, g->mc);
    }
    g->nc = balanced_blocks(g->N, g->nc, unit, g->m_chunks, (size_t)threads);
    g->n_blocks = cdiv(g->N, g->nc);
    g->bpack = g->row_panels ? 0 : g->kc * g->nc;
    g->cpart = g->k_blocks > 1 ? g->mc * g->nc : 0;
    g->thread_stride = up(g->bpack, IN_CONVK_ALIGN) + up(g->cpart, IN_CONVK_ALIGN);
}

/* Images a pass whose prepared source takes `bytes` an image: within IN_CONVK_PASS_BYTES, at
 * least one, at most the batch (the whole batch when there is no copy) */
static size_t pass_images(size_t B, size_t bytes)
{
    return bytes ? min_size(B, max_size(1, IN_CONVK_PASS_BYTES / bytes)) : B;
}

/* The forward's GEMM (dL/dw's too) for a pass of `images` images of plan p (its sizes, ISA
 * and threads set). */
static void in_convk_fwd_pass(in_convk_gemm *g, const in_convk_plan *p, size_t images)
{
    gemm_source(g, p->OC, images, p->C, p->H, p->W, (ptrdiff_t)p->ph, (ptrdiff_t)p->pw,
                p->H + 2 * p->ph, p->W + 2 * p->pw, p->kh, p->kw, p->sh, p->sw);
    gemm_blocking(g, p, g->M >= TALL_TILE_M_MIN);
}

/* The padded copy P that Winograd's dL/dx reads, for `images` images: dY (B, OC, oh, ow) at
 * (2 - ph, 2 - pw) of a (2th + 2) x (2tw + 2) map, th x tw dx's tiles, so that every tile's 4x4
 * patch lies inside P (see the top and in_convk_wino). */
static void in_convk_wino_dx_source(in_convk_gemm *g, const in_convk_plan *p, size_t images)
{
    gemm_source(g, p->C, images, p->OC, p->oh, p->ow, 2 - (ptrdiff_t)p->ph,
                2 - (ptrdiff_t)p->pw, 2 * cdiv(p->H, 2) + 2, 2 * cdiv(p->W, 2) + 2, 3, 3, 1, 1);
}

/* dL/dx by phases, a phase at a time: [packed w'] [P(dY)] [per thread: panels, sums], sized
 * for the largest phase; sets dx_images and the offsets, returns the work it needs. */
static size_t dx_phases_work(in_convk_plan *p)
{
    size_t image_P = 0, A = IN_CONVK_ALIGN; /* the largest phase's P(dY) of one image */
    for (size_t ry = 0; ry < p->sh; ++ry)
        for (size_t rx = 0; rx < p->sw; ++rx) {
            in_convk_gemm g;
            if (in_convk_dx_phase(&g, p, ry, rx, 1)) image_P = max_size(image_P, g.src_size);
        }
    p->dx_images = pass_images(p->B, image_P * p->real_size);
    size_t wpack = 0, src = 0, rest = p->B % p->dx_images; /* the largest phase's, either pass */
    for (size_t ry = 0; ry < p->sh; ++ry)
        for (size_t rx = 0; rx < p->sw; ++rx)
            for (size_t images = p->dx_images; images; images = images == rest ? 0 : rest) {
                in_convk_gemm g;
                if (!in_convk_dx_phase(&g, p, ry, rx, images)) break;
                wpack = max_size(wpack, up(g.M, IN_CONVK_PAD) * g.K);
                src = max_size(src, g.src_size);
                p->dx_stride = max_size(p->dx_stride, g.thread_stride);
            }
    p->dx_src_at = up(wpack, A);
    p->dx_threads_at = p->dx_src_at + up(src, A);
    return p->dx_threads_at + (size_t)p->threads * p->dx_stride;
}

void in_convk_plan_init(in_convk_plan *p, size_t real_size, size_t B, size_t C, size_t H,
                        size_t W, size_t OC, size_t kh, size_t kw, size_t sh, size_t sw,
                        size_t ph, size_t pw, int threads)
{
    memset(p, 0, sizeof *p);
    if (kh == H && kw == W && ph == 0 && pw == 0) {
        /* one output pixel whose kernel covers the whole input (an auxiliary classifier's 5x5
         * on a 5x5 map): the 1x1 convolution of C*kh*kw channels of 1x1 images, the same
         * memory; dL/dx as the 1x1's w^T dY, not by phases over dY padded by kh - 1 (kh*kw
         * times the work, on zeros) */
        C *= kh * kw;
        H = W = kh = kw = sh = sw = 1;
    }
    p->B = B, p->C = C, p->H = H, p->W = W, p->OC = OC, p->kh = kh, p->kw = kw;
    p->sh = sh, p->sw = sw, p->ph = ph, p->pw = pw;
    p->oh = in_out_size(H, kh, sh, ph);
    p->ow = in_out_size(W, kw, sw, pw);
    p->K = C * kh * kw;
    p->isa = in_convk_get_isa();
    double flops = 2.0 * (double)B * (double)OC * (double)(p->oh * p->ow) * (double)p->K;
    p->threads = (int)max_size(1, min_size((size_t)(threads < 1 ? 1 : threads),
                                           (size_t)(flops / THREAD_FLOPS)));
    p->real_size = real_size;
    size_t mr = isa_desc[p->isa].mr, rs = real_size, T = (size_t)p->threads, A = IN_CONVK_ALIGN;

    /* forward: y (OC, N) = w (OC, K) col(x), x zero-padded by (ph, pw), images at a time */
    in_convk_gemm one, last;
    in_convk_fwd_pass(&one, p, 1);
    p->images = one.direct ? B : pass_images(B, one.src_size * rs);
    in_convk_fwd_pass(&p->fwd, p, p->images);
    in_convk_fwd_pass(&last, p, B % p->images ? B % p->images : p->images);
    p->fwd_stride = max_size(p->fwd.thread_stride, last.thread_stride);

    /* dL/dw: dw (OC, K) = dY (OC, N) col^T (N, K); tasks of dmc channels x dnc taps x one of
     * dw_pixel_groups ranges of a pass's pixels, each summing over its pixels dkc at a time;
     * the groups' sums are added in order at the end. The groups are fixed by the shape (two
     * where a pass has 2 blocks of pixels), so the bits do not depend on the thread count.
     * Splitting pixels packs nothing twice; every task of a tap group packs its dY rows again,
     * so the taps are split only into 2 tasks per thread with the pixel groups (all of them in
     * one task on one thread). (GoogLeNet's conv1, 147 taps, on 2 threads: its taps in 4
     * groups of 48, 48, 48 and 3 ran 1.3x faster than on 1 thread.) */
    size_t nr = p->dnr = isa_desc[p->isa].nv * isa_desc[p->isa].vbytes / rs;
    p->dkc = max_size(1, min_size(min_size(kc_bytes() / (nr * rs), (IN_CONVK_MAX_RUNS - 1) * p->ow),
                                  p->fwd.N));
    size_t dmc_max = max_size(mr, MC_BYTES / (p->dkc * rs) / mr * mr);
    p->dw_chunks = cdiv(OC, dmc_max);
    p->dmc = up(cdiv(OC, p->dw_chunks), mr);
    p->dw_pixel_groups = p->fwd.N >= 2 * p->dkc ? 2 : 1;
    size_t groups = T > 1 ? cdiv(2 * T, p->dw_chunks * p->dw_pixel_groups) : 1;
    p->dnc = up(cdiv(p->K, groups), nr);
    p->dw_groups = cdiv(p->K, p->dnc);
    p->dw_stride = up(up(p->dmc, IN_CONVK_PAD) * p->dkc, A) + up(p->dkc * nr, A);
    p->dw_tile = up(up(p->dmc, IN_CONVK_PAD) * p->dnc, A);

    /* work: forward [P(x)] [per thread: panels, partial sums] [packed w]; dL/dw [P(x)] [per
     * thread: dY panels, a col^T panel, partial sums]; dL/dx (dx_phases_work); Winograd's
     * forward [per thread: V, M] [packed U] (wino_blocking), its dL/dx the same, then [P(dY)] */
    p->fwd_threads_at = p->fwd.direct ? 0 : up(p->fwd.src_size, A);
    p->dw_threads_at = p->fwd_threads_at;
    p->dw_sums_at = p->dw_threads_at + T * p->dw_stride;
    p->fwd_wpack_at = p->fwd_threads_at + T * p->fwd_stride;
    size_t fwd = p->fwd_wpack_at + in_convk_packed_size(OC, C, kh, kw), dx;
    size_t dw = p->dw_sums_at + p->dw_pixel_groups * p->dw_chunks * p->dw_groups * p->dw_tile;
    int wino = in_convk_get_winograd();
    p->wino = kh == 3 && kw == 3 && sh == 1 && sw == 1 && wino != IN_CONVK_WINO_OFF
              && (wino == IN_CONVK_WINO_ALWAYS
                  || in_convk_wino_pays(C, OC, B * cdiv(p->oh, 2) * cdiv(p->ow, 2)));
    if (p->wino) { /* the forward (x itself); dL/dx: P(dY) (see the top), images a pass */
        in_convk_gemm P;
        in_convk_wino_dx_source(&P, p, 1);
        p->dx_images = pass_images(B, P.src_size * rs);
        p->wg = (in_convk_wino){.M = OC, .K = C, .Hi = H, .Wi = W, .oh = p->oh, .ow = p->ow,
                                .top = (ptrdiff_t)ph, .left = (ptrdiff_t)pw};
        p->wdx = (in_convk_wino){.M = C, .K = OC, .Hi = P.Hs, .Wi = P.Ws, .oh = H, .ow = W};
        fwd = wino_blocking(&p->wg, p, B, 0);
        p->dx_src_at = up(wino_blocking(&p->wdx, p, p->dx_images, 0), A);
        dx = p->dx_src_at + p->dx_images * P.image;
    } else {
        dx = dx_phases_work(p);
    }
    p->dbias_at = up(max_size(fwd, max_size(dw, dx)), A);
    size_t totals = cdiv(max_size(B, p->dw_pixel_groups) * OC * sizeof(double), rs);
    p->work = p->dbias_at + totals + A; /* + A: room to align the caller's pointer */
}

/* Phase (ry, rx) of dL/dx: the H' x W' pixels dx[b, c, ry + sh*Y, rx + sw*X] get
 *     sum_{o, a, e} w[o, c, i0 + sh*a, j0 + sw*e] dY[b, o, Y + dy0 - a, X + dx0 - e]
 * over the taps i = i0 + sh*a < kh that reach them, i0 = (ry + ph) % sh, dy0 = (ry + ph - i0)
 * / sh (likewise j0, dx0): a stride-1 convolution of dY, placed at (kh'-1-dy0, kw'-1-dx0) of an
 * (H'+kh'-1) x (W'+kw'-1) map, by the flipped sub-kernel of kh' x kw' taps. Returns 0 (g
 * unset) when no tap or no pixel falls in the phase. The one description of dL/dx's layout:
 * the plan sizes work by it, the backward runs by it. */
int in_convk_dx_phase(in_convk_gemm *g, const in_convk_plan *p, size_t ry, size_t rx,
                      size_t images)
{
    size_t i0 = (ry + p->ph) % p->sh, j0 = (rx + p->pw) % p->sw;
    size_t kh = i0 < p->kh ? cdiv(p->kh - i0, p->sh) : 0;
    size_t kw = j0 < p->kw ? cdiv(p->kw - j0, p->sw) : 0;
    size_t H = ry < p->H ? cdiv(p->H - ry, p->sh) : 0, W = rx < p->W ? cdiv(p->W - rx, p->sw) : 0;
    if (!kh || !kw || !H || !W) return 0;
    ptrdiff_t dy0 = (ptrdiff_t)((ry + p->ph - i0) / p->sh);
    ptrdiff_t dx0 = (ptrdiff_t)((rx + p->pw - j0) / p->sw);
    gemm_source(g, p->C, images, p->OC, p->oh, p->ow, (ptrdiff_t)kh - 1 - dy0,
                (ptrdiff_t)kw - 1 - dx0, H + kh - 1, W + kw - 1, kh, kw, 1, 1);
    g->direct = 0; /* the ReLU mask is applied while preparing dY */
    g->ry = ry, g->rx = rx, g->i0 = i0, g->j0 = j0;
    gemm_blocking(g, p, 0);
    return 1;
}

/* ---- the shared pieces of every kernel ---- */

/* A run of pixels: src the offset of its first pixel (tap 0) in the source, dst its column
 * in the block, len its length. Used both for col runs (one per output row) and for output
 * segments (one per image or output row). */
typedef struct {
    size_t src, dst, len;
} in_convk_run;

/* The runs of pixels [n0, n0 + cnt) of g's output map, one per output row they touch, or one
 * per image when output rows follow each other in the source (sh*rowstride = ow: a 1x1 stride-1
 * convolution read directly):
 *     run.src = b*image + oy*sh*rowstride + ox   (col[r, n] = src[run.src + tap[r] + n - n0]) */
static size_t in_convk_runs(in_convk_run *rs, const in_convk_gemm *g, size_t n0, size_t cnt)
{
    size_t ohw = g->oh * g->ow, span = g->sh * g->rowstride == g->ow ? ohw : g->ow;
    size_t b = n0 / ohw, p = n0 % ohw, k = 0;
    for (size_t d = 0; d < cnt; ++k) {
        size_t len = min_size(span - p % span, min_size(ohw - p, cnt - d));
        rs[k] = (in_convk_run){b * g->image + p / g->ow * g->sh * g->rowstride + p % g->ow, d, len};
        d += len, p += len;
        if (p == ohw) p = 0, ++b;
    }
    return k;
}

/* The panels of a task's pixels [n0, n1): nr at a time from n0, or with row panels (n0 and
 * n1 then whole output rows apart) each output row's pixels nr at a time, its last panel
 * shorter (112 = 64 + 48). in_convk_panel: panel jp's first pixel *c0; returns its count. */
static size_t in_convk_panel_count(const in_convk_gemm *g, size_t n0, size_t n1, size_t nr)
{
    return g->row_panels ? (n1 - n0) / g->ow * cdiv(g->ow, nr) : cdiv(n1 - n0, nr);
}

static size_t in_convk_panel(const in_convk_gemm *g, size_t n0, size_t n1, size_t nr, size_t jp,
                             size_t *c0)
{
    if (!g->row_panels) {
        *c0 = n0 + jp * nr;
        return min_size(nr, n1 - *c0);
    }
    size_t per_row = cdiv(g->ow, nr), x = jp % per_row * nr;
    *c0 = n0 + jp / per_row * g->ow + x;
    return min_size(nr, g->ow - x);
}

/* Where col's panel of pixels [n0, n0 + cnt) already lies in the source, so that packing it
 * would only copy it:
 * - a 1x1 stride-1 GEMM whose output rows follow each other in the source (as in_convk_runs)
 *   has col[r, n] = src[b*image + r*plane + p] (tap r = c*plane), so a full panel (cnt = nr)
 *   within one image b is the source at b*image + p, rows plane apart;
 * - a row panel (within one output row oy of image b, from column ox) has col[r, n] =
 *   src[b*image + oy*sh*rowstride + ox + tap[r] + n - n0] (in_convk_runs' one run), row r at
 *   that offset + tap[r].
 * Returns that offset (tap 0's for the 1x1, the run's for a row panel), or SIZE_MAX when the
 * panel must be packed. */
static size_t in_convk_panel_in_place(const in_convk_gemm *g, size_t n0, size_t cnt, size_t nr)
{
    size_t ohw = g->oh * g->ow, p = n0 % ohw;
    if (g->row_panels) return n0 / ohw * g->image + p / g->ow * g->sh * g->rowstride + p % g->ow;
    if (g->kh * g->kw != 1 || g->sw != 1 || g->sh * g->rowstride != g->ow || cnt != nr ||
        n0 / ohw != (n0 + cnt - 1) / ohw)
        return SIZE_MAX;
    return n0 / ohw * g->image + p;
}

/* The segments of output pixels [n0, n0 + cnt) of an oh x ow map, in an output of image
 * stride `image`, row stride `row` and column stride `col`: one per image when rows follow each
 * other (col = 1, row = ow), else one per output row. seg.src = b*image + Y*row + X*col of its
 * first pixel (b, Y, X). */
static size_t in_convk_segments(in_convk_run *rs, size_t oh, size_t ow, size_t image, size_t row,
                                size_t col, size_t n0, size_t cnt)
{
    size_t ohw = oh * ow, span = col == 1 && row == ow ? ohw : ow;
    size_t b = n0 / ohw, p = n0 % ohw, k = 0;
    for (size_t d = 0; d < cnt; ++k) {
        size_t len = min_size(span - p % span, min_size(ohw - p, cnt - d));
        rs[k] = (in_convk_run){b * image + p / ow * row + p % ow * col, d, len};
        d += len, p += len;
        if (p == ohw) p = 0, ++b;
    }
    return k;
}

/* tap[r - r0] = the offset in the source of tap r = (c*kh + i)*kw + j, r in [r0, r1):
 *     c*plane + i*rowstride + (j % sw)*Wq + j / sw */
static void in_convk_taps(size_t *tap, const in_convk_gemm *g, size_t r0, size_t r1)
{
    size_t c = r0 / (g->kh * g->kw), i = r0 / g->kw % g->kh, j = r0 % g->kw;
    for (size_t r = r0; r < r1; ++r) {
        tap[r - r0] = c * g->plane + i * g->rowstride + (j % g->sw) * g->Wq + j / g->sw;
        if (++j == g->kw) {
            j = 0;
            if (++i == g->kh) i = 0, ++c;
        }
    }
}

/* the calling thread's number in its team (0 without OpenMP) */
static size_t in_convk_thread(void)
{
#ifdef _OPENMP
    return (size_t)omp_get_thread_num();
#else
    return 0;
#endif
}

/* A thread's next task of its own range, on a cache line of its own */
typedef struct {
    size_t next;
    char pad[64 - sizeof(size_t)];
} in_convk_range;

/* The ranges of `tasks` tasks for `threads` threads: range t = [t*tasks/threads, (t+1)*tasks/
 * threads), its next task its first */
static void in_convk_ranges(in_convk_range *r, size_t tasks, size_t threads)
{
    for (size_t t = 0; t < threads; ++t) r[t].next = t * tasks / threads;
}

/* Claims a task for thread `self` into *q: the next of its own range while there is one
 * (neighbouring tasks read neighbouring source rows, which stay in its own caches), then the
 * next of another thread's (a thread that shares its core with another process does fewer);
 * 0 when every range is done. Each claim is an atomic increment, so each task runs once. */
static int in_convk_claim(in_convk_range *r, size_t tasks, size_t threads, size_t self, size_t *q)
{
    for (size_t k = 0; k < threads; ++k) {
        size_t t = (self + k) % threads, end = (t + 1) * tasks / threads, got;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
        got = r[t].next++;
        if (got < end) {
            *q = got;
            return 1;
        }
    }
    return 0;
}

/* work rounded up to 64 bytes */
static void *in_convk_aligned(void *work)
{
    return (void *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
}

#define IN_TEMPLATE "convk_template.h"
#include "instantiate.h"
