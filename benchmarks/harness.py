"""Timing harness: minigrad and NumPy timed alternately in the same run (so
both see the same machine state), medians, the results table and machine
info. Used by benchmarks/run.py; not part of the installed package."""
import json
import os
import platform
import time

import numpy as np

from minigrad import kernels as K


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


def write_json(path, payload):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)
