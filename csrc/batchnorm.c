/* batchnorm.c: the BatchNorm layer, exact and darknet flavours, float (_f32) and double (_f64),
 * from batchnorm_template.h. */
#include "batchnorm.h"
#include "blas.h"

#include <math.h>

#define real float
#define NAME(f) IN_NAME3(in_, f, _f32)
#include "plane_template.h"
#include "batchnorm_template.h"
#undef real
#undef NAME

#define real double
#define NAME(f) IN_NAME3(in_, f, _f64)
#include "plane_template.h"
#include "batchnorm_template.h"
#undef real
#undef NAME
