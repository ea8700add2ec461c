/* im2col.c: convolution lowering, float (_f32) and double (_f64), from im2col_template.h. */
#include "im2col.h"

#include <string.h>

#include "range.h"

#define real float
#define NAME(f) IN_NAME3(in_, f, _f32)
#include "im2col_template.h"
#undef real
#undef NAME

#define real double
#define NAME(f) IN_NAME3(in_, f, _f64)
#include "im2col_template.h"
#undef real
#undef NAME
