"""Thread control, in one place: the OpenMP threads of the native kernels and the threads of the
BLAS libraries underneath (the OpenBLAS behind SciPy, which gemm and the im2col convolution
call, and NumPy's own, which the NumPy twins call).

set_num_threads(n) accepts 1 <= n <= MAX_THREADS: four threads per CPU this process may run on,
and never fewer than 8. More would only oversubscribe the cores, and a large n costs real
memory (libgomp reserves a stack per thread: 10**9 threads asks for about 224 GB).

The im2col convolution shares its blocks among OpenMP threads, each lowering and multiplying its
own blocks; meanwhile the BLAS must run single-threaded (two pools of threads on the same cores
slow each other down). OpenBLAS's thread count is one global setting: `single_threaded_blas()`
sets it to 1 while any convolution runs and puts it back after the last one, and counts the
callers so that overlapping calls from several Python threads restore it once, correctly.

The BLAS is found from SciPy's own sgemm: dladdr names the library that holds it, and dlsym on
that library also searches the libraries it loaded (the OpenBLAS). Where that fails (no SciPy,
another BLAS, no dladdr), `blas_controllable()` is False and the convolution stays on one thread
of its own around a BLAS left as it is.
"""
import ctypes
import glob
import os
import threading

from . import _checks as check
from ._runtime import get_openmp_threads, set_openmp_threads

try:
    CPUS = len(os.sched_getaffinity(0))
except AttributeError:  # not Linux
    CPUS = os.cpu_count() or 1
MAX_THREADS = max(8, 4 * CPUS)


def set_num_threads(n):
    """Threads the native kernels use from now on, 1 <= n <= MAX_THREADS: OpenMP's
    (OMP_NUM_THREADS sets the starting value; the setting belongs to the calling Python thread)
    and the BLAS's behind gemm and the NumPy twins."""
    n = check.size("n", n, 1)
    if n > MAX_THREADS:
        raise ValueError(f"n must be <= {MAX_THREADS} (4 threads per CPU, this process may use "
                         f"{CPUS}), got {n}")
    set_openmp_threads(n)
    set_blas_threads(n)


def threads_text(n):
    """n threads in words: 1 thread, 2 threads, ..."""
    return f"{n} thread{'' if n == 1 else 's'}"


def get_num_threads():
    """OpenMP threads the next native kernel call from this Python thread will use."""
    return get_openmp_threads()


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _scipy_blas():
    """(set_num_threads, get_num_threads) of the BLAS behind scipy's sgemm, or (None, None)."""
    try:
        from scipy.linalg.cython_blas import __pyx_capi__ as capi
        get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        capsule = capi["sgemm"]
        address = get_pointer(capsule, get_name(capsule))
        info = _DlInfo()
        if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
            return None, None
        lib = ctypes.CDLL(info.dli_fname.decode())
    except (ImportError, OSError, AttributeError, KeyError):
        return None, None
    for prefix in ("scipy_openblas", "openblas"):
        for suffix in ("", "64_"):
            setter, getter = f"{prefix}_set_num_threads{suffix}", f"{prefix}_get_num_threads{suffix}"
            if hasattr(lib, setter) and hasattr(lib, getter):
                setter, getter = getattr(lib, setter), getattr(lib, getter)
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                return setter, getter
    return None, None


def _numpy_blas_setters():
    """set_num_threads of the OpenBLAS NumPy's wheel ships (numpy.libs), if any."""
    import numpy
    libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    setters = []
    for path in glob.glob(os.path.join(libs, "*openblas*")):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "scipy_openblas_set_num_threads64_"):
            setters.append(lib.scipy_openblas_set_num_threads64_)
    return setters


_set_blas, _get_blas = _scipy_blas()
_set_numpy_blas = _numpy_blas_setters()
_lock = threading.Lock()
_users = 0
_saved = 1


def blas_controllable():
    """True when the thread count of SciPy's BLAS can be read and set."""
    return _set_blas is not None


def get_blas_threads():
    """The thread count of SciPy's BLAS (None when it cannot be read)."""
    return _get_blas() if _get_blas else None


def set_blas_threads(n):
    """Set the thread count of SciPy's BLAS and NumPy's (OPENBLAS_NUM_THREADS only counts at
    load time); does nothing for a BLAS that cannot be told."""
    if _set_blas:
        _set_blas(int(n))
    for setter in _set_numpy_blas:
        setter(ctypes.c_int(int(n)))


class single_threaded_blas:
    """Context: SciPy's BLAS runs on one thread inside (if it can be told to)."""

    def __enter__(self):
        global _users, _saved
        with _lock:
            if _users == 0 and _set_blas:
                _saved = _get_blas()
                _set_blas(1)
            _users += 1

    def __exit__(self, *exc):
        global _users
        with _lock:
            _users -= 1
            if _users == 0 and _set_blas:
                _set_blas(_saved)


if get_num_threads() > MAX_THREADS:  # OMP_NUM_THREADS asked for more than the cap
    set_openmp_threads(MAX_THREADS)
