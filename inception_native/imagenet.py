"""`python -m inception_native predict --weights FILE --model googlenet IMAGE...`: ImageNet's top
classes of images, by torchvision's GoogLeNet or Inception v3 weights loaded into our model.

Images are prepared as torchvision's weights expect (their transforms(), for a PIL image):
the shorter side resized to 256 (342 for Inception v3) by Pillow's antialiased bilinear filter,
the centre 224x224 (299x299) cropped, scaled to [0, 1], normalised with ImageNet's mean and std;
the model's transform_input maps them to the [-1, 1] the weights were trained on. Reading images
needs Pillow (the `images` extra). An IMAGE that is a directory stands for the image files in it;
images are read and classified BATCH at a time by the frozen network, so any number of them runs
in bounded memory.
"""
import os
import warnings

import numpy as np

from . import io
from .losses import top_classes
from .models import IMAGENET_MEAN, IMAGENET_STD

# arch -> (crop, resize): torchvision's IMAGENET1K_V1 transforms
SIZES = {"googlenet": (224, 256), "inception_v3": (299, 342)}
BATCH = 16
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
MISSING_PILLOW = "reading images needs Pillow: pip install 'inception-native[images]' (or pip install Pillow)"


def class_names():
    """ImageNet's 1000 class names, in the order of torchvision's weights' outputs."""
    with open(os.path.join(os.path.dirname(__file__), "imagenet_classes.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def resized_size(width, height, short):
    """(width, height) with the shorter side `short`, the longer scaled and rounded down."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def prepare(image, crop, resize):
    """A PIL image -> (3, crop, crop) float32: resized, centre-cropped, normalised."""
    from PIL import Image

    image = image.convert("RGB")
    image = image.resize(resized_size(*image.size, resize), Image.BILINEAR)
    width, height = image.size
    left, top = int(round((width - crop) / 2)), int(round((height - crop) / 2))
    pixels = np.asarray(image.crop((left, top, left + crop, top + crop)), np.float32) / 255
    normalised = (pixels - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def read_images(paths, crop, resize):
    """The images at paths, prepared, as one (N, 3, crop, crop) batch; SystemExit naming an
    image that cannot be read, or that Pillow takes for a decompression bomb (more pixels than
    Image.MAX_IMAGE_PIXELS)."""
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit(MISSING_PILLOW) from None
    batch = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    batch.append(prepare(image, crop, resize))
        except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise SystemExit(f"cannot read image {path}: {error}") from None
    return np.stack(batch)


def image_paths(arguments):
    """The IMAGE arguments, each directory replaced by its image files (by name)."""
    paths = []
    for path in arguments:
        if os.path.isdir(path):
            paths += sorted(os.path.join(path, name) for name in os.listdir(path)
                            if name.lower().endswith(EXTENSIONS))
        else:
            paths.append(path)
    return paths


def predict(args):
    paths = image_paths(args.images)
    if not paths:
        raise SystemExit("predict --weights needs at least one IMAGE")
    arch = args.model or "googlenet"
    crop, resize = SIZES[arch]
    try:
        model = io.torchvision_model(arch, args.weights).freeze()
    except (ValueError, TypeError, ImportError) as error:
        message = str(error)  # io's errors about a file name it
        raise SystemExit(message if args.weights in message else f"{args.weights}: {message}") from None
    names, (classes,) = class_names(), model.output_shape
    if classes != len(names):
        raise SystemExit(f"{args.weights} has {classes} classes, not ImageNet's {len(names)}")
    for start in range(0, len(paths), BATCH):
        batch = paths[start:start + BATCH]
        logits = model.forward(read_images(batch, crop, resize))[0]
        for path, top in zip(batch, top_classes(logits, args.top or 5)):
            print(path)
            for k, p in top:
                print(f"  {p:6.1%}  {names[k]} ({k})")
