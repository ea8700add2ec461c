/* test_nchwc.c: the NCHWc direct convolution of csrc/nchwc.c against a naive direct convolution
 * in double, on every ISA path this machine runs: blocked and plain (first layer) input, strides
 * 1-2, paddings 0-3 (also past the kernel), square and rectangular kernels, 1x1 (the pointwise
 * line), batch 1, tiny and odd maps, output channels off the block (padded weights), several
 * channel-block groups, bias or none, ReLU or none, input and output as channel-block slices of
 * larger tensors (the values around them untouched). Results must repeat bit for bit between
 * runs and between 1 and 2 threads. Prints "ok" and exits 0, or lists failures.
 *   gcc -std=c99 -O2 -fopenmp -Icsrc tests/c/test_nchwc.c csrc/nchwc.c csrc/convk.c -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convk.h"
#include "nchwc.h"

static int failures = 0, checks = 0;

/* a uniform value in [-1, 1) from a tiny LCG: the same numbers on every platform */
static float uniform(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (float)(((*seed >> 8) & 0xffff) / 32768.0 - 1.0);
}

typedef struct {
    size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw;
    int plain;
} shape;

static const shape shapes[] = {
    {2, 16, 9, 10, 16, 3, 3, 1, 1, 1, 1, 0},  {1, 8, 7, 7, 24, 1, 1, 1, 1, 0, 0, 0},
    {2, 16, 11, 12, 32, 5, 5, 2, 2, 2, 2, 0}, {1, 24, 9, 9, 13, 1, 7, 1, 1, 0, 3, 0},
    {1, 24, 9, 9, 16, 7, 1, 1, 1, 3, 0, 0},   {2, 3, 20, 19, 16, 7, 7, 2, 2, 3, 3, 1},
    {1, 48, 6, 5, 48, 3, 3, 2, 1, 0, 3, 0},   {3, 32, 5, 3, 40, 3, 3, 1, 2, 3, 2, 0},
    {1, 16, 1, 1, 16, 1, 1, 1, 1, 0, 0, 0},   {1, 16, 2, 2, 8, 3, 3, 1, 1, 2, 2, 0},
    {2, 256, 13, 11, 64, 1, 1, 1, 1, 0, 0, 0}, {1, 128, 6, 7, 32, 3, 3, 1, 1, 1, 1, 0},
    {1, 16, 8, 9, 16, 1, 1, 2, 2, 0, 0, 0},   {1, 5, 9, 8, 24, 3, 3, 1, 1, 1, 1, 1},
    {1, 16, 3, 40, 32, 1, 3, 1, 2, 1, 1, 0},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static size_t out_size(size_t in, size_t pad, size_t k, size_t s) { return (in + 2 * pad - k) / s + 1; }

/* element (b, c, y, x) of a tensor of `cl`-lane blocks (cl = 1: plain NCHW), images `image` apart */
static size_t at(size_t b, size_t c, size_t y, size_t x, size_t C, size_t H, size_t W, size_t cl,
                 size_t image)
{
    (void)C;
    return b * image + ((c / cl * H + y) * W + x) * cl + c % cl;
}

/* one shape on the current ISA; returns the output for the determinism checks */
static void check_shape(const shape *q, int isa, int relu, int with_bias, int slices)
{
    size_t blk = in_nchwc_block(isa), cl = q->plain ? 1 : blk;
    size_t oh = out_size(q->H, q->ph, q->kh, q->sh), ow = out_size(q->W, q->pw, q->kw, q->sw);
    size_t OCb = (q->OC + blk - 1) / blk, OC = OCb * blk, C = q->plain ? q->C : q->C / cl * cl;
    if (!q->plain && C != q->C) return; /* a blocked input needs C % blk == 0 */
    /* slices: x and y are blocks [1, ...) of tensors with 2 more blocks (or channels) */
    size_t xpad = slices ? 2 * cl : 0, ypad = slices ? 2 * blk : 0;
    size_t x_image = (C + xpad) * q->H * q->W, y_image = (OC + ypad) * oh * ow;
    size_t nx = q->B * x_image, ny = q->B * y_image, nw = q->OC * C * q->kh * q->kw;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *bias = malloc(OC * sizeof *bias);
    float *wp = malloc(OC * C * q->kh * q->kw * sizeof *wp), *y[3];
    unsigned seed = 7;
    for (size_t i = 0; i < nx; ++i) x[i] = uniform(&seed);
    for (size_t i = 0; i < nw; ++i) w[i] = uniform(&seed);
    for (size_t i = 0; i < OC; ++i) bias[i] = uniform(&seed);
    in_nchwc_pack_weights_f32(wp, w, q->OC, C, q->kh, q->kw, blk, q->plain);
    const float *xs = x + (slices ? cl * q->H * q->W : 0);
    for (int r = 0; r < 3; ++r) { /* runs: 1 thread, 1 thread again, 2 threads */
        y[r] = malloc(ny * sizeof(float));
        for (size_t i = 0; i < ny; ++i) y[r][i] = 12345.0f;
        in_nchwc_conv c = {q->B, C, q->H, q->W, OC, q->kh, q->kw, q->sh, q->sw, q->ph, q->pw,
                           oh, ow, x_image, y_image, q->plain, isa, r == 2 ? 2 : 1};
        in_nchwc_forward_f32(&c, y[r] + (slices ? blk * oh * ow : 0), xs, wp,
                             with_bias ? bias : 0, relu);
    }
    int bad = 0;
    for (size_t b = 0; b < q->B; ++b)
        for (size_t o = 0; o < OC + ypad; ++o)
            for (size_t oy = 0; oy < oh; ++oy)
                for (size_t ox = 0; ox < ow; ++ox) {
                    size_t k = at(b, o, oy, ox, OC + ypad, oh, ow, blk, y_image);
                    size_t oo = o - (slices ? blk : 0);
                    int inside = slices ? o >= blk && o < blk + OC : 1;
                    double ref = 12345.0, mag = 0;
                    if (inside) {
                        ref = with_bias ? bias[oo] : 0, mag = fabs(ref);
                        for (size_t c = 0; oo < q->OC && c < C; ++c)
                            for (size_t i = 0; i < q->kh; ++i)
                                for (size_t j = 0; j < q->kw; ++j) {
                                    long iy = (long)(oy * q->sh + i) - (long)q->ph;
                                    long ix = (long)(ox * q->sw + j) - (long)q->pw;
                                    if (iy < 0 || ix < 0 || iy >= (long)q->H || ix >= (long)q->W)
                                        continue;
                                    double t = (double)w[((oo * C + c) * q->kh + i) * q->kw + j] *
                                               xs[at(b, c, (size_t)iy, (size_t)ix, C, q->H, q->W,
                                                     cl, x_image)];
                                    ref += t, mag += fabs(t);
                                }
                        if (relu && ref < 0) ref = 0;
                    }
                    ++checks;
                    if (fabs(y[0][k] - ref) > 1e-5 * (mag + 1) || y[1][k] != y[0][k] ||
                        y[2][k] != y[0][k])
                        ++bad;
                }
    if (bad) {
        ++failures;
        printf("FAIL %s: B%zu C%zu %zux%zu OC%zu k%zux%zu s%zu,%zu p%zu,%zu plain%d relu%d bias%d "
               "slices%d: %d wrong\n", in_convk_level_name(isa), q->B, q->C, q->H, q->W, q->OC,
               q->kh, q->kw, q->sh, q->sw, q->ph, q->pw, q->plain, relu, with_bias, slices, bad);
    }
    for (int r = 0; r < 3; ++r) free(y[r]);
    free(x), free(w), free(bias), free(wp);
}

int main(void)
{
    for (int isa = 0; isa < IN_CONVK_LEVELS; ++isa) {
        if (!in_convk_isa_supported(isa)) continue;
        for (size_t s = 0; s < NSHAPES; ++s)
            for (int v = 0; v < 4; ++v) check_shape(&shapes[s], isa, v & 1, v != 2, v >= 2);
    }
    if (failures) {
        printf("%d of the configurations failed (%d values checked)\n", failures, checks);
        return 1;
    }
    printf("ok (%d values checked)\n", checks);
    return 0;
}
