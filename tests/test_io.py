"""Checkpoints: save, load and continue gives the steps not stopping gives; bad files and
mismatched models raise and leave the model unchanged; a failed save keeps the old file; save
never replaces what is not a regular file, writes through links, keeps permissions, checks meta
values first and clears what a killed save left."""
import fcntl
import os
import stat

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
        "cut.npz": "is not a readable .npz file",
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


def test_save_refuses_what_is_not_a_regular_file_and_writes_through_links(tmp_path):
    net, _ = make()
    os.mkdir(tmp_path / "folder")
    os.mkfifo(tmp_path / "fifo")
    for name in ("folder", "fifo"):
        with pytest.raises(FileExistsError, match=f"{name} exists and is not a regular file"):
            io.save(tmp_path / name, net)
    assert stat.S_ISDIR(os.lstat(tmp_path / "folder").st_mode)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    os.mkdir(tmp_path / "real")
    io.save(tmp_path / "real" / "c.npz", net, epoch=1)
    os.symlink(tmp_path / "real" / "c.npz", tmp_path / "link.npz")
    io.save(tmp_path / "link.npz", net, epoch=2)
    assert os.path.islink(tmp_path / "link.npz")
    assert io.meta(tmp_path / "real" / "c.npz") == {"epoch": 2}
    os.symlink(tmp_path / "real" / "new.npz", tmp_path / "dangling.npz")
    io.save(tmp_path / "dangling.npz", net, epoch=3)  # creates the file the link names
    assert io.meta(tmp_path / "real" / "new.npz") == {"epoch": 3}
    assert sorted(os.listdir(tmp_path / "real")) == ["c.npz", "new.npz"]


def test_save_keeps_permissions_and_follows_the_umask(tmp_path):
    net, _ = make()
    io.save(tmp_path / "c.npz", net)
    os.chmod(tmp_path / "c.npz", 0o640)
    io.save(tmp_path / "c.npz", net)
    assert stat.S_IMODE(os.stat(tmp_path / "c.npz").st_mode) == 0o640
    old = os.umask(0o022)
    try:
        io.save(tmp_path / "new.npz", net)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o644


def test_meta_values_are_checked_before_anything_is_written(tmp_path):
    net, _ = make()
    io.save(tmp_path / "c.npz", net, epoch=1)
    good = (tmp_path / "c.npz").read_bytes()
    for bad in (None, [1, 2], {"a": 1}, 2**70):
        with pytest.raises(TypeError, match="meta note must be one number or string"):
            io.save(tmp_path / "c.npz", net, note=bad)
    assert (tmp_path / "c.npz").read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]
    io.save(tmp_path / "c.npz", net, epoch=2, note="lr 0.1", best=0.5, done=True)
    assert io.load(tmp_path / "c.npz", net) == {"epoch": 2, "note": "lr 0.1", "best": 0.5, "done": True}


def test_load_checks_meta_before_it_writes_any_tensor(tmp_path):
    net, _ = make()
    stored = {f"param/{k}": v for k, v in net.params.items()}
    stored.update({f"buffer/{k}": v for k, v in net.buffers.items()})
    np.savez(tmp_path / "c.npz", **stored, **{"meta/epoch": np.array([1, 2])})
    target, _ = make(seed=2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"meta epoch must be one number or string, got int64 of shape \(2,\)"):
        io.load(tmp_path / "c.npz", target)
    with pytest.raises(ValueError, match="meta epoch must be"):
        io.meta(tmp_path / "c.npz")
    assert all(np.array_equal(v, before[k]) for k, v in snapshot(target).items())


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    net, _ = make()
    for name in (".checkpoint-c.npz.dead.tmp", ".checkpoint-other.npz.dead.tmp"):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    with open(tmp_path / ".checkpoint-c.npz.live.tmp", "wb") as live:
        fcntl.flock(live, fcntl.LOCK_EX)  # a save still writing: left alone
        io.save(tmp_path / "c.npz", net)
    assert sorted(os.listdir(tmp_path)) == [".checkpoint-c.npz.live.tmp",
                                            ".checkpoint-other.npz.dead.tmp", "c.npz"]


def test_headers_claiming_more_than_the_file_holds_are_refused_before_allocating(tmp_path):
    header = tmp_path / "header"
    with open(header, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (10**12,)})
        f.write(bytes(16))
    import zipfile
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.write(header, "param/conv1.conv.weight.npy")
    net, _ = make()
    with pytest.raises(ValueError, match=r"claims \(1000000000000,\) float32 \(4,000,000,000,000 bytes\), the file holds 16"):
        io.load(tmp_path / "huge.npz", net)
    os.rename(header, tmp_path / "huge.npy")
    with pytest.raises(ValueError, match="huge.npy is not a readable .npy file: .*claims"):
        io.read_npy(tmp_path / "huge.npy")
    np.save(tmp_path / "one.npy", np.zeros(3))
    os.rename(tmp_path / "one.npy", tmp_path / "one.npz")
    with pytest.raises(ValueError, match="one .npy array, not an .npz"):
        io.load(tmp_path / "one.npz", net)
