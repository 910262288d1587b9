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
    """The MNIST chapter's Linear(784, h) layer: forward and both backward products."""
    shapes = []
    for h in hidden:
        for bs in batches:
            shapes += [
                (f"x@w   b={bs} 784->{h}", (bs, 784, h), False, False),
                (f"x.T@dy b={bs} 784->{h}", (784, bs, h), True, False),
                (f"dy@w.T b={bs} 784->{h}", (bs, h, 784), False, True),
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
        "cpus_available": K.default_num_threads() if not os.environ.get(
            "MINIGRAD_NUM_THREADS") else len(os.sched_getaffinity(0)),
        "minigrad_threads": K.get_num_threads(),
        "simd_path": K.simd_path(),
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
