"""Memory (issue 6): no reference or memory leak across 10,000 wrapper calls, valid and
invalid; and, as a slow test skipped by default, a tensor of more than 2^31 elements through
mean_cpu, variance_cpu and normalize_cpu (64-bit indexing):

    INCEPTION_NATIVE_SLOW=1 PYTHONPATH=. python -m pytest -q tests/test_memory.py -k 2_31

(it needs about 9 GB of free memory and a minute or two)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from inception_native import native

ROOT = Path(native.__file__).resolve().parents[1]


def test_wrappers_keep_no_reference_to_their_arguments():
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    c = [np.ones(3, np.float32) for _ in range(8)]
    y, n = np.empty_like(x), np.empty_like(x)
    counts = [sys.getrefcount(a) for a in (x, y, n, *c)]
    for _ in range(100):
        native.batchnorm_forward(x, *c[:4], y, c[4], c[5])
        native.batchnorm_backward(x, x, c[0], c[1], c[2], y, c[3], c[4])
        native.batchnorm_forward_darknet(x, *c[:4], y, n, c[4], c[5])
        native.mean_cpu(x, 2, 3, 5, c[7])
        with pytest.raises(ValueError):
            native.mean_cpu(x, 2, 3, 6, c[7])
    assert [sys.getrefcount(a) for a in (x, y, n, *c)] == counts


LEAK = textwrap.dedent("""
    import numpy as np
    from inception_native import native

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    rng = np.random.default_rng(0)
    def calls(count):
        for i in range(count):
            # fresh 4 KiB arrays every call: a leaked reference keeps each one alive
            x = rng.standard_normal((2, 8, 64)).astype(np.float32)
            c = [np.ones(8, np.float32) for _ in range(7)]
            y = np.empty_like(x)
            kernel = i % 5
            if kernel == 0:
                native.batchnorm_forward(x, *c[:4], y, c[4], c[5])
            elif kernel == 1:
                native.batchnorm_backward(x, x, c[0], c[1], c[2], y, c[3], c[4])
            elif kernel == 2:
                native.batchnorm_forward_darknet(x, *c[:4], y, np.empty_like(x), c[4], c[5])
            elif kernel == 3:
                native.variance_cpu(x, c[0], 2, 8, 64, c[1])
                native.conv2d_forward(x.reshape(2, 8, 8, 8), np.ones((4, 8, 3, 3), np.float32),
                                      None, np.empty((2, 4, 6, 6), np.float32))
            else:  # the error paths: an exception (and its message) per call
                for bad in (lambda: native.mean_cpu(x, 2, 8, 65, c[0]),
                            lambda: native.batchnorm_forward(x.astype(np.float64), *c[:4], y,
                                                             c[4], c[5])):
                    try:
                        bad()
                    except (TypeError, ValueError):
                        pass
    calls(2000)  # warm-up: allocator pools, interned strings, caches
    before = rss_mb()
    calls(10000)
    print(before, rss_mb())
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_no_leak_across_10000_calls():
    """RSS after 10,000 more calls within 8 MiB of its value after warm-up; a leak of one 4 KiB
    array per call would add 40 MiB."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", LEAK], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    before, after = map(float, done.stdout.split())
    print(f"RSS after warm-up {before:.1f} MiB, after 10,000 calls {after:.1f} MiB")
    assert after - before < 8, (before, after)


@pytest.mark.skipif(not os.environ.get("INCEPTION_NATIVE_SLOW"),
                    reason="slow (about 9 GB): set INCEPTION_NATIVE_SLOW=1 to run")
def test_more_than_2_31_elements_through_mean_variance_normalize():
    """Two channels of 2^30 + 4 values each (2^31 + 8 in all, float32): alternating c - 1,
    c + 1, and in channel 1 the very last value raised by d, so an index that wraps at 2^31
    (or at 2^32 bytes) would miss it."""
    b, f, s = 1, 2, 2**30 + 4
    n = b * s
    x = np.empty((b, f, s), np.float32)
    centre = np.array([3.0, -2.0], np.float32)
    for i in range(f):
        x[0, i, 0::2] = centre[i] - 1
        x[0, i, 1::2] = centre[i] + 1
    d = 2.0 ** 20
    x[0, 1, -1] += d
    assert x.size > 2**31
    # exact statistics from the value counts: channel 0 (c-1, c+1) x n/2 each; channel 1 the same
    # with one c+1 raised to c+1+d
    expected_mean = np.array([centre[0], centre[1] + d / n], np.float64)
    expected_var = np.empty(2)
    expected_var[0] = n / (n - 1)
    m = expected_mean[1]
    values = np.array([centre[1] - 1, centre[1] + 1, centre[1] + 1 + d], np.float64)
    counts = np.array([n / 2, n / 2 - 1, 1])
    expected_var[1] = (counts * (values - m) ** 2).sum() / (n - 1)
    mean, var = np.empty(f, np.float32), np.empty(f, np.float32)
    native.mean_cpu(x, b, f, s, mean)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
    native.variance_cpu(x, mean, b, f, s, var)
    np.testing.assert_allclose(var, expected_var, rtol=1e-5)
    native.normalize_cpu(x, mean, var, b, f, s)
    std = np.sqrt(var.astype(np.float64)) + np.float32(1e-6)
    for i, k in ((0, 0), (0, s - 1), (1, 0), (1, s - 2), (1, s - 1), (1, 2**30 + 1)):
        raw = values[{0: 0, 1: 1}[k % 2]] if i == 1 else centre[0] + (1 if k % 2 else -1)
        if i == 1 and k == s - 1:
            raw = values[2]
        want = (raw - float(mean[i])) / std[i]
        np.testing.assert_allclose(x[0, i, k], want, rtol=1e-5, atol=1e-5)
