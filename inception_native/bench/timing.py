"""Timing and set-up shared by the benchmarks: interleaved medians and their spread, PyTorch
when installed, and every library on the same thread count."""
import statistics
import time
from typing import NamedTuple

from ..threads import set_num_threads


class Timing(NamedTuple):
    """Seconds of one contender's timed runs: their median, the fastest and the slowest."""
    median: float
    fastest: float
    slowest: float


def _timings(times):
    return {name: Timing(statistics.median(t), min(t), max(t)) for name, t in times.items()}


def time_interleaved(contenders, repeats, warmup):
    """{name: callable} -> {name: Timing}, all contenders taking turns."""
    for _ in range(warmup):
        for run in contenders.values():
            run()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            run()  # settle: this contender's own caches and allocator state
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return _timings(times)


def median_of_rounds(runs, repeats, pause=0.05):
    """Timing of each closure over `repeats` rounds, after one warm-up round, called as
    interleaved() orders them."""
    times = {key: [] for key in runs}
    for round_, key, fn in interleaved(runs, repeats, pause):
        start = time.perf_counter()
        fn()
        if round_:  # round 0 warms up
            times[key].append(time.perf_counter() - start)
    return _timings(times)


def interleaved(runs, repeats, pause=0.05):
    """(round, key, closure) for each call to time, rounds 0 (the warm-up) to `repeats`. Every
    round runs every closure once, so a neighbour's burst of load (the machine may be shared)
    hits them all alike; closures are grouped by their first word (the library: native, blas,
    numpy, torch), with a pause before each group, so that one library's idle threads, still
    spinning, do not slow the next library down, and then one untimed call (made here) of the
    group's first closure, so that the group's own threads are awake again when its timing
    starts (after the pause, a 3 ms 2-thread convolution took 5.7 ms: as long as its threads
    take to wake and its cores to come back up to speed)."""
    groups = {}
    for key, fn in runs.items():
        groups.setdefault(key.split()[0], {})[key] = fn
    for round_ in range(repeats + 1):
        for group in groups.values():
            time.sleep(pause)
            next(iter(group.values()))()  # wakes this library's threads
            for key, fn in group.items():
                yield round_, key, fn


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def use_threads(threads):
    """Every library on `threads` threads: ours (OpenMP and the BLAS underneath, NumPy's BLAS
    too) and PyTorch's; returns torch, or None when it is not installed."""
    set_num_threads(threads)
    torch = load_torch()
    if torch is not None:
        torch.set_num_threads(threads)
    return torch


def spread(median, low, high, digits=1):
    """A figure and its spread over the timed runs: "12.3 (11.9-13.0)"."""
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"
