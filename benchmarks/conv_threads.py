"""ResNet-18's convolution products and training epoch in minigrad alone (no
PyTorch in the process), one thread against more, alternated in one process:
where the threads pay off, without another library's OpenMP runtime in the way.

    python benchmarks/conv_threads.py [--threads 2] [--repeats 15] [--images 256]

Prints, per layer shape of conv.py's RESNET_LAYERS at batch 64, each product's
median time on one thread and on --threads (the better of two alternated
rounds) and the speedup; then the epoch's median time (256 random digits,
batch 64, SGD with momentum) on each.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conv import RESNET_LAYERS  # noqa: E402  (conv.py imports torch only inside functions)

import minigrad as mg  # noqa: E402
from minigrad import kernels as K  # noqa: E402
from minigrad import models  # noqa: E402


def _median(f, repeats):
    f()
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _both(f, threads, repeats):
    """(one-thread, many-thread) seconds of f: the better of two alternated rounds."""
    best = {1: [], threads: []}
    for _ in range(2):
        for t in (1, threads):
            mg.set_num_threads(t)
            best[t].append(_median(f, repeats))
    return min(best[1]), min(best[threads])


def _products(x, w, dy, k, s, p):
    """The forward, input-gradient and weight-gradient calls of one layer."""
    return [lambda: K.conv2d(x, w, stride=s, padding=p),
            lambda: K.conv2d_backward_input(dy, w, x.shape, stride=s, padding=p),
            lambda: K.conv2d_backward_weight(x, dy, (k, k), stride=s, padding=p)]


def layer_rows(threads, repeats):
    rng = np.random.default_rng(0)
    print(f"{'layer (batch 64)':<30} " + "  ".join(
        f"{name:>6}: 1 thread / {threads}" for name in ("fwd", "dx", "dW")))
    for name, c, o, k, s, p, h, _ in RESNET_LAYERS:
        x = rng.standard_normal((64, c, h, h), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.05
        dy = rng.standard_normal(K.conv2d(x, w, stride=s, padding=p).shape, dtype=np.float32)
        cells = []
        for f in _products(x, w, dy, k, s, p):
            one, many = _both(f, threads, repeats)
            cells.append(f"{one * 1e3:7.3f} / {many * 1e3:6.3f} ms x{one / many:4.2f}")
        label = f"{name} {c}x{h}x{h} -> {o}, {k}x{k}/{s}"
        print(f"{label:<30} " + "  ".join(cells), flush=True)


def epoch_row(threads, repeats, images):
    rng = np.random.default_rng(0)
    x = rng.random((images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, images)
    model = models.resnet18(10, 1, 64, rng=np.random.default_rng(0))
    opt = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def epoch():
        for i in range(0, images, 64):
            loss = mg.nn.functional.cross_entropy(model(mg.tensor(x[i:i + 64])),
                                                  mg.tensor(y[i:i + 64]))
            loss.backward()
            opt.step()
            opt.zero_grad()

    one, many = _both(epoch, threads, max(3, repeats // 3))
    print(f"epoch: resnet18 width 64, {images} images, batch 64: 1 thread {one:.3f}s, "
          f"{threads} threads {many:.3f}s, x{one / many:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    print(f"# minigrad alone; cpu threads available {len(os.sched_getaffinity(0))}; "
          f"simd {K.simd_path()}; problems {K.environment_problems()}")
    layer_rows(args.threads, args.repeats)
    epoch_row(args.threads, args.repeats, args.images)


if __name__ == "__main__":
    main()
