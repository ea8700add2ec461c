# The C boundary of csrc/blas.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "blas.h" nogil:
    void in_mean_cpu_f32(const float *x, size_t batch, size_t filters, size_t spatial, float *mean)
    void in_mean_cpu_f64(const double *x, size_t batch, size_t filters, size_t spatial, double *mean)
    void in_variance_cpu_f32(const float *x, const float *mean, size_t batch, size_t filters,
                             size_t spatial, float *variance)
    void in_variance_cpu_f64(const double *x, const double *mean, size_t batch, size_t filters,
                             size_t spatial, double *variance)
    void in_normalize_cpu_f32(float *x, const float *mean, const float *variance, size_t batch,
                              size_t filters, size_t spatial)
    void in_normalize_cpu_f64(double *x, const double *mean, const double *variance, size_t batch,
                              size_t filters, size_t spatial)
    void in_axpy_cpu_f32(size_t N, float ALPHA, const float *X, size_t INCX, float *Y, size_t INCY)
    void in_axpy_cpu_f64(size_t N, double ALPHA, const double *X, size_t INCX, double *Y, size_t INCY)
    void in_scal_cpu_f32(size_t N, float ALPHA, float *X, size_t INCX)
    void in_scal_cpu_f64(size_t N, double ALPHA, double *X, size_t INCX)
    void in_sgd_momentum_cpu_f32(size_t N, float lr, float momentum, float decay, float *p,
                                 const float *g, float *v)
    void in_sgd_momentum_cpu_f64(size_t N, double lr, double momentum, double decay, double *p,
                                 const double *g, double *v)
    void in_copy_cpu_f32(size_t N, const float *X, size_t INCX, float *Y, size_t INCY)
    void in_copy_cpu_f64(size_t N, const double *X, size_t INCX, double *Y, size_t INCY)
    void in_fill_cpu_f32(size_t N, float ALPHA, float *X, size_t INCX)
    void in_fill_cpu_f64(size_t N, double ALPHA, double *X, size_t INCX)
    void in_scale_bias_f32(float *output, const float *scales, size_t batch, size_t n, size_t size)
    void in_scale_bias_f64(double *output, const double *scales, size_t batch, size_t n, size_t size)
    void in_add_bias_f32(float *output, const float *biases, size_t batch, size_t n, size_t size)
    void in_add_bias_f64(double *output, const double *biases, size_t batch, size_t n, size_t size)
    void in_backward_bias_f32(float *bias_updates, const float *delta, size_t batch, size_t n,
                              size_t size)
    void in_backward_bias_f64(double *bias_updates, const double *delta, size_t batch, size_t n,
                              size_t size)
    void in_backward_scale_cpu_f32(const float *x_norm, const float *delta, size_t batch, size_t n,
                                   size_t size, float *scale_updates)
    void in_backward_scale_cpu_f64(const double *x_norm, const double *delta, size_t batch,
                                   size_t n, size_t size, double *scale_updates)
    void in_mean_delta_cpu_f32(const float *delta, const float *variance, size_t batch,
                               size_t filters, size_t spatial, float *mean_delta)
    void in_mean_delta_cpu_f64(const double *delta, const double *variance, size_t batch,
                               size_t filters, size_t spatial, double *mean_delta)
    void in_variance_delta_cpu_f32(const float *x, const float *delta, const float *mean,
                                   const float *variance, size_t batch, size_t filters,
                                   size_t spatial, float *variance_delta)
    void in_variance_delta_cpu_f64(const double *x, const double *delta, const double *mean,
                                   const double *variance, size_t batch, size_t filters,
                                   size_t spatial, double *variance_delta)
    void in_normalize_delta_cpu_f32(const float *x, const float *mean, const float *variance,
                                    const float *mean_delta, const float *variance_delta,
                                    size_t batch, size_t filters, size_t spatial, float *delta)
    void in_normalize_delta_cpu_f64(const double *x, const double *mean, const double *variance,
                                    const double *mean_delta, const double *variance_delta,
                                    size_t batch, size_t filters, size_t spatial, double *delta)


cdef inline void in_mean_cpu(bint f64, const void *x, size_t batch, size_t filters, size_t spatial,
                             void *mean) noexcept nogil:
    if f64: in_mean_cpu_f64(<const double *>x, batch, filters, spatial, <double *>mean)
    else: in_mean_cpu_f32(<const float *>x, batch, filters, spatial, <float *>mean)


cdef inline void in_variance_cpu(bint f64, const void *x, const void *mean, size_t batch,
                                 size_t filters, size_t spatial, void *variance) noexcept nogil:
    if f64: in_variance_cpu_f64(<const double *>x, <const double *>mean, batch, filters, spatial,
                                <double *>variance)
    else: in_variance_cpu_f32(<const float *>x, <const float *>mean, batch, filters, spatial,
                              <float *>variance)


cdef inline void in_normalize_cpu(bint f64, void *x, const void *mean, const void *variance,
                                  size_t batch, size_t filters, size_t spatial) noexcept nogil:
    if f64: in_normalize_cpu_f64(<double *>x, <const double *>mean, <const double *>variance,
                                 batch, filters, spatial)
    else: in_normalize_cpu_f32(<float *>x, <const float *>mean, <const float *>variance, batch,
                               filters, spatial)


