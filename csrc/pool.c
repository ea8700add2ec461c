/* pool.c: pooling layers, float (_f32) and double (_f64), from pool_template.h. */
#include "pool.h"

#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

#define IN_TEMPLATE "pool_template.h"
#include "instantiate.h"
