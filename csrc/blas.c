/* blas.c: Darknet's blas routines for float (_f32) and double (_f64), from blas_template.h. */
#include "blas.h"

#include <math.h>
#include <string.h>

#define real float
#define NAME(f) IN_NAME3(in_, f, _f32)
#include "plane_template.h"
#include "blas_template.h"
#undef real
#undef NAME

#define real double
#define NAME(f) IN_NAME3(in_, f, _f64)
#include "plane_template.h"
#include "blas_template.h"
#undef real
#undef NAME