cdef inline void in_axpy_cpu(bint f64, size_t N, double ALPHA, const void *X, size_t INCX, void *Y,
                             size_t INCY) noexcept nogil:
    if f64: in_axpy_cpu_f64(N, ALPHA, <const double *>X, INCX, <double *>Y, INCY)
    else: in_axpy_cpu_f32(N, <float>ALPHA, <const float *>X, INCX, <float *>Y, INCY)


cdef inline void in_scal_cpu(bint f64, size_t N, double ALPHA, void *X,
                             size_t INCX) noexcept nogil:
    if f64: in_scal_cpu_f64(N, ALPHA, <double *>X, INCX)
    else: in_scal_cpu_f32(N, <float>ALPHA, <float *>X, INCX)


cdef inline void in_sgd_momentum_cpu(bint f64, size_t N, double lr, double momentum, double decay,
                                     void *p, const void *g, void *v) noexcept nogil:
    if f64: in_sgd_momentum_cpu_f64(N, lr, momentum, decay, <double *>p, <const double *>g,
                                    <double *>v)
    else: in_sgd_momentum_cpu_f32(N, <float>lr, <float>momentum, <float>decay, <float *>p,
                                  <const float *>g, <float *>v)


cdef inline void in_copy_cpu(bint f64, size_t N, const void *X, size_t INCX, void *Y,
                             size_t INCY) noexcept nogil:
    if f64: in_copy_cpu_f64(N, <const double *>X, INCX, <double *>Y, INCY)
    else: in_copy_cpu_f32(N, <const float *>X, INCX, <float *>Y, INCY)


cdef inline void in_fill_cpu(bint f64, size_t N, double ALPHA, void *X,
                             size_t INCX) noexcept nogil:
    if f64: in_fill_cpu_f64(N, ALPHA, <double *>X, INCX)
    else: in_fill_cpu_f32(N, <float>ALPHA, <float *>X, INCX)


cdef inline void in_scale_bias(bint f64, void *output, const void *scales, size_t batch, size_t n,
                               size_t size) noexcept nogil:
    if f64: in_scale_bias_f64(<double *>output, <const double *>scales, batch, n, size)
    else: in_scale_bias_f32(<float *>output, <const float *>scales, batch, n, size)


cdef inline void in_add_bias(bint f64, void *output, const void *biases, size_t batch, size_t n,
                             size_t size) noexcept nogil:
    if f64: in_add_bias_f64(<double *>output, <const double *>biases, batch, n, size)
    else: in_add_bias_f32(<float *>output, <const float *>biases, batch, n, size)


cdef inline void in_backward_bias(bint f64, void *bias_updates, const void *delta, size_t batch,
                                  size_t n, size_t size) noexcept nogil:
    if f64: in_backward_bias_f64(<double *>bias_updates, <const double *>delta, batch, n, size)
    else: in_backward_bias_f32(<float *>bias_updates, <const float *>delta, batch, n, size)


cdef inline void in_backward_scale_cpu(bint f64, const void *x_norm, const void *delta,
                                       size_t batch, size_t n, size_t size,
                                       void *scale_updates) noexcept nogil:
    if f64: in_backward_scale_cpu_f64(<const double *>x_norm, <const double *>delta, batch, n,
                                      size, <double *>scale_updates)
    else: in_backward_scale_cpu_f32(<const float *>x_norm, <const float *>delta, batch, n, size,
                                    <float *>scale_updates)


cdef inline void in_mean_delta_cpu(bint f64, const void *delta, const void *variance, size_t batch,
                                   size_t filters, size_t spatial,
                                   void *mean_delta) noexcept nogil:
    if f64: in_mean_delta_cpu_f64(<const double *>delta, <const double *>variance, batch, filters,
                                  spatial, <double *>mean_delta)
    else: in_mean_delta_cpu_f32(<const float *>delta, <const float *>variance, batch, filters,
                                spatial, <float *>mean_delta)


cdef inline void in_variance_delta_cpu(bint f64, const void *x, const void *delta,
                                       const void *mean, const void *variance, size_t batch,
                                       size_t filters, size_t spatial,
                                       void *variance_delta) noexcept nogil:
    if f64: in_variance_delta_cpu_f64(<const double *>x, <const double *>delta,
                                      <const double *>mean, <const double *>variance, batch,
                                      filters, spatial, <double *>variance_delta)
    else: in_variance_delta_cpu_f32(<const float *>x, <const float *>delta, <const float *>mean,
                                    <const float *>variance, batch, filters, spatial,
                                    <float *>variance_delta)


cdef inline void in_normalize_delta_cpu(bint f64, const void *x, const void *mean,
                                        const void *variance, const void *mean_delta,
                                        const void *variance_delta, size_t batch, size_t filters,
                                        size_t spatial, void *delta) noexcept nogil:
    if f64: in_normalize_delta_cpu_f64(<const double *>x, <const double *>mean,
                                       <const double *>variance, <const double *>mean_delta,
                                       <const double *>variance_delta, batch, filters, spatial,
                                       <double *>delta)
    else: in_normalize_delta_cpu_f32(<const float *>x, <const float *>mean,
                                     <const float *>variance, <const float *>mean_delta,
                                     <const float *>variance_delta, batch, filters, spatial,
                                     <float *>delta)
