# The C boundary of csrc/convk.h (our convolution kernels), declared once: the plan, the ISA
# choice, and each kernel in float (_f32) and double (_f64) with one dispatcher per kernel,
# in_NAME(f64, ...), calling the one matching the arrays' dtype (pointers untyped). Keep in
# step with the header by hand.

cdef extern from "convk.h" nogil:
    ctypedef struct in_convk_gemm:
        size_t M, K, N, mr, nr, kc, mc, nc, k_blocks, m_chunks, n_blocks
    ctypedef struct in_convk_plan:
        size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow, K
        int isa, threads
        in_convk_gemm fwd
        int wino
        size_t images, dx_images, work
    int IN_CONVK_LEVELS
    void in_convk_plan_init(in_convk_plan *p, size_t real_size, size_t B, size_t C, size_t H,
                            size_t W, size_t OC, size_t kh, size_t kw, size_t sh, size_t sw,
                            size_t ph, size_t pw, int threads)
    int in_convk_set_isa(int level)
    int in_convk_get_isa()
    int in_convk_isa_supported(int level)
    const char *in_convk_isa_name()
    const char *in_convk_level_name(int level)
    size_t in_convk_packed_size(size_t OC, size_t C, size_t kh, size_t kw)
    size_t in_convk_plan_packed_size(const in_convk_plan *p)
    int IN_CONVK_WINO_OFF, IN_CONVK_WINO_AUTO, IN_CONVK_WINO_ALWAYS
    int in_convk_set_winograd(int mode)
    int in_convk_get_winograd()
    const char *in_convk_winograd_name(int mode)
    void in_convk_plan_pack_weights_f32(const in_convk_plan *p, float *wp, const float *w)
    void in_convk_plan_pack_weights_f64(const in_convk_plan *p, double *wp, const double *w)
    void in_convk_forward_f32(const in_convk_plan *p, float *y, size_t y_image, float *work,
                              const float *x, size_t x_image, const float *w, const float *wp,
                              const float *scale, const float *shift, int relu, int accumulate)
    void in_convk_forward_f64(const in_convk_plan *p, double *y, size_t y_image, double *work,
                              const double *x, size_t x_image, const double *w, const double *wp,
                              const double *scale, const double *shift, int relu, int accumulate)
    void in_convk_backward_f32(const in_convk_plan *p, float *dx, float *dw, float *dbias,
                               float *work, const float *dy, const float *y_relu, size_t dy_image,
                               const float *x, size_t x_image, const float *w, int dx_accumulate)
    void in_convk_backward_f64(const in_convk_plan *p, double *dx, double *dw, double *dbias,
                               double *work, const double *dy, const double *y_relu,
                               size_t dy_image, const double *x, size_t x_image, const double *w,
                               int dx_accumulate)


cdef inline void in_convk_plan_pack_weights(bint f64, const in_convk_plan *p, void *wp, const void *w) noexcept nogil:
    if f64: in_convk_plan_pack_weights_f64(p, <double *>wp, <const double *>w)
    else: in_convk_plan_pack_weights_f32(p, <float *>wp, <const float *>w)


cdef inline void in_convk_forward(bint f64, const in_convk_plan *p, void *y, size_t y_image, void *work, const void *x, size_t x_image, const void *w, const void *wp, const void *scale, const void *shift, int relu, int accumulate) noexcept nogil:
    if f64: in_convk_forward_f64(p, <double *>y, y_image, <double *>work, <const double *>x, x_image, <const double *>w, <const double *>wp, <const double *>scale, <const double *>shift, relu, accumulate)
    else: in_convk_forward_f32(p, <float *>y, y_image, <float *>work, <const float *>x, x_image, <const float *>w, <const float *>wp, <const float *>scale, <const float *>shift, relu, accumulate)


cdef inline void in_convk_backward(bint f64, const in_convk_plan *p, void *dx, void *dw, void *dbias, void *work, const void *dy, const void *y_relu, size_t dy_image, const void *x, size_t x_image, const void *w, int dx_accumulate) noexcept nogil:
    if f64: in_convk_backward_f64(p, <double *>dx, <double *>dw, <double *>dbias, <double *>work, <const double *>dy, <const double *>y_relu, dy_image, <const double *>x, x_image, <const double *>w, dx_accumulate)
    else: in_convk_backward_f32(p, <float *>dx, <float *>dw, <float *>dbias, <float *>work, <const float *>dy, <const float *>y_relu, dy_image, <const float *>x, x_image, <const float *>w, dx_accumulate)
