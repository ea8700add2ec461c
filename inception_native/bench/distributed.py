"""`python -m inception_native bench --model googlenet --distributed`: the data-parallel
training step of a whole network, run under mpirun (one process without it), e.g.

    mpirun -n 2 python -m inception_native bench --model googlenet --distributed --threads 1
    python -m inception_native bench --model googlenet --distributed --threads 2

A global batch (16) is split over the ranks; each step is forward + backward on the rank's
slice, the gradient allreduce (one fused buffer, inception_native.distributed), SGD. Reported,
the slowest rank's median over the timed steps: the step time, the time in the allreduce and
its share of the step, and the bytes: the buffer one allreduce reduces, and what each rank sends
for it with a ring allreduce (2 (p - 1) / p times the buffer), the volume a network carries.
The allreduce time includes waiting for the slower rank; `transfer` is the allreduce alone,
timed after a barrier.
"""
import time
from functools import partial

import numpy as np

from .. import distributed, losses, optim
from .model import MODELS
from .timing import use_threads


def ring_bytes(buffer_bytes, ranks):
    """Bytes each rank sends (and receives) in a ring allreduce of buffer_bytes over ranks."""
    return 2 * (ranks - 1) * buffer_bytes // ranks


def measure(comm, model="googlenet", batch=16, steps=3, warmup=1, threads=1, num_classes=1000,
            size=None, timeout=600.0):
    """{model, ranks, threads, batch, step_s, compute_s, allreduce_s, transfer_s, buffer_bytes,
    sent_bytes, images_per_s}: medians over `steps` timed steps, the slowest rank's."""
    rank, ranks = comm.Get_rank(), comm.Get_size()
    if batch % ranks:
        raise SystemExit(f"the batch of {batch} must be a multiple of the {ranks} ranks")
    use_threads(threads)
    factory, default_size = MODELS[model]
    net = partial(factory, num_classes=num_classes, input_size=size or default_size)().train()
    local = batch // ranks
    x = np.random.default_rng(rank).standard_normal((local, *net.input_shape), np.float32)
    labels = (np.arange(local) + rank * local) % 10
    loss = losses.CrossEntropy(aux_weight=0.3)
    opt = optim.SGD(net.params, net.grads, lr=1e-3, momentum=0.9, weight_decay=1e-4)
    averager = distributed.GradientAverager(comm, net.grads, extras=1, timeout=timeout)
    rows = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        value = loss.forward(net.forward(x), labels)
        net.backward(loss.backward())
        computed = time.perf_counter()
        if ranks > 1:
            averager.average(net.grads, [value])
        reduced = time.perf_counter()
        opt.step()
        done = time.perf_counter()
        distributed.wait(comm, comm.Ibarrier(), timeout, "the barrier before the timed allreduce")
        transfer = time.perf_counter()
        if ranks > 1:
            averager.average(net.grads, [value], what="the timed allreduce")
        transfer = time.perf_counter() - transfer
        if step >= warmup:
            rows.append((done - start, computed - start + done - reduced, reduced - computed, transfer))
    step_s, compute_s, allreduce_s, transfer_s = np.median(np.array(rows), axis=0)
    slowest = comm.allreduce(step_s, op=_max())
    return {"model": model, "ranks": ranks, "threads": threads, "batch": batch,
            "step_s": slowest, "compute_s": comm.allreduce(compute_s, op=_max()),
            "allreduce_s": comm.allreduce(allreduce_s, op=_max()),
            "transfer_s": comm.allreduce(transfer_s, op=_max()),
            "buffer_bytes": averager.bytes if ranks > 1 else 0,
            "sent_bytes": ring_bytes(averager.bytes, ranks), "images_per_s": batch / slowest}


def _max():
    from mpi4py import MPI

    return MPI.MAX


def format_row(r):
    share = r["allreduce_s"] / r["step_s"]
    return (f"{r['model']}, {r['ranks']} rank(s) x {r['threads']} thread(s), global batch "
            f"{r['batch']}: step {r['step_s']:.3f} s ({r['images_per_s']:.1f} images/s), compute "
            f"{r['compute_s']:.3f} s, allreduce {r['allreduce_s']:.3f} s ({share:.1%} of the step; "
            f"alone {r['transfer_s']:.3f} s), {r['buffer_bytes'] / 1e6:.1f} MB reduced, "
            f"{r['sent_bytes'] / 1e6:.1f} MB sent per rank per step")


def run(args):
    comm = distributed.world()
    row = measure(comm, args.model or "googlenet", threads=args.threads or 1,
                  steps=args.repeats or 3, warmup=args.warmup)
    if comm.Get_rank() == 0:
        print(format_row(row), flush=True)
        if args.json:
            import json

            with open(args.json, "w") as f:
                json.dump(row, f, indent=1)
    return row
