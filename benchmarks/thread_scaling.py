"""The compiled Learner's MLP epoch (epochs.py's job: 60,000 MNIST digits read
as bytes, 784-128-10, SGD momentum) on 1, 2, ... threads, alternated epoch by
epoch in one process, so that every thread count sees the same machine state.
Prints each count's median seconds and its speedup over one thread, and writes
them as JSON with ``--json``.

    python benchmarks/thread_scaling.py [--threads 1 2] [--batch-sizes 256 64]
        [--repeats 7] [--json PATH]

On a machine with more cores (``--threads 1 2 4 8 16``) it gives the thread
curve; leave the cores idle otherwise (no other job: OpenMP teams wait at
every barrier for their slowest thread).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import epochs  # noqa: E402
import harness  # noqa: E402

from minigrad import kernels as K  # noqa: E402


def scaling(batch_size, threads, repeats, x, y):
    """{threads: median seconds of an epoch} with counts alternated per repeat."""
    epoch = epochs.minigrad_epoch(x, y, batch_size)
    before = K.get_num_threads()
    times = {t: [] for t in threads}
    try:
        for t in threads:  # warm-up: buffers, packing arenas, OpenMP teams
            K.set_num_threads(t)
            epoch()
        for _ in range(repeats):
            for t in threads:
                K.set_num_threads(t)
                start = time.perf_counter()
                epoch()
                times[t].append(time.perf_counter() - start)
    finally:
        K.set_num_threads(before)
    return {t: float(np.median(v)) for t, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 64])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    if min(args.threads) < 1:
        ap.error("--threads: counts must be at least 1")
    info = harness.machine_info()
    print(f"# {info['cpu']}, {info['cpus_available']} CPUs; compiled Learner epoch on bytes; "
          f"medians of {args.repeats} alternated repeats")
    x, y = epochs.epoch_data(as_bytes=True)
    rows = []
    for bs in args.batch_sizes:
        med = scaling(bs, args.threads, args.repeats, x, y)
        one = med.get(1, med[min(med)])
        cells = "  ".join(f"{t} threads {s:.3f} s ({one / s:.2f}x)" for t, s in med.items())
        print(f"batch {bs}: {cells}", flush=True)
        rows.append({"batch_size": bs, "seconds": {str(t): s for t, s in med.items()},
                     "speedup": {str(t): one / s for t, s in med.items()}})
    if args.json:
        harness.write_json(args.json, {"machine": info, "rows": rows})


if __name__ == "__main__":
    main()
