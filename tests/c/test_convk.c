/* test_convk.c: the convolution kernels of csrc/convk.c against a naive direct convolution in
 * double, on every ISA path this machine runs, float and double: forward (plain, bias, BN
 * scale+shift, ReLU, accumulate, into a channel slice with the other channels untouched), dL/dx,
 * dL/dw, dL/dbias with and without the ReLU mask; strides 1-3, paddings 0-3, rectangular
 * kernels, channel counts off every block size, batch 1, tiny maps, dy and the mask read from
 * channel slices. Results must repeat bit for bit between runs and between 1, 2 and 3 threads
 * (the plan takes T only for convolutions of 4*T MFLOP or more). Every 3x3 stride-1 shape
 * runs twice: direct, then by Winograd F(2x2, 3x3) (forced: the forward and dL/dx). Prints
 * "ok" and exits 0, or lists failures.
 *   gcc -std=c99 -O2 -fopenmp -Icsrc tests/c/test_convk.c csrc/convk.c -lm   (tests/c/convk.sh)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convk.h"

static int failures = 0, checks = 0;

/* a uniform value in [-1, 1) from a tiny LCG: the same numbers on every platform */
static double uniform(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return ((*seed >> 8) & 0xffff) / 32768.0 - 1.0;
}

typedef struct {
    size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw;
} shape;

static size_t out_size(size_t in, size_t pad, size_t k, size_t s) { return (in + 2 * pad - k) / s + 1; }

/* naive forward sums in double: s[b, o, p] = sum_{c,i,j} w[o, c, i, j] x[b, c, iy, ix] */
static void naive_forward(double *s, const double *x, const double *w, shape q)
{
    size_t oh = out_size(q.H, q.ph, q.kh, q.sh), ow = out_size(q.W, q.pw, q.kw, q.sw);
    for (size_t b = 0; b < q.B; ++b)
        for (size_t o = 0; o < q.OC; ++o)
            for (size_t y = 0; y < oh; ++y)
                for (size_t xx = 0; xx < ow; ++xx) {
                    double acc = 0;
                    for (size_t c = 0; c < q.C; ++c)
                        for (size_t i = 0; i < q.kh; ++i)
                            for (size_t j = 0; j < q.kw; ++j) {
                                long iy = (long)(y * q.sh + i) - (long)q.ph;
                                long ix = (long)(xx * q.sw + j) - (long)q.pw;
                                if (iy < 0 || ix < 0 || iy >= (long)q.H || ix >= (long)q.W) continue;
                                acc += w[((o * q.C + c) * q.kh + i) * q.kw + j]
                                       * x[((b * q.C + c) * q.H + (size_t)iy) * q.W + (size_t)ix];
                            }
                    s[((b * q.OC + o) * oh + y) * ow + xx] = acc;
                }
}

/* naive backward in double from dY (already masked): dx, dw, dbias overwritten */
static void naive_backward(double *dx, double *dw, double *db, const double *dY, const double *x,
                           const double *w, shape q)
{
    size_t oh = out_size(q.H, q.ph, q.kh, q.sh), ow = out_size(q.W, q.pw, q.kw, q.sw);
    memset(dx, 0, q.B * q.C * q.H * q.W * sizeof(double));
    memset(dw, 0, q.OC * q.C * q.kh * q.kw * sizeof(double));
    memset(db, 0, q.OC * sizeof(double));
    for (size_t b = 0; b < q.B; ++b)
        for (size_t o = 0; o < q.OC; ++o)
            for (size_t y = 0; y < oh; ++y)
                for (size_t xx = 0; xx < ow; ++xx) {
                    double g = dY[((b * q.OC + o) * oh + y) * ow + xx];
                    db[o] += g;
                    for (size_t c = 0; c < q.C; ++c)
                        for (size_t i = 0; i < q.kh; ++i)
                            for (size_t j = 0; j < q.kw; ++j) {
                                long iy = (long)(y * q.sh + i) - (long)q.ph;
                                long ix = (long)(xx * q.sw + j) - (long)q.pw;
                                if (iy < 0 || ix < 0 || iy >= (long)q.H || ix >= (long)q.W) continue;
                                size_t xi = ((b * q.C + c) * q.H + (size_t)iy) * q.W + (size_t)ix;
                                size_t wi = ((o * q.C + c) * q.kh + i) * q.kw + j;
                                dx[xi] += w[wi] * g;
                                dw[wi] += x[xi] * g;
                            }
                }
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; ++i) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

