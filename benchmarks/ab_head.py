"""A/B of the compiled step's fused classifier head (kernels.linear_cross_entropy)
against the unfused calls it replaces, on the whole epoch (784-128-10, bytes,
SGD momentum), alternated in one process.

    PYTHONPATH=$PWD python benchmarks/ab_head.py --batch 256 --threads 1
"""
import argparse
import time

import epochs
import numpy as np

import minigrad.compiled as compiled
from minigrad import kernels as K


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    K.set_num_threads(args.threads)
    x, y = epochs.epoch_data(as_bytes=True)
    epoch = epochs.minigrad_epoch(x, y, args.batch)
    epoch()  # warm-up
    times = {True: [], False: []}
    try:
        for _ in range(args.repeats):
            for fused in (True, False):
                compiled.CompiledStep.FUSE_HEAD = fused
                start = time.perf_counter()
                epoch()
                times[fused].append(time.perf_counter() - start)
    finally:
        compiled.CompiledStep.FUSE_HEAD = True
    f, u = np.median(times[True]), np.median(times[False])
    print(f"batch {args.batch}, {args.threads} thread(s), medians of {args.repeats}: "
          f"fused {f * 1e3:.1f} ms, unfused {u * 1e3:.1f} ms, unfused/fused {u / f:.3f}")


if __name__ == "__main__":
    main()
