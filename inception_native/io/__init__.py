"""File formats: our checkpoints (checkpoint.py) and torchvision's GoogLeNet and Inception v3
state dicts (torchvision.py). Every function is importable from here:

    from inception_native import io
    io.save("run.npz", model, optimizer, epoch=3); io.load("run.npz", model)
    net = io.torchvision_model("googlenet", "googlenet.pth")
"""
from .checkpoint import load, meta, read_npy, save
from .torchvision import (export_torchvision, load_torchvision, read_state_dict,
                          torchvision_model, torchvision_names)

__all__ = ["save", "load", "meta", "read_npy", "load_torchvision", "export_torchvision", "read_state_dict",
           "torchvision_model", "torchvision_names"]
