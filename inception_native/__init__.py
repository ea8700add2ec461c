"""inception_native: Darknet's BatchNorm and convolution kernels in C99, Inception on the CPU.

Modules: blas (Darknet's blas routines), batchnorm (the BatchNorm layer kernels), native (every
native kernel in one namespace), reference (their NumPy twins, same names and signatures),
layers (layer objects on either backend).
"""
__version__ = "0.1.0"

import os

# Idle OpenMP threads: libgomp lets a thread that waits for work spin 300,000 pauses before it
# sleeps (4.8 ms of a core after every parallel region on an AMD Zen 3), taking a core from
# whatever else runs on the machine. 20,000 (about 0.3 ms) still bridges the Python between two
# kernels of a network. libgomp reads the setting once, when it is loaded: our extensions load
# it below, and the variable is removed again after, so that the libgomp of another library
# (PyTorch bundles its own) and child processes keep their defaults. It does not hold when the
# process loaded the system's libgomp before us, or when the user chose a spin count or wait
# policy of their own (theirs is left as it is).
_spin_count_ours = not {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ)
if _spin_count_ours:
    os.environ["GOMP_SPINCOUNT"] = "20000"
try:
    from .threads import get_num_threads, set_num_threads
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(
        "inception_native's compiled modules are missing: install the package with "
        "`pip install .` and run it from outside the source tree (python imports the "
        "unbuilt source folder when it is the current directory)"
    ) from error
finally:
    if _spin_count_ours:
        del os.environ["GOMP_SPINCOUNT"]

__all__ = ["get_num_threads", "set_num_threads", "__version__"]
