"""Whole-network speed: images/s of inference at batch 1 and 16 and of one training step at
batch 16 (forward with the auxiliary heads, backward, SGD with momentum), for the native
kernels, their NumPy twins and the same network in PyTorch (inception_native/torch_twin.py: our
network written out as torch.nn modules with the same weights; eager mode, NCHW and
channels_last), at the same thread count (OpenMP and OpenBLAS). Inference adds the frozen native
network (net.freeze()) and onnxruntime running our own ONNX export (io.export_onnx;
ORT_ENABLE_ALL, intra-op threads = threads). Interleaved rounds, median of `repeats` after one
warm-up.

    from inception_native.bench.model import (TABLE, format_inference_profile, format_profile,
                                              model_benchmark, profile, profile_inference)
    print(TABLE.format(model_benchmark("googlenet", threads=2)))
    print(format_profile(profile("googlenet", threads=2)))  # where a training step's time goes
    print(format_inference_profile(profile_inference("googlenet")))  # frozen against onnxruntime
"""
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial

import numpy as np

from .. import freeze, io, losses, models, native, optim, reference
from ..layers import Concat
from .table import Table
from .timing import interleaved, load_torch, median_of_rounds, spread, use_threads

MODELS = {"googlenet": (models.googlenet, 224), "googlenet_bn": (partial(models.googlenet, bn=True), 224),
          "googlenet_torchvision": (partial(models.googlenet, layout="torchvision"), 224),
          "inception_v2": (models.inception_v2, 224),
          "inception_v3": (models.inception_v3, 299)}
BACKENDS = {"native": native, "numpy": reference}
INFERENCE_ONLY = ("frozen", "frozen_nchwc", "onnxruntime")


def load_twin():
    """inception_native.torch_twin (it imports PyTorch), or None without PyTorch."""
    if load_torch() is None:
        return None
    from .. import torch_twin

    return torch_twin


def _ours(build, backend, batch, size, training):
    net = build(backend=backend).train(training)
    x = np.random.default_rng(0).standard_normal((batch, *net.input_shape), np.float32)
    if not training:
        return lambda: net.forward(x)
    labels = np.arange(batch) % 10
    loss = losses.CrossEntropy(aux_weight=0.3, backend=backend)
    opt = optim.SGD(net.params, net.grads, lr=1e-3, momentum=0.9, weight_decay=1e-4, backend=backend)

    def step():
        loss.forward(net.forward(x), labels)
        net.backward(loss.backward())
        opt.step()
    return step


def _frozen(build, batch, layout="nchw"):
    frozen = build().freeze(layout=layout)  # the network is dropped: the frozen one keeps a copy
    x = np.random.default_rng(0).standard_normal((batch, *frozen.input_shape), np.float32)
    return lambda: frozen.forward(x)


def export_for_onnxruntime(build, directory):
    """Our ONNX export of build()'s network, written into directory; its path."""
    path = os.path.join(directory, "network.onnx")
    io.export_onnx(build(), path)
    return path


def _onnxruntime_session(path, threads, profile_directory=None):
    """An onnxruntime session on path (ORT_ENABLE_ALL, intra-op threads = threads), profiling
    each operator into a file in profile_directory when given."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_directory:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(profile_directory, "onnxruntime")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _onnxruntime(path, batch, threads):
    session = _onnxruntime_session(path, threads)
    x = _onnx_input(session, batch)
    return lambda: session.run(None, {"input": x})


def _onnx_input(session, batch):
    shape = [d if isinstance(d, int) else batch for d in session.get_inputs()[0].shape]
    return np.random.default_rng(0).standard_normal(shape, np.float32)


def _theirs(torch, twin, build, batch, training, channels_last=False, convert=None):
    """PyTorch's step on the twin of build()'s network; convert(module) -> the module to run
    (bench.dropin: use_native's)."""
    net = build()
    module = twin.build(net).train(training)
    module = convert(module) if convert else module
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, *net.input_shape), np.float32))
    if channels_last:
        module, x = module.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if not training:
        def infer():
            with torch.no_grad():
                module(x)
        return infer
    labels = torch.arange(batch) % 10
    opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    ce = torch.nn.functional.cross_entropy

    def step():
        outputs = module(x)
        total = ce(outputs[0], labels) + sum(0.3 * ce(o, labels) for o in outputs[1:])
        opt.zero_grad()
        total.backward()
        opt.step()
    return step


