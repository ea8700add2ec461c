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

int main(void)
{
    run_all_f32();
    run_all_f64();
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    puts("ok");
    return 0;
}