#define real float
#define NAME(f) f##_f32
#define K(f) in_##f##_f32
#define TOL 1e-5
#define TYPE_NAME "float32"
#include "test_convk_template.h"
#undef real
#undef NAME
#undef K
#undef TOL
#undef TYPE_NAME

#define real double
#define NAME(f) f##_f64
#define K(f) in_##f##_f64
#define TOL 1e-12
#define TYPE_NAME "float64"
#include "test_convk_template.h"

static const shape shapes[] = {
    /* B  C   H   W   OC  kh kw sh sw ph pw */
    {2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
    {1, 17, 7, 7, 24, 1, 1, 1, 1, 0, 0},     /* 1x1: the input read directly */
    {3, 3, 15, 13, 17, 7, 7, 2, 2, 3, 3},    /* conv1's kind: 7x7/2 pad 3 from 3 channels */
    {2, 24, 17, 17, 17, 1, 7, 1, 1, 0, 3},   /* 1x7 */
    {2, 24, 17, 17, 17, 7, 1, 1, 1, 3, 0},   /* 7x1 */
    {1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0},       /* 1x1 map */
    {3, 5, 2, 3, 7, 3, 1, 1, 2, 1, 0},       /* 2x3 map, 3x1, strides (1, 2) */
    {2, 4, 6, 5, 1000, 1, 3, 2, 1, 0, 1},    /* 1000 channels out, 1x3 */
    {2, 1000, 3, 3, 5, 3, 3, 1, 1, 1, 1},    /* 1000 channels in: K = 9000, several K blocks */
    {2, 300, 9, 7, 100, 1, 1, 1, 1, 0, 0},   /* the tall forward tile, 100 rows, K blocks */
    {2, 40, 12, 12, 24, 1, 1, 1, 1, 0, 0},   /* 1x1, full panels read in place, one across images */
    {4, 200, 16, 16, 48, 1, 1, 1, 1, 0, 0},  /* 1x1 in place: K blocks, two threads */
    {5, 16, 7, 7, 32, 5, 5, 1, 1, 2, 2},     /* 5x5 on 7x7 maps, images share panels */
    {1, 8, 8, 8, 12, 3, 3, 2, 2, 3, 3},      /* padding past k - 1 */
    {2, 6, 10, 9, 9, 2, 2, 2, 2, 0, 0},      /* even kernel, stride 2, no padding */
    {3, 7, 11, 11, 13, 3, 3, 3, 3, 1, 2},    /* stride 3 */
    {1, 3, 5, 8, 1, 1, 3, 1, 1, 0, 1},       /* one output channel */
    {4, 32, 20, 20, 48, 3, 3, 1, 1, 1, 1},   /* enough work for two threads (> 8 MFLOP) */
    {5, 24, 30, 26, 33, 3, 5, 2, 1, 1, 2},   /* two threads, odd sizes, strides (2, 1) */
    {2, 9, 13, 16, 7, 3, 3, 1, 1, 0, 0},     /* 3x3 unpadded: direct, runs near the end of x */
    {2, 5, 7, 6, 4, 1, 1, 2, 2, 0, 0},       /* 1x1 stride 2: dL/dx phases no tap reaches */
    {2, 4, 9, 8, 6, 3, 5, 2, 3, 1, 2},       /* strides (2, 3): dL/dx phases of unequal size */
    /* 3x3 stride 1 (Winograd when forced): paddings 0-2, odd and even maps, partial tiles,
     * 1 channel, tiles of several images in one block, C blocks, several channel chunks */
    {3, 1, 5, 7, 3, 3, 3, 1, 1, 2, 2},
    {1, 17, 1, 1, 24, 3, 3, 1, 1, 1, 1},
    {2, 5, 4, 9, 17, 3, 3, 1, 1, 0, 2},
    {1, 300, 6, 5, 7, 3, 3, 1, 1, 2, 0},
    {3, 24, 9, 8, 1000, 3, 3, 1, 1, 1, 1},
    {1, 64, 31, 30, 40, 3, 3, 1, 1, 1, 1},
    {2, 33, 11, 13, 47, 3, 3, 1, 1, 1, 1},   /* C and OC off the blocks, both ways */
    {1, 47, 9, 7, 33, 3, 3, 1, 1, 0, 1},
    {2, 5, 6, 7, 9, 3, 3, 1, 1, 3, 2},       /* padding 3: Winograd's dL/dx crops dY */
    {6, 32, 16, 16, 40, 3, 3, 1, 1, 1, 1},   /* 3 threads (> 48 MFLOP) */
    {3, 3, 37, 41, 64, 7, 7, 2, 2, 3, 3},    /* dL/dw: 64 channels (a part panel), 21-pixel runs */
    {2, 7, 19, 23, 3, 3, 3, 1, 1, 1, 1},     /* dL/dw: 3 channels, pixel blocks across images */
    {2, 6, 9, 70, 11, 3, 3, 1, 1, 1, 1},     /* rows of 35 Winograd tiles: vectors of them */
    /* a last panel of whole vectors and one pixel or tile (ukr_column), K or C in blocks: 49
     * pixels (AVX-512: 48 + 1; AVX2: 48 + 1), 49 Winograd tiles (AVX-512: 32 + 17), 25 (AVX2:
     * 16 + 9), 13 (portable: 8 + 5) */
    {1, 300, 7, 7, 20, 1, 1, 1, 1, 0, 0},
    {1, 300, 14, 14, 20, 3, 3, 1, 1, 1, 1},
    {1, 300, 10, 10, 13, 3, 3, 1, 1, 1, 1},
    {1, 300, 2, 26, 7, 3, 3, 1, 1, 1, 1},
    /* a last panel of one pixel alone: 289 = 9*32 + 1 on the tall tile (16 and 8 lanes alike) */
    {1, 40, 17, 17, 96, 1, 7, 1, 1, 0, 3},
    /* row panels (output rows of whole vectors read in place at their taps): rows of 112 as
     * conv1's (AVX-512 float: 64 + 48, K blocks), of 48 on the tall tile (dL/dx's phase too),
     * of 16 (AVX2's and the portable path's) */
    {2, 3, 17, 224, 70, 7, 7, 2, 2, 3, 3},
    {1, 5, 9, 48, 100, 3, 3, 1, 1, 1, 1},
    {2, 7, 12, 32, 20, 3, 3, 2, 2, 1, 1},
};

int main(void)
{
    int ran = 0;
    for (int level = 0; level < IN_CONVK_LEVELS; ++level) {
        if (in_convk_set_isa(level) != 0) {
            printf("isa %s: not run on this CPU\n", in_convk_level_name(level));
            continue;
        }
        for (int wino = IN_CONVK_WINO_OFF; wino <= IN_CONVK_WINO_ALWAYS; wino += 2) {
            in_convk_set_winograd(wino); /* direct, then Winograd for every 3x3 stride 1 */
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
                int is_wino = shapes[s].kh == 3 && shapes[s].kw == 3 && shapes[s].sh == 1
                              && shapes[s].sw == 1;
                if (wino && !is_wino) continue;
                test_shape_f32(shapes[s], 1000u + (unsigned)s);
                test_shape_f64(shapes[s], 2000u + (unsigned)s);
            }
        }
        in_convk_set_winograd(IN_CONVK_WINO_AUTO);
        printf("isa %s: %d checks so far, %d failures\n", in_convk_isa_name(), checks, failures);
        ++ran;
    }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ok (%d ISA paths)\n", ran);
    return 0;
}
