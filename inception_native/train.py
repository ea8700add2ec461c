"""`python -m inception_native train` and `predict`: a small Inception network (models.
tiny_inception) on scikit-learn's handwritten digits (1797 8x8 images that ship inside the
scikit-learn package: nothing is downloaded), upsampled to size x size by nearest neighbour.

A fixed 20% of the images (seed 0) is held out; training runs SGD with momentum, a cosine
schedule after a short warm-up, label smoothing 0.1; it prints a progress bar, then the mean
loss and the held-out accuracy per epoch, and saves a checkpoint after every epoch (so also at
the end); --resume continues from the checkpoint's epoch, with the same shuffles.

With --distributed, under mpirun (see inception_native.distributed): every rank draws the same
shuffle, takes its slice of each global batch of --batch-size images, and the gradients (and
the loss) are averaged with one allreduce per step; BatchNorm's batch statistics are per rank,
its rolling statistics averaged over the ranks at the end of each epoch, before the held-out
accuracy (each rank scores a slice of the held-out digits) and rank 0's checkpoint. Rank 0 alone
prints and writes; every rank reads the checkpoint on --resume.
"""
import os
import socket
import sys
import time

import numpy as np

from . import darknet_cli, distributed, io, losses, models, optim
from .threads import get_num_threads, set_num_threads, threads_text

HELD_OUT = 0.2
CLASSES = 10
SIZES = (8, 256)  # --size: digits are 8x8; 256 keeps the upsampled set near 0.5 GB
MISSING = ("train needs scikit-learn's digits: pip install 'inception-native[train]' "
           "(or pip install scikit-learn)")


def prepare(images, size):
    """Digits like scikit-learn's (N, 8, 8), values 0..16 -> (N, 1, size, size) float32 in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (8, 8) or not len(images):
        raise ValueError(f"images must have shape (N, 8, 8) with N >= 1 (or (8, 8)), like "
                         f"scikit-learn's digits, got {images.shape}")
    if images.dtype.kind not in "biuf":
        raise ValueError(f"images must hold numbers, like scikit-learn's digits, not {images.dtype}")
    if not ((images >= 0) & (images <= 16)).all():
        raise ValueError(f"images must hold numbers from 0 to 16, like scikit-learn's digits, "
                         f"got some from {images.min()} to {images.max()}")
    images = images.astype(np.float32)
    nearest = np.arange(size) * 8 // size
    return np.ascontiguousarray(images[:, nearest][:, :, nearest][:, None] / 16)


def digits(size):
    """(x, labels) of all 1797 digits, and the (train, held-out) index arrays."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit(MISSING) from None
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    cut = int(len(order) * (1 - HELD_OUT))
    return prepare(data.images, size), data.target.astype(np.int64), order[:cut], order[cut:]


def build(size, seed=0, cfg=None):
    """models.tiny_inception, or the network of a Darknet cfg's text (train --cfg)."""
    if cfg is not None:
        return darknet_cli.trainable(cfg, seed)
    return models.tiny_inception(num_classes=CLASSES, in_channels=1, input_size=size, seed=seed)


def progress(done, total, text, width=30):
    """A progress bar redrawn in place on a terminal's stderr (nothing elsewhere: a log file
    gets the one line per epoch that train prints)."""
    if sys.stderr.isatty():
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text}"
                         + ("\n" if done == total else ""))
        sys.stderr.flush()


def checkpoint_meta(path):
    """(epoch, size, cfg) of a train checkpoint, checked (cfg: the Darknet cfg's text it was
    trained from, or None): SystemExit naming the file otherwise."""
    try:
        meta = io.meta(path)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    epoch, size = meta.get("epoch"), meta.get("size")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not whole(epoch) or epoch < 0:
        raise SystemExit(f"{path}: meta epoch must be a whole number >= 0, got {epoch!r}")
    if not whole(size) or not SIZES[0] <= size <= SIZES[1]:
        raise SystemExit(f"{path}: meta size must be a whole number from {SIZES[0]} to "
                         f"{SIZES[1]}, got {size!r}")
    return epoch, size, meta.get("cfg")


def last_checkpoint(path):
    """Which epoch the checkpoint at path holds, in words."""
    try:
        return f"{path} holds epoch {io.meta(path)['epoch']}"
    except (ValueError, KeyError):
        return f"no checkpoint at {path}"


def save(path, model, opt, epoch, size, cfg=None):
    """io.save, its errors (a read-only folder, a full disk ...) in one line."""
    try:
        io.save(path, model, opt, epoch=epoch, size=size, **({} if cfg is None else {"cfg": cfg}))
    except OSError as error:
        raise SystemExit(f"cannot write the checkpoint {path}: {error.strerror or error}") from None


def hits(model, x, labels, batch=256):
    """How many of x the model (in inference mode) classifies right."""
    model.eval()
    return sum(int((model.forward(x[i:i + batch])[0].argmax(1) == labels[i:i + batch]).sum())
               for i in range(0, len(labels), batch))


def accuracy(model, x, labels, batch=256):
    return hits(model, x, labels, batch) / len(labels)


def train(args):
    if not getattr(args, "distributed", False):
        try:
            return _train(args, None)
        except KeyboardInterrupt:
            sys.stderr.write("\n" if sys.stderr.isatty() else "")  # off the progress bar
            raise KeyboardInterrupt(last_checkpoint(args.checkpoint)) from None
    comm = distributed.world()
    try:
        _train(args, comm)
    except SystemExit as error:  # one rank's error (a bad checkpoint ...) ends every rank
        if error.code not in (None, 0):
            distributed.abort(comm, str(error.code))
    except BaseException as error:
        distributed.abort(comm, f"{type(error).__name__}: {error}")


