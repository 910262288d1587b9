"""A/B of one switch of the compiled step on the whole epoch (784-128-10, bytes,
SGD momentum), alternated in one process: ``FUSE_HEAD`` (the fused classifier
head, kernels.linear_cross_entropy, against the unfused calls it replaces) or
``NATIVE`` (each phase's kernel calls made by one C call, kernels.StepProgram,
against the same calls made one by one from Python).

    PYTHONPATH=$PWD python benchmarks/ab_head.py --batch 256 --threads 1
    PYTHONPATH=$PWD python benchmarks/ab_head.py --switch NATIVE --batch 64
"""
import argparse
import time

import epochs
import numpy as np

import minigrad.compiled as compiled
from minigrad import kernels as K


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switch", choices=("FUSE_HEAD", "NATIVE"), default="FUSE_HEAD")
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
            for on in (True, False):
                setattr(compiled.CompiledStep, args.switch, on)
                start = time.perf_counter()
                epoch()
                times[on].append(time.perf_counter() - start)
    finally:
        setattr(compiled.CompiledStep, args.switch, True)
    a, b = np.median(times[True]), np.median(times[False])
    print(f"{args.switch}, batch {args.batch}, {args.threads} thread(s), medians of "
          f"{args.repeats}: on {a * 1e3:.1f} ms, off {b * 1e3:.1f} ms, off/on {b / a:.3f}")


if __name__ == "__main__":
    main()
