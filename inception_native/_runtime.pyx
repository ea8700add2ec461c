# cython: language_level=3
"""Build facts and thread control (see inception_native.info)."""

cdef extern from "runtime.h":
    int in_openmp_enabled()
    void in_set_num_threads(int n)
    int in_get_num_threads()
    const char *in_compiler()
    const char *in_build_flags()
    const char *in_kernel_isa()


def openmp_enabled():
    return bool(in_openmp_enabled())


def set_num_threads(n):
    """Threads the native kernels use from now on: OpenMP's (OMP_NUM_THREADS sets the starting
    value; the setting belongs to the calling Python thread) and the BLAS's behind gemm."""
    from . import _blas_threads
    from ._checks import size
    n = size("n", n, 1)
    in_set_num_threads(n)
    _blas_threads.set(n)


def get_num_threads():
    return in_get_num_threads()


def build_info():
    return {
        "compiler": in_compiler().decode(),
        "flags": in_build_flags().decode(),
        "openmp": bool(in_openmp_enabled()),
        "kernel_isa": in_kernel_isa().decode(),
    }
