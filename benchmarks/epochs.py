"""Whole training epochs: minigrad's Learner step against the same MLP written
by hand in NumPy and in PyTorch (when importable)."""
import time

import numpy as np

from minigrad import kernels as K


def epoch_data(n=60_000, seed=0):
    """n real MNIST digits (the shipped 10,000, repeated), float32, labels 0-9."""
    from minigrad import datasets

    (x, y), (xv, yv) = datasets.mnist_digits()
    x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
    reps = -(-n // len(x))
    return np.tile(x, (reps, 1))[:n].copy(), np.tile(y, reps)[:n].copy()


def epoch_flops(n, sizes=(784, 128, 10)):
    """Matmul FLOPs of one epoch: forward, weight gradients, and input
    gradients of every layer but the first."""
    flops = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        flops += 2 * n * a * b * (2 if i == 0 else 3)
    return flops


def minigrad_epoch(x, y, batch_size, hidden=128, seed=0):
    """A callable that trains one epoch with minigrad's Learner step."""
    from functools import partial

    import minigrad as mg
    from minigrad import nn
    from minigrad.nn import functional as F

    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], hidden, rng=rng), nn.ReLU(),
                          nn.Linear(hidden, 10, rng=rng))
    dls = mg.DataLoaders(mg.DataLoader((x, y), batch_size, shuffle=True, seed=seed), [])
    learn = mg.Learner(dls, model, F.cross_entropy, opt_func=partial(mg.SGD, momentum=0.9),
                       lr=0.05, log=lambda *a: None)

    def epoch():
        learn.fit(1, progress=False)
    return epoch


def numpy_epoch(x, y, batch_size, hidden=128, seed=0):
    """The same epoch written by hand in NumPy, as people write it."""
    rng = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(x.shape[1]), 1 / np.sqrt(hidden)
    params = [rng.uniform(-b1, b1, (hidden, x.shape[1])).astype(np.float32),
              rng.uniform(-b1, b1, hidden).astype(np.float32),
              rng.uniform(-b2, b2, (10, hidden)).astype(np.float32),
              rng.uniform(-b2, b2, 10).astype(np.float32)]
    velocity = [np.zeros_like(p) for p in params]
    order_rng = np.random.default_rng(seed)

    def epoch():
        w1, c1, w2, c2 = params
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            n = len(xb)
            z1 = xb @ w1.T + c1
            h = np.maximum(z1, 0)
            z2 = h @ w2.T + c2
            z2 = z2 - z2.max(axis=1, keepdims=True)
            p = np.exp(z2)
            p /= p.sum(axis=1, keepdims=True)
            dz2 = p
            dz2[np.arange(n), yb] -= 1
            dz2 /= n
            grads = [None, None, dz2.T @ h, dz2.sum(axis=0)]
            dh = dz2 @ w2
            dz1 = dh * (z1 > 0)
            grads[0], grads[1] = dz1.T @ xb, dz1.sum(axis=0)
            for prm, g, v in zip(params, grads, velocity, strict=True):
                v *= 0.9
                v += g
                prm -= 0.05 * v
    return epoch


def torch_epoch(x, y, batch_size, threads, hidden=128, seed=0):
    """The same epoch in PyTorch (None when torch is not importable)."""
    try:
        import torch
    except Exception:  # not installed, or an install that cannot load
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)

    def epoch():
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch_size):
            idx = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epoch


def epoch_suite(report=print, quick=False, batch_sizes=(256, 64), repeats=3):
    """Seconds per epoch of an MLP 784-128-10 on 60,000 images: minigrad's
    Learner step against hand-written NumPy and PyTorch, medians of repeats."""
    n = 10_000 if quick else 60_000
    x, y = epoch_data(n)
    floor = epoch_flops(n) / 99e9
    rows = []
    report(f"epoch: {n} images, MLP 784-128-10, softmax CE, SGD momentum; FLOP floor at "
           f"99 GFLOP/s per core: {floor:.3f}s on one core")
    report(f"{'batch':>6} {'minigrad':>10} {'numpy':>10} {'torch':>10} {'np/mg':>7} "
           f"{'torch/mg':>9} {'mg/floor(1 core)':>17}")
    for bs in batch_sizes:
        runners = {"minigrad": minigrad_epoch(x, y, bs), "numpy": numpy_epoch(x, y, bs),
                   "torch": torch_epoch(x, y, bs, K.get_num_threads())}
        times = {k: [] for k, f in runners.items() if f is not None}
        for f in runners.values():
            if f is not None:
                f()  # warm up
        for _ in range(repeats):
            for k in times:
                start = time.perf_counter()
                runners[k]()
                times[k].append(time.perf_counter() - start)
        med = {k: float(np.median(v)) for k, v in times.items()}
        row = {"batch_size": bs, "images": n, "threads": K.get_num_threads(),
               "flop_floor_1core_s": floor, **{f"{k}_s": v for k, v in med.items()}}
        rows.append(row)
        mg_s, torch_s = med["minigrad"], med.get("torch")
        torch_cols = (f"{torch_s:>9.3f}s {torch_s / mg_s:>7.2f}" if torch_s
                      else f"{'n/a':>10} {'n/a':>7}")
        report(f"{bs:>6} {mg_s:>9.3f}s {med['numpy']:>9.3f}s {torch_cols.split()[0]:>10} "
               f"{med['numpy'] / mg_s:>7.2f} {torch_cols.split()[1]:>9} {mg_s / floor:>17.2f}")
    return rows
