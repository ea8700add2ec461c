"""Threads (issue 6): the wrappers release the GIL around every C call; calls from several
Python threads on separate buffers give the bits serial calls give; results repeat bit for bit
run to run at a fixed thread count and agree across thread counts; set_num_threads takes effect.
No timings: every assertion is about results, source text or the process's thread count."""
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from inception_native import get_num_threads, native, set_num_threads
from inception_native._runtime import openmp_enabled

PACKAGE = Path(__file__).resolve().parents[1] / "inception_native"  # the sources: the .pyx are not installed
ROOT = PACKAGE.parent


def test_every_c_call_runs_with_the_gil_released():
    """Each call of a C kernel (in_NAME(f64, ...), the dispatchers of csrc/in_*.pxd) in the
    Cython wrappers sits inside a `with nogil:` block."""
    calls = 0
    for pyx in sorted(PACKAGE.glob("*.pyx")):
        lines = pyx.read_text().splitlines()
        in_extern = False
        for number, line in enumerate(lines):
            if line.startswith("cdef extern"):
                in_extern = True
                continue
            if in_extern and line and not line[0].isspace():
                in_extern = False
            if in_extern or not re.search(r"\bin_\w+\(f64\b", line):
                continue
            calls += 1
            indent = len(line) - len(line.lstrip())
            for above in reversed(lines[:number]):
                stripped = above.lstrip()
                depth = len(above) - len(stripped)
                if stripped and depth < indent:
                    if stripped.startswith("with nogil"):
                        break
                    indent = depth
                    assert not stripped.startswith(("def ", "cdef ", "cpdef ")), \
                        f"{pyx.name}:{number + 1} calls C with the GIL held: {line.strip()}"
            else:
                pytest.fail(f"{pyx.name}:{number + 1} calls C outside `with nogil`")
    assert calls >= 43  # every kernel wrapper


