"""Benchmarks of minigrad's kernels against their NumPy reference.

Each case times minigrad and NumPy alternately in the same run (so both see
the same machine state) and reports medians, throughput and the ratio
NumPy time / minigrad time (> 1: minigrad is faster). Used by
``minigrad bench`` (short) and ``benchmarks/run.py`` (the full suite).
"""
import json
import os
import platform
import time

import numpy as np

from minigrad import kernels as K
from minigrad import reference as R


def _settle(f):
    """With more than one thread, run f for 0.1 s before timing it. The other
    library's idle workers spin for a while after its last call (OpenBLAS:
    ~2**28 cycles) and, on few cores, steal the core f's team needs; sleeping
    instead would let a virtual machine park its idle CPUs, which then take
    milliseconds to wake."""
    if K.get_num_threads() > 1:
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            f()


def measure_pair(f_mg, f_np, repeats=15, min_time=0.002):
    """Median seconds per call of two functions, timed alternately.

    Each sample loops a function long enough (min_time) to beat timer noise."""
    f_mg()
    f_np()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            f_mg()
        if time.perf_counter() - start >= min_time or loops >= 1 << 16:
            break
        loops *= 2
    t_mg, t_np = [], []
    for _ in range(repeats):
        for f, store in ((f_mg, t_mg), (f_np, t_np)):
            _settle(f)
            start = time.perf_counter()
            for _ in range(loops):
                f()
            store.append((time.perf_counter() - start) / loops)
    return float(np.median(t_mg)), float(np.median(t_np))


def _matmul_cases(sizes, dtype=np.float32):
    rng = np.random.default_rng(0)
    for label, (m, k, n), ta, tb in sizes:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        yield (f"matmul {label}", f"{m}x{k}x{n}", 2.0 * m * n * k, "GFLOP/s",
               lambda a=a, b=b, out=out, ta=ta, tb=tb:
                   K.matmul(a, b, trans_a=ta, trans_b=tb, out=out),
               lambda a=a, b=b, out=out, ta=ta, tb=tb:
                   R.matmul(a, b, trans_a=ta, trans_b=tb, out=out))


def square_shapes(sizes):
    return [(f"square {s}", (s, s, s), False, False) for s in sizes]


def chapter_shapes(batches=(64, 256, 1024), hidden=(30, 128)):
    """The products nn.Linear(784, h) runs (weight stored (h, 784) as in
    PyTorch): forward x @ W.T, weight gradient dy.T @ x, input gradient dy @ W."""
    shapes = []
    for h in hidden:
        for bs in batches:
            shapes += [
                (f"x@W.T  b={bs} 784->{h}", (bs, 784, h), False, True),
                (f"dy.T@x b={bs} 784->{h}", (h, bs, 784), True, False),
                (f"dy@W   b={bs} 784->{h}", (bs, h, 784), False, False),
            ]
    return shapes


