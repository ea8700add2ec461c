"""Any of our layers (a whole network too) run again in PyTorch's autograd, on torch leaves of
the very same parameter arrays: an independent reference for forward and backward."""
import numpy as np

from inception_native import layers, models


def leaves(model, torch):
    """{id(parameter array): a torch leaf holding a copy}, and the name -> leaf dict."""
    named = {name: torch.tensor(p, requires_grad=True) for name, p in model.params.items()}
    return {id(p): named[name] for name, p in model.params.items()}, named


def mirror(layer, t, leaf, torch):
    """The layer's forward in PyTorch (dropout reuses the mask our last forward drew)."""
    F = torch.nn.functional
    p = {k: leaf[id(v)] for k, v in layer.params.items()} if not isinstance(layer, layers.Container) else {}
    if isinstance(layer, models.Network):
        outputs = []
        for name, stage in layer.stages:
            t = mirror(stage, t, leaf, torch)
            if layer.training and name in layer.heads:
                outputs.append(mirror(layer.heads[name], t, leaf, torch))
        return [t] + outputs
    if isinstance(layer, layers.Sequential):
        for _, child in layer.children:
            t = mirror(child, t, leaf, torch)
        return t
    if isinstance(layer, layers.Concat):
        return torch.cat([mirror(b, t, leaf, torch) for _, b in layer.children], 1)
    if isinstance(layer, layers.Conv2d):
        return F.conv2d(t, p["weight"], p.get("bias"), layer.stride, layer.padding)
    if isinstance(layer, layers.BatchNorm):
        stats = [None, None] if layer.training else [torch.tensor(layer.rolling_mean), torch.tensor(layer.rolling_variance)]
        return F.batch_norm(t, *stats, p["gamma"], p["beta"], training=layer.training, eps=layer.eps)
    if isinstance(layer, layers.AvgPool2d):
        return F.avg_pool2d(t, layer.kernel, layer.stride, layer.padding, layer.ceil_mode,
                            layer.count_include_pad)
    if isinstance(layer, layers.MaxPool2d):
        return F.max_pool2d(t, layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, layers.ReLU):
        return F.relu(t)
    if isinstance(layer, layers.AdaptiveAvgPool2d):
        return F.adaptive_avg_pool2d(t, layer.output_size)
    if isinstance(layer, layers.GlobalAvgPool):
        return t.mean((2, 3))
    if isinstance(layer, layers.Flatten):
        return t.flatten(1)
    if isinstance(layer, layers.Dropout):
        return t * torch.from_numpy(layer._mask) if layer.training else t
    if isinstance(layer, layers.Linear):
        return F.linear(t, p["weight"], p.get("bias"))
    raise TypeError(f"no PyTorch mirror for {type(layer).__name__}")


def assert_matches_torch(layer, x, dys, torch, rtol=1e-9):
    """Run our forward and backward (dys: dL/dy, one per output) and PyTorch's; assert that
    outputs, dL/dx and every parameter gradient agree."""
    ours = layer.forward(x)
    ours = [o.copy() for o in (ours if isinstance(ours, list) else [ours])]
    dx = layer.backward(dys if isinstance(layer, models.Network) else dys[0])
    dx = None if dx is None else dx.copy()
    leaf, named = leaves(layer, torch)
    tx = torch.tensor(x, requires_grad=True)
    theirs = mirror(layer, tx, leaf, torch)
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert len(theirs) == len(ours)
    sum((t * torch.from_numpy(d)).sum() for t, d in zip(theirs, dys)).backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t.detach().numpy(), rtol=rtol, atol=rtol)
    if dx is not None:
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=rtol, atol=rtol)
    for name, g in layer.grads.items():
        np.testing.assert_allclose(g, named[name].grad.numpy(), rtol=rtol, atol=rtol, err_msg=name)
