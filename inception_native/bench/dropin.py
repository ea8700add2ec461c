"""Does the PyTorch drop-in pay? A PyTorch network of conv+BN+ReLU blocks (our GoogLeNet with
BatchNorm written out as torch.nn modules: bench.model's twin) timed as PyTorch runs it and
after inception_native.torch.use_native has swapped its Conv2d and BatchNorm2d modules for ours:
inference and a training step (SGD with momentum), the same weights, interleaved rounds.

    from inception_native.bench.dropin import TABLE, dropin_benchmark
    print(TABLE.format(dropin_benchmark(threads=2)))
"""
from functools import partial

from .model import MODELS, _theirs, load_twin
from .table import Table
from .timing import median_of_rounds, spread, use_threads


def dropin_benchmark(model="googlenet_bn", threads=2, batch=16, repeats=3, size=None):
    """Rows of {model, threads, pass, batch, contender ("pytorch" or "use_native"), seconds,
    seconds_range}; [] without PyTorch."""
    torch, twin = use_threads(threads), load_twin()
    if torch is None or twin is None:
        return []
    from ..torch import use_native

    factory, default_size = MODELS[model]
    build = partial(factory, input_size=size or default_size)
    rows = []
    for training in (False, True):
        runs = {"torch pytorch": _theirs(torch, twin, build, batch, training),
                "native use_native": _theirs(torch, twin, build, batch, training, convert=use_native)}
        for key, (seconds, fastest, slowest) in median_of_rounds(runs, repeats).items():
            rows.append({"model": model, "threads": threads, "batch": batch,
                         "pass": "training" if training else "inference",
                         "contender": key.split()[1], "seconds": seconds,
                         "seconds_range": [fastest, slowest]})
    return rows


def _vs_pytorch(r, group):
    theirs = [t["seconds"] for t in group if t["contender"] == "pytorch" and t["pass"] == r["pass"]]
    return f"{theirs[0] / r['seconds']:.2f}x" if theirs else "-"


TABLE = Table(
    [("model", ">12", lambda r, group: r["model"]), ("threads", ">7", lambda r, group: str(r["threads"])),
     ("pass", ">10", lambda r, group: r["pass"]), ("batch", ">5", lambda r, group: str(r["batch"])),
     ("contender", ">10", lambda r, group: r["contender"]),
     ("s (fastest-slowest)", ">26", lambda r, group: spread(r["seconds"], *r["seconds_range"], digits=4)),
     ("vs PyTorch", ">10", _vs_pytorch)],
    ["contender: pytorch (torch.nn's own modules, eager), use_native (the same model after "
     "inception_native.torch.use_native)",
     "s: median seconds per inference or training step, the fastest and slowest round in brackets",
     "vs PyTorch: PyTorch's median over this row's (above 1: the drop-in pays)"])
