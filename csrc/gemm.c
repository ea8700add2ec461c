/* gemm.c: gemm through the BLAS handed over by in_gemm_set_blas, float (_f32) and double (_f64),
 * from gemm_template.h; in_gemm_cpu_* is Darknet's triple loop. */
#include "gemm.h"

static in_sgemm_fn blas_sgemm = NULL;
static in_dgemm_fn blas_dgemm = NULL;

void in_gemm_set_blas(in_sgemm_fn sgemm, in_dgemm_fn dgemm)
{
    blas_sgemm = sgemm;
    blas_dgemm = dgemm;
}

int in_gemm_has_blas(void) { return blas_sgemm != NULL && blas_dgemm != NULL; }

#define IN_TEMPLATE "gemm_template.h"
#include "instantiate.h"
