/* pool.c: pooling layers, float (_f32) and double (_f64), from pool_template.h. */
#include "pool.h"

#include <string.h>

#include "range.h"

#define real float
#define NAME(f) IN_NAME3(in_, f, _f32)
#include "plane_template.h"
#include "pool_template.h"
#undef real
#undef NAME

#define real double
#define NAME(f) IN_NAME3(in_, f, _f64)
#include "plane_template.h"
#include "pool_template.h"
#undef real
#undef NAME
