"""Checkpoints: a model's parameters and buffers (BatchNorm's rolling statistics, dropout's
step count), optionally an optimiser's velocities and a few meta values (epoch, ...: numbers or
strings), in one .npz.

save never destroys a file: it refuses a target that exists and is not a regular file (a
directory, a device, ...), writes through a symbolic link to the file it points to, and writes a
temporary file beside that file, moved into place with os.replace, so that a crash mid-save
leaves the previous checkpoint whole; the next save to the same target removes the temporary
files such a crash left. A replaced checkpoint keeps its permission bits; a new one gets the
umask's. Meta values are checked before anything is written.

load reads and checks every array (meta values included) before it writes any: a missing,
extra, mis-shaped or mistyped array, or a file that is not a whole checkpoint, raises
ValueError and leaves the model (and optimiser) unchanged. Every array's header is checked
against the bytes the file holds before anything is allocated.

Keys: "param/<name>", "buffer/<name>", "velocity/<name>", "meta/<key>".

"""
import fcntl
import math
import os
import secrets
import stat
import zipfile

import numpy as np

META_KINDS = "biufU"  # bool, integer, unsigned, float, str: what load reads back without pickle
TEMPORARY = (".checkpoint-", ".tmp")  # prefix and suffix of save's temporary files


def _arrays(model, optimizer):
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    arrays.update({f"buffer/{k}": v for k, v in model.buffers.items()})
    if optimizer is not None:
        arrays.update({f"velocity/{k}": v for k, v in optimizer.velocity.items()})
    return arrays


def _meta_problem(key, value):
    """Why value cannot be the meta value `key` (one number or string), or None."""
    if value.ndim or value.dtype.kind not in META_KINDS:
        return f"meta {key} must be one number or string, got {value.dtype} of shape {value.shape}"
    return None


def _target(path):
    """The file a save to path writes: path, or the file its symbolic links lead to; OSError
    when that exists and is not a regular file."""
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(mode):
        raise FileExistsError(f"{path} exists and is not a regular file: not replacing it")
    return target, stat.S_IMODE(mode)


def _remove_stale(target):
    """Remove the temporary files of earlier saves to target that died mid-way: those no
    running save holds locked."""
    folder, prefix = os.path.dirname(target), TEMPORARY[0] + os.path.basename(target) + "."
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(TEMPORARY[1]):
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(os.path.join(folder, name))
            except OSError:  # locked by a save still writing it, or not ours to remove
                continue


def save(path, model, optimizer=None, **meta):
    """Write model (and optimizer) state and meta values (numbers or strings) to path (.npz),
    atomically; see the module's docstring for what it refuses and keeps."""
    arrays = _arrays(model, optimizer)
    for key, value in meta.items():
        value = arrays[f"meta/{key}"] = np.asarray(value)
        problem = _meta_problem(key, value)
        if problem:
            raise TypeError(problem)
    target, mode = _target(path)
    _remove_stale(target)
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f"{TEMPORARY[0]}{name}.{secrets.token_hex(4)}{TEMPORARY[1]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # ours while we write: _remove_stale leaves it
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, target)
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


def _check_memory(nbytes):
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if nbytes > memory:
        raise ValueError(f"its arrays take {nbytes / 2**30:,.1f} GiB, more than this machine's "
                         f"memory ({memory / 2**30:,.1f} GiB)")


def _check_header(f, size, name):
    """Read the .npy header at f's position, the array's `size` bytes including it; ValueError
    when it claims other bytes than those, or an array of Python objects. Returns the bytes."""
    version = np.lib.format.read_magic(f)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{name} is a .npy of version {version}, not 1.0 or 2.0")
    shape, _, dtype = readers[version](f)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects, not numbers")
    claimed, held = math.prod(shape) * dtype.itemsize, size - f.tell()
    if claimed != held:
        raise ValueError(f"{name}'s header claims {shape} {dtype} ({claimed:,} bytes), the "
                         f"file holds {held:,}")
    return claimed


def _check_npz(path):
    """Check every array header of the .npz at path against its bytes, and their total
    against the machine's memory, before anything is allocated."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise ValueError("it is one .npy array, not an .npz of named arrays")
        with zipfile.ZipFile(f) as archive:
            _check_memory(sum(_check_header(archive.open(info), info.file_size, info.filename)
                              for info in archive.infolist()))


def read_npz(path):
    """{name: array} of an .npz file; ValueError naming it when it is not one."""
    try:
        _check_npz(path)
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable .npz file: {error}") from None


def read_npy(path):
    """The array in an .npy file, its header checked before anything is allocated; ValueError
    naming the file when it is not one."""
    try:
        with open(path, "rb") as f:
            _check_memory(_check_header(f, os.fstat(f.fileno()).st_size, os.fspath(path)))
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npy file: {error}") from None


def _meta(stored):
    """The meta values in stored ({key: value}), and the problems of those that are not one
    number or string (left out)."""
    arrays = {k[5:]: v for k, v in stored.items() if k.startswith("meta/")}
    problems = {k: _meta_problem(k, v) for k, v in arrays.items()}
    return ({k: v.item() for k, v in arrays.items() if not problems[k]},
            [p for p in problems.values() if p])


def meta(path):
    """The meta values save stored in path (a dict), without a model."""
    values, problems = _meta(read_npz(path))
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return values


def load(path, model, optimizer=None):
    """Restore what save wrote into model (and optimizer, whose velocities must then be in the
    file); returns the meta values as a dict. Velocities in the file are ignored without an
    optimizer (loading a training checkpoint to predict)."""
    stored = read_npz(path)
    targets = _arrays(model, optimizer)
    ignored = ("meta/",) + (("velocity/",) if optimizer is None else ())
    present = {k for k in stored if not k.startswith(ignored)}
    problems = key_problems(set(targets), present)
    problems += [f"{k} has shape {stored[k].shape} and dtype {stored[k].dtype}, the model's "
                 f"{t.shape} and {t.dtype}" for k, t in targets.items()
                 if k in stored and (stored[k].shape != t.shape or stored[k].dtype != t.dtype)]
    values, meta_problems = _meta(stored)
    problems += meta_problems
    if problems:
        raise ValueError(f"{path} does not fit the model: " + "; ".join(problems))
    for k, t in targets.items():
        t[...] = stored[k]
    return values
