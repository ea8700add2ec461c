"""`python -m inception_native train` and `predict`: a small Inception network (models.
tiny_inception) on scikit-learn's handwritten digits (1797 8x8 images that ship inside the
scikit-learn package: nothing is downloaded), upsampled to size x size by nearest neighbour.

A fixed 20% of the images (seed 0) is held out; training runs SGD with momentum, a cosine
schedule after a short warm-up, label smoothing 0.1; it prints a progress bar, then the mean
loss and the held-out accuracy per epoch, and saves a checkpoint after every epoch (so also at
the end); --resume continues from the checkpoint's epoch, with the same shuffles.
"""
import sys
import time

import numpy as np

from . import io, losses, models, optim
from ._runtime import get_num_threads, set_num_threads
from .bench_conv import _openblas_set_threads

HELD_OUT = 0.2
CLASSES = 10
MISSING = ("train needs scikit-learn's digits: pip install 'inception-native[train]' "
           "(or pip install scikit-learn)")


def prepare(images, size):
    """Digits like scikit-learn's (N, 8, 8), values 0..16 -> (N, 1, size, size) float32 in [0, 1]."""
    images = np.asarray(images, np.float32)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (N, 8, 8) (or (8, 8)), like scikit-learn's "
                         f"digits, got {images.shape}")
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


def build(size, seed=0):
    return models.tiny_inception(num_classes=CLASSES, in_channels=1, input_size=size, seed=seed)


def progress(done, total, text, width=30):
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text}")
    sys.stderr.flush()


def accuracy(model, x, labels, batch=256):
    model.eval()
    hits = sum(int((model.forward(x[i:i + batch])[0].argmax(1) == labels[i:i + batch]).sum())
               for i in range(0, len(labels), batch))
    return hits / len(labels)


def train(args):
    set_num_threads(args.threads)
    _openblas_set_threads(args.threads)  # SciPy's BLAS has threads of its own
    x, labels, train_idx, test_idx = digits(args.size)
    train_idx = train_idx[:args.limit] if args.limit else train_idx
    model = build(args.size, args.seed)
    opt = optim.SGD(model.params, model.grads, lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss = losses.CrossEntropy(label_smoothing=0.1)
    steps_per_epoch = len(train_idx) // args.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"--batch-size {args.batch_size} is larger than the {len(train_idx)} "
                         "training images")
    total, first = args.epochs * steps_per_epoch, 0
    if args.resume:
        try:
            meta = io.load(args.checkpoint, model, opt)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        if meta.get("size") != args.size:
            raise SystemExit(f"{args.checkpoint} was trained at --size {meta.get('size')}, not {args.size}")
        first = int(meta["epoch"])
        print(f"resumed from {args.checkpoint} after epoch {first}")
    print(f"{len(train_idx)} training and {len(test_idx)} held-out digits at {args.size}x{args.size}, "
          f"{model.num_params():,} parameters, {get_num_threads()} threads")
    for epoch in range(first, args.epochs):
        start, seen, running = time.perf_counter(), 0, 0.0
        order = np.random.default_rng([args.seed, epoch]).permutation(train_idx)
        model.train()
        for i in range(steps_per_epoch):
            batch = order[i * args.batch_size:(i + 1) * args.batch_size]
            opt.lr = optim.cosine_lr(epoch * steps_per_epoch + i, total, args.lr, warmup_steps=20)
            value = loss.forward(model.forward(np.ascontiguousarray(x[batch])), labels[batch])
            model.backward(loss.backward())
            opt.step()
            seen, running = seen + 1, running + value
            progress(i + 1, steps_per_epoch, f"loss {running / seen:.4f}")
        held_out = accuracy(model, x[test_idx], labels[test_idx])
        sys.stderr.write("\n")
        print(f"epoch {epoch + 1}/{args.epochs}  loss {running / seen:.4f}  held-out accuracy "
              f"{held_out:.2%}  {time.perf_counter() - start:.1f}s", flush=True)
        io.save(args.checkpoint, model, opt, epoch=epoch + 1, size=args.size)
    print(f"checkpoint: {args.checkpoint}")


def predict(args):
    try:
        images = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot read {args.input}: {error}") from None
    try:
        size = io.meta(args.checkpoint).get("size")
        if size is None:
            raise ValueError(f"{args.checkpoint} is not a train checkpoint (no meta/size)")
        model = build(size)
        io.load(args.checkpoint, model)
        logits = model.eval().forward(prepare(images, size))[0].astype(np.float64)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for n, p in enumerate(probs):
        top = np.argsort(-p)[:args.top]
        print(f"{n}: " + ", ".join(f"{k} ({p[k]:.1%})" for k in top))
