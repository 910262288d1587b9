"""The `minigrad` command line (also `python -m minigrad`)."""
import argparse
import sys


def cmd_info(args):
    import numpy as np

    import minigrad
    from minigrad import kernels as K

    print(f"minigrad {minigrad.__version__}")
    print(f"simd path: {K.simd_path()} (available: {', '.join(K.simd_paths_available())})")
    print(f"threads: {K.get_num_threads()} (OpenMP {'on' if K.openmp_enabled() else 'off'})")
    print(f"numpy: {np.__version__}")
    print(f"python: {sys.version.split()[0]}")
    return 0


def cmd_bench(args):
    from minigrad import bench

    bench.quick_suite(repeats=args.repeats)
    return 0


def build_parser():
    ap = argparse.ArgumentParser(prog="minigrad", description="minigrad: train and benchmark")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="version, SIMD path, threads")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("bench", help="a quick table of the kernels against NumPy")
    p.add_argument("--repeats", type=int, default=7)
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
