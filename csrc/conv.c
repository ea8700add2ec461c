/* conv.c: convolution and linear layers on gemm, float (_f32) and double (_f64), from
 * conv_template.h. */
#include "conv.h"

#include <stdint.h>
#include <string.h>

#include "gemm.h"
#include "im2col.h"

#ifdef _OPENMP
#include <omp.h>
static int in_thread_num(void) { return omp_get_thread_num(); }
static int in_team_size(void) { return omp_get_num_threads(); }
#else
static int in_thread_num(void) { return 0; }
static int in_team_size(void) { return 1; }
#endif

static size_t in_ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

static size_t in_min(size_t a, size_t b) { return a < b ? a : b; }

static size_t in_max(size_t a, size_t b) { return a > b ? a : b; }

/* G, R and the workspace of a convolution (conv.h). With several threads, G makes a whole
 * number of blocks per thread (16 images of 14x14 on 2 threads: 4 blocks of 4, not 6 + 6 + 4,
 * which would leave one thread 10 images). Work per thread: col (none for a direct 1x1), the
 * (OC, G*ohw) result when G > 1, and a partial dw when threads > 1. */
in_conv_plan in_conv2d_plan(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                            size_t kw, size_t sh, size_t sw, size_t ph, size_t pw, int threads,
                            size_t min_columns, size_t block_values)
{
    in_conv_plan p = {B, C, H, W, OC, kh, kw, sh, sw, ph, pw, 0, 0, 0, 1, 1, 1, 0};
    const int pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    p.oh = in_out_size(H, kh, sh, ph);
    p.ow = in_out_size(W, kw, sw, pw);
    p.K = C * kh * kw;
    p.threads = (int)in_min(B, (size_t)(threads < 1 ? 1 : threads));
    const size_t ohw = p.oh * p.ow, T = (size_t)p.threads;
    size_t G = pointwise && ohw >= IN_CONV_POINTWISE_ALONE
                   ? 1 : in_max(1, in_min(B, in_ceil_div(min_columns, ohw)));
    G = in_min(G, in_ceil_div(B, T));
    if (G > 1 && T > 1) G = in_ceil_div(B, in_ceil_div(in_ceil_div(B, G), T) * T);
    p.G = G;
    p.R = G > 1 ? p.oh
                : in_max(1, in_min(p.oh, in_max(block_values / (p.K * p.ow),
                                                 in_ceil_div(min_columns, p.ow))));
    size_t col = G == 1 && pointwise ? 0 : p.K * G * p.R * p.ow;
    p.work = T * (col + (G > 1 ? OC * G * ohw : 0) + (T > 1 ? OC * p.K : 0));
    return p;
}

#define IN_TEMPLATE "conv_template.h"
#include "instantiate.h"
