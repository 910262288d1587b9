"""Square float32 products on one thread: minigrad's GEMM, PyTorch's (MKL) and
NumPy's (OpenBLAS), each as a fraction of this machine's FMA peak (the suite's
probe, best of three runs) -- where the GEMM stands against the best library
on the same core, for issue 13's ">= 85 % of the measured peak on squares".

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/squares.py [--sizes 256 512 1024 2048] [--repeats 15]

The three alternate sample by sample (harness.measure); medians.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _products(n):
    """(function, False) pairs for harness.measure: n x n float32 products by
    minigrad, PyTorch and NumPy, into preallocated outputs."""
    import torch

    from minigrad import kernels as K

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out, tout = np.empty((n, n), np.float32), torch.empty(n, n)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return [(lambda: K.matmul(a, b, out=out), False),
            (lambda: torch.mm(ta, tb, out=tout), False),
            (lambda: np.matmul(a, b, out=out), False)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var) != "1":
            sys.exit(f"squares.py: set {var}=1 (one thread for every library)")
    import minigrad
    from minigrad import _kernels

    minigrad.set_num_threads(1)  # minigrad before torch: see conv.py's child
    import torch
    from harness import measure

    torch.set_num_threads(1)
    peak = max(_kernels._peak_probe(0.5) for _ in range(3))
    print(f"# one thread; FMA probe {peak:.1f} GFLOP/s; torch {torch.__version__}")
    print(f"{'n':>6} {'minigrad':>16} {'torch (MKL)':>16} {'numpy':>16}   GFLOP/s (% of probe)")
    for n in args.sizes:
        times = measure(_products(n), args.repeats)
        rates = [2 * n**3 / t / 1e9 for t in times]
        print(f"{n:>6} " + " ".join(f"{r:>8.1f} ({r / peak:>4.0%})" for r in rates))


if __name__ == "__main__":
    main()
