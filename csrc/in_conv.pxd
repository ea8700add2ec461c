# The C boundary of csrc/conv.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "conv.h" nogil:
    ctypedef struct in_conv_plan:
        size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow, K, G, R
        int threads
        size_t work
    size_t IN_CONV_MIN_COLUMNS, IN_CONV_BLOCK_VALUES
    in_conv_plan in_conv2d_plan(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                                size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                                int threads, size_t min_columns, size_t block_values)
    void in_conv2d_forward_f32(const in_conv_plan *p, float *y, float *work, const float *x,
                               const float *w, const float *bias)
    void in_conv2d_forward_f64(const in_conv_plan *p, double *y, double *work, const double *x,
                               const double *w, const double *bias)
    void in_conv2d_backward_f32(const in_conv_plan *p, float *dx, float *dw, float *dbias,
                                float *work, const float *dy, const float *x, const float *w)
    void in_conv2d_backward_f64(const in_conv_plan *p, double *dx, double *dw, double *dbias,
                                double *work, const double *dy, const double *x,
                                const double *w)
    void in_linear_forward_f32(float *y, const float *x, const float *w, const float *bias,
                               size_t N, size_t Fin, size_t Fout)
    void in_linear_forward_f64(double *y, const double *x, const double *w, const double *bias,
                               size_t N, size_t Fin, size_t Fout)
    void in_linear_backward_f32(float *dx, float *dw, float *dbias, const float *dy,
                                const float *x, const float *w, size_t N, size_t Fin, size_t Fout)
    void in_linear_backward_f64(double *dx, double *dw, double *dbias, const double *dy,
                                const double *x, const double *w, size_t N, size_t Fin, size_t Fout)


cdef inline void in_conv2d_forward(bint f64, const in_conv_plan *p, void *y, void *work,
                                   const void *x, const void *w, const void *bias) noexcept nogil:
    if f64: in_conv2d_forward_f64(p, <double *>y, <double *>work, <const double *>x,
                                  <const double *>w, <const double *>bias)
    else: in_conv2d_forward_f32(p, <float *>y, <float *>work, <const float *>x, <const float *>w,
                                <const float *>bias)


cdef inline void in_conv2d_backward(bint f64, const in_conv_plan *p, void *dx, void *dw,
                                    void *dbias, void *work, const void *dy, const void *x,
                                    const void *w) noexcept nogil:
    if f64: in_conv2d_backward_f64(p, <double *>dx, <double *>dw, <double *>dbias, <double *>work,
                                   <const double *>dy, <const double *>x, <const double *>w)
    else: in_conv2d_backward_f32(p, <float *>dx, <float *>dw, <float *>dbias, <float *>work,
                                 <const float *>dy, <const float *>x, <const float *>w)


cdef inline void in_linear_forward(bint f64, void *y, const void *x, const void *w,
                                   const void *bias, size_t N, size_t Fin,
                                   size_t Fout) noexcept nogil:
    if f64: in_linear_forward_f64(<double *>y, <const double *>x, <const double *>w,
                                  <const double *>bias, N, Fin, Fout)
    else: in_linear_forward_f32(<float *>y, <const float *>x, <const float *>w,
                                <const float *>bias, N, Fin, Fout)


cdef inline void in_linear_backward(bint f64, void *dx, void *dw, void *dbias, const void *dy,
                                    const void *x, const void *w, size_t N, size_t Fin,
                                    size_t Fout) noexcept nogil:
    if f64: in_linear_backward_f64(<double *>dx, <double *>dw, <double *>dbias, <const double *>dy,
                                   <const double *>x, <const double *>w, N, Fin, Fout)
    else: in_linear_backward_f32(<float *>dx, <float *>dw, <float *>dbias, <const float *>dy,
                                 <const float *>x, <const float *>w, N, Fin, Fout)
