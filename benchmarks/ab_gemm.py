"""Two builds of minigrad's extension in one process: the chapter's GEMM
shapes and the squares, alternated call by call with NumPy, so that a change
is judged by a ratio measured under the same conditions.

    python benchmarks/ab_gemm.py BEFORE.so [AFTER.so] [--repeats 9]

BEFORE.so / AFTER.so: paths of built ``minigrad/_kernels*.so`` files (AFTER
defaults to the importable minigrad's). Prints microseconds (median of the
repeats), the percentage of the measured one-core peak, after/before speedup
and NumPy/after. Run it single-threaded and pinned, e.g.
``MINIGRAD_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 python ...``; with
``MINIGRAD_NUM_THREADS=2`` both builds run on two threads (keep
``OPENBLAS_NUM_THREADS=1``: NumPy's idle BLAS workers would spin on the cores).
"""
import argparse
import importlib.util
import time

import numpy as np


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shapes():
    out = [(f"square {s}", s, s, s, False, False) for s in (256, 512, 1024, 2048)]
    for h in (30, 128):
        for b in (64, 256, 1024):
            out += [(f"x@W.T  b={b} h={h}", b, 784, h, False, True),
                    (f"dy.T@x b={b} h={h}", h, b, 784, True, False),
                    (f"dy@W   b={b} h={h}", b, h, 784, False, False)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after", nargs="?")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    if args.after:
        after = load(args.after, "after._kernels")
    else:
        from minigrad import _kernels as after
    before = load(args.before, "before._kernels")
    before.set_num_threads(after.get_num_threads())  # a raw extension starts at 1 thread
    peak = after._peak_probe(0.5)
    rng = np.random.default_rng(0)
    print(f"peak {peak:.0f} GFLOP/s; times in us (median of {args.repeats}), %peak")
    for label, m, k, n, ta, tb in shapes():
        med = time_shape(before, after, rng, m, k, n, ta, tb, args.repeats)
        pct = {key: 2.0 * m * n * k / med[key] / 1e9 / peak * 100 for key in med}
        print(f"{label:<18} {m}x{k}x{n:<5} before {med['before'] * 1e6:9.1f} "
              f"({pct['before']:3.0f}%)  after {med['after'] * 1e6:9.1f} ({pct['after']:3.0f}%)  "
              f"numpy {med['numpy'] * 1e6:9.1f}   after/before speedup "
              f"{med['before'] / med['after']:.2f}  np/after {med['numpy'] / med['after']:.2f}",
              flush=True)


def time_shape(before, after, rng, m, k, n, ta, tb, repeats):
    """Median seconds of op(a) @ op(b) in each build and in NumPy, alternated."""
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    runs = {"before": lambda: before.matmul(a, b, trans_a=ta, trans_b=tb, out=out),
            "after": lambda: after.matmul(a, b, trans_a=ta, trans_b=tb, out=out),
            "numpy": lambda: np.matmul(a.T if ta else a, b.T if tb else b, out=out)}
    for f in runs.values():
        f()
    start = time.perf_counter()
    runs["after"]()
    loops = max(1, int(0.004 / (time.perf_counter() - start)))
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, f in runs.items():
            start = time.perf_counter()
            for _ in range(loops):
                f()
            times[key].append((time.perf_counter() - start) / loops)
    return {key: float(np.median(v)) for key, v in times.items()}


if __name__ == "__main__":
    main()
