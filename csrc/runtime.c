/* runtime.c: build facts and OpenMP thread control for `info` and set_num_threads(). */
#include "runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef IN_BUILD_FLAGS
#define IN_BUILD_FLAGS "unknown"
#endif

int in_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

void in_set_num_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int in_get_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *in_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown C compiler";
#endif
}

const char *in_build_flags(void) { return IN_BUILD_FLAGS; }

/* The clone of the IN_HOT kernels that GCC's resolver picks on this CPU (see common.h). */
const char *in_kernel_isa(void)
{
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(IN_NO_MULTIVERSION)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2)";
    return "x86-64 baseline";
#else
    return "single build for the compiler's default target";
#endif
}
