"""A/B of two builds of minigrad on the whole epoch (784-128-10, bytes, SGD
momentum): each pair runs the old tree's and the new tree's epoch in separate
processes, alternated, and the ratio old/new is taken per pair and of the
medians. Each tree must have its extension built in place.

    git worktree add /tmp/old <commit> && (cd /tmp/old && python setup.py build_ext --inplace)
    python benchmarks/ab_builds.py /tmp/old . --batch 64 --threads 1 --pairs 7
"""
import argparse
import os
import subprocess
import sys

import numpy as np

CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import epochs, minigrad
assert minigrad.__file__.startswith({tree!r}), minigrad.__file__
x, y = epochs.epoch_data(as_bytes=True)
epoch = epochs.minigrad_epoch(x, y, {batch})
epoch()
times = []
for _ in range({epochs}):
    start = time.perf_counter(); epoch(); times.append(time.perf_counter() - start)
print(np.median(times))
"""


def epoch_time(tree, args):
    tree = os.path.abspath(tree)
    env = dict(os.environ, PYTHONPATH=tree, MINIGRAD_NUM_THREADS=str(args.threads))
    code = CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)), tree=tree,
                        batch=args.batch, epochs=args.epochs)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd="/")
    return float(out.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per process (median)")
    args = ap.parse_args()
    old, new = [], []
    for _ in range(args.pairs):
        old.append(epoch_time(args.old, args))
        new.append(epoch_time(args.new, args))
    old, new = np.array(old), np.array(new)
    print(f"batch {args.batch}, {args.threads} thread(s), {args.pairs} pairs: old "
          f"{np.median(old) * 1e3:.1f} ms, new {np.median(new) * 1e3:.1f} ms, old/new "
          f"{np.median(old) / np.median(new):.3f}; per pair "
          + " ".join(f"{r:.3f}" for r in old / new))


if __name__ == "__main__":
    main()
