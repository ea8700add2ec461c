"""The command line's Darknet parts (see docs/darknet.md):

    python -m inception_native predict --cfg FILE.cfg --weights FILE.weights [--names FILE] IMAGE...
    python -m inception_native train --cfg FILE.cfg ...          (train.py, on the digits)
    python -m inception_native export --cfg FILE.cfg [--weights FILE.weights] --darknet OUT
    python -m inception_native export --checkpoint RUN.npz --darknet OUT

predict prepares images as Darknet's classifier does: RGB (or grey for a one-channel cfg) in
[0, 1], letterboxed into the cfg's width x height (the aspect kept, the border 0.5), resized
with Pillow's bilinear filter. export writes OUT.cfg and OUT.weights. A bad file ends the
command with one line naming it and the reason.
"""
import numpy as np

from . import io, native
from .imagenet import MISSING_PILLOW
from .io import darknet
from .layers import Softmax


def load(cfg, weights=None):
    try:
        return io.load_darknet(cfg, weights)
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot load {cfg}{f' and {weights}' if weights else ''}: {error}") from None


def letterbox(image, width, height):
    """A PIL image -> (channels, height, width) float32 in [0, 1]: resized to fit (Darknet's
    letterbox_image sizes), centred on a 0.5 border."""
    from PIL import Image

    if width / image.width < height / image.height:
        size = (width, image.height * width // image.width)
    else:
        size = (image.width * height // image.height, height)
    pixels = np.asarray(image.resize(size, Image.BILINEAR), np.float32) / 255
    pixels = pixels.reshape(size[1], size[0], -1).transpose(2, 0, 1)
    canvas = np.full((pixels.shape[0], height, width), 0.5, np.float32)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[:, top:top + size[1], left:left + size[0]] = pixels
    return canvas


def read_images(paths, channels, height, width):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise SystemExit(MISSING_PILLOW) from None
    if channels not in (1, 3):
        raise SystemExit(f"predict reads grey or RGB images; the cfg wants {channels} channels")
    batch = []
    for path in paths:
        try:
            with Image.open(path) as image:
                batch.append(letterbox(image.convert("L" if channels == 1 else "RGB"), width, height))
        except (OSError, UnidentifiedImageError) as error:
            raise SystemExit(f"cannot read image {path}: {error}") from None
    return np.stack(batch)


def read_names(path, count):
    try:
        with open(path, encoding="utf-8") as f:
            names = f.read().splitlines()
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error}") from None
    if len(names) != count:
        raise SystemExit(f"{path} names {len(names)} classes, the network has {count} outputs")
    return names


def predict(args):
    if not args.images:
        raise SystemExit("predict --cfg needs at least one IMAGE")
    if args.weights is None:
        raise SystemExit("predict --cfg needs --weights FILE.weights")
    net = load(args.cfg, args.weights).eval()
    outputs = net.forward(read_images(args.images, *net.input_shape))[0]
    if outputs.ndim != 2:
        raise SystemExit(f"{args.cfg} ends in a map of {outputs.shape[1:]}, not a vector of classes")
    probs = outputs if isinstance(net.stages[-1][1], Softmax) else native.softmax_forward(
        outputs, np.empty_like(outputs))
    names = read_names(args.names, probs.shape[1]) if args.names else None
    for path, row in zip(args.images, probs):
        print(path)
        for k in np.argsort(-row, kind="stable")[:args.top or 5]:
            print(f"  {row[k]:6.1%}  " + (f"{names[k]} ({k})" if names else f"class {k}"))


def train_cfg(args, classes):
    """train --cfg: the cfg's text (None without --cfg), checked to fit the digits (a one-channel
    square input, `classes` outputs); sets args.size to its width."""
    if getattr(args, "cfg", None) is None:
        return None
    try:
        with open(args.cfg, encoding="utf-8") as f:
            text = f.read()
        net = darknet.read(args.cfg, text=text)
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot load {args.cfg}: {error}") from None
    channels, height, width = net.input_shape
    if channels != 1 or height != width:
        raise SystemExit(f"{args.cfg}: train --cfg needs a one-channel square input (the digits), "
                         f"the cfg has {channels}x{height}x{width}")
    if list(net.stage_shapes().values())[-1] != (1, classes):
        raise SystemExit(f"{args.cfg}: train --cfg needs {classes} outputs (the digits' classes), "
                         f"the cfg ends in {list(net.stage_shapes().values())[-1][1:]}")
    args.size = width
    return text


def trainable(cfg, seed):
    """The network of a cfg's text without its softmax (the loss takes logits)."""
    return darknet.logits(darknet.read("the checkpoint's cfg", seed=seed, text=cfg))


def export(args):
    if args.checkpoint is not None:
        from .train import build

        try:
            meta = io.meta(args.checkpoint)
            if "size" not in meta:
                raise ValueError(f"{args.checkpoint} is not a train checkpoint (no meta/size)")
            net = darknet.read("the checkpoint's cfg", text=meta["cfg"]) if "cfg" in meta else build(meta["size"])
            io.load(args.checkpoint, net)
        except ValueError as error:
            raise SystemExit(str(error)) from None
    else:
        net = load(args.cfg, args.weights)
    try:
        io.save_darknet(net, f"{args.darknet}.cfg", f"{args.darknet}.weights")
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot export to Darknet: {error}") from None
    print(f"wrote {args.darknet}.cfg and {args.darknet}.weights")
