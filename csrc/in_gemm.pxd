# The C boundary of csrc/gemm.h, declared once: its kernels in float (_f32) and double
# (_f64), and one dispatcher per kernel, in_NAME(f64, ...), that calls the one matching
# the arrays' dtype (pointers untyped, scalars in double). Generated from the header's
# prototypes by hand; keep the two in step.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "gemm.h" nogil:
    ctypedef void (*in_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*in_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                                 double *, int *, double *, double *, int *)
    void in_gemm_set_blas(in_sgemm_fn sgemm, in_dgemm_fn dgemm)
    int in_gemm_has_blas()
    void in_gemm_f32(int TA, int TB, size_t M, size_t N, size_t K, float ALPHA, const float *A,
                     size_t lda, const float *B, size_t ldb, float BETA, float *C, size_t ldc)
    void in_gemm_f64(int TA, int TB, size_t M, size_t N, size_t K, double ALPHA, const double *A,
                     size_t lda, const double *B, size_t ldb, double BETA, double *C, size_t ldc)
    void in_gemm_cpu_f32(int TA, int TB, size_t M, size_t N, size_t K, float ALPHA,
                         const float *A, size_t lda, const float *B, size_t ldb, float BETA,
                         float *C, size_t ldc)
    void in_gemm_cpu_f64(int TA, int TB, size_t M, size_t N, size_t K, double ALPHA,
                         const double *A, size_t lda, const double *B, size_t ldb, double BETA,
                         double *C, size_t ldc)


cdef inline void in_gemm(bint f64, int TA, int TB, size_t M, size_t N, size_t K, double ALPHA,
                         const void *A, size_t lda, const void *B, size_t ldb, double BETA,
                         void *C, size_t ldc) noexcept nogil:
    if f64: in_gemm_f64(TA, TB, M, N, K, ALPHA, <const double *>A, lda, <const double *>B, ldb,
                        BETA, <double *>C, ldc)
    else: in_gemm_f32(TA, TB, M, N, K, <float>ALPHA, <const float *>A, lda, <const float *>B, ldb,
                      <float>BETA, <float *>C, ldc)


cdef inline void in_gemm_cpu(bint f64, int TA, int TB, size_t M, size_t N, size_t K, double ALPHA,
                             const void *A, size_t lda, const void *B, size_t ldb, double BETA,
                             void *C, size_t ldc) noexcept nogil:
    if f64: in_gemm_cpu_f64(TA, TB, M, N, K, ALPHA, <const double *>A, lda, <const double *>B, ldb,
                            BETA, <double *>C, ldc)
    else: in_gemm_cpu_f32(TA, TB, M, N, K, <float>ALPHA, <const float *>A, lda, <const float *>B,
                          ldb, <float>BETA, <float *>C, ldc)
