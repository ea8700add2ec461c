"""Argument checks shared by the native wrappers and their NumPy twins.

Every kernel validates its arguments here before any memory is touched, so a bad call raises a
TypeError or ValueError that names the argument and says what was expected, and both backends
reject exactly the same calls.
"""
import math
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def size(name, value, minimum=0):
    """A non-negative (or >= minimum) integer size, as a Python int."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def number(name, value, low=-math.inf, high=math.inf, low_open=False):
    """A finite real number in [low, high] (or (low, high] when low_open), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{low}, {high}], got {value}")
    return value


def float_array(name, a, dtype=None, writeable=False):
    """A C-contiguous float32/float64 ndarray (of `dtype`, when given); returns its dtype."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like the first array")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    return a.dtype


def arrays(*specs):
    """Check (name, array, expected element count, written) tuples; all share one float dtype.

    The expected count is an int (exact) or ("at least", n) for strided vectors.
    Returns True for float64, False for float32.
    """
    dtype = None
    for name, a, count, written in specs:
        dtype = float_array(name, a, dtype, written)
        if isinstance(count, tuple):
            if a.size < count[1]:
                raise ValueError(f"{name} has {a.size} elements, needs at least {count[1]}")
        elif a.size != count:
            raise ValueError(f"{name} has {a.size} elements, expected {count}")
    return dtype == np.float64


def tensor_sizes(**named):
    """Sizes of a (batch, channels, spatial) tensor: integers >= 1."""
    return tuple(size(name, value, 1) for name, value in named.items())


def strided(n, inc):
    """Elements a strided vector of n values at stride inc spans: (n - 1) * inc + 1."""
    return ("at least", (n - 1) * inc + 1 if n else 0)


def nchw(name, x):
    """(B, C, S) of an activation of shape (B, C, *spatial), ndim >= 2, every size >= 1."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (batch, channels, ...), got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def same_shape(name, a, shape):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
