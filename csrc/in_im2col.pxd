# The C boundary of csrc/im2col.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "im2col.h" nogil:
    void in_im2col_f32(float *col, const float *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_im2col_f64(double *col, const double *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_col2im_f32(const float *col, float *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_col2im_f64(const double *col, double *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)


cdef inline void in_im2col(bint f64, void *col, const void *im, size_t n, size_t C, size_t H,
                           size_t W, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                           size_t pw, size_t y0, size_t y1, int parallel) noexcept nogil:
    if f64: in_im2col_f64(<double *>col, <const double *>im, n, C, H, W, kh, kw, sh, sw, ph, pw,
                          y0, y1, parallel)
    else: in_im2col_f32(<float *>col, <const float *>im, n, C, H, W, kh, kw, sh, sw, ph, pw, y0,
                        y1, parallel)


cdef inline void in_col2im(bint f64, const void *col, void *im, size_t n, size_t C, size_t H,
                           size_t W, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                           size_t pw, size_t y0, size_t y1, int parallel) noexcept nogil:
    if f64: in_col2im_f64(<const double *>col, <double *>im, n, C, H, W, kh, kw, sh, sw, ph, pw,
                          y0, y1, parallel)
    else: in_col2im_f32(<const float *>col, <float *>im, n, C, H, W, kh, kw, sh, sw, ph, pw, y0,
                        y1, parallel)
