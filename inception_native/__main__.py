"""python -m inception_native {info,bench,train,predict,export}"""
import argparse
import math
import os
import sys

from . import __version__
from .train import SIZES as TRAIN_SIZES


# tensor-sized buffers the BatchNorm benchmark holds at once (inputs, every contender's outputs
# and gradients, the NumPy twin's temporaries), rounded up
BENCH_BUFFERS = 32


def parse_shape(text):
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape like 16x256x28x28, got {text!r}")
    if math.prod(shape) // shape[1] < 2:
        raise argparse.ArgumentTypeError(f"{text}: BatchNorm's batch statistics need more than one "
                                         "value per channel (batch x positions >= 2)")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if BENCH_BUFFERS * 4 * math.prod(shape) > memory:
        raise argparse.ArgumentTypeError(
            f"{text}: the benchmark's {BENCH_BUFFERS} float32 buffers of that shape would take "
            f"{BENCH_BUFFERS * 4 * math.prod(shape) / 2**30:,.0f} GiB, more than this machine's "
            f"{memory / 2**30:,.0f} GiB")
    return shape


def _integer(text, low, high=None):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive(text):
    return _integer(text, 1)


def non_negative(text):
    return _integer(text, 0)


def train_size(text):
    return _integer(text, *TRAIN_SIZES)


