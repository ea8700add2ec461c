"""python -m inception_native {info,bench}"""
import argparse
import sys

from . import __version__


def parse_shape(text):
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape like 16x256x28x28, got {text!r}")
    return shape


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def info(args):
    from ._runtime import build_info, get_num_threads

    build = build_info()
    print(f"inception_native {__version__}")
    print(f"compiler:   {build['compiler']}")
    print(f"flags:      {build['flags']}")
    print(f"OpenMP:     {'on' if build['openmp'] else 'off (serial build)'}")
    print(f"threads:    {get_num_threads()}")
    print(f"kernels:    {build['kernel_isa']}")
    print("BLAS:       none yet (the BatchNorm kernels need none)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m inception_native")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, compiler, flags, OpenMP, threads").set_defaults(run=info)
    bench = commands.add_parser("bench", help="time the native kernels against NumPy and PyTorch")
    bench.add_argument("--shapes", type=parse_shape, nargs="+",
                       help="activation shapes, e.g. 16x256x28x28 (default: GoogLeNet's)")
    bench.add_argument("--threads", type=positive, help="threads (default: OMP_NUM_THREADS or all cores)")
    bench.add_argument("--repeats", type=positive, default=9, help="timed runs per contender")
    bench.add_argument("--warmup", type=positive, default=1, help="untimed rounds first")
    bench.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.set_defaults(run=lambda args: __import__("inception_native.bench").bench.run(args))
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
