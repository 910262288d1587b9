"""Whole training epochs: minigrad's Learner step against the same MLP written
by hand in NumPy and in PyTorch (when importable)."""
import time

import numpy as np

from minigrad import kernels as K


def epoch_data(n=60_000, seed=0, as_bytes=False):
    """n real MNIST digits (the shipped 10,000, repeated), float32, labels 0-9;
    ``as_bytes``: the same images as ScaledBytes (uint8 read as x / 255)."""
    from minigrad import datasets
    from minigrad.data import ScaledBytes

    (x, y), (xv, yv) = datasets.mnist_digits(as_bytes=as_bytes)
    if as_bytes:
        x, xv = x.data, xv.data
    x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
    reps = -(-n // len(x))
    x, y = np.tile(x, (reps, 1))[:n].copy(), np.tile(y, reps)[:n].copy()
    return (ScaledBytes(x, 255) if as_bytes else x), y


def epoch_flops(n, sizes=(784, 128, 10)):
    """Matmul FLOPs of one epoch: forward, weight gradients, and input
    gradients of every layer but the first."""
    flops = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        flops += 2 * n * a * b * (2 if i == 0 else 3)
    return flops


def minigrad_epoch(x, y, batch_size, hidden=128, seed=0, compile=None, cbs=()):  # noqa: A002
    """A callable that trains one epoch with minigrad's Learner (``compile``
    and ``cbs`` as Learner's: None compiles the step when it applies, False
    is eager)."""
    from functools import partial

    import minigrad as mg
    from minigrad import nn
    from minigrad.nn import functional as F

    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], hidden, rng=rng), nn.ReLU(),
                          nn.Linear(hidden, 10, rng=rng))
    dls = mg.DataLoaders(mg.DataLoader((x, y), batch_size, shuffle=True, seed=seed), [])
    learn = mg.Learner(dls, model, F.cross_entropy, opt_func=partial(mg.SGD, momentum=0.9),
                       lr=0.05, log=lambda *a: None, compile=compile, cbs=cbs)

    def epoch():
        learn.fit(1, progress=False)
    return epoch


def _mlp_params(inputs, hidden, seed):
    """The hand-written epochs' weights (PyTorch's initialisation) and zero velocities."""
    rng = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(inputs), 1 / np.sqrt(hidden)
    params = [rng.uniform(-b1, b1, (hidden, inputs)).astype(np.float32),
              rng.uniform(-b1, b1, hidden).astype(np.float32),
              rng.uniform(-b2, b2, (10, hidden)).astype(np.float32),
              rng.uniform(-b2, b2, 10).astype(np.float32)]
    return params, [np.zeros_like(p) for p in params]


def numpy_epoch(x, y, batch_size, hidden=128, seed=0):
    """The same epoch written by hand in NumPy, as people write it."""
    params, velocity = _mlp_params(x.shape[1], hidden, seed)
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


def kernels_epoch(x, y, batch_size, hidden=128, seed=0):
    """The same epoch on minigrad's kernels called directly, with no autograd,
    Tensor or Learner: the time a compiled training step could approach."""
    params, velocity = _mlp_params(x.shape[1], hidden, seed)
    order_rng = np.random.default_rng(seed)
    labels = y.astype(np.int64)

    def epoch():
        w1, c1, w2, c2 = params
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = np.sort(order[start:start + batch_size])
            xb, yb = x[idx], labels[idx]
            h = K.linear(xb, w1, c1, relu=True, trans_w=True)
            z = K.linear(h, w2, c2, trans_w=True)
            _, dz = K.softmax_cross_entropy(z, yb)
            dh = K.matmul(dz, w2)
            dz1, db1 = K.relu_backward_bias_grad(dh, h)
            grads = [K.matmul(dz1, xb, trans_a=True), db1,
                     K.matmul(dz, h, trans_a=True), K.bias_grad(dz)]
            for prm, g, v in zip(params, grads, velocity, strict=True):
                K.sgd_step(prm, g, 0.05, momentum=0.9, velocity=v)
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


def epoch_suite(report=print, quick=False, batch_sizes=(256, 64), repeats=3, peak=None):
    """Seconds per epoch of an MLP 784-128-10 on 60,000 images: minigrad's
    Learner (its compiled step, the default, on the images kept as bytes;
    mg_f32: the same on float32 images, as every other row reads them;
    mg_eager: ``compile=False``, the autograd step) against the same step on
    its kernels called directly (kernels: what is left without autograd and
    the Learner), hand-written NumPy and PyTorch, each of those two without
    and with flush-to-zero (ftz), medians of repeats alternated epoch by epoch.

    peak: this core's measured fp32 GFLOP/s; the FLOP floor is the epoch's
    matmul FLOPs at that rate, and mg/floor how far minigrad is from it."""
    from harness import ftz

    from minigrad import _kernels

    peak = peak or _kernels._peak_probe(0.5)
    n = 10_000 if quick else 60_000
    x, y = epoch_data(n)
    x8, _ = epoch_data(n, as_bytes=True)  # the compiled Learner's images: read as bytes
    floor = epoch_flops(n) / (peak * 1e9)
    rows = []
    report(f"epoch: {n} images, MLP 784-128-10, softmax CE, SGD momentum; FLOP floor at "
           f"the measured {peak:.0f} GFLOP/s per core: {floor:.3f}s on one core; minigrad's "
           f"compiled Learner reads the images as uint8 (ScaledBytes), the others as float32")
    names = ["mg_f32", "mg_eager", "kernels", "numpy", "numpy_ftz", "torch", "torch_ftz"]
    report(f"{'batch':>6} {'minigrad':>9} " + " ".join(f"{k:>9}" for k in names)
           + " " + " ".join(f"{k + '/mg':>12}" for k in names) + f" {'mg/floor':>9}")
    for bs in batch_sizes:
        torch_run = torch_epoch(x, y, bs, K.get_num_threads())
        runners = {"minigrad": (minigrad_epoch(x8, y, bs), False),
                   "mg_f32": (minigrad_epoch(x, y, bs), False),
                   "mg_eager": (minigrad_epoch(x, y, bs, compile=False), False),
                   "kernels": (kernels_epoch(x, y, bs), False),
                   "numpy": (numpy_epoch(x, y, bs), False),
                   "numpy_ftz": (numpy_epoch(x, y, bs), True)}
        if torch_run is not None:
            runners["torch"] = (torch_run, False)
            runners["torch_ftz"] = (torch_epoch(x, y, bs, K.get_num_threads()), True)
        times = {k: [] for k in runners}
        for f, on in runners.values():
            with ftz(on):
                f()  # warm up
        for _ in range(repeats):
            for k, (f, on) in runners.items():
                with ftz(on):
                    start = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - start)
        med = {k: float(np.median(v)) for k, v in times.items()}
        mg_s = med["minigrad"]
        row = {"batch_size": bs, "images": n, "threads": K.get_num_threads(),
               "peak_gflops": peak, "flop_floor_1core_s": floor,
               **{f"{k}_s": v for k, v in med.items()}}
        rows.append(row)
        secs = " ".join(f"{med[k]:>8.3f}s" if k in med else f"{'n/a':>9}" for k in names)
        ratios = " ".join(f"{med[k] / mg_s:>12.2f}" if k in med else f"{'n/a':>12}"
                          for k in names)
        report(f"{bs:>6} {mg_s:>8.3f}s {secs} {ratios} {mg_s / floor:>9.2f}")
    return rows