def _elementwise_cases(n, dtype=np.float32):
    """Kernels with out= buffers against NumPy written as people write it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    y = K.sigmoid(x)
    out = np.empty_like(x)
    p, v = x.copy(), np.zeros_like(x)
    size = x.itemsize
    label = f"{n >> 20}M" if n % (1 << 20) == 0 else str(n)
    # (name, bytes moved per call, minigrad call, numpy call)
    cases = [
        ("relu", 2 * n * size, lambda: K.relu(x, out=out), lambda: np.maximum(x, 0)),
        ("relu_backward", 3 * n * size, lambda: K.relu_backward(g, x, out=out),
         lambda: g * (x > 0)),
        ("sigmoid", 2 * n * size, lambda: K.sigmoid(x, out=out),
         lambda: 1 / (1 + np.exp(-x))),
        ("sigmoid_backward", 3 * n * size, lambda: K.sigmoid_backward(g, y, out=out),
         lambda: g * y * (1 - y)),
        ("mnist_loss", 3 * n * size, lambda: K.mnist_loss(x, t, out=out),
         lambda: R.mnist_loss(x, t)),
        ("bce_with_logits", 3 * n * size, lambda: K.bce_with_logits(x, t, out=out),
         lambda: R.bce_with_logits(x, t)),
        ("sgd_step momentum", 5 * n * size,
         lambda: K.sgd_step(p, g, 1e-9, momentum=0.9, velocity=v),
         lambda: R.sgd_step(p, g, 1e-9, momentum=0.9, velocity=v)),
    ]
    for name, nbytes, f_mg, f_np in cases:
        yield f"{name}", label, nbytes, "GB/s", f_mg, f_np


def _softmax_cases(rows_list, classes=10, dtype=np.float32):
    rng = np.random.default_rng(0)
    for rows in rows_list:
        z = rng.standard_normal((rows, classes)).astype(dtype)
        labels = rng.integers(0, classes, rows)
        out = np.empty_like(z)
        yield ("softmax_cross_entropy", f"{rows}x{classes}", 2 * z.nbytes, "GB/s",
               lambda z=z, labels=labels, out=out: K.softmax_cross_entropy(z, labels, out=out),
               lambda z=z, labels=labels: R.softmax_cross_entropy(z, labels))


def run_cases(cases, repeats, report=print):
    rows = []
    for name, shape, work, unit, f_mg, f_np in cases:
        t_mg, t_np = measure_pair(f_mg, f_np, repeats)
        row = {"kernel": name, "shape": shape, "unit": unit,
               "minigrad_s": t_mg, "numpy_s": t_np,
               "minigrad_rate": work / t_mg / 1e9, "numpy_rate": work / t_np / 1e9,
               "ratio": t_np / t_mg}
        rows.append(row)
        report(format_row(row))
    return rows


HEADER = (f"{'kernel':<26} {'shape':<14} {'minigrad':>11} {'numpy':>11} "
          f"{'mg rate':>9} {'np rate':>9} {'unit':<8} {'np/mg':>6}")


def format_row(r):
    return (f"{r['kernel']:<26} {r['shape']:<14} {r['minigrad_s'] * 1e3:>9.4f}ms "
            f"{r['numpy_s'] * 1e3:>9.4f}ms {r['minigrad_rate']:>9.2f} {r['numpy_rate']:>9.2f} "
            f"{r['unit']:<8} {r['ratio']:>6.2f}")


def machine_info():
    """CPU, cores, SIMD path and versions, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "minigrad_threads": K.get_num_threads(),
        "simd_path": K.simd_path(),
        "build_flags": K.build_flags(),
        "openmp": K.openmp_enabled(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    try:
        from threadpoolctl import threadpool_info
        info["numpy_blas"] = [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        pass
    return info


def quick_suite(repeats=7, report=print):
    """A short run of every kernel (what `minigrad bench` shows)."""
    report(HEADER)
    cases = []
    cases += _matmul_cases(square_shapes([256, 512]))
    cases += _matmul_cases([s for s in chapter_shapes(batches=(256,), hidden=(30,))])
    cases += _elementwise_cases(1 << 20)
    cases += _softmax_cases([256])
    return run_cases(cases, repeats, report)


def full_kernel_suite(repeats=15, report=print):
    """Squares 64-2048, the chapter's shapes, 1M/16M-element arrays, float32."""
    report(HEADER)
    cases = []
    cases += _matmul_cases(square_shapes([64, 128, 256, 512, 1024, 2048]))
    cases += _matmul_cases(chapter_shapes())
    cases += _matmul_cases([("square 512 f64", (512, 512, 512), False, False)], np.float64)
    cases += _elementwise_cases(1 << 20)
    cases += _elementwise_cases(1 << 24)
    cases += _softmax_cases([256, 60000])
    return run_cases(cases, repeats, report)


def write_json(path, payload):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)


# ------------------------------------------------------------------ whole epochs

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
    from minigrad import functional as F
    from minigrad import nn

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
