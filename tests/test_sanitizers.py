"""The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer (tests/c/run_sanitizers.sh).

Skipped, with the script's reason, where the compiler cannot build sanitized programs.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "c" / "run_sanitizers.sh"


def test_c_kernels_clean_under_asan_and_ubsan():
    if shutil.which("bash") is None:
        pytest.skip("no bash to run tests/c/run_sanitizers.sh")
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    if done.returncode == 77:
        pytest.skip(output.strip().splitlines()[-1])
    assert done.returncode == 0, output[-8000:]
    assert "sanitizers: clean" in done.stdout