def contender(name, build, batch, training=False, threads=1, onnx_path=None):
    """The closure that runs one step of contender `name` (native, numpy, frozen, frozen_nchwc,
    pytorch, pytorch_cl, onnxruntime: the last reads onnx_path, export_for_onnxruntime's file)."""
    if name in BACKENDS:
        return _ours(build, BACKENDS[name], batch, None, training)
    if name in ("frozen", "frozen_nchwc"):
        return _frozen(build, batch, "nchwc" if name == "frozen_nchwc" else "nchw")
    if name == "onnxruntime":
        return _onnxruntime(onnx_path, batch, threads)
    return _theirs(load_torch(), load_twin(), build, batch, training, name == "pytorch_cl")


_PEAK = """
import re
from functools import partial
from inception_native.bench import model as bench_model
model, name, batch, training, size, num_classes, threads, onnx_path = {args!r}
factory = partial(bench_model.MODELS[model][0], num_classes=num_classes, input_size=size)
bench_model.use_threads(threads)
def high_water_kb():  # this process's own peak (ru_maxrss would start from the parent's)
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
before = high_water_kb()
bench_model.contender(name, factory, batch, training, threads, onnx_path)()
print(high_water_kb() - before)
"""


def peak_memory_mb(model, contender, batch, training, size, num_classes, threads=1, onnx_path=None):
    """MB by which a fresh process's peak resident memory grows while it builds `contender`'s
    network and runs one step: weights, activations, buffers and workspaces (Linux's VmHWM:
    every contender is measured alone, from the same starting point; onnxruntime loads the file
    the parent exported)."""
    code = _PEAK.format(args=(model, contender, batch, training, size, num_classes, threads, onnx_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def contenders(numpy_twin=True, use_torch=True, use_onnxruntime=True):
    """The contenders that can run here, in table order."""
    names = ["native", "frozen", "frozen_nchwc"] + (["numpy"] if numpy_twin else [])
    if use_torch and load_twin() is not None:
        names += ["pytorch", "pytorch_cl"]
    try:
        import onnx, onnxruntime  # noqa: F401, E401
    except ImportError:
        use_onnxruntime = False
    return names + (["onnxruntime"] if use_onnxruntime else [])


def model_benchmark(model="googlenet", threads=1, batches=(1, 16), train_batch=16, size=None,
                    num_classes=1000, repeats=1, numpy_twin=True, use_torch=True, memory=False,
                    use_onnxruntime=True, training=True, on_rows=None):
    """Rows of {model, size, threads, pass ("inference"/"training"), batch, contender, seconds,
    seconds_range (fastest, slowest), images_per_s, and with memory=True peak_MB (see
    peak_memory_mb)}; on_rows(rows) is called with each pass and batch's rows when measured.
    Training rows (train_batch, when training) for native, numpy, pytorch and pytorch_cl."""
    factory, default_size = MODELS[model]
    size = size or default_size
    build = partial(factory, num_classes=num_classes, input_size=size)
    use_threads(threads)
    names = contenders(numpy_twin, use_torch, use_onnxruntime)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        onnx_path = export_for_onnxruntime(build, directory) if "onnxruntime" in names else None
        passes = [(False, b) for b in batches] + ([(True, train_batch)] if training else [])
        for train, batch in passes:
            runs = {name: contender(name, build, batch, train, threads, onnx_path)
                    for name in names if not (train and name in INFERENCE_ONLY)}
            group = [{"model": model, "size": size, "threads": threads,
                      "pass": "training" if train else "inference",
                      "batch": batch, "contender": name, "seconds": seconds,
                      "seconds_range": [fastest, slowest], "images_per_s": batch / seconds,
                      "peak_MB": peak_memory_mb(model, name, batch, train, size, num_classes,
                                                threads, onnx_path) if memory else None}
                     for name, (seconds, fastest, slowest) in median_of_rounds(runs, repeats).items()]
            del runs
            rows += group
            if on_rows:
                on_rows(group)
    return rows


def _vs(contender):
    """The cell: `contender`'s time over the row's, from its row of the same model, pass and
    batch."""
    key = lambda row: (row["model"], row["size"], row["threads"], row["pass"], row["batch"])  # noqa: E731

    def cell(r, group):
        theirs = [t["seconds"] for t in group if t["contender"] == contender and key(t) == key(r)]
        return f"{theirs[0] / r['seconds']:.2f}x" if theirs else "-"
    return cell


def _seconds(r, group):
    return spread(r["seconds"], *r["seconds_range"], digits=4)


TABLE = Table(
    [("model", ">13", lambda r, group: r["model"]), ("threads", ">7", lambda r, group: str(r["threads"])),
     ("pass", ">10", lambda r, group: r["pass"]), ("batch", ">5", lambda r, group: str(r["batch"])),
     ("contender", ">11", lambda r, group: r["contender"]),
     ("s (fastest-slowest)", ">26", _seconds),
     ("img/s", ">9", lambda r, group: f"{r['images_per_s']:.2f}"),
     ("vs PyTorch cl", ">13", _vs("pytorch_cl")), ("vs PyTorch", ">10", _vs("pytorch")),
     ("peak MB", ">8", lambda r, group: "-" if r.get("peak_MB") is None else f"{r['peak_MB']:.0f}")],
    ["pass: inference (eval mode, forward) or training (forward with the auxiliary heads, "
     "backward, an SGD step)",
     "contender: native (our kernels, eval mode), frozen (net.freeze(); frozen_nchwc: "
     "net.freeze(layout=\"nchwc\"), float32 in the blocked layout), numpy (their NumPy "
     "twins), pytorch (the same network as torch.nn modules, eager mode; pytorch_cl: "
     "channels_last), onnxruntime (our ONNX export)",
     "s: median seconds per call, the fastest and slowest round in brackets; img/s: batch over "
     "the median",
     "vs PyTorch: PyTorch's median time over this row's (above 1: faster than PyTorch); "
     "vs PyTorch cl: the same against PyTorch in channels_last",
     "peak MB: how much a fresh process's peak memory grows to build the network and run one call"])


def profile(model="googlenet", threads=1, batch=16, size=None, num_classes=1000, steps=2):
    """Seconds per training step spent in each layer type's forward and backward (native;
    the rest: loss, optimiser, the containers' glue), averaged over `steps` after one warm-up.
    Returns {(layer type, "forward"/"backward"): seconds}, largest first."""
    factory, default_size = MODELS[model]
    use_threads(threads)
    net = factory(num_classes=num_classes, input_size=size or default_size)
    spent = {}

    def timed(layer, direction):
        run, key = getattr(layer, direction), (type(layer).__name__, direction)

        def wrapper(a, **options):  # a fused unit passes relu=True to its conv and BatchNorm
            start = time.perf_counter()
            out = run(a, **options)
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
            return out
        setattr(layer, direction, wrapper)

    for _, leaf, _ in net.leaves():
        timed(leaf, "forward")
        timed(leaf, "backward")
    step = _ours(lambda backend: net, native, batch, size, True)
    step()
    for _, layer, _ in net.layers():  # the convolutions Concats run their stacked heads as
        heads = layer.stacked_heads if isinstance(layer, Concat) else None
        if heads:
            timed(heads.conv, "forward")
            timed(heads.conv, "backward")
    spent.clear()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    spent[("total step", "")] = time.perf_counter() - start
    spent[("rest", "")] = 2 * spent[("total step", "")] - sum(spent.values())
    return dict(sorted(((k, v / steps) for k, v in spent.items()), key=lambda kv: -kv[1]))


WHOLE, REST = "whole forward", "rest"  # the profiles' rows beside the kinds of step

# onnxruntime's operators by the kinds of frozen steps (freeze.step_kind); any other operator
# is its own kind, in lower case
ORT_KINDS = {"MaxPool": "max pool", "AveragePool": "average pool",
             "GlobalAveragePool": "global average pool", "Concat": "concat", "Gemm": "linear",
             "FusedGemm": "linear", "MatMul": "linear", "Relu": "relu", "Flatten": "flatten",
             "Reshape": "flatten", "BatchNormalization": "batchnorm", "ReorderInput": "reorder",
             "ReorderOutput": "reorder"}


def _ort_kind(args):
    """The kind of an operator from its profile record's args: a convolution's from its weights'
    kernel and a stride read from its input and output heights (the record has no attributes)."""
    op = args.get("op_name", "")
    if op not in ("Conv", "FusedConv"):
        return ORT_KINDS.get(op, op.lower())
    x, w = (list(d.values())[0] for d in args["input_type_shape"][:2])
    y = list(args["output_type_shape"][0].values())[0]
    stride = [max(1, round(i / o)) for i, o in zip(x[-2:], y[-2:])]
    return freeze.conv_kind(*w[-2:], *stride)


def _ort_rounds(path):
    """onnxruntime's profile file as {kind: seconds} for each run (model_run), in order."""
    with open(path) as f:
        events = json.load(f)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    rounds = [{WHOLE: (end - start) * 1e-6} for start, end in runs]
    starts = [start for start, _ in runs]
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            i = bisect.bisect_right(starts, e["ts"]) - 1
            if i >= 0 and e["ts"] <= runs[i][1]:
                kind = _ort_kind(e["args"])
                rounds[i][kind] = rounds[i].get(kind, 0.0) + e["dur"] * 1e-6
    return rounds


def _medians(rounds):
    """{kind: median seconds over rounds} (0 in a round without that kind), REST from each
    round's call less its kinds."""
    rounds = [{**r, REST: r[WHOLE] - sum(t for k, t in r.items() if k != WHOLE)} for r in rounds]
    return {kind: float(np.median([r.get(kind, 0.0) for r in rounds]))
            for kind in {kind for r in rounds for kind in r}}


def profile_inference(model="googlenet", threads=1, batch=16, size=None, num_classes=1000,
                      rounds=5, use_onnxruntime=True):
    """Where frozen inference spends its time, against onnxruntime on our ONNX export: seconds a
    forward by kind of step (freeze.step_kind: "conv 3x3", "max pool", "concat", ...; onnxruntime's
    operators mapped to the same kinds), medians of `rounds` rounds after one warm-up, the two
    interleaved as median_of_rounds does. Returns {"native": {kind: seconds}, "onnxruntime":
    {...} (when installed and use_onnxruntime)}, each with WHOLE (the call) and REST (the call
    less its kinds: Python glue for ours, the session's own work for onnxruntime)."""
    factory, default_size = MODELS[model]
    build = partial(factory, num_classes=num_classes, input_size=size or default_size)
    use_threads(threads)
    frozen = build().freeze()
    x = np.random.default_rng(0).standard_normal((batch, *frozen.input_shape), np.float32)
    ours, timed_runs = [], []  # timed_runs: whether each onnxruntime run was a timed one
    with tempfile.TemporaryDirectory() as directory:
        runs = {"native": lambda: frozen.forward(x)}
        if use_onnxruntime and "onnxruntime" in contenders(False, False):
            session = _onnxruntime_session(export_for_onnxruntime(build, directory), threads, directory)
            x_ort = _onnx_input(session, batch)
            # interleaved's waking call: a run the profile file records too, marked untimed
            runs["onnxruntime"] = lambda: timed_runs.append(False) or session.run(None, {"input": x_ort})
        for round_, key, _ in interleaved(runs, rounds):
            if key == "onnxruntime":
                timed_runs.append(round_ > 0)
                session.run(None, {"input": x_ort})
                continue
            spent, start = {}, time.perf_counter()
            frozen.forward(x, spent=spent)
            spent[WHOLE] = time.perf_counter() - start
            if round_:  # round 0 warms up
                ours.append(spent)
        profiles = {"native": _medians(ours)}
        if "onnxruntime" in runs:
            theirs = _ort_rounds(session.end_profiling())
            profiles["onnxruntime"] = _medians([r for r, timed in zip(theirs, timed_runs) if timed])
    return profiles


def format_inference_profile(profiles):
    """profile_inference()'s result as a table: a row a kind, largest native time first."""
    native, theirs = profiles["native"], profiles.get("onnxruntime", {})
    kinds = sorted((set(native) | set(theirs)) - {WHOLE, REST}, key=lambda k: -native.get(k, 0.0))
    kinds = [WHOLE] + kinds + [REST]
    ms = lambda times: lambda k, group: f"{1e3 * times[k]:.2f}" if k in times else "-"  # noqa: E731

    def vs(k, group):
        return f"{theirs[k] / native[k]:.2f}x" if k in theirs and native.get(k) else "-"
    return Table([("step kind", "<22", lambda k, group: k), ("native ms", ">10", ms(native)),
                  ("onnxruntime ms", ">15", ms(theirs)), ("vs onnxruntime", ">15", vs)],
                 ["native: the frozen network (net.freeze()), each kind of step's time in a call; "
                  "onnxruntime: its operators' times in a run of our ONNX export (its profiler), "
                  "mapped to the same kinds",
                  "vs onnxruntime: its time over ours (above 1: ours faster); rest: the call less "
                  "its kinds (our Python, the session's own work)"]).format(kinds)


def _share(spent):
    return lambda r, group: f"{100 * spent[r] / spent[('total step', '')]:.1f}"


def format_profile(spent):
    """profile()'s {(layer type, direction): seconds} as a table, largest first."""
    return Table([("layer", "<16", lambda r, group: r[0]), ("direction", "<9", lambda r, group: r[1]),
                  ("ms per step", ">11", lambda r, group: f"{1e3 * spent[r]:.1f}"),
                  ("% of step", ">9", _share(spent))],
                 ["a fused conv (+BN) + ReLU unit counts its ReLU in Conv2d's (or BatchNorm's) "
                  "time; rest: the loss, the optimiser, the containers' glue"]).format(list(spent))