def workload(seed, dtype=np.float32, shape=(4, 48, 12, 12)):
    """BatchNorm (both flavours, forward and backward), blas reductions, convolution and
    pooling on buffers of its own; returns every output."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    B, C = shape[:2]
    S = x.size // (B * C)
    g, b = rng.uniform(0.5, 2, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    out = {k: np.empty(C, dtype) for k in ("mean", "invstd", "dgamma", "dbeta", "bmean", "bvar")}
    out.update(rm=np.zeros(C, dtype), rv=np.ones(C, dtype), y=np.empty_like(x), dx=np.empty_like(x))
    native.batchnorm_forward(x, g, b, out["rm"], out["rv"], out["y"], out["mean"], out["invstd"])
    native.batchnorm_backward(dy, x, out["mean"], out["invstd"], g, out["dx"], out["dgamma"],
                              out["dbeta"])
    native.mean_cpu(x, B, C, S, out["bmean"])
    native.variance_cpu(x, out["bmean"], B, C, S, out["bvar"])
    d = {k: np.empty_like(x) for k in ("dy", "dxn")}
    d.update({k: np.zeros(C, dtype) for k in ("dmean", "dvar", "su", "bu", "drm")})
    d["drv"] = np.ones(C, dtype)
    native.batchnorm_forward_darknet(x, g, b, d["drm"], d["drv"], d["dy"], d["dxn"], d["dmean"],
                                     d["dvar"])
    delta = dy.copy()
    native.batchnorm_backward_darknet(delta, x, d["dxn"], d["dmean"], d["dvar"], g, d["su"], d["bu"])
    w = rng.standard_normal((8, C, 3, 3)).astype(dtype)
    conv = np.empty((B, 8, shape[2], shape[3]), dtype)
    native.conv2d_forward(x, w, None, conv, 1, 1)
    pooled = np.empty((B, C, shape[2] // 2, shape[3] // 2), dtype)
    native.max_pool2d_forward(x, pooled, np.empty(pooled.shape, np.int64), 2, 2, 0, False)
    return [*out.values(), *d.values(), delta, conv, pooled]


def same_bits(a, b):
    return all(np.array_equal(u, v, equal_nan=True) for u, v in zip(a, b))


def in_a_thread(fn, *args):
    """Run fn in a fresh Python thread (OpenMP's thread count is per calling thread: a fresh
    one starts from OMP_NUM_THREADS, as the concurrent workers below do)."""
    result = []
    t = threading.Thread(target=lambda: result.append(fn(*args)))
    t.start()
    t.join()
    return result[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concurrent_python_threads_give_the_serial_bits(dtype):
    seeds = range(6)
    serial = [in_a_thread(workload, s, dtype) for s in seeds]
    results = {}
    start = threading.Barrier(len(seeds))

    def worker(seed):
        start.wait()  # all at once
        results[seed] = [workload(seed, dtype) for _ in range(3)]

    threads = [threading.Thread(target=worker, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seeds:
        for run in results[s]:
            assert same_bits(run, serial[s]), f"seed {s}: a concurrent call differs from serial"


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
def test_thread_counts_repeat_bit_for_bit_and_agree():
    """Large enough to run in parallel (>= 2^15 elements); 1, 2 and 3 OpenMP threads."""
    before = get_num_threads()
    results = {}
    try:
        for n in (1, 2, 3):
            set_num_threads(n)
            assert get_num_threads() == n
            results[n] = [workload(7, np.float32, (4, 64, 14, 14)) for _ in range(2)]
    finally:
        set_num_threads(before)
    for n, (first, second) in results.items():
        assert same_bits(first, second), f"{n} threads: two runs differ"
    for n in (2, 3):
        for got, want in zip(results[n][0], results[1][0]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1, np.abs(want).max()))
    # all but the convolution (its GEMMs are split by thread) claim more: the same bits for
    # every thread count (README, "What the C does")
    not_conv = lambda r: r[:-2] + r[-1:]  # noqa: E731
    for n in (2, 3):
        assert same_bits(not_conv(results[n][0]), not_conv(results[1][0])), f"{n} threads: bits"


def test_set_num_threads_checks_its_argument():
    from inception_native.threads import MAX_THREADS
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError),
                       (MAX_THREADS + 1, ValueError), (100000, ValueError), (10**9, ValueError)):
        with pytest.raises(error, match=r"^n must be"):
            set_num_threads(bad)


def test_set_num_threads_accepts_up_to_the_cap():
    from inception_native.threads import CPUS, MAX_THREADS
    assert MAX_THREADS == max(8, 4 * CPUS)
    before = get_num_threads()
    try:
        set_num_threads(MAX_THREADS)
        assert get_num_threads() == MAX_THREADS
    finally:
        set_num_threads(before)


SPAWN = textwrap.dedent("""
    import os, numpy as np
    from inception_native import native, set_num_threads, get_num_threads
    def tasks():
        return len(os.listdir("/proc/self/task"))
    x = np.random.default_rng(0).standard_normal((8, 64, 16, 16)).astype(np.float32)
    mean = np.empty(64, np.float32)
    native.mean_cpu(x, 8, 64, 256, mean)
    one = tasks()
    set_num_threads(3)
    native.mean_cpu(x, 8, 64, 256, mean)
    print(get_num_threads(), one, tasks())
""")


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_set_num_threads_takes_effect():
    """OMP_NUM_THREADS=1: a parallel-sized kernel starts no thread; after set_num_threads(3)
    the same call brings OpenMP's team (2 more threads) into the process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_DYNAMIC="false",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SPAWN], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    threads, before, after = map(int, done.stdout.split())
    assert threads == 3
    assert after >= before + 2, (before, after)


