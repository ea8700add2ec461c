"""`train` (shortened: few images, two epochs) makes the loss fall, writes a checkpoint that
`--resume` continues and `predict` reads; bad input is reported in one line before any work;
Ctrl-C ends it in one line naming the last checkpoint; the progress bar only on a terminal."""
import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest

from inception_native import train
from interrupt import interrupt_after

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
    assert result.stderr == ""  # no progress bar but on a terminal
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
    assert result.returncode != 0 and "not a readable .npz file" in result.stderr


def test_bad_options_are_rejected():
    from inception_native import __main__ as cli
    for argv in (["train", "--lr", "-1"], ["train", "--lr", "inf"], ["train", "--epochs", "0"],
                 ["predict", "--input", "x.npy"]):
        with pytest.raises(SystemExit):
            cli.main(argv)


def one_line_error(result, message):
    """The command failed with one line on stderr matching message, and nothing ran."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode not in (0, None) and len(lines) == 1, result.stderr
    assert re.search(message, lines[0]) and "epoch 1/" not in result.stdout, (message, lines[0])


def test_an_unwritable_checkpoint_is_reported_before_the_first_epoch(tmp_path):
    (tmp_path / "file").write_text("")
    for path, message in ((tmp_path, "Is a directory|is not a regular file"),
                          (tmp_path / "none" / "c.npz", "No such file or directory"),
                          (tmp_path / "file" / "c.npz", "Not a directory")):
        result = run("train", "--limit", "64", "--size", "8", "--checkpoint", str(path), check=False)
        one_line_error(result, "^error: cannot write the checkpoint .*: " + message)


def test_bad_checkpoint_meta_and_options_are_reported_before_any_work(tmp_path):
    from inception_native import io
    model = train.build(16)
    metas = {"no epoch": ({"size": 16}, "meta epoch must be a whole number >= 0, got None"),
             "text epoch": ({"epoch": "abc", "size": 16}, "meta epoch .* got 'abc'"),
             "negative epoch": ({"epoch": -5, "size": 16}, "meta epoch .* got -5"),
             "text size": ({"epoch": 1, "size": "32"}, "meta size must be a whole number from 8 to 256, got '32'"),
             "float size": ({"epoch": 1, "size": 32.0}, "meta size .* got 32.0"),
             "huge size": ({"epoch": 1, "size": 1e6}, "meta size .* got 1000000.0")}
    np.save(tmp_path / "digits.npy", np.full((2, 8, 8), 3))
    for name, (meta, message) in metas.items():
        path = str(tmp_path / f"{name}.npz")
        io.save(path, model, **meta)
        one_line_error(run("train", "--resume", "--limit", "64", "--size", "16", "--checkpoint", path,
                           check=False), message)
        one_line_error(run("predict", "--checkpoint", path, "--input", str(tmp_path / "digits.npy"),
                           check=False), message)


def test_bad_digits_are_reported_before_the_model_is_read(tmp_path):
    from inception_native import io
    io.save(tmp_path / "c.npz", train.build(8), epoch=1, size=8)
    inputs = {"empty": (np.zeros((0, 8, 8)), r"must have shape \(N, 8, 8\) with N >= 1"),
              "text": (np.array([["1"] * 8] * 8), "must hold numbers, .* not <U1"),
              "negative": (np.full((1, 8, 8), -1.0), "numbers from 0 to 16"),
              "large": (np.full((1, 8, 8), 17), "numbers from 0 to 16"),
              "nan": (np.full((1, 8, 8), np.nan), "numbers from 0 to 16")}
    for name, (images, message) in inputs.items():
        np.save(tmp_path / f"{name}.npy", images)
        one_line_error(run("predict", "--checkpoint", str(tmp_path / "c.npz"), "--input",
                           str(tmp_path / f"{name}.npy"), check=False), f"{name}.npy: images .*" + message)
    np.save(tmp_path / "four.npy", np.full((4, 8, 8), 16))
    assert len(run("predict", "--checkpoint", str(tmp_path / "c.npz"), "--input",
                   str(tmp_path / "four.npy")).stdout.splitlines()) == 4


def test_bad_train_and_predict_options_exit_with_usage(tmp_path):
    for argv, message in ((["train", "--size", "1"], "expected an integer from 8 to 256, got 1"),
                          (["train", "--size", "100000"], "from 8 to 256, got 100000"),
                          (["train", "--seed", "-1"], "expected an integer >= 0, got -1")):
        result = run(*argv, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    result = run("predict", "--checkpoint", "c.npz", "--input", "x.npy", "--model", "inception_v3", check=False)
    one_line_error(result, "--model goes with --weights")


def test_ctrl_c_ends_training_in_one_line_naming_the_last_checkpoint(tmp_path):
    checkpoint = str(tmp_path / "c.npz")
    status, stderr, waited = interrupt_after("epoch 1/50", "train", "--epochs", "50", "--limit", "256",
                                             "--size", "16", "--checkpoint", checkpoint)
    epoch = int(np.load(checkpoint)["meta/epoch"])
    assert status == 130 and epoch >= 1 and waited < 5
    assert stderr.splitlines() == [f"interrupted: {checkpoint} holds epoch {epoch}"]


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path):
    leader, follower = pty.openpty()
    result = subprocess.run([sys.executable, "-m", "inception_native", "train", "--epochs", "1",
                             "--limit", "64", "--size", "8", "--checkpoint", str(tmp_path / "c.npz")],
                            stdout=subprocess.PIPE, stderr=follower, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(follower)
    drawn = os.read(leader, 1 << 16).decode()
    os.close(leader)
    assert result.returncode == 0 and "[##############################] 2/2 loss" in drawn
    assert "parameters, 1 thread\n" in result.stdout and "epoch 1/1" in result.stdout


def test_a_full_disk_is_reported_before_the_first_epoch(tmp_path, monkeypatch, capsys):
    from inception_native import __main__ as cli

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(SystemExit, match="^error: cannot write the checkpoint .*c.npz: No space left on device$"):
        cli.main(["train", "--limit", "64", "--size", "8", "--checkpoint", str(tmp_path / "c.npz")])
    assert "epoch 1/" not in capsys.readouterr().out and os.listdir(tmp_path) == []


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    checkpoint = tmp_path / "digits.npz"
    common = ["--limit", "64", "--size", "16", "--batch-size", "16", "--checkpoint", str(checkpoint)]
    run("train", "--epochs", "1", *common)
    good = dict(np.load(checkpoint))
    result = run("train", "--epochs", "3", "--resume", "--lr", "1e30", *common, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: the loss is (nan|inf) at epoch 2, step \d+ "
                                        r"\(learning rate [\d.e+]+\): stopped; .* holds epoch 1$",
                                        lines[0]), result.stderr
    kept = np.load(checkpoint)
    assert all(np.array_equal(kept[k], v) for k, v in good.items())  # not overwritten
