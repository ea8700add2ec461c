"""Thread count of the BLAS behind gemm (the OpenBLAS SciPy ships), for the convolution.

The convolution shares its blocks out among OpenMP threads, each lowering and multiplying its
own blocks; meanwhile the BLAS must run single-threaded (two pools of threads on the same
cores slow each other down). OpenBLAS's thread count is one global setting: `single_threaded()`
sets it to 1 while any convolution runs and puts it back after the last one, and counts the
callers so that overlapping calls from several Python threads restore it once, correctly.

The BLAS is found from SciPy's own sgemm: dladdr names the library that holds it, and dlsym
on that library also searches the libraries it loaded (the OpenBLAS). Where that fails (no
SciPy, another BLAS, no dladdr), `available()` is False and the convolution stays on one
thread of its own around a BLAS left as it is.
"""
import ctypes
import threading


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _find():
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


_set, _get = _find()
_lock = threading.Lock()
_users = 0
_saved = 1


def available():
    return _set is not None


def get():
    """The BLAS's thread count (None when it cannot be read)."""
    return _get() if _get else None


def set(n):
    """Set the BLAS's thread count (does nothing when it cannot be set)."""
    if _set:
        _set(int(n))


class single_threaded:
    """Context: the BLAS runs on one thread inside (if it can be told to)."""

    def __enter__(self):
        global _users, _saved
        with _lock:
            if _users == 0 and _set:
                _saved = _get()
                _set(1)
            _users += 1

    def __exit__(self, *exc):
        global _users
        with _lock:
            _users -= 1
            if _users == 0 and _set:
                _set(_saved)
