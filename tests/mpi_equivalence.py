"""Run under mpirun by test_distributed.py: a few data-parallel steps on each rank's slice of
a batch, checked after every step against one process trained on the whole batch (which every
rank also runs), in float64. Models without batch statistics: BatchNorm in inference mode, and
a network without BatchNorm (and without dropout) in training mode. Prints one line per rank."""
import sys

import numpy as np
from mpi4py import MPI

from inception_native import losses, models, optim
from inception_native.distributed import GradientAverager, average_buffers

STEPS, BATCH, SIZE = 3, 8, 16


def pair(**kwargs):
    nets = [models.tiny_inception(input_size=SIZE, dtype=np.float64, seed=3, **kwargs) for _ in range(2)]
    return [(net, optim.SGD(net.params, net.grads, lr=0.05, momentum=0.9, weight_decay=1e-3),
             losses.CrossEntropy(label_smoothing=0.1)) for net in nets]


def check(comm, eval_mode, **kwargs):
    rank, ranks = comm.Get_rank(), comm.Get_size()
    local = BATCH // ranks
    (net, opt, loss), (ref, ref_opt, ref_loss) = pair(**kwargs)
    for model in (net, ref):
        model.train(not eval_mode)
    averager = GradientAverager(comm, net.grads, extras=1, timeout=60)
    rng = np.random.default_rng(7)
    for step in range(STEPS):
        x, labels = rng.standard_normal((BATCH, 1, SIZE, SIZE)), rng.integers(0, 10, BATCH)
        mine = slice(rank * local, (rank + 1) * local)
        value = loss.forward(net.forward(np.ascontiguousarray(x[mine])), labels[mine])
        net.backward(loss.backward())
        mean = averager.average(net.grads, [value])[0]
        opt.step()
        expected = ref_loss.forward(ref.forward(x), labels)
        ref.backward(ref_loss.backward())
        ref_opt.step()
        assert abs(mean - expected) < 1e-10, (step, mean, expected)
        for name, p in ref.params.items():
            np.testing.assert_allclose(net.params[name], p, rtol=1e-9, atol=1e-12,
                                       err_msg=f"step {step + 1}: {name}")
        flat = np.concatenate([p.ravel() for p in net.params.values()])
        first = comm.bcast(flat if rank == 0 else None, root=0)
        assert np.array_equal(first, flat), f"step {step + 1}: the ranks' parameters differ"
    return averager.bytes


def check_buffers(comm):
    """BatchNorm statistics per rank: after a training forward on different slices the rolling
    statistics differ; average_buffers makes them the ranks' mean, on every rank."""
    net = models.tiny_inception(input_size=SIZE, dtype=np.float64, seed=3).train()
    x = np.random.default_rng(comm.Get_rank()).standard_normal((4, 1, SIZE, SIZE))
    net.forward(x)
    before = comm.allgather({k: v.copy() for k, v in net.buffers.items() if v.dtype.kind == "f"})
    assert not np.array_equal(before[0]["conv1.bn.rolling_mean"], before[1]["conv1.bn.rolling_mean"])
    average_buffers(comm, net)
    for name in before[0]:
        expected = np.mean([b[name] for b in before], axis=0)
        np.testing.assert_allclose(net.buffers[name], expected, rtol=1e-12, atol=1e-15, err_msg=name)


def main():
    comm = MPI.COMM_WORLD
    sizes = [check(comm, eval_mode=True), check(comm, eval_mode=False, bn=False, dropout=0)]
    check_buffers(comm)
    print(f"rank {comm.Get_rank()}/{comm.Get_size()}: {STEPS} steps equal, {sizes} bytes", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # one failing rank must not leave the other waiting
        sys.stderr.write(f"rank {MPI.COMM_WORLD.Get_rank()}: {type(error).__name__}: {error}\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
