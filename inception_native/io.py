"""Checkpoints: a model's parameters and buffers (BatchNorm's rolling statistics, dropout's
step count), optionally an optimiser's velocities and a few numbers (epoch, ...), in one .npz.

save writes a temporary file beside the target and moves it into place with os.replace, so a
crash mid-save leaves the previous checkpoint whole. load reads and checks every array before
it writes any: a missing, extra, mis-shaped or mistyped array, or a file that is not a whole
checkpoint, raises ValueError and leaves the model (and optimiser) unchanged.

Keys: "param/<name>", "buffer/<name>", "velocity/<name>", "meta/<key>".

Also torchvision's GoogLeNet and Inception v3 state dicts: load_torchvision, export_torchvision,
torchvision_model (below).
"""
import functools
import os
import tempfile
import zipfile

import numpy as np

from . import models


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


def _listed(names):
    names = sorted(names)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _key_problems(expected, present, ignored=frozenset()):
    """What keeps a set of names `present` from fitting `expected` (names in `ignored` may be
    present too): the missing and the extra, listed."""
    problems = []
    if expected - present:
        problems.append(f"missing {_listed(expected - present)}")
    if present - expected - ignored:
        problems.append(f"not in the model: {_listed(present - expected - ignored)}")
    return problems


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from None


def _meta(stored):
    return {k[5:]: v.item() for k, v in stored.items() if k.startswith("meta/")}


def meta(path):
    """The meta numbers save stored in path (a dict), without a model."""
    return _meta(_read(path))


def load(path, model, optimizer=None):
    """Restore what save wrote into model (and optimizer, whose velocities must then be in the
    file); returns the meta numbers as a dict. Velocities in the file are ignored without an
    optimizer (loading a training checkpoint to predict)."""
    stored = _read(path)
    targets = _arrays(model, optimizer)
    ignored = ("meta/",) + (("velocity/",) if optimizer is None else ())
    present = {k for k in stored if not k.startswith(ignored)}
    problems = _key_problems(set(targets), present)
    problems += [f"{k} has shape {stored[k].shape} and dtype {stored[k].dtype}, the model's "
                 f"{t.shape} and {t.dtype}" for k, t in targets.items()
                 if k in stored and (stored[k].shape != t.shape or stored[k].dtype != t.dtype)]
    if problems:
        raise ValueError(f"{path} does not fit the model: " + "; ".join(problems))
    for k, t in targets.items():
        t[...] = stored[k]
    return _meta(stored)


# ---- torchvision's GoogLeNet and Inception v3 state dicts -----------------------------------
#
# A network built in torchvision's layout (models.googlenet(layout="torchvision"),
# models.inception_v3()) holds the same tensors as torchvision's, under other names: ours are
# stage.child...leaf, theirs the attribute paths of its modules. A name maps by its longest
# prefix found in the layout's table, then by its leaf (BatchNorm's gamma is their weight, ...).
# Their BatchNorms also count batches (num_batches_tracked): read and ignored, exported as 0.

LEAVES = {"gamma": "weight", "beta": "bias", "rolling_mean": "running_mean",
          "rolling_variance": "running_var"}
COUNTER = "num_batches_tracked"


def _numbered(ours, theirs, count):
    """{ours.i: theirs_(i+1)} for i < count: a branch's convolutions."""
    return {f"{ours}.{i}": f"{theirs}_{i + 1}" for i in range(count)}


def _googlenet_table():
    table = {"conv1": "conv1", "conv2.0": "conv2", "conv2.1": "conv3",
             "classifier.1": "fc", "classifier.2": "fc"}  # classifier.2 behind a dropout
    for stage in models.GOOGLENET_TABLE:  # inception_3a: branch0..3 are their branch1..4
        table.update({f"{stage}.branch{i}": f"{stage.replace('_', '')}.branch{i + 1}" for i in range(4)})
    for ours, theirs in (("aux_inception_4a", "aux1"), ("aux_inception_4d", "aux2")):
        table.update({f"{ours}.1": f"{theirs}.conv", f"{ours}.3": f"{theirs}.fc1",
                      f"{ours}.6": f"{theirs}.fc2"})
    return table


# Inception v3's modules: our branch paths -> torchvision's attribute names, by module kind.
V3_MODULES = {
    "A": {"branch0": "branch1x1", **_numbered("branch1", "branch5x5", 2),
          **_numbered("branch2", "branch3x3dbl", 3), "branch3.1": "branch_pool"},
    "B": {"branch0": "branch3x3", **_numbered("branch1", "branch3x3dbl", 3)},
    "C": {"branch0": "branch1x1", **_numbered("branch1", "branch7x7", 3),
          **_numbered("branch2", "branch7x7dbl", 5), "branch3.1": "branch_pool"},
    "D": {**_numbered("branch0", "branch3x3", 2), **_numbered("branch1", "branch7x7x3", 4)},
    "E": {"branch0": "branch1x1", "branch1.0": "branch3x3_1", "branch1.1.branch0": "branch3x3_2a",
          "branch1.1.branch1": "branch3x3_2b", **_numbered("branch2", "branch3x3dbl", 2),
          "branch2.2.branch0": "branch3x3dbl_3a", "branch2.2.branch1": "branch3x3dbl_3b",
          "branch3.1": "branch_pool"},
}
V3_STAGES = {"mixed_5b": "A", "mixed_5c": "A", "mixed_5d": "A", "mixed_6a": "B", "mixed_6b": "C",
             "mixed_6c": "C", "mixed_6d": "C", "mixed_6e": "C", "mixed_7a": "D", "mixed_7b": "E",
             "mixed_7c": "E"}


