/* batchnorm.c: the BatchNorm layer, exact and darknet flavours, float (_f32) and double (_f64),
 * from batchnorm_template.h. */
#include "batchnorm.h"
#include "blas.h"

#include <math.h>

#define IN_TEMPLATE "batchnorm_template.h"
#include "instantiate.h"
