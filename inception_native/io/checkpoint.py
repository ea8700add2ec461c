"""Checkpoints: a model's parameters and buffers (BatchNorm's rolling statistics, dropout's
step count), optionally an optimiser's velocities and a few numbers (epoch, ...), in one .npz.

save writes a temporary file beside the target and moves it into place with os.replace, so a
crash mid-save leaves the previous checkpoint whole. load reads and checks every array before
it writes any: a missing, extra, mis-shaped or mistyped array, or a file that is not a whole
checkpoint, raises ValueError and leaves the model (and optimiser) unchanged.

Keys: "param/<name>", "buffer/<name>", "velocity/<name>", "meta/<key>".

"""
import os
import tempfile
import zipfile

import numpy as np


def _arrays(model, optimizer):
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    arrays.update({f"buffer/{k}": v for k, v in model.buffers.items()})
    if optimizer is not None:
        arrays.update({f"velocity/{k}": v for k, v in optimizer.velocity.items()})
    return arrays


def save(path, model, optimizer=None, **meta):
    """Write model (and optimizer) state and meta numbers to path (.npz), atomically."""
    arrays = _arrays(model, optimizer)
    arrays.update({f"meta/{k}": np.asarray(v) for k, v in meta.items()})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def listed(names):
    names = sorted(names)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def key_problems(expected, present, ignored=frozenset()):
    """What keeps a set of names `present` from fitting `expected` (names in `ignored` may be
    present too): the missing and the extra, listed."""
    problems = []
    if expected - present:
        problems.append(f"missing {listed(expected - present)}")
    if present - expected - ignored:
        problems.append(f"not in the model: {listed(present - expected - ignored)}")
    return problems


def read_npz(path):
    """{name: array} of an .npz file; ValueError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from None


def _meta(stored):
    return {k[5:]: v.item() for k, v in stored.items() if k.startswith("meta/")}


def meta(path):
    """The meta numbers save stored in path (a dict), without a model."""
    return _meta(read_npz(path))


def load(path, model, optimizer=None):
    """Restore what save wrote into model (and optimizer, whose velocities must then be in the
    file); returns the meta numbers as a dict. Velocities in the file are ignored without an
    optimizer (loading a training checkpoint to predict)."""
    stored = read_npz(path)
    targets = _arrays(model, optimizer)
    ignored = ("meta/",) + (("velocity/",) if optimizer is None else ())
    present = {k for k in stored if not k.startswith(ignored)}
    problems = key_problems(set(targets), present)
    problems += [f"{k} has shape {stored[k].shape} and dtype {stored[k].dtype}, the model's "
                 f"{t.shape} and {t.dtype}" for k, t in targets.items()
                 if k in stored and (stored[k].shape != t.shape or stored[k].dtype != t.dtype)]
    if problems:
        raise ValueError(f"{path} does not fit the model: " + "; ".join(problems))
    for k, t in targets.items():
        t[...] = stored[k]
    return _meta(stored)
