"""How much a busy neighbour slows a multi-threaded inference, ours against onnxruntime's.

A process that spins on one core (another user's job) takes a share of the cores our threads
run on. A pool whose idle threads keep spinning, or whose work is cut into one fixed share per
thread, then waits for its slowest thread; one that hands out small pieces of work and lets
idle threads sleep loses only the neighbour's share. Each contender (the frozen network and
onnxruntime running our ONNX export, as in `bench --model`) is timed alone and beside the
neighbour, in interleaved rounds; the slowdown is the ratio of the two medians.

    from inception_native.bench.neighbour import TABLE, neighbour_slowdown
    print(TABLE.format(neighbour_slowdown("googlenet", threads=2)))
"""
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial

from .model import MODELS, contender, contenders, export_for_onnxruntime
from .table import Table
from .timing import use_threads

SPIN = "while True: pass"


class busy_neighbour:
    """Context: a Python process spinning on one core beside us."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", SPIN])
        time.sleep(0.1)  # let it start spinning
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def neighbour_slowdown(model="googlenet", threads=2, batch=16, repeats=5, size=None):
    """Rows of {model, threads, batch, contender, alone_s, beside_s, slowdown}: median seconds
    of one inference alone and beside a busy neighbour (one warm-up round, then `repeats`
    rounds, each timing every contender alone and then beside the neighbour)."""
    factory, default_size = MODELS[model]
    build = partial(factory, input_size=size or default_size)
    use_threads(threads)
    names = [n for n in contenders(numpy_twin=False, use_torch=False) if n in ("frozen", "onnxruntime")]
    with tempfile.TemporaryDirectory() as directory:
        path = export_for_onnxruntime(build, directory) if "onnxruntime" in names else None
        runs = {name: contender(name, build, batch, False, threads, path) for name in names}
        times = {(name, beside): [] for name in names for beside in (False, True)}
        for round_ in range(repeats + 1):
            for beside in (False, True):
                with busy_neighbour() if beside else _alone():
                    for name, run in runs.items():
                        start = time.perf_counter()
                        run()
                        if round_:  # round 0 warms up
                            times[name, beside].append(time.perf_counter() - start)
    rows = []
    for name in names:
        alone, beside = (statistics.median(times[name, b]) for b in (False, True))
        rows.append({"model": model, "threads": threads, "batch": batch, "contender": name,
                     "alone_s": alone, "beside_s": beside, "slowdown": beside / alone})
    return rows


class _alone:
    def __enter__(self):
        time.sleep(0.1)  # as long as the neighbour's start: the rounds differ in one thing

    def __exit__(self, *exc):
        pass


TABLE = Table(
    [("model", ">13", lambda r, group: r["model"]), ("threads", ">7", lambda r, group: str(r["threads"])),
     ("batch", ">5", lambda r, group: str(r["batch"])), ("contender", ">11", lambda r, group: r["contender"]),
     ("alone s", ">8", lambda r, group: f"{r['alone_s']:.4f}"),
     ("beside s", ">8", lambda r, group: f"{r['beside_s']:.4f}"),
     ("slowdown", ">8", lambda r, group: f"{r['slowdown']:.2f}x")],
    ["contender: frozen (net.freeze()), onnxruntime (our ONNX export)",
     "alone s / beside s: median seconds of one inference alone / beside a process spinning on "
     "one core",
     "slowdown: beside over alone (lower is better; 1.00x: the neighbour costs nothing)"])