def _inception_v3_table():
    table = {"conv1.0": "Conv2d_1a_3x3", "conv1.1": "Conv2d_2a_3x3", "conv1.2": "Conv2d_2b_3x3",
             "conv2.0": "Conv2d_3b_1x1", "conv2.1": "Conv2d_4a_3x3",
             "classifier.1": "fc", "classifier.2": "fc",
             "aux_mixed_6e.1": "AuxLogits.conv0", "aux_mixed_6e.2": "AuxLogits.conv1",
             "aux_mixed_6e.4": "AuxLogits.fc"}
    for stage, kind in V3_STAGES.items():
        theirs = "Mixed_" + stage[len("mixed_"):]
        table.update({f"{stage}.{k}": f"{theirs}.{v}" for k, v in V3_MODULES[kind].items()})
    return table


TABLES = {"torchvision googlenet": _googlenet_table, "torchvision inception_v3": _inception_v3_table}


def _torchvision_name(table, name):
    """Our parameter name -> torchvision's: the longest prefix in table, then the leaf."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in table:
            return ".".join([table[prefix], *parts[cut:-1], LEAVES.get(parts[-1], parts[-1])])
    raise ValueError(f"{name} has no torchvision name")  # a table out of step with models


def torchvision_names(model):
    """{our name: torchvision's} for every tensor the two share: the parameters and the
    BatchNorms' rolling statistics (not dropout's seeds)."""
    table = TABLES.get(getattr(model, "layout", None))
    if table is None:
        raise ValueError("model is not in torchvision's layout: build it with "
                         "models.googlenet(layout='torchvision') or models.inception_v3() "
                         "(BatchNorm flavour 'exact')")
    table = table()
    ours = [*model.params, *(k for k in model.buffers if k.rsplit(".", 1)[-1] in LEAVES)]
    return {name: _torchvision_name(table, name) for name in ours}


def _tensors(model):
    return {**model.params, **model.buffers}


def _counter(name):
    """The batch count beside torchvision's BatchNorm tensor `name` (its running_var), or None."""
    return name[: -len("running_var")] + COUNTER if name.endswith(".running_var") else None


def export_torchvision(model):
    """The model's tensors as torchvision's state dict: {name: NumPy array} (copies), with a 0
    batch count per BatchNorm. torch.save({k: torch.from_numpy(v) ...}) makes a .pth of it;
    np.savez one that needs no PyTorch to read."""
    tensors, state = _tensors(model), {}
    for ours, theirs in torchvision_names(model).items():
        state[theirs] = tensors[ours].copy()
        if _counter(theirs):
            state[_counter(theirs)] = np.zeros((), np.int64)
    return state


def read_state_dict(weights):
    """weights as {name: NumPy array}: a mapping (of arrays or torch tensors), a .npz file, or
    a .pth file (with PyTorch)."""
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if path.endswith(".npz"):
            return _read(path)
        try:
            import torch
        except ImportError:
            raise ImportError(f"reading {path} needs PyTorch (pip install "
                              "'inception-native[torch]'); a .npz state dict does not") from None
        weights = torch.load(path, map_location="cpu", weights_only=True)
    if not hasattr(weights, "items"):
        raise TypeError(f"weights must be a state dict (a mapping of name to tensor) or its "
                        f"file, got {type(weights).__name__}")
    return {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
            for k, v in weights.items()}


def load_torchvision(model, weights):
    """Load torchvision's state dict (see read_state_dict for the forms weights may take) into
    a model built in its layout; returns the model. Every tensor is checked before any is
    written: a missing, unexpected, mis-shaped or non-finite tensor raises ValueError naming it
    and leaves the model unchanged."""
    names, state, tensors = torchvision_names(model), read_state_dict(weights), _tensors(model)
    counters = set(map(_counter, names.values())) - {None}
    problems = _key_problems(set(names.values()), set(state), counters)
    for ours, theirs in names.items():
        if theirs not in state:
            continue
        value, target = state[theirs], tensors[ours]
        if value.shape != target.shape:
            problems.append(f"{theirs} has shape {value.shape}, the model's is {target.shape}")
        elif not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            problems.append(f"{theirs} must hold finite floating-point numbers")
    if problems:
        raise ValueError("the weights do not fit the model: " + "; ".join(problems))
    for ours, theirs in names.items():
        tensors[ours][...] = state[theirs]
    return model


def torchvision_model(arch, weights, transform_input=True, **options):
    """Our arch ("googlenet" or "inception_v3") in torchvision's layout with weights loaded:
    the classes counted from fc.weight, the auxiliary heads built when the weights hold them.
    transform_input defaults to True, as torchvision sets it for its own weights; options go to
    the model's builder (dtype, backend, input_size, ...)."""
    builders = {"googlenet": functools.partial(models.googlenet, layout="torchvision"),
                "inception_v3": models.inception_v3}
    if arch not in builders:
        raise ValueError(f"arch must be one of {tuple(builders)}, got {arch!r}")
    state = read_state_dict(weights)
    if "fc.weight" not in state or state["fc.weight"].ndim != 2:
        raise ValueError("the weights have no 2-D fc.weight: not a torchvision classifier's")
    aux = any(k.startswith(("aux1.", "AuxLogits.")) for k in state)
    model = builders[arch](num_classes=state["fc.weight"].shape[0], aux=aux,
                           transform_input=transform_input, **options)
    return load_torchvision(model, state)
