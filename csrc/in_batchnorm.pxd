# The C boundary of csrc/batchnorm.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "batchnorm.h" nogil:
    void in_batchnorm_forward_train_f32(float *y, float *mean, float *invstd, const float *x,
                                        const float *gamma, const float *beta, float *rolling_mean,
                                        float *rolling_variance, size_t B, size_t C, size_t S,
                                        size_t x_image, size_t y_image, double eps, double momentum, int unbiased,
                                        int relu)
    void in_batchnorm_forward_train_f64(double *y, double *mean, double *invstd, const double *x,
                                        const double *gamma, const double *beta,
                                        double *rolling_mean, double *rolling_variance, size_t B,
                                        size_t C, size_t S, size_t x_image, size_t y_image, double eps, double momentum,
                                        int unbiased, int relu)
    void in_batchnorm_forward_eval_f32(float *y, float *mean, float *invstd, const float *x,
                                       const float *gamma, const float *beta,
                                       const float *rolling_mean, const float *rolling_variance,
                                       size_t B, size_t C, size_t S, size_t x_image, size_t y_image, double eps, int relu)
    void in_batchnorm_forward_eval_f64(double *y, double *mean, double *invstd, const double *x,
                                       const double *gamma, const double *beta,
                                       const double *rolling_mean, const double *rolling_variance,
                                       size_t B, size_t C, size_t S, size_t x_image, size_t y_image, double eps, int relu)
    void in_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                   const float *y_relu, const float *x, const float *mean, const float *invstd,
                                   const float *gamma, size_t B, size_t C, size_t S, size_t x_image, size_t dy_image, int training)
    void in_batchnorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                   const double *y_relu, const double *x, const double *mean, const double *invstd,
                                   const double *gamma, size_t B, size_t C, size_t S, size_t x_image, size_t dy_image, int training)
    void in_batchnorm_forward_darknet_f32(float *y, float *x_norm, float *mean, float *variance,
                                          const float *x, const float *scales, const float *biases,
                                          float *rolling_mean, float *rolling_variance, size_t B,
                                          size_t C, size_t S, int training, int relu)
    void in_batchnorm_forward_darknet_f64(double *y, double *x_norm, double *mean, double *variance,
                                          const double *x, const double *scales,
                                          const double *biases, double *rolling_mean,
                                          double *rolling_variance, size_t B, size_t C, size_t S,
                                          int training, int relu)
    void in_batchnorm_backward_darknet_f32(float *delta, float *scale_updates, float *bias_updates,
                                           float *mean_delta, float *variance_delta,
                                           const float *y_relu, const float *x, const float *x_norm, const float *mean,
                                           const float *variance, const float *scales, size_t B,
                                           size_t C, size_t S)
    void in_batchnorm_backward_darknet_f64(double *delta, double *scale_updates,
                                           double *bias_updates, double *mean_delta,
                                           double *variance_delta, const double *y_relu,
                                           const double *x,
                                           const double *x_norm, const double *mean,
                                           const double *variance, const double *scales,
                                           size_t B, size_t C, size_t S)


cdef inline void in_batchnorm_forward_train(bint f64, void *y, void *mean, void *invstd,
                                            const void *x, const void *gamma, const void *beta,
                                            void *rolling_mean, void *rolling_variance, size_t B,
                                            size_t C, size_t S, size_t x_image, size_t y_image, double eps, double momentum,
                                            int unbiased, int relu) noexcept nogil:
    if f64: in_batchnorm_forward_train_f64(<double *>y, <double *>mean, <double *>invstd,
                                           <const double *>x, <const double *>gamma,
                                           <const double *>beta, <double *>rolling_mean,
                                           <double *>rolling_variance, B, C, S, x_image, y_image, eps, momentum,
                                           unbiased, relu)
    else: in_batchnorm_forward_train_f32(<float *>y, <float *>mean, <float *>invstd,
                                         <const float *>x, <const float *>gamma,
                                         <const float *>beta, <float *>rolling_mean,
                                         <float *>rolling_variance, B, C, S, x_image, y_image, eps, momentum,
                                         unbiased, relu)


