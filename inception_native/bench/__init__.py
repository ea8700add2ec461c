"""`python -m inception_native bench`: the native kernels against their NumPy twins, PyTorch (when
installed) and the machine's limits, in sections (batchnorm, conv, pool), or one whole network
(--model). Nothing outside this package imports from it.

    batchnorm    BatchNorm kernels (bench/batchnorm.py)
    conv, pool   GoogLeNet's and Inception v3's convolution and pooling layers (bench/conv.py)
    dropin       a PyTorch model before and after use_native (bench/dropin.py; not by default)
    neighbour    an inference alone and beside a busy process, ours and onnxruntime's
                 (bench/neighbour.py; not by default)
    --model      a whole network, inference and a training step (bench/model.py); with
                 --profile, where a native training step spends its time instead, and with
                 --profile inference, frozen inference's steps against onnxruntime's operators
    --distributed  the data-parallel training step under mpirun (bench/distributed.py)
"""
import importlib.util
import json
import os
import platform
import time

import numpy as np

from .._runtime import build_info
from ..threads import get_num_threads, threads_text
from .timing import load_torch


def environment(threads, use_torch=True):
    """The run's facts; "torch": PyTorch's version, None when not installed or left out."""
    torch = load_torch() if use_torch else None
    return {"threads": threads, "numpy": np.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "torch": torch.__version__ if torch else None,
            **build_info()}



SECTIONS = ("batchnorm", "conv", "pool")
DEFAULT_REPEATS = {"batchnorm": 9, "conv": 5, "pool": 5, "model": 5, "dropin": 3, "neighbour": 5}


def check_output(option, path):
    """SystemExit when path cannot be written (checked before any benchmark runs)."""
    folder = os.path.dirname(os.path.abspath(path))
    problem = ("it is a directory" if os.path.isdir(path) else
               f"{folder} is not a directory" if not os.path.isdir(folder) else
               f"{folder} is not writable" if not os.access(folder, os.W_OK) else
               "it is not writable" if os.path.exists(path) and not os.access(path, os.W_OK) else None)
    if problem:
        raise SystemExit(f"{option} {path}: cannot write there: {problem}")


def run(args):
    """The kernel sections (BatchNorm, convolution, pooling), or one network with --model
    (with --distributed: its data-parallel training step, inception_native.bench_distributed)."""
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            check_output(option, path)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("--plot needs matplotlib: pip install 'inception-native[plot]'")
    if getattr(args, "profile", False) and (not args.model or getattr(args, "distributed", False)):
        raise SystemExit("--profile goes with --model (and not with --distributed)")
    if getattr(args, "distributed", False):
        from . import distributed

        return distributed.run(args)
    threads = args.threads or get_num_threads()
    started = time.perf_counter()
    env = environment(threads, use_torch=not args.no_torch)
    torch_words = "left out (--no-torch)" if args.no_torch else env["torch"] or "not installed"
    print(f"{threads_text(threads)}; {env['compiler']}, kernels {env['kernel_isa']}, NumPy {env['numpy']}, "
          f"PyTorch {torch_words}", flush=True)
    repeats = lambda section: args.repeats or DEFAULT_REPEATS[section]  # noqa: E731
    results = {"environment": env}
    if args.model and getattr(args, "profile", None) == "inference":
        from . import model

        rounds = repeats("model")
        print(f"\n{args.model}: frozen inference at batch {args.batch} by kind of step, median of "
              f"{rounds} after one warm-up", flush=True)
        profiles = model.profile_inference(args.model, threads, args.batch, rounds=rounds)
        print(model.format_inference_profile(profiles), flush=True)
        results["profile"] = [{"contender": name, "kind": kind, "seconds": seconds}
                              for name, spent in profiles.items() for kind, seconds in spent.items()]
    elif args.model and getattr(args, "profile", False):
        from . import model

        steps = repeats("model")
        print(f"\n{args.model}: a native training step at batch {args.batch}, mean of {steps} "
              "after one warm-up", flush=True)
        spent = model.profile(args.model, threads, args.batch, steps=steps)
        print(model.format_profile(spent), flush=True)
        results["profile"] = [{"layer": layer, "direction": direction, "seconds": seconds}
                              for (layer, direction), seconds in spent.items()]
    elif args.model and not args.sections:
        from . import model

        results["model"] = _section(
            f"{args.model}: images/s, median of {repeats('model')} after one warm-up", model.TABLE,
            lambda on_rows: model.model_benchmark(args.model, threads, repeats=repeats("model"),
                                                  use_torch=not args.no_torch, memory=True,
                                                  on_rows=on_rows))
    for section in args.sections or ([] if args.model else SECTIONS):
        if section == "batchnorm":
            from . import batchnorm

            results[section] = _section(
                f"BatchNorm, float32: median of {repeats(section)} after {args.warmup} warm-up",
                batchnorm.TABLE,
                lambda on_rows: batchnorm.bench_batchnorm(
                    args.shapes or batchnorm.GOOGLENET_SHAPES, threads, repeats(section),
                    args.warmup, use_torch=not args.no_torch, on_rows=on_rows))
        elif section == "conv":
            from . import conv

            results[section] = _section(
                f"Convolution, GoogLeNet's layers at batch {args.batch}, {args.dtype}: GFLOP/s, median of "
                f"{repeats(section)}", conv.CONV_TABLE, lambda on_rows: conv.conv_benchmark(
                    threads, repeats(section), args.batch, use_torch=not args.no_torch, on_rows=on_rows,
                    dtype=args.dtype))
        elif section == "dropin":
            from . import dropin

            results[section] = _section(
                f"PyTorch drop-in (use_native), batch {args.batch}: median of {repeats(section)}",
                dropin.TABLE, lambda on_rows: _at_once(on_rows, [] if args.no_torch else dropin.dropin_benchmark(
                    args.model or "googlenet_bn", threads, args.batch, repeats(section))))
        elif section == "neighbour":
            from . import neighbour

            results[section] = _section(
                f"Beside a busy process, batch {args.batch}: median of {repeats(section)}",
                neighbour.TABLE, lambda on_rows: _at_once(on_rows, neighbour.neighbour_slowdown(
                    args.model or "googlenet", threads, args.batch, repeats(section))))
        else:
            from . import conv

            results[section] = _section(
                f"Pooling, batch {args.batch}: ms, median of {repeats(section)}", conv.POOL_TABLE,
                lambda on_rows: conv.pool_benchmark(threads, repeats(section), args.batch,
                                                    use_torch=not args.no_torch, on_rows=on_rows))
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")
    if args.plot:
        from .plot import plot

        plot(results, args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


def _at_once(on_rows, rows):
    """rows, printed by on_rows as one group (a section measured in one go)."""
    on_rows(rows)
    return rows


def _section(title, table, measure):
    """Print title and table's header, then each group of rows as measure(on_rows) measures
    them, then the table's notes and legend; returns the rows."""
    print(f"\n{title}\n{table.header()}", flush=True)
    rows = measure(lambda group: print("\n".join(table.lines(group)), flush=True))
    print(table.footer(rows), flush=True)
    return rows
