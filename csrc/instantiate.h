/* instantiate.h: compiles the template named by IN_TEMPLATE twice, for real = float (names
 * ending in _f32, IN_DOUBLE 0) and real = double (_f64, IN_DOUBLE 1): every kernel in both
 * precisions from one source. Use: #define IN_TEMPLATE "blas_template.h", then include this. */
#define real float
#define IN_DOUBLE 0
#define NAME(f) IN_NAME3(in_, f, _f32)
#include IN_TEMPLATE
#undef real
#undef IN_DOUBLE
#undef NAME

#define real double
#define IN_DOUBLE 1
#define NAME(f) IN_NAME3(in_, f, _f64)
#include IN_TEMPLATE
#undef real
#undef IN_DOUBLE
#undef NAME

#undef IN_TEMPLATE
