"""Runs the fuzz suite (tests/fuzz_kernels.py) in a child interpreter, short profile.

A crash in a kernel (a segfault, an abort) kills the child, not this run: it is reported here
as a failure with the child's output. The long profile is run by hand (README, "Reliability").
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

ROOT = Path(__file__).resolve().parents[1]


def test_fuzz_kernels_short_profile_in_a_child():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-W", "ignore::DeprecationWarning", str(ROOT / "tests" / "fuzz_kernels.py"),
               "--hypothesis-profile=ci"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode >= 0, f"the fuzz child died of signal {-done.returncode}:\n{output}"
    assert done.returncode == 0, output
    # every kernel ran its examples (the child prints a tally at exit)
    tally = [line for line in done.stderr.splitlines() if " examples: " in line]
    assert len(tally) >= 32, done.stderr[-3000:]
    print("\n".join(tally))
