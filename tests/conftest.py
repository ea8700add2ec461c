import numpy as np
import pytest

from inception_native import native, reference

DTYPES = [np.float32, np.float64]
# relative tolerance of native vs NumPy: both sum in float64, so they differ only by the
# rounding of the last float operations
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-5, np.float64: 1e-12}


def assert_close(actual, expected, dtype, scale=1.0):
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=[native, reference], ids=["native", "numpy"])
def backend(request):
    return request.param


# Hypothesis profiles of the fuzz suite (tests/fuzz_kernels.py, run by tests/test_fuzz.py):
# `--hypothesis-profile=ci` (the default run: a few examples per kernel) or `long` (10,000 per
# kernel; see README.md, "Reliability").
try:
    from hypothesis import settings as _settings
except ImportError:  # the fuzz tests skip themselves
    pass
else:
    _settings.register_profile("ci", max_examples=20, derandomize=True, database=None,
                               print_blob=True)
    _settings.register_profile("long", max_examples=10_000, database=None, print_blob=True)
