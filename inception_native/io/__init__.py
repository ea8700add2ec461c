"""File formats: our checkpoints (checkpoint.py), torchvision's GoogLeNet and Inception v3
state dicts (torchvision.py), Darknet's .cfg/.weights (darknet.py) and ONNX export (onnx.py,
needs the onnx package). Every function is importable from here:

    from inception_native import io
    io.save("run.npz", model, optimizer, epoch=3); io.load("run.npz", model)
    net = io.torchvision_model("googlenet", "googlenet.pth")
    net = io.load_darknet("extraction.cfg", "extraction.weights"); io.save_darknet(net, "a.cfg", "a.weights")
    io.export_onnx(net, "net.onnx")
"""
from .checkpoint import load, meta, read_npy, save
from .darknet import load_darknet, save_darknet
from .onnx import export_onnx
from .torchvision import (export_torchvision, load_torchvision, read_state_dict,
                          torchvision_model, torchvision_names)

__all__ = ["save", "load", "meta", "read_npy", "load_torchvision", "export_torchvision",
           "read_state_dict", "torchvision_model", "torchvision_names", "load_darknet",
           "save_darknet", "export_onnx"]
