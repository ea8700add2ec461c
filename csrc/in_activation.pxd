# The C boundary of csrc/activation.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "activation.h" nogil:
    void in_relu_forward_f32(float *y, const float *x, size_t n)
    void in_relu_forward_f64(double *y, const double *x, size_t n)
    void in_relu_backward_f32(float *dx, const float *dy, const float *y, size_t n)
    void in_relu_backward_f64(double *dx, const double *dy, const double *y, size_t n)
    void in_channel_affine_forward_f32(float *y, const float *x, const float *scale,
                                       const float *shift, size_t B, size_t C, size_t S,
                                       size_t x_image, size_t y_image, int relu)
    void in_channel_affine_forward_f64(double *y, const double *x, const double *scale,
                                       const double *shift, size_t B, size_t C, size_t S,
                                       size_t x_image, size_t y_image, int relu)
    void in_dropout_forward_f32(float *y, float *mask, const float *x, size_t n, double p,
                                uint64_t seed)
    void in_dropout_forward_f64(double *y, double *mask, const double *x, size_t n, double p,
                                uint64_t seed)
    void in_dropout_backward_f32(float *dx, const float *dy, const float *mask, size_t n)
    void in_dropout_backward_f64(double *dx, const double *dy, const double *mask, size_t n)
    void in_concat_forward_f32(float *y, const float *x, size_t B, size_t Cx, size_t Cy,
                               size_t offset, size_t S)
    void in_concat_forward_f64(double *y, const double *x, size_t B, size_t Cx, size_t Cy,
                               size_t offset, size_t S)
    void in_concat_backward_f32(float *dx, const float *dy, size_t B, size_t Cx, size_t Cy,
                                size_t offset, size_t S)
    void in_concat_backward_f64(double *dx, const double *dy, size_t B, size_t Cx, size_t Cy,
                                size_t offset, size_t S)
    double in_softmax_cross_entropy_forward_f32(float *probs, const float *logits,
                                                const int64_t *labels, size_t N, size_t K,
                                                double e)
    double in_softmax_cross_entropy_forward_f64(double *probs, const double *logits,
                                                const int64_t *labels, size_t N, size_t K,
                                                double e)
    void in_softmax_cross_entropy_backward_f32(float *dlogits, const float *probs,
                                               const int64_t *labels, size_t N, size_t K,
                                               double e, double dloss)
    void in_softmax_cross_entropy_backward_f64(double *dlogits, const double *probs,
                                               const int64_t *labels, size_t N, size_t K,
                                               double e, double dloss)


cdef inline void in_relu_forward(bint f64, void *y, const void *x, size_t n) noexcept nogil:
    if f64: in_relu_forward_f64(<double *>y, <const double *>x, n)
    else: in_relu_forward_f32(<float *>y, <const float *>x, n)

cdef inline void in_channel_affine_forward(bint f64, void *y, const void *x, const void *scale,
                                           const void *shift, size_t B, size_t C, size_t S,
                                           size_t x_image, size_t y_image,
                                           int relu) noexcept nogil:
    if f64: in_channel_affine_forward_f64(<double *>y, <const double *>x, <const double *>scale,
                                          <const double *>shift, B, C, S, x_image, y_image, relu)
    else: in_channel_affine_forward_f32(<float *>y, <const float *>x, <const float *>scale,
                                        <const float *>shift, B, C, S, x_image, y_image, relu)


cdef inline void in_relu_backward(bint f64, void *dx, const void *dy, const void *y,
                                  size_t n) noexcept nogil:
    if f64: in_relu_backward_f64(<double *>dx, <const double *>dy, <const double *>y, n)
    else: in_relu_backward_f32(<float *>dx, <const float *>dy, <const float *>y, n)


cdef inline void in_dropout_forward(bint f64, void *y, void *mask, const void *x, size_t n,
                                    double p, uint64_t seed) noexcept nogil:
    if f64: in_dropout_forward_f64(<double *>y, <double *>mask, <const double *>x, n, p, seed)
    else: in_dropout_forward_f32(<float *>y, <float *>mask, <const float *>x, n, p, seed)


cdef inline void in_dropout_backward(bint f64, void *dx, const void *dy, const void *mask,
                                     size_t n) noexcept nogil:
    if f64: in_dropout_backward_f64(<double *>dx, <const double *>dy, <const double *>mask, n)
    else: in_dropout_backward_f32(<float *>dx, <const float *>dy, <const float *>mask, n)


cdef inline void in_concat_forward(bint f64, void *y, const void *x, size_t B, size_t Cx,
                                   size_t Cy, size_t offset, size_t S) noexcept nogil:
    if f64: in_concat_forward_f64(<double *>y, <const double *>x, B, Cx, Cy, offset, S)
    else: in_concat_forward_f32(<float *>y, <const float *>x, B, Cx, Cy, offset, S)


