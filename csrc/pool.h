/* pool.h: max, average, adaptive average and global average pooling, forward and backward,
 * float and double (see pool_template.h). The caller checks sizes: oh, ow from the pooling rule,
 * padding <= kernel/2, strides >= 1; adaptive pooling 1 <= oh, H, ow, W < 2^31; the blocked
 * (NCHWc) kernels blk <= 16 and image strides no smaller than an image; max pooling's taps
 * kernels of up to IN_POOL_TAPS_MAX taps. */
#ifndef IN_POOL_H
#define IN_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define IN_POOL_TAPS_MAX 255 /* a tap i*kw + j in a byte */

#define IN_POOL_DECLARE(real, sfx)                                                              \
    int in_max_pool2d_forward_##sfx(real *y, int64_t *argmax, uint8_t *taps, const real *x,     \
                                    size_t P, size_t H, size_t W, size_t oh, size_t ow,         \
                                    size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,      \
                                    size_t pw);                                                 \
    size_t in_max_pool2d_backward_taps_##sfx(real *dx, const real *dy, const uint8_t *taps,     \
                                             size_t P, size_t H, size_t W, size_t oh,           \
                                             size_t ow, size_t kh, size_t kw, size_t sh,        \
                                             size_t sw, size_t ph, size_t pw);                  \
    size_t in_max_pool2d_backward_##sfx(real *dx, const real *dy, const int64_t *argmax,        \
                                        size_t P, size_t HW, size_t ohw);                       \
    size_t in_max_pool2d_backward_search_##sfx(real *dx, const real *dy, const real *x,         \
                                               const real *y, size_t P, size_t H, size_t W,     \
                                               size_t oh, size_t ow, size_t kh, size_t kw,      \
                                               size_t sh, size_t sw, size_t ph, size_t pw);     \
    int in_avg_pool2d_forward_##sfx(real *y, const real *x, size_t P, size_t H, size_t W,       \
                                    size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,      \
                                    size_t sw, size_t ph, size_t pw, int count_include_pad);    \
    void in_avg_pool2d_backward_##sfx(real *dx, const real *dy, size_t P, size_t H, size_t W,   \
                                      size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,    \
                                      size_t sw, size_t ph, size_t pw, int count_include_pad);  \
    void in_adaptive_avg_pool2d_forward_##sfx(real *y, const real *x, size_t P, size_t H,       \
                                              size_t W, size_t oh, size_t ow);                  \
    void in_adaptive_avg_pool2d_backward_##sfx(real *dx, const real *dy, size_t P, size_t H,    \
                                               size_t W, size_t oh, size_t ow);                 \
    void in_global_avg_pool_forward_##sfx(real *y, const real *x, size_t P, size_t S);          \
    void in_global_avg_pool_backward_##sfx(real *dx, const real *dy, size_t P, size_t S);

IN_POOL_DECLARE(float, f32)
IN_POOL_DECLARE(double, f64)

/* the blocked layout NCHWc, float only */
void in_nchwc_reorder_f32(float *y, const float *x, size_t B, size_t CB, size_t S, size_t blk,
                          size_t x_image, size_t y_image, int to_plain);
void in_max_pool2d_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB, size_t blk,
                                     size_t x_image, size_t y_image, size_t H, size_t W,
                                     size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                     size_t sw, size_t ph, size_t pw);
void in_avg_pool2d_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB, size_t blk,
                                     size_t x_image, size_t y_image, size_t H, size_t W,
                                     size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                     size_t sw, size_t ph, size_t pw, int count_include_pad);
void in_global_avg_pool_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB,
                                          size_t blk, size_t x_image, size_t S);

#endif