cdef inline void in_batchnorm_forward_eval(bint f64, void *y, void *mean, void *invstd,
                                           const void *x, const void *gamma, const void *beta,
                                           const void *rolling_mean, const void *rolling_variance,
                                           size_t B, size_t C, size_t S, size_t x_image,
                                           size_t y_image, double eps, int relu) noexcept nogil:
    if f64: in_batchnorm_forward_eval_f64(<double *>y, <double *>mean, <double *>invstd,
                                          <const double *>x, <const double *>gamma,
                                          <const double *>beta, <const double *>rolling_mean,
                                          <const double *>rolling_variance, B, C, S, x_image, y_image, eps, relu)
    else: in_batchnorm_forward_eval_f32(<float *>y, <float *>mean, <float *>invstd,
                                        <const float *>x, <const float *>gamma,
                                        <const float *>beta, <const float *>rolling_mean,
                                        <const float *>rolling_variance, B, C, S, x_image, y_image, eps, relu)


cdef inline void in_batchnorm_backward(bint f64, void *dx, void *dgamma, void *dbeta,
                                       const void *dy, const void *y_relu, const void *x,
                                       const void *mean,
                                       const void *invstd, const void *gamma, size_t B, size_t C,
                                       size_t S, size_t x_image, size_t dy_image, int training) noexcept nogil:
    if f64: in_batchnorm_backward_f64(<double *>dx, <double *>dgamma, <double *>dbeta,
                                      <const double *>dy, <const double *>y_relu, <const double *>x, <const double *>mean,
                                      <const double *>invstd, <const double *>gamma, B, C, S,
                                      x_image, dy_image, training)
    else: in_batchnorm_backward_f32(<float *>dx, <float *>dgamma, <float *>dbeta,
                                    <const float *>dy, <const float *>y_relu, <const float *>x, <const float *>mean,
                                    <const float *>invstd, <const float *>gamma, B, C, S, x_image, dy_image, training)


cdef inline void in_batchnorm_forward_darknet(bint f64, void *y, void *x_norm, void *mean,
                                              void *variance, const void *x, const void *scales,
                                              const void *biases, void *rolling_mean,
                                              void *rolling_variance, size_t B, size_t C, size_t S,
                                              int training, int relu) noexcept nogil:
    if f64: in_batchnorm_forward_darknet_f64(<double *>y, <double *>x_norm, <double *>mean,
                                             <double *>variance, <const double *>x,
                                             <const double *>scales, <const double *>biases,
                                             <double *>rolling_mean, <double *>rolling_variance, B,
                                             C, S, training, relu)
    else: in_batchnorm_forward_darknet_f32(<float *>y, <float *>x_norm, <float *>mean,
                                           <float *>variance, <const float *>x,
                                           <const float *>scales, <const float *>biases,
                                           <float *>rolling_mean, <float *>rolling_variance, B, C,
                                           S, training, relu)


cdef inline void in_batchnorm_backward_darknet(bint f64, void *delta, void *scale_updates,
                                               void *bias_updates, void *mean_delta,
                                               void *variance_delta, const void *y_relu,
                                               const void *x,
                                               const void *x_norm, const void *mean,
                                               const void *variance, const void *scales, size_t B,
                                               size_t C, size_t S) noexcept nogil:
    if f64: in_batchnorm_backward_darknet_f64(<double *>delta, <double *>scale_updates,
                                              <double *>bias_updates, <double *>mean_delta,
                                              <double *>variance_delta,
                                              <const double *>y_relu, <const double *>x,
                                              <const double *>x_norm, <const double *>mean,
                                              <const double *>variance, <const double *>scales, B,
                                              C, S)
    else: in_batchnorm_backward_darknet_f32(<float *>delta, <float *>scale_updates,
                                            <float *>bias_updates, <float *>mean_delta,
                                            <float *>variance_delta, <const float *>y_relu,
                                            <const float *>x,
                                            <const float *>x_norm, <const float *>mean,
                                            <const float *>variance, <const float *>scales, B, C,
                                            S)
