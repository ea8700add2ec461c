"""Data-parallel training on MPI: 2 processes on localhost (skipped without mpirun or mpi4py).

- after each step the parameters equal those of one process trained on the whole batch
  (float64; BatchNorm in inference mode, or a network without BatchNorm);
- `train --distributed` trains, checkpoints from rank 0 and resumes on every rank;
- a rank killed mid-run (SIGKILL) or hanging (SIGSTOP) ends the job with a non-zero exit and a
  message within a bounded time, not a hang.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from inception_native import distributed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")


def _mpi4py_reason():
    try:
        import mpi4py  # noqa: F401
    except ImportError as error:
        return f"mpi4py is missing ({error}): pip install mpi4py"
    return None


SKIP = ("mpirun is missing: apt-get install openmpi-bin libopenmpi-dev" if MPIRUN is None
        else _mpi4py_reason())
needs_mpi = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def mpirun(n, *command):
    """mpirun -n n command, with what Open MPI needs as root on a shared 2-core machine."""
    extra = []
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        extra = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
    return [MPIRUN, *extra, "-n", str(n), *command]


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMPI_MCA_btl_vader_single_copy_mechanism="none")


def train_command(tmp_path, *args):
    return mpirun(2, sys.executable, "-m", "inception_native", "train", "--distributed",
                  "--size", "16", "--limit", "128", "--checkpoint", str(tmp_path / "d.npz"), *args)


@needs_mpi
def test_two_ranks_equal_one_process_on_the_whole_batch():
    result = subprocess.run(mpirun(2, sys.executable, os.path.join(HERE, "mpi_equivalence.py")),
                            capture_output=True, text=True, timeout=120, env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"rank \d/2: 3 steps equal", result.stdout)) == 2, result.stdout


@needs_mpi
def test_train_distributed_checkpoints_and_resumes(tmp_path):
    pytest.importorskip("sklearn", reason="train needs scikit-learn (the 'train' extra)")
    missing = subprocess.run(train_command(tmp_path, "--resume"), capture_output=True,
                             text=True, timeout=120, env=env())  # one rank's error ends all
    assert missing.returncode != 0
    assert re.search(r"rank \d/2: .*d\.npz is not a readable \.npz file", missing.stderr), missing.stderr
    result = subprocess.run(train_command(tmp_path, "--epochs", "1"), capture_output=True,
                            text=True, timeout=120, env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "2 ranks, 16 images each per step" in out and "BatchNorm statistics per rank" in out
    assert out.count("epoch 1/1") == 1 and "held-out accuracy" in out  # rank 0 alone prints
    resumed = subprocess.run(train_command(tmp_path, "--epochs", "2", "--resume"),
                             capture_output=True, text=True, timeout=120, env=env())
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("after epoch 1") == 1 and "epoch 2/2" in resumed.stdout
    import numpy as np
    with np.load(tmp_path / "d.npz") as saved:
        assert int(saved["meta/epoch"]) == 2


def _run_and_break(tmp_path, sig, *args):
    """Start a long distributed training, wait for its first epoch, send sig to rank 1; returns
    (exit code, stdout + stderr, seconds from the signal to the end)."""
    job = subprocess.Popen(train_command(tmp_path, "--epochs", "200", *args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env(), start_new_session=True)
    lines, pid, trained = [], None, False
    try:
        for line in job.stdout:  # the two ranks' lines may come in either order
            lines.append(line)
            found = re.search(r"rank 1/2: pid (\d+)", line)
            pid = int(found.group(1)) if found else pid
            trained = trained or re.search(r"epoch \d+/200", line) is not None
            if pid and trained:
                break
        assert pid, "".join(lines)
        os.kill(pid, sig)
        killed = time.monotonic()
        rest, _ = job.communicate(timeout=90)
        return job.returncode, "".join(lines) + rest, time.monotonic() - killed
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@needs_mpi
@pytest.mark.parametrize("sig, timeout, message", [
    # a dead rank: mpirun notices the process exit and ends the job
    (signal.SIGKILL, "20", r"signal 9|killed|exited"),
    # a hanging rank: the other's allreduce misses its deadline and aborts the job
    (signal.SIGSTOP, "5", r"did not complete within 5 s: another rank has died or hangs"),
], ids=["killed", "hanging"])
def test_a_broken_rank_fails_the_job_in_bounded_time(tmp_path, sig, timeout, message):
    pytest.importorskip("sklearn", reason="train needs scikit-learn (the 'train' extra)")
    code, out, seconds = _run_and_break(tmp_path, sig, "--timeout", timeout)
    assert code != 0, out
    assert seconds < 60, out
    assert re.search(message, out, re.I), out


@needs_mpi
def test_bench_distributed_reports_step_allreduce_and_bytes():
    code = ("from mpi4py import MPI; from inception_native.bench import distributed as b; "
            "r = b.measure(MPI.COMM_WORLD, 'googlenet', batch=2, steps=1, warmup=0, num_classes=10, "
            "size=96); MPI.COMM_WORLD.Get_rank() or print(b.format_row(r), r['buffer_bytes'], "
            "r['sent_bytes'], flush=True)")
    result = subprocess.run(mpirun(2, sys.executable, "-c", code), capture_output=True, text=True,
                            timeout=120, env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    from inception_native import models
    params = models.googlenet(num_classes=10, input_size=96).num_params()
    line = result.stdout.strip()
    assert line.endswith(f" {4 * (params + 1)} {4 * (params + 1)}"), line  # float32 + the loss
    assert re.search(r"2 rank\(s\) x 1 thread\(s\), global batch 2: step [\d.]+ s .* allreduce "
                     r"[\d.]+ s \([\d.]+% of the step", line), line


def test_ring_bytes():
    from inception_native.bench.distributed import ring_bytes
    assert ring_bytes(1000, 1) == 0 and ring_bytes(1000, 2) == 1000 and ring_bytes(1000, 4) == 1500


def test_without_mpi4py_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py raises ImportError
    with pytest.raises(SystemExit, match=r"pip install 'inception-native\[mpi\]'"):
        distributed.world()


def test_batch_size_must_split_over_the_ranks():
    pytest.importorskip("sklearn", reason="train needs scikit-learn (the 'train' extra)")
    from inception_native import train

    class TwoRanks:  # checked before any collective: no MPI needed
        def Get_rank(self):
            return 0

        def Get_size(self):
            return 2

    args = argparse.Namespace(
        size=16, limit=64, batch_size=33, threads=1, seed=0, lr=0.1, epochs=1, resume=False)
    with pytest.raises(SystemExit, match="--batch-size 33 must be a multiple of the 2 ranks"):
        train._train(args, TwoRanks())
