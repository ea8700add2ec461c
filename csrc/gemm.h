/* gemm.h: Darknet's gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc), float and double,
 *     C = ALPHA * op(A) * op(B) + BETA * C,   op(A) (M, K), op(B) (K, N), C (M, N), row-major,
 * computed by a Fortran BLAS xgemm whose address is handed over at run time (the Cython module
 * takes it from scipy.linalg.cython_blas), so nothing links against a BLAS at build time.
 * Before in_gemm_set_blas (or with NULL) the triple loop in_gemm_cpu runs: Darknet's gemm_cpu,
 * kept as the readable reference. Sizes must fit a Fortran int (the caller checks).
 */
#ifndef IN_GEMM_H
#define IN_GEMM_H

#include <stddef.h>

#include "common.h"

/* Fortran BLAS sgemm_/dgemm_: every argument by address, column-major */
typedef void (*in_sgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, float *alpha,
                            float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                            int *ldc);
typedef void (*in_dgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, double *alpha,
                            double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                            int *ldc);

void in_gemm_set_blas(in_sgemm_fn sgemm, in_dgemm_fn dgemm);
int in_gemm_has_blas(void);

#define IN_GEMM_DECLARE(real, sfx)                                                              \
    void in_gemm_##sfx(int TA, int TB, size_t M, size_t N, size_t K, real ALPHA, const real *A, \
                       size_t lda, const real *B, size_t ldb, real BETA, real *C, size_t ldc);  \
    void in_gemm_cpu_##sfx(int TA, int TB, size_t M, size_t N, size_t K, real ALPHA,            \
                           const real *A, size_t lda, const real *B, size_t ldb, real BETA,     \
                           real *C, size_t ldc);

IN_GEMM_DECLARE(float, f32)
IN_GEMM_DECLARE(double, f64)

#endif
