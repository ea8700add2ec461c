"""Each Darknet blas routine, native against its NumPy twin, and their shared argument checks."""
import numpy as np
import pytest
from conftest import DTYPES, assert_close

from inception_native import blas, reference

# (batch, filters, spatial): one channel, spatial 1, sizes that are no multiple of a vector width
SHAPES = [(1, 1, 2), (2, 3, 1), (3, 1, 17), (2, 5, 7 * 7), (4, 3, 33), (16, 7, 15), (1, 64, 129)]


def random_tensor(rng, shape, dtype, offset=0.0):
    return (rng.standard_normal(shape) + offset).astype(dtype)


def assert_same_results(name, rng, dtype, make_args, written):
    """Call blas.name and reference.name on copies of the same arguments; compare what is written."""
    args = make_args(rng, dtype)
    native_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    numpy_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    assert getattr(blas, name)(*native_args) is None
    getattr(reference, name)(*numpy_args)
    for i in written:
        assert_close(native_args[i], numpy_args[i], dtype)
    return native_args, args


def bfs_args(make):
    """Arguments for a (x..., batch, filters, spatial, out...) routine at each shape."""
    return [lambda rng, dtype, shape=shape: make(rng, dtype, *shape) for shape in SHAPES]


TENSOR_ROUTINES = {
    "mean_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt, 3.0), b, f, s,
                                           np.zeros(f, dt)], [4]),
    "variance_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt, 3.0),
                                               random_tensor(rng, f, dt, 3.0), b, f, s,
                                               np.zeros(f, dt)], [5]),
    "normalize_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                                random_tensor(rng, f, dt),
                                                rng.uniform(0.5, 2, f).astype(dt), b, f, s], [0]),
    "scale_bias": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                             random_tensor(rng, f, dt), b, f, s], [0]),
    "add_bias": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                           random_tensor(rng, f, dt), b, f, s], [0]),
    "backward_bias": (lambda rng, dt, b, f, s: [random_tensor(rng, f, dt),
                                                random_tensor(rng, (b, f, s), dt), b, f, s], [0]),
    "backward_scale_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                                     random_tensor(rng, (b, f, s), dt), b, f, s,
                                                     random_tensor(rng, f, dt)], [5]),
    "mean_delta_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                                 rng.uniform(0.5, 2, f).astype(dt), b, f, s,
                                                 np.zeros(f, dt)], [5]),
    "variance_delta_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                                     random_tensor(rng, (b, f, s), dt),
                                                     random_tensor(rng, f, dt),
                                                     rng.uniform(0.5, 2, f).astype(dt), b, f, s,
                                                     np.zeros(f, dt)], [7]),
    "normalize_delta_cpu": (lambda rng, dt, b, f, s: [random_tensor(rng, (b, f, s), dt),
                                                      random_tensor(rng, f, dt),
                                                      rng.uniform(0.5, 2, f).astype(dt),
                                                      random_tensor(rng, f, dt),
                                                      random_tensor(rng, f, dt), b, f, s,
                                                      random_tensor(rng, (b, f, s), dt)], [8]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(TENSOR_ROUTINES))
def test_tensor_routine_matches_numpy(name, shape, dtype, rng):
    make, written = TENSOR_ROUTINES[name]
    assert_same_results(name, rng, dtype, lambda rng, dt: make(rng, dt, *shape), written)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, incx, incy", [(0, 1, 1), (1, 1, 1), (17, 1, 1), (100_003, 1, 1),
                                           (9, 2, 3), (40_000, 3, 1)])
