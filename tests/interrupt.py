"""Ctrl-C as a user sends it: start `python -m inception_native ARGS...`, wait for a line of
its output, send SIGINT, time how long it takes to exit."""
import os
import signal
import subprocess
import sys
import time


def interrupt_after(marker, *args):
    """(return code, stderr, seconds from SIGINT to exit), SIGINT sent once a line of stdout
    holds marker; the process is checked to be still running then."""
    # SIGINT's default action restored in the child, as a terminal starts it: a shell starts a
    # background job (`cmd &`, CI scripts) with SIGINT ignored, which the child would inherit
    process = subprocess.Popen([sys.executable, "-m", "inception_native", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while marker not in process.stdout.readline():
            assert process.poll() is None, process.stderr.read()
        assert process.poll() is None  # still working
        process.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        _, stderr = process.communicate(timeout=60)
        return process.returncode, stderr, time.perf_counter() - sent
    finally:
        process.kill()
