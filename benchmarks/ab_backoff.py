"""The kernels' backing off to one thread (csrc/mg_driver.c) on and off, in
one process: where it should help and where it must not hurt.

    PYTHONPATH=$PWD python benchmarks/ab_backoff.py [--threads 2] [--repeats 5]

1. NumPy mixed in: each minigrad product on ``--threads`` threads follows a
   NumPy product of the same shape, NumPy's OpenBLAS on as many threads (its
   idle workers spin for a while after each call, on the cores minigrad's team
   needs). Medians of minigrad's calls with the backoff on and off (blocks
   alternated), and on one thread in the same alternation.
2. minigrad alone: the compiled epoch (784-128-10, bytes) on ``--threads``
   threads with the backoff on and off, alternated epoch by epoch, and the
   waits the backoff started (each one a one-off hiccup taken for contention).
3. A training loop with NumPy in it: the same epoch where a callback makes
   one NumPy product (256 x 256) after every batch, as a metric computed with
   NumPy would; on and off alternated, and on one thread.
"""
import argparse
import os
import sys

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--calls", type=int, default=60, help="alternated calls per block")
ap.add_argument("--part", type=int, choices=(1, 2, 3), help="run only this part")
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # before NumPy loads OpenBLAS

import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epochs  # noqa: E402

from minigrad import _kernels  # noqa: E402
from minigrad import kernels as K  # noqa: E402

SHAPES = [("x@W.T  b=64 h=128", 64, 784, 128), ("dy.T@x b=64 h=128", 128, 64, 784),
          ("x@W.T  b=256 h=128", 256, 784, 128), ("dy.T@x b=256 h=128", 128, 256, 784),
          ("x@W.T  b=64 h=30", 64, 784, 30), ("square 256", 256, 256, 256),
          ("square 512", 512, 512, 512)]


def mixed_block(a, b, out, threads, backoff, calls):
    """Median seconds of minigrad's product, each call right after NumPy's."""
    K.set_num_threads(threads)
    _kernels._thread_backoff(backoff)
    times = []
    for _ in range(calls):
        a @ b
        start = time.perf_counter()
        K.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def mixed(rng):
    print(f"1. NumPy mixed in (its BLAS on {args.threads} threads): minigrad's product, "
          f"us (median of {args.repeats} blocks of {args.calls} calls)")
    print(f"{'shape':<20} {'1 thread':>9} {'on':>9} {'off':>9}   off/on  1thread/on")
    for label, m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        med = {"one": [], "on": [], "off": []}
        for _ in range(args.repeats):
            med["one"].append(mixed_block(a, b, out, 1, True, args.calls))
            med["on"].append(mixed_block(a, b, out, args.threads, True, args.calls))
            med["off"].append(mixed_block(a, b, out, args.threads, False, args.calls))
        one, on, off = (np.median(med[key]) * 1e6 for key in ("one", "on", "off"))
        print(f"{label:<20} {one:9.1f} {on:9.1f} {off:9.1f}   {off / on:6.2f}  {one / on:9.2f}")


def alone():
    K.set_num_threads(args.threads)
    print(f"2. minigrad alone: the compiled epoch on {args.threads} threads, ms (median of "
          f"{args.repeats})")
    x, y = epochs.epoch_data(as_bytes=True)
    for batch in (256, 64):
        epoch = epochs.minigrad_epoch(x, y, batch)
        epoch()
        times, waits = {True: [], False: []}, 0
        for _ in range(args.repeats):
            for on in (True, False):
                before = _kernels._thread_backoff(on)["waits"]
                start = time.perf_counter()
                epoch()
                times[on].append(time.perf_counter() - start)
                if on:
                    waits += _kernels._thread_backoff()["waits"] - before
        on, off = np.median(times[True]) * 1e3, np.median(times[False]) * 1e3
        print(f"batch {batch:<4} on {on:7.1f}  off {off:7.1f}  off/on {off / on:.3f}  "
              f"waits started in {args.repeats} epochs: {waits}")


def with_numpy():
    from minigrad.callbacks import Callback

    a = np.random.default_rng(1).standard_normal((256, 256)).astype(np.float32)

    class NumpyEachBatch(Callback):
        def after_batch(self):
            a @ a

    print(f"3. the compiled epoch with a NumPy product after every batch (its BLAS on "
          f"{args.threads} threads), ms (median of {args.repeats})")
    x, y = epochs.epoch_data(as_bytes=True)
    for batch in (256, 64):
        epoch = epochs.minigrad_epoch(x, y, batch, cbs=[NumpyEachBatch()])
        epoch()
        times = {"one": [], "on": [], "off": []}
        for _ in range(args.repeats):
            for key in times:
                K.set_num_threads(1 if key == "one" else args.threads)
                _kernels._thread_backoff(key != "off")
                start = time.perf_counter()
                epoch()
                times[key].append(time.perf_counter() - start)
        one, on, off = (np.median(times[key]) * 1e3 for key in ("one", "on", "off"))
        print(f"batch {batch:<4} 1 thread {one:7.1f}  on {on:7.1f}  off {off:7.1f}  "
              f"off/on {off / on:.3f}  1 thread/on {one / on:.3f}")


def main():
    if args.part in (None, 1):
        mixed(np.random.default_rng(0))
    if args.part in (None, 2):
        alone()
    if args.part in (None, 3):
        with_numpy()
    _kernels._thread_backoff(True)


if __name__ == "__main__":
    main()
