/* conv.c: convolution and linear layers on gemm, float (_f32) and double (_f64), from
 * conv_template.h. */
#include "conv.h"

#include <string.h>

#include "gemm.h"
#include "im2col.h"

#ifdef _OPENMP
#include <omp.h>
static int in_thread_num(void) { return omp_get_thread_num(); }
static int in_team_size(void) { return omp_get_num_threads(); }
#else
static int in_thread_num(void) { return 0; }
static int in_team_size(void) { return 1; }
#endif

#define IN_TEMPLATE "conv_template.h"
#include "instantiate.h"