def positive_number(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def info(args):
    from ._runtime import build_info
    from .conv import conv_isa, conv_isa_levels, conv_winograd
    from .threads import get_num_threads

    build = build_info()
    print(f"inception_native {__version__}")
    print(f"compiler:   {build['compiler']}")
    print(f"flags:      {build['flags']}")
    print(f"OpenMP:     {'on' if build['openmp'] else 'off (serial build)'}")
    print(f"threads:    {get_num_threads()}")
    print(f"kernels:    {build['kernel_isa']}")
    print(f"conv:       our kernels, {conv_isa()} path (this CPU runs: "
          f"{', '.join(conv_isa_levels())}; INCEPTION_NATIVE_ISA picks a lower one)")
    print(f"winograd:   {conv_winograd()} (3x3 stride-1 forwards and dL/dx by F(2x2, 3x3); "
          f"INCEPTION_NATIVE_WINOGRAD=0 turns it off)")
    print(f"BLAS:       {blas_description()}")


def blas_description():
    """Which BLAS gemm calls: SciPy's, and the library behind it as SciPy reports it."""
    from .conv import BLAS

    try:
        import scipy

        library = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        detail = library.get("openblas configuration") or f"{library['name']} {library['version']}"
        return f"{BLAS} (SciPy {scipy.__version__}): {detail}"
    except (ImportError, KeyError, TypeError):
        return BLAS


def run_predict(args):
    if args.cfg is not None:
        return __import__("inception_native.darknet_cli").darknet_cli.predict(args)
    if args.weights is not None:
        if args.input is not None:
            raise SystemExit("--input goes with --checkpoint; --weights reads IMAGE arguments")
        return __import__("inception_native.imagenet").imagenet.predict(args)
    if args.images:
        raise SystemExit("IMAGE arguments go with --weights; --checkpoint reads --input")
    if args.model is not None:
        raise SystemExit("--model goes with --weights; a --checkpoint holds its own network")
    return __import__("inception_native.train").train.predict(args)


def run_export(args):
    """export --darknet (a --cfg network, with its --weights, or a train --checkpoint's) and/or
    --onnx (the same, or torchvision's --weights for --model)."""
    if not (args.darknet or args.onnx):
        raise SystemExit("export needs --darknet OUT or --onnx OUT.onnx (or both)")
    torchvision = args.cfg is None and args.checkpoint is None
    if args.cfg is not None and args.checkpoint is not None:
        raise SystemExit("--cfg and --checkpoint are two networks: give one")
    if torchvision and args.weights is None:
        raise SystemExit("export needs --cfg, --checkpoint or (torchvision's) --weights")
    if args.checkpoint is not None and args.weights is not None:
        raise SystemExit("--weights goes with --cfg (Darknet's) or alone (torchvision's), not with --checkpoint")
    if torchvision and args.darknet:
        raise SystemExit("--darknet writes a --cfg or --checkpoint network, not torchvision's weights")
    if args.model is not None and not torchvision:
        raise SystemExit("--model goes with torchvision's --weights")
    if args.darknet:
        __import__("inception_native.darknet_cli").darknet_cli.export(args)
    if args.onnx:
        export_onnx(args, torchvision)


def export_onnx(args, torchvision):
    from . import io

    if torchvision:
        try:
            net = io.torchvision_model(args.model or "googlenet", args.weights)
        except (ValueError, TypeError, ImportError) as error:
            raise SystemExit(f"cannot load {args.weights}: {error}") from None
    elif args.cfg is not None:
        net = __import__("inception_native.darknet_cli").darknet_cli.load(args.cfg, args.weights)
    else:
        net = __import__("inception_native.train").train.checkpoint_model(args.checkpoint)[0]
    try:
        io.export_onnx(net, args.onnx)
    except (ImportError, ValueError) as error:
        raise SystemExit(f"cannot export to ONNX: {error}") from None
    except OSError as error:
        raise SystemExit(f"cannot write {args.onnx}: {error.strerror or error}") from None
    print(f"wrote {args.onnx}")


PREDICT_EPILOG = """\
Where --weights files come from: torchvision's ImageNet weights for GoogLeNet or Inception v3.
With torchvision installed, torchvision.models.googlenet(weights="IMAGENET1K_V1") downloads
googlenet-1378be20.pth (Inception v3: inception_v3_google-0cc3c7bd.pth) into
~/.cache/torch/hub/checkpoints/; torch.save(model.state_dict(), "googlenet.pth") writes the same
from such a model, and
  np.savez("googlenet.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
an .npz that needs no PyTorch to read. Then:
  python -m inception_native predict --weights googlenet-1378be20.pth cat.jpg dog.png

--checkpoint files come from `python -m inception_native train`:
  python -m inception_native predict --checkpoint inception_digits.npz --input digits.npy
"""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m inception_native")
    parser.add_argument("--version", action="version", version=f"inception_native {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, compiler, flags, OpenMP, threads").set_defaults(run=info)
    bench = commands.add_parser("bench", help="time the native kernels against NumPy and PyTorch")
    bench.add_argument("--sections", nargs="+", choices=("batchnorm", "conv", "pool", "dropin", "neighbour"),
                       help="sections to run (default: batchnorm conv pool); dropin: a PyTorch model "
                            "before and after use_native, neighbour: an inference alone and "
                            "beside a busy process, against onnxruntime (both on --model, default "
                            "googlenet_bn and googlenet)")
    bench.add_argument("--model", choices=("googlenet", "googlenet_bn", "googlenet_torchvision", "inception_v2",
                                           "inception_v3"),
                       help="time a whole network instead: inference at batch 1 and 16, a training step at 16")
    bench.add_argument("--profile", nargs="?", const="training", choices=("training", "inference"),
                       help="with --model, instead of the contenders: where a native training step "
                            "spends its time, by layer type and direction (forward, backward); "
                            "--profile inference: frozen inference at --batch by kind of step, "
                            "against onnxruntime's operators on our ONNX export")
    bench.add_argument("--distributed", action="store_true",
                       help="with --model (default googlenet): the data-parallel training step "
                            "under mpirun, its allreduce share and bytes (needs mpi4py)")
    bench.add_argument("--shapes", type=parse_shape, nargs="+",
                       help="BatchNorm activation shapes, e.g. 16x256x28x28 (default: GoogLeNet's)")
    bench.add_argument("--threads", type=positive, help="threads (default: OMP_NUM_THREADS or all cores)")
    bench.add_argument("--batch", type=positive, default=16,
                       help="images per batch in the conv and pool sections and --profile (default 16)")
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="the conv section's precision (default float32)")
    bench.add_argument("--repeats", type=positive,
                       help="timed runs per contender (default: 9 BatchNorm, 5 conv and pool and model)")
    bench.add_argument("--warmup", type=positive, default=1, help="untimed rounds first")
    bench.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="also draw the speed-ups (needs matplotlib)")
    bench.set_defaults(run=lambda args: __import__("inception_native.bench").bench.run(args))
    train = commands.add_parser("train", help="train a small Inception network on scikit-learn's digits")
    train.add_argument("--epochs", type=positive, default=8, help="epochs (default 8)")
    train.add_argument("--batch-size", type=positive, default=32, help="images per step (default 32)")
    train.add_argument("--lr", type=positive_number, default=0.1, help="peak learning rate (default 0.1)")
    train.add_argument("--size", type=train_size, default=32,
                       help=f"images upsampled to size x size, {TRAIN_SIZES[0]} to {TRAIN_SIZES[1]} (default 32)")
    train.add_argument("--checkpoint", default="inception_digits.npz", help="checkpoint file (.npz)")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    train.add_argument("--limit", type=positive, help="train on the first N training images only")
    train.add_argument("--seed", type=non_negative, default=0, help="weights and shuffling (default 0)")
    train.add_argument("--threads", type=positive, default=1,
                       help="threads (default 1: robust on a shared machine; 2 is faster on a quiet one)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel on MPI: run under mpirun (needs mpi4py, the 'mpi' extra)")
    train.add_argument("--timeout", type=positive_number, default=120,
                       help="--distributed: seconds a collective may wait for the other ranks "
                            "before the job is aborted (default 120)")
    train.add_argument("--cfg", metavar="FILE.cfg",
                       help="train this Darknet network instead (one channel, square, 10 outputs; "
                            "--size is its width); export writes it back to Darknet")
    train.set_defaults(run=lambda args: __import__("inception_native.train").train.train(args))
    predict = commands.add_parser(
        "predict", help="top classes: of images by torchvision's ImageNet weights, or of digits by a train checkpoint",
        epilog=PREDICT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    weights = predict.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", metavar="FILE",
                         help="torchvision's state dict for --model (.pth, needs PyTorch; or .npz); "
                              "with --cfg: Darknet's .weights")
    weights.add_argument("--checkpoint", help="a checkpoint written by train (digits)")
    predict.add_argument("--cfg", metavar="FILE.cfg",
                         help="a Darknet classifier's cfg: --weights is its .weights, IMAGEs are "
                              "letterboxed as Darknet's classifier does")
    predict.add_argument("--names", metavar="FILE",
                         help="with --cfg: class names, one a line, in the network's output order")
    predict.add_argument("--model", choices=("googlenet", "inception_v3"),
                         help="with --weights: the network (default googlenet)")
    predict.add_argument("images", nargs="*", metavar="IMAGE",
                         help="with --weights: image files or directories of them (needs Pillow)")
    predict.add_argument("--input",
                         help="with --checkpoint: .npy of digits like scikit-learn's: (N, 8, 8), values 0..16")
    predict.add_argument("--top", type=positive,
                         help="classes shown per image (default 5 for --weights, 3 for --checkpoint)")
    predict.set_defaults(run=run_predict)
    export = commands.add_parser(
        "export", help="write a network as Darknet's .cfg and .weights (of a cfg or a train checkpoint) "
                       "or as ONNX (also of torchvision's weights)")
    source = export.add_mutually_exclusive_group()
    source.add_argument("--cfg", metavar="FILE.cfg", help="a Darknet cfg (with --weights, or initialised weights)")
    source.add_argument("--checkpoint", help="a checkpoint written by train (--cfg, or the default network: "
                                             "then the reason it has no Darknet form)")
    export.add_argument("--weights", metavar="FILE",
                        help="with --cfg: its Darknet .weights; alone: torchvision's state dict for "
                             "--model (.pth, needs PyTorch; or .npz), for --onnx")
    export.add_argument("--model", choices=("googlenet", "inception_v3"),
                        help="with torchvision's --weights: the network (default googlenet)")
    export.add_argument("--darknet", metavar="OUT", help="writes OUT.cfg and OUT.weights")
    export.add_argument("--onnx", metavar="OUT.onnx",
                        help="the inference graph in standard ONNX operators, dynamic batch (needs onnx)")
    export.set_defaults(run=run_export)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt as stop:  # Ctrl-C: one line, the shell's status for SIGINT
        print("interrupted" + (f": {stop}" if str(stop) else ""), file=sys.stderr)
        return 130
    except SystemExit as stop:  # every command's errors: one line
        if isinstance(stop.code, str):
            raise SystemExit(f"error: {stop.code}") from None
        raise
    return 0


def run(argv=None):
    """main, with its output cut short quietly: `info | head -2` closes the pipe early."""
    try:
        return main(argv)
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit: point stdout at
        # /dev/null first, as the Python documentation's SIGPIPE note advises.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