cdef inline void in_concat_backward(bint f64, void *dx, const void *dy, size_t B, size_t Cx,
                                    size_t Cy, size_t offset, size_t S) noexcept nogil:
    if f64: in_concat_backward_f64(<double *>dx, <const double *>dy, B, Cx, Cy, offset, S)
    else: in_concat_backward_f32(<float *>dx, <const float *>dy, B, Cx, Cy, offset, S)


cdef inline double in_softmax_cross_entropy_forward(bint f64, void *probs, const void *logits,
                                                    const int64_t *labels, size_t N, size_t K,
                                                    double e) noexcept nogil:
    if f64:
        return in_softmax_cross_entropy_forward_f64(<double *>probs, <const double *>logits, labels, N, K, e)
    else:
        return in_softmax_cross_entropy_forward_f32(<float *>probs, <const float *>logits, labels, N, K, e)


cdef inline void in_softmax_cross_entropy_backward(bint f64, void *dlogits, const void *probs,
                                                   const int64_t *labels, size_t N, size_t K,
                                                   double e, double dloss) noexcept nogil:
    if f64: in_softmax_cross_entropy_backward_f64(<double *>dlogits, <const double *>probs, labels,
                                                  N, K, e, dloss)
    else: in_softmax_cross_entropy_backward_f32(<float *>dlogits, <const float *>probs, labels, N,
                                                K, e, dloss)


# Darknet's leaky and logistic activations, the softmax

cdef extern from "activation.h" nogil:
    void in_leaky_relu_forward_f32(float *y, const float *x, size_t n, double slope)
    void in_leaky_relu_forward_f64(double *y, const double *x, size_t n, double slope)
    void in_leaky_relu_backward_f32(float *dx, const float *dy, const float *y, size_t n,
                                    double slope)
    void in_leaky_relu_backward_f64(double *dx, const double *dy, const double *y, size_t n,
                                    double slope)
    void in_logistic_forward_f32(float *y, const float *x, size_t n)
    void in_logistic_forward_f64(double *y, const double *x, size_t n)
    void in_logistic_backward_f32(float *dx, const float *dy, const float *y, size_t n)
    void in_logistic_backward_f64(double *dx, const double *dy, const double *y, size_t n)
    void in_softmax_forward_f32(float *y, const float *x, size_t N, size_t K)
    void in_softmax_forward_f64(double *y, const double *x, size_t N, size_t K)
    void in_softmax_backward_f32(float *dx, const float *dy, const float *y, size_t N, size_t K)
    void in_softmax_backward_f64(double *dx, const double *dy, const double *y, size_t N, size_t K)


cdef inline void in_leaky_relu_forward(bint f64, void *y, const void *x, size_t n, double slope) noexcept nogil:
    if f64: in_leaky_relu_forward_f64(<double *>y, <const double *>x, n, slope)
    else: in_leaky_relu_forward_f32(<float *>y, <const float *>x, n, slope)


cdef inline void in_leaky_relu_backward(bint f64, void *dx, const void *dy, const void *y, size_t n, double slope) noexcept nogil:
    if f64: in_leaky_relu_backward_f64(<double *>dx, <const double *>dy, <const double *>y, n, slope)
    else: in_leaky_relu_backward_f32(<float *>dx, <const float *>dy, <const float *>y, n, slope)


cdef inline void in_logistic_forward(bint f64, void *y, const void *x, size_t n) noexcept nogil:
    if f64: in_logistic_forward_f64(<double *>y, <const double *>x, n)
    else: in_logistic_forward_f32(<float *>y, <const float *>x, n)


cdef inline void in_logistic_backward(bint f64, void *dx, const void *dy, const void *y, size_t n) noexcept nogil:
    if f64: in_logistic_backward_f64(<double *>dx, <const double *>dy, <const double *>y, n)
    else: in_logistic_backward_f32(<float *>dx, <const float *>dy, <const float *>y, n)


cdef inline void in_softmax_forward(bint f64, void *y, const void *x, size_t N, size_t K) noexcept nogil:
    if f64: in_softmax_forward_f64(<double *>y, <const double *>x, N, K)
    else: in_softmax_forward_f32(<float *>y, <const float *>x, N, K)


cdef inline void in_softmax_backward(bint f64, void *dx, const void *dy, const void *y, size_t N, size_t K) noexcept nogil:
    if f64: in_softmax_backward_f64(<double *>dx, <const double *>dy, <const double *>y, N, K)
    else: in_softmax_backward_f32(<float *>dx, <const float *>dy, <const float *>y, N, K)
