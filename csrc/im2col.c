/* im2col.c: convolution lowering, float (_f32) and double (_f64), from im2col_template.h. */
#include "im2col.h"

#include <string.h>

#include "range.h"

#define IN_TEMPLATE "im2col_template.h"
#include "instantiate.h"
