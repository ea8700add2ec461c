# The C boundary of csrc/pool.h, declared once: its kernels in float (_f32) and double
# (_f64; the blocked layout's in float only), and one dispatcher per kernel of both,
# in_NAME(f64, ...), that calls the one matching the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "pool.h" nogil:
    int in_max_pool2d_forward_f32(float *y, int64_t *argmax, uint8_t *taps, const float *x,
                                  size_t P, size_t H, size_t W, size_t oh, size_t ow, size_t kh,
                                  size_t kw, size_t sh, size_t sw, size_t ph, size_t pw)
    int in_max_pool2d_forward_f64(double *y, int64_t *argmax, uint8_t *taps, const double *x,
                                  size_t P, size_t H, size_t W, size_t oh, size_t ow, size_t kh,
                                  size_t kw, size_t sh, size_t sw, size_t ph, size_t pw)
    size_t in_max_pool2d_backward_taps_f32(float *dx, const float *dy, const uint8_t *taps,
                                           size_t P, size_t H, size_t W, size_t oh, size_t ow,
                                           size_t kh, size_t kw, size_t sh, size_t sw,
                                           size_t ph, size_t pw)
    size_t in_max_pool2d_backward_taps_f64(double *dx, const double *dy, const uint8_t *taps,
                                           size_t P, size_t H, size_t W, size_t oh, size_t ow,
                                           size_t kh, size_t kw, size_t sh, size_t sw,
                                           size_t ph, size_t pw)
    size_t in_max_pool2d_backward_f32(float *dx, const float *dy, const int64_t *argmax,
                                      size_t P, size_t HW, size_t ohw)
    size_t in_max_pool2d_backward_f64(double *dx, const double *dy, const int64_t *argmax,
                                      size_t P, size_t HW, size_t ohw)
    size_t in_max_pool2d_backward_search_f32(float *dx, const float *dy, const float *x,
                                             const float *y, size_t P, size_t H, size_t W,
                                             size_t oh, size_t ow, size_t kh, size_t kw,
                                             size_t sh, size_t sw, size_t ph, size_t pw)
    size_t in_max_pool2d_backward_search_f64(double *dx, const double *dy, const double *x,
                                             const double *y, size_t P, size_t H, size_t W,
                                             size_t oh, size_t ow, size_t kh, size_t kw,
                                             size_t sh, size_t sw, size_t ph, size_t pw)
    int in_avg_pool2d_forward_f32(float *y, const float *x, size_t P, size_t H, size_t W,
                                   size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                   size_t sw, size_t ph, size_t pw, int count_include_pad)
    int in_avg_pool2d_forward_f64(double *y, const double *x, size_t P, size_t H, size_t W,
                                   size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                   size_t sw, size_t ph, size_t pw, int count_include_pad)
    void in_avg_pool2d_backward_f32(float *dx, const float *dy, size_t P, size_t H, size_t W,
                                    size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                    size_t sw, size_t ph, size_t pw, int count_include_pad)
    void in_avg_pool2d_backward_f64(double *dx, const double *dy, size_t P, size_t H, size_t W,
                                    size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                    size_t sw, size_t ph, size_t pw, int count_include_pad)
    void in_adaptive_avg_pool2d_forward_f32(float *y, const float *x, size_t P, size_t H,
                                            size_t W, size_t oh, size_t ow)
    void in_adaptive_avg_pool2d_forward_f64(double *y, const double *x, size_t P, size_t H,
                                            size_t W, size_t oh, size_t ow)
    void in_adaptive_avg_pool2d_backward_f32(float *dx, const float *dy, size_t P, size_t H,
                                             size_t W, size_t oh, size_t ow)
    void in_adaptive_avg_pool2d_backward_f64(double *dx, const double *dy, size_t P, size_t H,
                                             size_t W, size_t oh, size_t ow)
    void in_global_avg_pool_forward_f32(float *y, const float *x, size_t P, size_t S)
    void in_global_avg_pool_forward_f64(double *y, const double *x, size_t P, size_t S)
    void in_global_avg_pool_backward_f32(float *dx, const float *dy, size_t P, size_t S)
    void in_global_avg_pool_backward_f64(double *dx, const double *dy, size_t P, size_t S)
    void in_nchwc_reorder_f32(float *y, const float *x, size_t B, size_t CB, size_t S, size_t blk,
                              size_t x_image, size_t y_image, int to_plain)
    void in_max_pool2d_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB, size_t blk,
                                         size_t x_image, size_t y_image, size_t H, size_t W,
                                         size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                         size_t sw, size_t ph, size_t pw)
    void in_avg_pool2d_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB, size_t blk,
                                         size_t x_image, size_t y_image, size_t H, size_t W,
                                         size_t oh, size_t ow, size_t kh, size_t kw, size_t sh,
                                         size_t sw, size_t ph, size_t pw, int count_include_pad)
    void in_global_avg_pool_forward_nchwc_f32(float *y, const float *x, size_t B, size_t CB,
                                              size_t blk, size_t x_image, size_t S)


cdef inline int in_max_pool2d_forward(bint f64, void *y, int64_t *argmax, uint8_t *taps,
                                      const void *x, size_t P, size_t H, size_t W, size_t oh,
                                      size_t ow, size_t kh, size_t kw, size_t sh, size_t sw,
                                      size_t ph, size_t pw) noexcept nogil:
    if f64: return in_max_pool2d_forward_f64(<double *>y, argmax, taps, <const double *>x, P, H,
                                             W, oh, ow, kh, kw, sh, sw, ph, pw)
    else: return in_max_pool2d_forward_f32(<float *>y, argmax, taps, <const float *>x, P, H, W,
                                           oh, ow, kh, kw, sh, sw, ph, pw)