def test_vector_routines_match_numpy(n, incx, incy, dtype, rng):
    span = lambda inc: max((n - 1) * inc + 1, 1) + 2  # noqa: E731 - room past the last element
    assert_same_results("axpy_cpu", rng, dtype, lambda rng, dt: [n, 0.7, random_tensor(rng, span(incx), dt),
                                                       incx, random_tensor(rng, span(incy), dt),
                                                       incy], [4])
    assert_same_results("scal_cpu", rng, dtype, lambda rng, dt: [n, -1.5, random_tensor(rng, span(incx), dt),
                                                       incx], [2])
    assert_same_results("copy_cpu", rng, dtype, lambda rng, dt: [n, random_tensor(rng, span(incx), dt), incx,
                                                       random_tensor(rng, span(incy), dt), incy], [3])
    assert_same_results("fill_cpu", rng, dtype, lambda rng, dt: [n, 2.5, random_tensor(rng, span(incx), dt),
                                                       incx], [2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_routines_leave_other_elements_alone(dtype, rng):
    y = random_tensor(rng, 10, dtype)
    before = y.copy()
    blas.axpy_cpu(4, 2.0, np.ones(4, dtype), 1, y, 3)  # touches 0, 3, 6, 9
    touched = np.arange(10) % 3 == 0
    assert_close(y[touched], before[touched] + 2, dtype)
    np.testing.assert_array_equal(y[~touched], before[~touched])


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_bias_and_scale_accumulate(dtype, rng):
    b, f, s = 3, 4, 5
    delta, x_norm = random_tensor(rng, (b, f, s), dtype), random_tensor(rng, (b, f, s), dtype)
    bias_updates, scale_updates = np.full(f, 10, dtype), np.full(f, -10, dtype)
    blas.backward_bias(bias_updates, delta, b, f, s)
    blas.backward_scale_cpu(x_norm, delta, b, f, s, scale_updates)
    assert_close(bias_updates, 10 + delta.sum(axis=(0, 2)), dtype)
    assert_close(scale_updates, -10 + (delta * x_norm).sum(axis=(0, 2)), dtype)
    blas.backward_bias(bias_updates, delta, b, f, s)  # a second call adds again
    assert_close(bias_updates, 10 + 2 * delta.sum(axis=(0, 2)), dtype)


def test_darknet_arithmetic_constants(rng):
    """normalize_cpu adds 1e-6 outside the root; the deltas put 1e-5 inside it."""
    x = np.array([[[3.0]], [[1.0]]])  # batch 2, one channel, spatial 1
    blas.normalize_cpu(x, np.array([1.0]), np.array([4.0]), 2, 1, 1)
    np.testing.assert_allclose(x.ravel(), [2 / (2 + float(np.float32(1e-6))), 0], rtol=1e-15)
    mean_delta = np.zeros(1)
    blas.mean_delta_cpu(np.array([1.0, 2.0]), np.array([4.0]), 2, 1, 1, mean_delta)
    np.testing.assert_allclose(mean_delta, [-3 / np.sqrt(4 + float(np.float32(1e-5)))], rtol=1e-15)


def test_variance_is_sound_far_from_zero(rng):
    """Mean 1e4, standard deviation 1e-2: float32 data, variance still to float32 precision."""
    x = (1e4 + 1e-2 * rng.standard_normal((8, 2, 1000))).astype(np.float32)
    mean, variance = np.zeros(2, np.float32), np.zeros(2, np.float32)
    blas.mean_cpu(x, 8, 2, 1000, mean)
    blas.variance_cpu(x, mean, 8, 2, 1000, variance)
    x64 = x.astype(np.float64).transpose(1, 0, 2).reshape(2, -1)
    # the float32 mean is off by up to half an ulp (5e-4): that shifts the variance by mean_err^2
    np.testing.assert_allclose(variance, x64.var(axis=1, ddof=1), rtol=1e-2)


# ---- bad input: both backends raise the same clear errors --------------------------------

BACKENDS = [blas, reference]


@pytest.mark.parametrize("module", BACKENDS, ids=["native", "numpy"])
@pytest.mark.parametrize("bad, error, words", [
    (np.zeros(24, np.float16), TypeError, "x must have dtype float32 or float64, got float16"),
    (np.zeros(24, np.int32), TypeError, "x must have dtype float32 or float64, got int32"),
    (np.zeros(48, np.float32)[::2], ValueError, "x must be C-contiguous"),
    (np.zeros(23, np.float32), ValueError, "x has 23 elements, expected 24"),
    ([0.0] * 24, TypeError, "x must be a numpy.ndarray, got list"),
    (np.zeros(24, np.float64), TypeError, "mean has dtype float32, expected float64"),
])
def test_bad_arrays_are_rejected(module, bad, error, words):
    mean = np.zeros(3, np.float32)
    with pytest.raises(error, match=words):
        module.mean_cpu(bad, 2, 3, 4, mean)


@pytest.mark.parametrize("module", BACKENDS, ids=["native", "numpy"])
def test_bad_sizes_are_rejected(module):
    x, out = np.zeros(24, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="batch must be >= 1, got -2"):
        module.mean_cpu(x, -2, 3, -4, out)
    with pytest.raises(ValueError, match="spatial must be >= 1, got 0"):
        module.mean_cpu(x, 2, 3, 0, out)
    with pytest.raises(TypeError, match="filters must be an integer"):
        module.mean_cpu(x, 2, 3.0, 4, out)
    with pytest.raises(ValueError, match="batch\\*spatial must be > 1"):
        module.variance_cpu(np.zeros(3, np.float32), out, 1, 3, 1, out.copy())
    with pytest.raises(ValueError, match="INCX must be >= 1, got 0"):
        module.axpy_cpu(3, 1.0, x, 0, x, 1)
    with pytest.raises(ValueError, match="Y has 24 elements, needs at least 25"):
        module.copy_cpu(13, x, 1, x, 2)
    with pytest.raises(ValueError, match="ALPHA must be a finite number"):
        module.scal_cpu(3, float("nan"), x, 1)
    with pytest.raises(ValueError, match="mean is read-only"):
        out.flags.writeable = False
        module.mean_cpu(x, 2, 3, 4, out)


@pytest.mark.parametrize("n", [5, 100_000])
def test_overlapping_vectors_follow_darknets_serial_loop(n):
    """X and Y views of one buffer, shifted by one: Darknet's serial loop carries X[0] forward
    (NumPy, which buffers, would not: the native kernel follows Darknet here, never a race)."""
    a = np.arange(n + 1, dtype=np.float64)
    blas.copy_cpu(n, a[:-1], 1, a[1:], 1)
    np.testing.assert_array_equal(a, np.zeros(n + 1))
    b = np.ones(n + 1)
    blas.axpy_cpu(n, 1.0, b[:-1], 1, b[1:], 1)
    np.testing.assert_array_equal(b, np.arange(1, n + 2, dtype=np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [0.0, 1e-2])
@pytest.mark.parametrize("n", [2, 37, 100_003])
def test_sgd_momentum_is_the_scal_axpy_sequence_in_one_pass(n, decay, dtype, rng):
    """The fused step gives the bits of v *= m; v += g; v += decay * p; p += -lr * v (native
    scal_cpu and axpy_cpu, as the optimiser called them) and of its NumPy twin; -0 in v stays
    -0 without weight decay (no 0 * p term)."""
    p, g, v = (random_tensor(rng, n, dtype) for _ in range(3))
    v[0], g[0] = -0.0, -0.0
    fused = [p.copy(), g, v.copy()]
    blas.sgd_momentum_cpu(*fused, 0.05, 0.9, decay)
    twin = [p.copy(), g, v.copy()]
    reference.sgd_momentum_cpu(*twin, 0.05, 0.9, decay)
    steps = [p.copy(), v.copy()]
    blas.scal_cpu(n, 0.9, steps[1], 1)
    blas.axpy_cpu(n, 1.0, g, 1, steps[1], 1)
    if decay:
        blas.axpy_cpu(n, decay, steps[0], 1, steps[1], 1)
    blas.axpy_cpu(n, -0.05, steps[1], 1, steps[0], 1)
    for ours, want in ((fused[0], steps[0]), (fused[2], steps[1]), (twin[0], steps[0]),
                       (twin[2], steps[1])):
        np.testing.assert_array_equal(ours.view(f"u{ours.itemsize}"), want.view(f"u{want.itemsize}"))
    assert not np.array_equal(fused[0], p)  # it moved


@pytest.mark.parametrize("module", BACKENDS, ids=["native", "numpy"])
def test_sgd_momentum_rejects_bad_input(module):
    p, g, v = np.zeros(6, np.float32), np.ones(6, np.float32), np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        module.sgd_momentum_cpu(p, g, v, -0.1, 0.9, 0.0)
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        module.sgd_momentum_cpu(p, g, v, 0.1, 1.5, 0.0)
    with pytest.raises(ValueError, match="weight_decay must be a finite number"):
        module.sgd_momentum_cpu(p, g, v, 0.1, 0.9, float("nan"))
    with pytest.raises(ValueError, match="grad has 5 elements, expected 6"):
        module.sgd_momentum_cpu(p, g[:5], v, 0.1, 0.9, 0.0)
    with pytest.raises(TypeError, match="velocity has dtype float64, expected float32"):
        module.sgd_momentum_cpu(p, g, v.astype(np.float64), 0.1, 0.9, 0.0)
    with pytest.raises(ValueError, match="p and velocity must not overlap"):
        module.sgd_momentum_cpu(p, g, p, 0.1, 0.9, 0.0)
    with pytest.raises(ValueError, match="grad must be C-contiguous"):
        module.sgd_momentum_cpu(p[:3], np.ones(6, np.float32)[::2], v[:3], 0.1, 0.9, 0.0)
    with pytest.raises(TypeError, match="p must be a numpy.ndarray, got list"):
        module.sgd_momentum_cpu([0.0], g, v, 0.1, 0.9, 0.0)
    np.testing.assert_array_equal(p, 0)  # nothing was written
