"""inception_native: Darknet's BatchNorm and convolution kernels in C99, Inception on the CPU.

Modules: blas (Darknet's blas routines), batchnorm (the BatchNorm layer kernels), native (every
native kernel in one namespace), reference (their NumPy twins, same names and signatures),
layers (layer objects on either backend).
"""
__version__ = "0.1.0"

try:
    from .threads import get_num_threads, set_num_threads
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(
        "inception_native's compiled modules are missing: install the package with "
        "`pip install .` and run it from outside the source tree (python imports the "
        "unbuilt source folder when it is the current directory)"
    ) from error

__all__ = ["get_num_threads", "set_num_threads", "__version__"]