def _train(args, comm):
    """One process (comm None) or one rank of an MPI job."""
    rank, ranks = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    say = print if rank == 0 else (lambda *a, **k: None)
    set_num_threads(args.threads)  # OpenMP's and the BLAS's
    cfg = darknet_cli.train_cfg(args, CLASSES)  # --cfg's text (it sets args.size), or None
    x, labels, train_idx, test_idx = digits(args.size)
    train_idx = train_idx[:args.limit] if args.limit else train_idx
    if args.batch_size % ranks:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {ranks} ranks")
    local = args.batch_size // ranks  # this rank's slice of every global batch
    model = build(args.size, args.seed, cfg)
    opt = optim.SGD(model.params, model.grads, lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss = losses.CrossEntropy(label_smoothing=0.1)
    steps_per_epoch = len(train_idx) // args.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"--batch-size {args.batch_size} is larger than the {len(train_idx)} "
                         "training images")
    total, first = args.epochs * steps_per_epoch, 0
    if args.resume:
        first, size, _ = checkpoint_meta(args.checkpoint)
        if size != args.size:
            raise SystemExit(f"{args.checkpoint} was trained at --size {size}, not {args.size}")
        try:
            io.load(args.checkpoint, model, opt)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        say(f"resumed from {args.checkpoint} after epoch {first}")
    if rank == 0:  # can it be written? Better known now than after an epoch
        save(args.checkpoint, model, opt, first, args.size, cfg)
    if comm is not None:
        distributed.decorrelate_dropout(model, rank)
        averager = distributed.GradientAverager(comm, model.grads, extras=1, timeout=args.timeout)
        sys.stderr.write(f"rank {rank}/{ranks}: pid {os.getpid()} on {socket.gethostname()}\n")
        sys.stderr.flush()
        say(f"{ranks} ranks, {local} images each per step; {averager.bytes:,} bytes allreduced "
            "per step; BatchNorm statistics per rank"
            + ("" if ranks > 1 else " (one rank: start it with mpirun -n N for N)"))
    say(f"{len(train_idx)} training and {len(test_idx)} held-out digits at {args.size}x{args.size}, "
        f"{model.num_params():,} parameters, {threads_text(get_num_threads())}")
    for epoch in range(first, args.epochs):
        start, seen, running = time.perf_counter(), 0, 0.0
        order = np.random.default_rng([args.seed, epoch]).permutation(train_idx)
        model.train()
        for i in range(steps_per_epoch):
            batch = order[i * args.batch_size + rank * local:i * args.batch_size + (rank + 1) * local]
            opt.lr = optim.cosine_lr(epoch * steps_per_epoch + i, total, args.lr, warmup_steps=20)
            value = loss.forward(model.forward(np.ascontiguousarray(x[batch])), labels[batch])
            model.backward(loss.backward())
            if comm is not None:
                grads = model.grads
                value = float(averager.average(grads, [value])[0])
            if not np.isfinite(value):  # every rank sees the same averaged value
                raise SystemExit(f"the loss is {value} at epoch {epoch + 1}, step {i + 1} (learning "
                                 f"rate {opt.lr:.3g}): stopped; {last_checkpoint(args.checkpoint)}")
            opt.step()
            seen, running = seen + 1, running + value
            if rank == 0:
                progress(i + 1, steps_per_epoch, f"loss {running / seen:.4f}")
        if comm is not None:
            distributed.average_buffers(comm, model, args.timeout)
            mine = test_idx[rank::ranks]
            right = np.array([hits(model, x[mine], labels[mine]) if len(mine) else 0], np.float64)
            held_out = distributed.allreduce_sum(comm, right, args.timeout,
                                                 "the held-out accuracy's allreduce")[0] / len(test_idx)
        else:
            held_out = accuracy(model, x[test_idx], labels[test_idx])
        if rank == 0:  # the checkpoint first: a printed epoch is a saved one
            save(args.checkpoint, model, opt, epoch + 1, args.size, cfg)
            say(f"epoch {epoch + 1}/{args.epochs}  loss {running / seen:.4f}  held-out accuracy "
                f"{held_out:.2%}  {time.perf_counter() - start:.1f}s", flush=True)
    say(f"checkpoint: {args.checkpoint}")


def checkpoint_model(path):
    """(network, size) of a train checkpoint (its cfg's network, or tiny_inception), weights
    loaded; SystemExit naming the file when it is not one."""
    _, size, cfg = checkpoint_meta(path)
    model = build(size, cfg=cfg)
    try:
        io.load(path, model)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return model, size


def predict(args, batch=256):
    """Top classes of each digit in --input, by the frozen network, `batch` digits at a time
    (any number of them in bounded memory)."""
    if args.input is None:
        raise SystemExit("predict --checkpoint needs --input DIGITS.npy")
    _, size, _ = checkpoint_meta(args.checkpoint)
    try:
        images = io.read_npy(args.input)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    images = images[None] if images.ndim in (0, 2) else images  # one digit
    try:
        prepare(images[:1], size)  # the shape, checked before the network is built
    except ValueError as error:
        raise SystemExit(f"--input {args.input}: {error}") from None
    frozen = checkpoint_model(args.checkpoint)[0].freeze()
    for start in range(0, len(images), batch):
        logits = frozen.forward(prepare(images[start:start + batch], size))[0]
        for n, top in enumerate(losses.top_classes(logits, args.top or 3), start):
            print(f"{n}: " + ", ".join(f"{k} ({p:.1%})" for k, p in top))
