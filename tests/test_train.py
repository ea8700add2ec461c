"""`train` (shortened: few images, two epochs) makes the loss fall, writes a checkpoint that
`--resume` continues and `predict` reads; bad input is reported."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from inception_native import train

pytest.importorskip("sklearn", reason="train needs scikit-learn (the 'train' extra)")


def run(*args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "inception_native", *args], capture_output=True,
                          text=True, check=check, timeout=300, env=env)


def epoch_losses(out):
    return [float(v) for v in re.findall(r"epoch \d+/\d+  loss ([\d.]+)", out)]


def test_train_resume_and_predict(tmp_path):
    checkpoint = str(tmp_path / "digits.npz")
    common = ["--limit", "256", "--size", "16", "--checkpoint", checkpoint]
    result = run("train", "--epochs", "2", *common)
    losses = epoch_losses(result.stdout)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert "held-out accuracy" in result.stdout and "256/" not in result.stdout
    assert "[####" in result.stderr  # the progress bar
    resumed = run("train", "--epochs", "3", "--resume", *common).stdout
    assert "resumed from" in resumed and "after epoch 2" in resumed
    assert "epoch 3/3" in resumed and "epoch 1/3" not in resumed
    digits = np.load(tmp_path / "digits.npz")
    assert int(digits["meta/epoch"]) == 3
    from sklearn.datasets import load_digits
    np.save(tmp_path / "four.npy", load_digits().images[:4])
    out = run("predict", "--checkpoint", checkpoint, "--input", str(tmp_path / "four.npy"), "--top", "2").stdout
    lines = out.strip().splitlines()
    assert len(lines) == 4 and all(re.fullmatch(r"\d: \d \(\d+\.\d%\), \d \(\d+\.\d%\)", l) for l in lines)


def test_bad_input_is_reported(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 7, 7)))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 8, 8\)"):
        train.prepare(np.zeros((2, 7, 7)), 16)
    assert train.prepare(np.full((8, 8), 16), 16).shape == (1, 1, 16, 16)
    result = run("predict", "--checkpoint", str(tmp_path / "none.npz"), "--input", str(tmp_path / "bad.npy"), check=False)
    assert result.returncode != 0
    result = run("train", "--resume", "--checkpoint", str(tmp_path / "none.npz"), check=False)
    assert result.returncode != 0 and "not a readable checkpoint" in result.stderr
