# cython: language_level=3
"""Build facts and OpenMP's thread count, raw (inception_native.threads checks and owns them)."""

cdef extern from "runtime.h":
    int c_openmp_enabled "in_openmp_enabled"()
    void c_set_num_threads "in_set_num_threads"(int n)
    int c_get_num_threads "in_get_num_threads"()
    const char *in_compiler()
    const char *in_build_flags()
    const char *in_kernel_isa()


def set_openmp_threads(int n):
    c_set_num_threads(n)


def get_openmp_threads():
    return c_get_num_threads()


def openmp_enabled():
    return bool(c_openmp_enabled())


def build_info():
    return {
        "compiler": in_compiler().decode(),
        "flags": in_build_flags().decode(),
        "openmp": bool(c_openmp_enabled()),
        "kernel_isa": in_kernel_isa().decode(),
    }
