"""Checkpoints: save, load and continue gives the steps not stopping gives; bad files and
mismatched models raise and leave the model unchanged; a failed save keeps the old file."""
import os

import numpy as np
import pytest

from inception_native import io, losses, models, optim


def make(seed=0, **kw):
    net = models.tiny_inception(num_classes=5, in_channels=1, input_size=8, seed=seed, **kw)
    opt = optim.SGD(net.params, net.grads, lr=0.05, momentum=0.9, weight_decay=1e-3)
    return net, opt


def step(net, opt, x, labels):
    loss = losses.CrossEntropy(label_smoothing=0.1)
    value = loss.forward(net.forward(x), labels)
    net.backward(loss.backward())
    opt.step()
    return value


def snapshot(net):
    return {k: v.copy() for k, v in {**net.params, **net.buffers}.items()}


def test_save_load_continue_gives_the_same_steps(tmp_path, rng):
    x, labels = rng.standard_normal((6, 1, 8, 8)).astype(np.float32), np.arange(6) % 5
    net, opt = make()
    for _ in range(3):
        step(net, opt, x, labels)
    io.save(tmp_path / "a.npz", net, opt, epoch=3)
    uninterrupted = [step(net, opt, x, labels) for _ in range(2)]
    other, other_opt = make(seed=1)  # different weights: the checkpoint must replace them all
    assert io.load(tmp_path / "a.npz", other, other_opt) == {"epoch": 3}
    resumed = [step(other, other_opt, x, labels) for _ in range(2)]
    assert resumed == uninterrupted  # dropout's step count and the velocities came back too
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]


def test_bad_files_and_mismatched_models_leave_the_model_unchanged(tmp_path):
    net, opt = make()
    io.save(tmp_path / "good.npz", net)
    target, target_opt = make(seed=2)
    before = snapshot(target)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    cases = {
        "cut.npz": "is not a readable checkpoint",
        "missing.npz": "No such file",
        "good.npz": "missing velocity/",  # an optimiser asks for velocities the file lacks
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            io.load(tmp_path / name, target, target_opt)
    io.save(tmp_path / "ten.npz", models.tiny_inception(num_classes=10, in_channels=1, input_size=8))
    with pytest.raises(ValueError, match=r"param/classifier.\d.weight has shape \(10, 112\)"):
        io.load(tmp_path / "ten.npz", target)
    io.save(tmp_path / "nobn.npz", models.tiny_inception(num_classes=5, in_channels=1, input_size=8, bn=False))
    with pytest.raises(ValueError, match="missing buffer/conv1.bn.rolling_mean.*not in the model: param/conv1.conv.bias"):
        io.load(tmp_path / "nobn.npz", target)
    after = snapshot(target)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert io.load(tmp_path / "good.npz", target) == {}  # without an optimiser: fine


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net, _ = make()
    io.save(tmp_path / "c.npz", net)
    good = (tmp_path / "c.npz").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        io.save(tmp_path / "c.npz", net)
    assert (tmp_path / "c.npz").read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]
