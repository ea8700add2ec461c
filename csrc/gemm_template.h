/* gemm_template.h: C = ALPHA * op(A) * op(B) + BETA * C, row-major, for real = float and double
 * (gemm.c instantiates it with XGEMM = the sgemm or dgemm pointer).
 *
 * Legend: op(A) is (M, K): A is (M, K) with row stride lda, or (K, M) when TA; op(B) is (K, N):
 * B is (K, N) with row stride ldb, or (N, K) when TB; C is (M, N) with row stride ldc.
 * BETA == 0 means C is only written (BLAS's rule: a NaN already in C does not survive), where
 * Darknet's gemm_cpu multiplies it by 0.
 */

#if IN_DOUBLE
#define XGEMM blas_dgemm
#else
#define XGEMM blas_sgemm
#endif

/* Darknet's gemm_cpu: scale C by BETA, then the triple loop. The reference, and the fallback
 * when no BLAS was handed over. Sums in double. */
void NAME(gemm_cpu)(int TA, int TB, size_t M, size_t N, size_t K, real ALPHA, const real *A,
                    size_t lda, const real *B, size_t ldb, real BETA, real *C, size_t ldc)
{
    for (size_t i = 0; i < M; ++i) {
        for (size_t j = 0; j < N; ++j) {
            double sum = 0;
            for (size_t k = 0; k < K; ++k) {
                real a = TA ? A[k * lda + i] : A[i * lda + k];
                real b = TB ? B[j * ldb + k] : B[k * ldb + j];
                sum += (double)a * b;
            }
            real c = BETA == 0 ? 0 : BETA * C[i * ldc + j];
            C[i * ldc + j] = c + (real)(ALPHA * sum);
        }
    }
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix is its
 * own transpose read column-major: so the BLAS gets B before A, N before M, and no copy. */
void NAME(gemm)(int TA, int TB, size_t M, size_t N, size_t K, real ALPHA, const real *A,
                size_t lda, const real *B, size_t ldb, real BETA, real *C, size_t ldc)
{
    if (M == 0 || N == 0) return;
    if (XGEMM == NULL) {
        NAME(gemm_cpu)(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc);
        return;
    }
    char ta = TA ? 'T' : 'N', tb = TB ? 'T' : 'N';
    int m = (int)M, n = (int)N, k = (int)K, la = (int)lda, lb = (int)ldb, lc = (int)ldc;
    XGEMM(&tb, &ta, &n, &m, &k, &ALPHA, (real *)B, &lb, (real *)A, &la, &BETA, C, &lc);
}

#undef XGEMM
