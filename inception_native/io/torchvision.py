"""torchvision's GoogLeNet and Inception v3 state dicts: read them into our models built in
torchvision's layout, and write ours out in theirs.

A network built in torchvision's layout (models.googlenet(layout="torchvision"),
models.inception_v3()) holds the same tensors as torchvision's, under other names: ours are
stage.child...leaf, theirs the attribute paths of its modules. The model declares which of its
layers is which of theirs (Network.torchvision_names, set in models.py beside the stages); a
tensor's name maps by its longest prefix found there, then by its leaf (BatchNorm's gamma is
their weight, ...). Their BatchNorms also count batches (num_batches_tracked): read and ignored,
exported as 0.
"""
import functools
import os
import zipfile

import numpy as np

from .. import models
from .checkpoint import key_problems, read_npz

LEAVES = {"gamma": "weight", "beta": "bias", "rolling_mean": "running_mean",
          "rolling_variance": "running_var"}
COUNTER = "num_batches_tracked"


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
    table = getattr(model, "torchvision_names", None)
    if table is None:
        raise ValueError("model is not in torchvision's layout: build it with "
                         "models.googlenet(layout='torchvision') or models.inception_v3() "
                         "(BatchNorm flavour 'exact')")
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


def _torch_load(path):
    """torch.load(path) of tensors only; ValueError naming the file when it is not one."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {path} needs PyTorch (pip install "
                          "'inception-native[torch]'); a .npz state dict does not") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # torch.load raises a dozen kinds for a file it cannot read
        first = (str(error).splitlines() or [""])[0][:120]
        raise ValueError(f"{path} is not a PyTorch file of tensors that torch.load(weights_only="
                         f"True) reads ({type(error).__name__}: {first})") from None


def _array(name, value):
    """A state dict's value as a NumPy array; ValueError naming what is not a tensor or array
    of a type NumPy holds (bfloat16, ...)."""
    if hasattr(value, "detach"):
        try:
            return value.detach().cpu().numpy()
        except TypeError:
            raise ValueError(f"{name} is a {value.dtype} tensor, which NumPy cannot hold: "
                             "convert the weights to float32") from None
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"{name} is a {type(value).__name__}, not a tensor (is this a state dict?)")


def read_state_dict(weights):
    """weights as {name: NumPy array}: a mapping (of arrays or torch tensors), an .npz file, or
    a file torch.save wrote (with PyTorch), told apart by their contents; ValueError when a file
    is neither or holds something other than tensors."""
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        weights = read_npz(path) if _is_numpy(path) else _torch_load(path)
    if not hasattr(weights, "items"):
        raise TypeError(f"weights must be a state dict (a mapping of name to tensor) or its "
                        f"file, got {type(weights).__name__}")
    return {k: _array(k, v) for k, v in weights.items()}


def _is_numpy(path):
    """Whether path is NumPy's: an .npz by its suffix or its contents (a zip of .npy files), or
    an .npy (which read_npz refuses, saying so)."""
    if path.endswith(".npz") or not os.path.isfile(path):
        return path.endswith(".npz")
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return all(name.endswith(".npy") for name in archive.namelist())


def load_torchvision(model, weights):
    """Load torchvision's state dict (see read_state_dict for the forms weights may take) into
    a model built in its layout; returns the model. Every tensor is checked before any is
    written: a missing, unexpected or mis-shaped tensor, one that is not finite in the model's
    dtype (a float64 beyond float32's range ...) or a negative running variance raises
    ValueError naming it and leaves the model unchanged."""
    names, state, tensors = torchvision_names(model), read_state_dict(weights), _tensors(model)
    counters = set(map(_counter, names.values())) - {None}
    problems = key_problems(set(names.values()), set(state), counters)
    for ours, theirs in names.items():
        if theirs not in state:
            continue
        value, target = state[theirs], tensors[ours]
        if value.shape != target.shape:
            problems.append(f"{theirs} has shape {value.shape}, the model's is {target.shape}")
            continue
        floating = np.issubdtype(value.dtype, np.floating)
        with np.errstate(over="ignore"):
            state[theirs] = cast = value.astype(target.dtype, copy=False) if floating else value
        if not floating or not np.isfinite(cast).all():
            problems.append(f"{theirs} must hold finite floating-point numbers within "
                            f"{target.dtype}'s range (it holds {value.dtype})")
        elif theirs.endswith("running_var") and (cast < 0).any():
            problems.append(f"{theirs} holds negative variances")
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
