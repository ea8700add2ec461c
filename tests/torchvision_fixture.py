"""The torchvision fixture: what test_torchvision.py needs to check the weight import against
torchvision without torchvision installed.

Each tensor of torchvision's GoogLeNet and Inception v3 state dicts is drawn from a generator
seeded with its name (seeded_state_dict), so the fixture keeps only the names and shapes, the
seeds of the input images, and the logits torchvision computes in eval mode: a few kB.

Regenerate it where torchvision runs (here: a separate virtualenv with
`pip install torch==2.14.1 torchvision==0.29.1 numpy`, see README "Weights from torchvision"):

    python tests/torchvision_fixture.py      # writes tests/data/torchvision.npz
"""
import json
import os
import zlib

import numpy as np

PATH = os.path.join(os.path.dirname(__file__), "data", "torchvision.npz")

# arch -> how torchvision's model is built and fed: input size, transform_input, batch.
CASES = {"googlenet": (224, True, 2), "inception_v3": (299, False, 2)}


def seeded_tensor(name, shape):
    """A plausible value for torchvision's tensor `name`, drawn from a generator seeded with
    the name: He-normal convolutions, 1/sqrt(fan in) linear weights, BatchNorm scales and
    variances around 1, small biases and means."""
    rng, leaf = np.random.default_rng(zlib.crc32(name.encode())), name.rsplit(".", 1)[-1]
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if leaf == "num_batches_tracked":
        return np.zeros(shape, np.int64)
    if leaf == "weight" and len(shape) == 4:
        value = rng.standard_normal(shape) * np.sqrt(2 / fan_in)
    elif leaf == "weight" and len(shape) == 2:
        value = rng.standard_normal(shape) / np.sqrt(fan_in)
    elif leaf in ("weight", "running_var"):
        value = rng.uniform(0.5, 1.5, shape)
    else:  # bias, running_mean
        value = rng.standard_normal(shape) * 0.1
    return value.astype(np.float32)


def seeded_state_dict(shapes):
    """{name: seeded_tensor(name, shape)} for shapes {name: shape}."""
    return {name: seeded_tensor(name, tuple(shape)) for name, shape in shapes.items()}


def seeded_images(arch):
    size, _, batch = CASES[arch]
    return np.random.default_rng(7).standard_normal((batch, 3, size, size)).astype(np.float32)


# arch -> torchvision's auxiliary heads and the modules whose outputs feed them
HEADS = {"googlenet": {"aux1": "inception4a", "aux2": "inception4d"},
         "inception_v3": {"AuxLogits": "Mixed_6e"}}


def read():
    """{arch: (shapes {name: shape}, logits, the auxiliary heads' logits)} from the fixture."""
    with np.load(PATH, allow_pickle=False) as data:
        return {arch: (json.loads(str(data[f"{arch}/shapes"])), data[f"{arch}/logits"],
                       data[f"{arch}/aux"]) for arch in CASES}


FIXTURE_SHAPES = {arch: shapes for arch, (shapes, _, _) in read().items()} if os.path.exists(PATH) else {}


def torchvision_logits(arch, state, transform_input, images):
    """torchvision's model `arch` with `state` loaded, in eval mode: its logits for images and
    its auxiliary heads' (stacked), each head fed with its module's output."""
    import torch
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None, aux_logits=True, init_weights=False,
                                              transform_input=transform_input)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    features = {}
    for head, module in HEADS[arch].items():
        getattr(model, module).register_forward_hook(
            lambda _, __, output, head=head: features.__setitem__(head, output))
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(images)).numpy()
        aux = [getattr(model, head)(features[head]).numpy() for head in HEADS[arch]]
    return logits, np.stack(aux)


def main():
    import torchvision

    arrays = {}
    for arch, (_, transform_input, _) in CASES.items():
        model = getattr(torchvision.models, arch)(weights=None, aux_logits=True, init_weights=False)
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        logits, aux = torchvision_logits(arch, seeded_state_dict(shapes), transform_input,
                                         seeded_images(arch))
        arrays[f"{arch}/shapes"] = np.array(json.dumps(shapes))
        arrays[f"{arch}/logits"], arrays[f"{arch}/aux"] = logits, aux
        print(f"{arch}: {len(shapes)} tensors, logits {logits.shape}, |max| {abs(logits).max():.3g}")
    np.savez_compressed(PATH, **arrays)
    print(f"wrote {PATH} ({os.path.getsize(PATH)} bytes)")


if __name__ == "__main__":
    main()
