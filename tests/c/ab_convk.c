/* ab_convk.c: one layer's float32 forward by two builds of csrc/convk.c in one process, calls
 * alternating (base, this tree, base, ...), so that both meet the same load on a shared machine
 * (figures from processes minutes apart differed by 1.5x here). The base build's symbols carry
 * the prefix base_ (objcopy, see convk.sh ab); its plan is opaque to this file (its struct may
 * differ), sized by its own work_size. Prints medians and minima of each and whether the outputs
 * are bit for bit the same.
 *   tests/c/convk.sh ab REV B C H W OC kh kw sh sw ph pw threads [calls]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convk.h"
#include "timing.h"

void base_in_convk_plan_init(void *p, size_t real_size, size_t B, size_t C, size_t H, size_t W,
                             size_t OC, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                             size_t pw, int threads);
size_t base_in_convk_work_size_f32(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                                   size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                                   int threads);
size_t base_in_convk_plan_packed_size(const void *p);
void base_in_convk_plan_pack_weights_f32(const void *p, float *wp, const float *w);
void base_in_convk_forward_f32(const void *p, float *y, size_t y_image, float *work,
                               const float *x, size_t x_image, const float *w, const float *wp,
                               const float *scale, const float *shift, int relu, int accumulate);

static float *floats(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 13) {
        fprintf(stderr, "usage: %s B C H W OC kh kw sh sw ph pw threads [calls]\n", argv[0]);
        return 2;
    }
    size_t v[11];
    for (int i = 0; i < 11; ++i) v[i] = strtoul(argv[i + 1], 0, 10);
    size_t B = v[0], C = v[1], H = v[2], W = v[3], OC = v[4], kh = v[5], kw = v[6];
    size_t sh = v[7], sw = v[8], ph = v[9], pw = v[10];
    int threads = atoi(argv[12]), calls = argc > 13 ? atoi(argv[13]) : 21;
    if (calls < 1) calls = 1;

    in_convk_plan p;
    in_convk_plan_init(&p, sizeof(float), B, C, H, W, OC, kh, kw, sh, sw, ph, pw, threads);
    static char base_plan[1 << 16] __attribute__((aligned(64))); /* far more than a plan */
    base_in_convk_plan_init(base_plan, sizeof(float), B, C, H, W, OC, kh, kw, sh, sw, ph, pw,
                            threads);
    size_t base_work = base_in_convk_work_size_f32(B, C, H, W, OC, kh, kw, sh, sw, ph, pw,
                                                   threads);
    size_t xs = B * C * H * W, ws = OC * C * kh * kw, ys = B * OC * p.oh * p.ow;
    float *x = floats(xs), *w = floats(ws), *shift = floats(OC), *y[2], *work[2], *wp[2];
    y[0] = floats(ys), y[1] = floats(ys);
    work[0] = floats(base_work), work[1] = floats(p.work);
    wp[0] = floats(base_in_convk_plan_packed_size(base_plan));
    wp[1] = floats(in_convk_plan_packed_size(&p));
    srand(1);
    for (size_t i = 0; i < xs; ++i) x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (size_t i = 0; i < ws; ++i) w[i] = (float)rand() / RAND_MAX - 0.5f;
    for (size_t o = 0; o < OC; ++o) shift[o] = 0.01f * (float)o;
    memset(work[0], 0, base_work * sizeof(float));
    memset(work[1], 0, p.work * sizeof(float));
    base_in_convk_plan_pack_weights_f32(base_plan, wp[0], w);
    in_convk_plan_pack_weights_f32(&p, wp[1], w);

    double *t[2] = {malloc(calls * sizeof(double)), malloc(calls * sizeof(double))};
    for (int r = -2; r < calls; ++r) /* two untimed calls each first */
        for (int b = 0; b < 2; ++b) {
            double start = now();
            if (b == 0)
                base_in_convk_forward_f32(base_plan, y[0], OC * p.oh * p.ow, work[0], x,
                                          C * H * W, w, wp[0], 0, shift, 1, 0);
            else
                in_convk_forward_f32(&p, y[1], OC * p.oh * p.ow, work[1], x, C * H * W, w, wp[1],
                                     0, shift, 1, 0);
            if (r >= 0) t[b][r] = now() - start;
        }
    size_t differ = 0;
    for (size_t i = 0; i < ys; ++i) differ += memcmp(&y[0][i], &y[1][i], sizeof(float)) != 0;
    for (int b = 0; b < 2; ++b) qsort(t[b], calls, sizeof(double), cmp_double);
    double flops = 2.0 * B * OC * p.oh * p.ow * C * kh * kw;
    printf("base %.3f ms (min %.3f), this tree %.3f ms (min %.3f, %.1f GFLOP/s): %.3fx "
           "(minima %.3fx); outputs differ in %zu of %zu values\n",
           1e3 * t[0][calls / 2], 1e3 * t[0][0], 1e3 * t[1][calls / 2], 1e3 * t[1][0],
           flops / t[1][calls / 2] / 1e9, t[0][calls / 2] / t[1][calls / 2], t[0][0] / t[1][0],
           differ, ys);
    return 0;
}
