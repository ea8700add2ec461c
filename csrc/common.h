/* common.h: build-wide conventions for the C kernels.
 *
 * - Sizes and indices are size_t: a 64x256x368x368 activation already passes 2^31 elements.
 * - IN_HOT marks an inner kernel that GCC compiles several times (AVX-512, AVX2, baseline x86-64)
 *   and picks at load time, so one build is fast here and still runs on any x86-64 (function
 *   multi-versioning). Elsewhere it expands to nothing.
 * - IN_PARALLEL_MIN is the element count below which a kernel stays on one thread: waking the
 *   OpenMP team costs a few microseconds, more than a pass over a small tensor.
 * - IN_SIMD_SUM asks for a vectorised reduction. Strict IEEE (no -ffast-math) forbids the
 *   compiler from reordering a sum on its own; `omp simd reduction` permits it for this loop only.
 */
#ifndef IN_COMMON_H
#define IN_COMMON_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(IN_NO_MULTIVERSION)
#define IN_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IN_HOT
#endif

#if defined(__GNUC__)
#define IN_MAYBE_UNUSED __attribute__((unused))
#else
#define IN_MAYBE_UNUSED
#endif

#define IN_PARALLEL_MIN ((size_t)1 << 15)

#define IN_PRAGMA(x) _Pragma(#x)
#define IN_SIMD_SUM(...) IN_PRAGMA(omp simd reduction(+ : __VA_ARGS__))

/* Instantiation of the *_template.h files: NAME(mean_cpu) is in_mean_cpu_f32 or in_mean_cpu_f64. */
#define IN_CAT3(a, b, c) a##b##c
#define IN_NAME3(a, b, c) IN_CAT3(a, b, c)

#endif
