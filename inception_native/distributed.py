"""Data-parallel training on MPI (mpi4py over the system's Open MPI or MPICH), as PyTorch's
DistributedDataParallel does it on CPUs:

- every rank holds the whole model, built from the same seed (and, on --resume, loaded from the
  same checkpoint), so all ranks start identical;
- each rank runs forward and backward on its own slice of every global batch;
- `GradientAverager.average()` then averages the gradients over the ranks with ONE non-blocking
  allreduce on a fused flat buffer (all gradients back to back, plus a few scalars such as the
  loss), so that every rank takes the same optimizer step and the parameters stay identical;
- BatchNorm normalises with the statistics of the rank's own slice (per rank, as DDP does
  without SyncBatchNorm); the rolling statistics drift apart between ranks and are averaged by
  `average_buffers()` at checkpoint time (before the held-out evaluation and the save);
- the allreduce is polled with a deadline: a rank that died or hangs makes the others print
  which step and which collective did not complete, and `MPI.COMM_WORLD.Abort` ends the whole
  job (mpirun itself ends the job as soon as it sees a rank exit abnormally).
"""
import sys
import time

import numpy as np

MISSING = ("--distributed needs mpi4py over an MPI library: install Open MPI (apt-get install "
           "openmpi-bin libopenmpi-dev) or MPICH, then pip install 'inception-native[mpi]' "
           "(or pip install mpi4py), and run under mpirun, e.g. "
           "mpirun -n 2 python -m inception_native train --distributed")


def world():
    """MPI.COMM_WORLD, or SystemExit saying what to install when mpi4py (or MPI) is missing."""
    try:
        from mpi4py import MPI
    except ImportError as error:  # no mpi4py, or mpi4py without its libmpi
        raise SystemExit(f"{MISSING} ({error})") from None
    return MPI.COMM_WORLD


def abort(comm, message, code=1):
    """Print message (naming the rank) on stderr and end every rank of the job."""
    sys.stderr.write(f"\nrank {comm.Get_rank()}/{comm.Get_size()}: {message}\n")
    sys.stderr.flush()
    comm.Abort(code)


def wait(comm, request, timeout, what):
    """Wait for a non-blocking MPI request, sleeping between polls (a spinning wait would take
    the core a slower rank still computes on), and abort the job after `timeout` seconds."""
    deadline, pause = time.monotonic() + timeout, 1e-5
    while not request.Test():
        if time.monotonic() > deadline:
            abort(comm, f"{what} did not complete within {timeout:g} s: another rank has died "
                        "or hangs; aborting the job")
        time.sleep(pause)
        pause = min(2 * pause, 2e-3)


def allreduce_sum(comm, buffer, timeout, what="allreduce"):
    """buffer (a contiguous array) <- its sum over all ranks, in place, with a deadline."""
    from mpi4py import MPI

    wait(comm, comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM), timeout, what)
    return buffer


class GradientAverager:
    """Averages a model's gradients (and `extras` scalars, e.g. the loss) over the ranks with one
    allreduce per step on one flat buffer of the gradients' dtype.

    The gradients are copied into the buffer and back: the layers own their gradient arrays
    (and may reallocate them), so the buffer does not alias them. `bytes` is the buffer's size,
    what one allreduce reduces; `seconds` the time the last one took (waiting included)."""

    def __init__(self, comm, grads, extras=0, timeout=300.0):
        self.comm, self.timeout, self.step = comm, timeout, 0
        self.names = list(grads)
        dtypes = {g.dtype for g in grads.values()}
        if len(dtypes) != 1:
            raise ValueError(f"the gradients must share one dtype, got {sorted(map(str, dtypes))}")
        sizes = [grads[n].size for n in self.names]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.buffer = np.empty(self.offsets[-1] + extras, dtypes.pop())
        self.extras = extras
        self.bytes = self.buffer.nbytes
        self.seconds = 0.0

    def average(self, grads, extras=(), what=None):
        """grads (name -> array, the names of the constructor) <- their mean over the ranks,
        in place; returns the mean of the extras over the ranks (an array)."""
        buffer, offsets = self.buffer, self.offsets
        for i, name in enumerate(self.names):
            buffer[offsets[i]:offsets[i + 1]] = grads[name].ravel()
        buffer[offsets[-1]:] = extras
        self.step += 1
        start = time.perf_counter()
        allreduce_sum(self.comm, buffer, self.timeout,
                      what or f"the gradient allreduce of step {self.step}")
        self.seconds = time.perf_counter() - start
        buffer *= 1.0 / self.comm.Get_size()
        for i, name in enumerate(self.names):
            np.copyto(grads[name], buffer[offsets[i]:offsets[i + 1]].reshape(grads[name].shape))
        return buffer[offsets[-1]:].copy()


def average_buffers(comm, model, timeout=300.0):
    """Average the floating-point buffers (BatchNorm's rolling statistics) over the ranks, in
    place, with one allreduce; integer buffers (dropout's seed and step) are left alone."""
    buffers = {k: v for k, v in model.buffers.items() if v.dtype.kind == "f"}
    if not buffers:
        return
    GradientAverager(comm, buffers, timeout=timeout).average(
        buffers, what="the allreduce of the BatchNorm statistics")


def decorrelate_dropout(model, rank):
    """Give each rank's dropout layers their own masks (seed + rank * 2**32): with the same seed
    every rank would drop the same units of its slice. The seeds are buffers saved in a
    checkpoint by rank 0 (offset 0); call this after building or loading on every rank."""
    stack = [model]
    while stack:
        layer = stack.pop()
        stack.extend(child for _, child in layer.children)
        seed = layer.buffers.get("seed") if type(layer).__name__ == "Dropout" else None
        if seed is not None:
            seed[...] = np.uint64((int(seed) + rank * 2**32) % 2**64)
