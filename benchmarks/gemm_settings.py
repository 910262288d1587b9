"""The GEMM's CPUID-chosen settings against alternatives, in one build and one
process: the cache blocking (mc, kc, nc) and the swapped road (C.T = B.T A.T
for few rows), alternated call by call on ab_gemm.py's shapes (the squares and
the chapter's products) and ResNet-18's dense input gradients. What a new
machine kind needs measured before its CPUID branch is trusted (RESULTS.md,
Run 13: Zen 5's blocking kept, its swapped road changed).

    MINIGRAD_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/gemm_settings.py \\
        [--blocking 144,256,512 96,384,768 ...] [--repeats 9]

With --blocking, each mc,kc,nc triple runs against the CPUID choice (0,0,0);
without, the swapped road runs as chosen, forced on and forced off. Prints
microseconds (medians) per shape and each setting's time over the first.
"""
import argparse
import os
import sys
import time
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ab_gemm import shapes  # noqa: E402

from minigrad import _kernels as K  # noqa: E402

# ResNet-18's layer4 and layer4.0 input gradients as dense products (dy @ w)
EXTRA = [("dense dx 64x512x512", 64, 512, 512, False, False),
         ("dense dx 64x512x1024", 64, 512, 1024, False, False)]


def _time(f, settings, apply, repeats):
    """Median seconds of f under each setting, alternated call by call."""
    f()
    start = time.perf_counter()
    f()
    loops = max(1, int(0.004 / (time.perf_counter() - start)))
    times = {s: [] for s in settings}
    for _ in range(repeats):
        for s in settings:
            apply(s)
            f()
            start = time.perf_counter()
            for _ in range(loops):
                f()
            times[s].append((time.perf_counter() - start) / loops)
    return {s: float(np.median(v)) for s, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocking", nargs="*", metavar="MC,KC,NC")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    if args.blocking is not None:
        settings = [(0, 0, 0)] + [tuple(int(v) for v in b.split(",")) for b in args.blocking]

        def apply(s):
            K._set_gemm_blocking(*s)
    else:
        settings = [None, True, False]

        def apply(s):
            K._set_gemm_swap(s)
    names = {s: ("cpuid" if s in (None, (0, 0, 0)) else f"swap {'on' if s else 'off'}"
                 if isinstance(s, bool) else ",".join(map(str, s))) for s in settings}
    peak = K._peak_probe(0.5)
    print(f"# FMA probe {peak:.0f} GFLOP/s; CPUID blocking {K._gemm_blocking()}; "
          f"threads {K.get_num_threads()}; settings {[names[s] for s in settings]}")
    rng = np.random.default_rng(0)
    ratios = {s: [] for s in settings}
    try:
        for label, m, k, n, ta, tb in shapes() + EXTRA:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            med = _time(partial(K.matmul, a, b, trans_a=ta, trans_b=tb, out=out),
                        settings, apply, args.repeats)
            first = med[settings[0]]
            for s in settings:
                ratios[s].append(med[s] / first)
            print(f"{label:<22} " + "  ".join(
                f"{names[s]} {med[s] * 1e6:8.1f}us x{med[s] / first:.3f}" for s in settings),
                flush=True)
    finally:
        K._set_gemm_blocking(0, 0, 0)
        K._set_gemm_swap(None)
    print("geometric mean over the shapes, time / the first setting's: " + ", ".join(
        f"{names[s]} {np.exp(np.mean(np.log(ratios[s]))):.3f}" for s in settings))


if __name__ == "__main__":
    main()