cdef inline size_t in_max_pool2d_backward_taps(bint f64, void *dx, const void *dy,
                                               const uint8_t *taps, size_t P, size_t H, size_t W,
                                               size_t oh, size_t ow, size_t kh, size_t kw,
                                               size_t sh, size_t sw, size_t ph,
                                               size_t pw) noexcept nogil:
    if f64: return in_max_pool2d_backward_taps_f64(<double *>dx, <const double *>dy, taps, P, H,
                                                   W, oh, ow, kh, kw, sh, sw, ph, pw)
    else: return in_max_pool2d_backward_taps_f32(<float *>dx, <const float *>dy, taps, P, H, W,
                                                 oh, ow, kh, kw, sh, sw, ph, pw)


cdef inline size_t in_max_pool2d_backward(bint f64, void *dx, const void *dy,
                                          const int64_t *argmax, size_t P, size_t HW,
                                          size_t ohw) noexcept nogil:
    if f64:
        return in_max_pool2d_backward_f64(<double *>dx, <const double *>dy, argmax, P, HW, ohw)
    else:
        return in_max_pool2d_backward_f32(<float *>dx, <const float *>dy, argmax, P, HW, ohw)


cdef inline size_t in_max_pool2d_backward_search(bint f64, void *dx, const void *dy,
                                                 const void *x, const void *y, size_t P, size_t H,
                                                 size_t W, size_t oh, size_t ow, size_t kh,
                                                 size_t kw, size_t sh, size_t sw, size_t ph,
                                                 size_t pw) noexcept nogil:
    if f64: return in_max_pool2d_backward_search_f64(<double *>dx, <const double *>dy,
                                                     <const double *>x, <const double *>y, P, H,
                                                     W, oh, ow, kh, kw, sh, sw, ph, pw)
    else: return in_max_pool2d_backward_search_f32(<float *>dx, <const float *>dy,
                                                   <const float *>x, <const float *>y, P, H, W,
                                                   oh, ow, kh, kw, sh, sw, ph, pw)


cdef inline int in_avg_pool2d_forward(bint f64, void *y, const void *x, size_t P, size_t H,
                                      size_t W, size_t oh, size_t ow, size_t kh, size_t kw,
                                      size_t sh, size_t sw, size_t ph, size_t pw,
                                      int count_include_pad) noexcept nogil:
    if f64: return in_avg_pool2d_forward_f64(<double *>y, <const double *>x, P, H, W, oh, ow, kh,
                                             kw, sh, sw, ph, pw, count_include_pad)
    else: return in_avg_pool2d_forward_f32(<float *>y, <const float *>x, P, H, W, oh, ow, kh, kw,
                                           sh, sw, ph, pw, count_include_pad)


cdef inline void in_avg_pool2d_backward(bint f64, void *dx, const void *dy, size_t P, size_t H,
                                        size_t W, size_t oh, size_t ow, size_t kh, size_t kw,
                                        size_t sh, size_t sw, size_t ph, size_t pw,
                                        int count_include_pad) noexcept nogil:
    if f64: in_avg_pool2d_backward_f64(<double *>dx, <const double *>dy, P, H, W, oh, ow, kh, kw,
                                       sh, sw, ph, pw, count_include_pad)
    else: in_avg_pool2d_backward_f32(<float *>dx, <const float *>dy, P, H, W, oh, ow, kh, kw, sh,
                                     sw, ph, pw, count_include_pad)


cdef inline void in_adaptive_avg_pool2d_forward(bint f64, void *y, const void *x, size_t P,
                                                size_t H, size_t W, size_t oh,
                                                size_t ow) noexcept nogil:
    if f64: in_adaptive_avg_pool2d_forward_f64(<double *>y, <const double *>x, P, H, W, oh, ow)
    else: in_adaptive_avg_pool2d_forward_f32(<float *>y, <const float *>x, P, H, W, oh, ow)


cdef inline void in_adaptive_avg_pool2d_backward(bint f64, void *dx, const void *dy, size_t P,
                                                 size_t H, size_t W, size_t oh,
                                                 size_t ow) noexcept nogil:
    if f64: in_adaptive_avg_pool2d_backward_f64(<double *>dx, <const double *>dy, P, H, W, oh, ow)
    else: in_adaptive_avg_pool2d_backward_f32(<float *>dx, <const float *>dy, P, H, W, oh, ow)


cdef inline void in_global_avg_pool_forward(bint f64, void *y, const void *x, size_t P,
                                            size_t S) noexcept nogil:
    if f64: in_global_avg_pool_forward_f64(<double *>y, <const double *>x, P, S)
    else: in_global_avg_pool_forward_f32(<float *>y, <const float *>x, P, S)


cdef inline void in_global_avg_pool_backward(bint f64, void *dx, const void *dy, size_t P,
                                             size_t S) noexcept nogil:
    if f64: in_global_avg_pool_backward_f64(<double *>dx, <const double *>dy, P, S)
    else: in_global_avg_pool_backward_f32(<float *>dx, <const float *>dy, P, S)