def test_one_object_serves_one_call_at_a_time():
    from inception_native import layers

    entered, release = threading.Event(), threading.Event()

    class Held(layers.Layer):
        def forward(self, x):
            entered.set()
            release.wait(10)
            return x

    for held in (Held(), layers.Sequential(Held())):  # a layer, a container
        entered.clear(), release.clear()
        worker = threading.Thread(target=held.forward, args=(np.zeros(1),))
        worker.start()
        entered.wait(10)
        with pytest.raises(RuntimeError, match=f"this {type(held).__name__} is already running"):
            held.forward(np.zeros(1))
        release.set()
        worker.join()
        assert held.forward(np.ones(1))[0] == 1  # free again
    conv = layers.Conv2d(1, 1, 1, bias=False)
    with pytest.raises(TypeError):
        conv.forward([1.0])  # an error inside frees the object too
    assert conv.forward(np.ones((1, 1, 2, 2), np.float32)).shape == (1, 1, 2, 2)


def _calls_from_threads(nets, xs, expected, calls=30):
    """Run nets[i].forward(xs[i]) `calls` times from a thread per i: (right, wrong, refused)."""
    counts, lock = {"right": 0, "wrong": 0, "refused": 0}, threading.Lock()

    def work(i):
        for _ in range(calls):
            try:
                y = nets[i].forward(xs[i])[0].copy()
                # close, not equal: a thread may run another OpenMP thread count than the main
                outcome = "right" if np.allclose(y, expected[i], rtol=1e-4, atol=1e-5) else "wrong"
            except RuntimeError:
                outcome = "refused"
            with lock:
                counts[outcome] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    [w.start() for w in workers]
    [w.join() for w in workers]
    return counts


def test_a_shared_network_never_returns_another_calls_results():
    from inception_native import models

    build = lambda: models.tiny_inception(input_size=16).eval()  # noqa: E731
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 1, 16, 16), dtype=np.float32) for _ in range(4)]
    shared = build()
    expected = [shared.forward(x)[0].copy() for x in xs]
    counts = _calls_from_threads([shared] * 4, xs, expected)
    assert counts["wrong"] == 0 and counts["right"] + counts["refused"] == 120
    assert _calls_from_threads([build() for _ in xs], xs, expected) == {"right": 120, "wrong": 0, "refused": 0}


@pytest.mark.parametrize("env, expected", [({}, None), ({"GOMP_SPINCOUNT": "7"}, "7"),
                                           ({"OMP_WAIT_POLICY": "active"}, None)])
def test_the_spin_count_is_set_for_our_libgomp_only(env, expected):
    """The package sets libgomp's spin count while its extensions load libgomp, and removes the
    variable after (other libraries' libgomp and child processes keep their defaults); a spin
    count or wait policy of the user's is left alone. (Its effect, measured: 0.3 ms of CPU after
    each parallel region instead of libgomp's 4.8 ms; not a test: a timing.)"""
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = ("import os, inception_native.native\n"
            "print(os.environ.get('GOMP_SPINCOUNT'))\n"
            "print(any('libgomp' in line for line in open('/proc/self/maps')))")
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(expected), str(bool(openmp_enabled()))]


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_the_linear_layer_runs_on_a_single_threaded_blas(direction, monkeypatch):
    """OpenBLAS's idle workers spin after a call, on the cores our OpenMP threads run on next:
    linear_forward and linear_backward tell the BLAS to use one thread while they run."""
    from inception_native import threads

    if not threads.blas_controllable():
        pytest.skip("SciPy's BLAS thread count cannot be set here")
    told = []
    real_set = threads._set_blas
    monkeypatch.setattr(threads, "_set_blas", lambda n: (told.append(n), real_set(n)))
    x, w = np.ones((4, 3), np.float32), np.ones((5, 3), np.float32)
    y, dx, dw = np.empty((4, 5), np.float32), np.empty_like(x), np.empty_like(w)
    if direction == "forward":
        native.linear_forward(x, w, None, y)
    else:
        native.linear_backward(y, x, w, dx, dw, None)
    assert told[0] == 1 and len(told) == 2  # one thread inside, the old count back after
