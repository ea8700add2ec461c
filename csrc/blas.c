/* blas.c: Darknet's blas routines for float (_f32) and double (_f64), from blas_template.h. */
#include "blas.h"

#include <math.h>
#include <string.h>

#define IN_TEMPLATE "blas_template.h"
#include "instantiate.h"
