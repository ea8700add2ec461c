/* test_kernels.c: drives the csrc/ kernels directly, with no Python in the way, for the
 * sanitizer builds of tests/c/run_sanitizers.sh (AddressSanitizer, UndefinedBehaviorSanitizer).
 * Blas routines, both BatchNorm flavours, pooling, gemm, convolution (im2col included) and
 * Darknet's activations (leaky, logistic, softmax), in float and double, at edge sizes (1,
 * around the vector widths, past the OpenMP threshold), each result checked against a naive
 * loop in double or an identity. Prints "ok" and exits 0, or lists the failures and exits 1. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "batchnorm.h"
#include "blas.h"
#include "conv.h"
#include "gemm.h"
#include "pool.h"

static int failures = 0;

/* a uniform value in [-2, 2) from a tiny LCG: the same numbers on every platform */
static double uniform(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return ((*seed >> 8) & 0xffff) / 16384.0 - 2.0;
}

#define real float
#define NAME(f) IN_NAME3(f, _, f32)
#define K(f) IN_NAME3(in_, f, _f32)
#define TOL 2e-4
#define TYPE_NAME "float32"
#include "test_kernels_template.h"
#undef real
#undef NAME
#undef K
#undef TOL
#undef TYPE_NAME

#define real double
#define NAME(f) IN_NAME3(f, _, f64)
#define K(f) IN_NAME3(in_, f, _f64)
#define TOL 1e-9
#define TYPE_NAME "float64"
#include "test_kernels_template.h"

/* The blocked layout NCHWc (float only): B images of CB blocks of blk channels, each image a
 * block slice (one block of padding either side, which must stay untouched) of a larger
 * tensor. Reordered to NCHW and back, max and average pooled, and globally averaged: the
 * same values as the NCHW kernels on the plain copy. */
static void test_nchwc(size_t B, size_t CB, size_t blk, size_t H, size_t k, size_t st, size_t p,
                       unsigned seed)
{
    size_t S = H * H, C = CB * blk, image = (CB + 2) * S * blk, oh = (H + 2 * p - k) / st + 1;
    size_t out_image = (CB + 2) * oh * oh * blk;
    float *x = alloc_f32(B * image, &seed), *plain = alloc_f32(B * C * S, &seed);
    float *y = alloc_f32(B * out_image, &seed), *yp = alloc_f32(B * C * oh * oh, &seed);
    float *back = alloc_f32(B * C * oh * oh, &seed), *g = alloc_f32(B * C, &seed);
    float *gp = alloc_f32(B * C, &seed), edge = y[0];
    in_nchwc_reorder_f32(plain, x + S * blk, B, CB, S, blk, image, C * S, 1);
    for (int average = -1; average < 2; ++average) {
        float *yb = y + oh * oh * blk;
        if (average < 0) {
            in_max_pool2d_forward_nchwc_f32(yb, x + S * blk, B, CB, blk, image, out_image, H, H,
                                            oh, oh, k, k, st, st, p, p);
            in_max_pool2d_forward_f32(yp, NULL, NULL, plain, B * C, H, H, oh, oh, k, k, st, st, p, p);
        } else {
            in_avg_pool2d_forward_nchwc_f32(yb, x + S * blk, B, CB, blk, image, out_image, H, H,
                                            oh, oh, k, k, st, st, p, p, average);
            in_avg_pool2d_forward_f32(yp, plain, B * C, H, H, oh, oh, k, k, st, st, p, p, average);
        }
        in_nchwc_reorder_f32(back, yb, B, CB, oh * oh, blk, out_image, C * oh * oh, 1);
        for (size_t q = 0; q < B * C * oh * oh; ++q) check_f32("pool2d_forward_nchwc", q, back[q], yp[q], B, C, H);
    }
    check_f32("nchwc block slice untouched", 0, y[0], edge, B, C, H);
    in_global_avg_pool_forward_nchwc_f32(g, x + S * blk, B, CB, blk, image, S);
    in_global_avg_pool_forward_f32(gp, plain, B * C, S);
    for (size_t q = 0; q < B * C; ++q) check_f32("global_avg_pool_forward_nchwc", q, g[q], gp[q], B, C, H);
    float *again = malloc(B * image * sizeof(float));
    memcpy(again, x, B * image * sizeof(float));
    in_nchwc_reorder_f32(again + S * blk, plain, B, CB, S, blk, C * S, image, 0);  /* and back */
    if (memcmp(again, x, B * image * sizeof(float))) {
        fprintf(stderr, "FAIL nchwc_reorder round trip\n");
        ++failures;
    }
    free(again); free(x); free(plain); free(y); free(yp); free(back); free(g); free(gp);
}

int main(void)
{
    run_all_f32();
    run_all_f64();
    for (size_t blk = 8; blk <= 16; blk += 8)
        for (size_t H = 1; H <= 9; H += 4)
            for (size_t k = 1; k <= 3 && k <= H; ++k)
                for (size_t p = 0; p <= k / 2; ++p) test_nchwc(2, 3, blk, H, k, 1 + H % 2, p, 7);
    test_nchwc(1, 40, 8, 30, 3, 1, 1, 9);  /* past IN_PARALLEL_MIN: the OpenMP paths */
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    puts("ok");
    return 0;
}
