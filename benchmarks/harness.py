"""Timing harness: minigrad and NumPy (without and with flush-to-zero) timed
alternately in the same run (so all see the same machine state), medians,
the results table, and the machine: CPU model, measured FMA peak and memory
bandwidth. Used by benchmarks/run.py; not part of the installed package."""
import json
import os
import platform
import time

import numpy as np

from minigrad import _kernels
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


class ftz:
    """Flush-to-zero and denormals-are-zero on the calling thread inside the
    block (NumPy has no switch for it; minigrad's kernels set it themselves).
    OpenBLAS's own worker threads keep their state."""

    def __init__(self, on=True):
        self.on = on

    def __enter__(self):
        self.before = _kernels._set_ftz(self.on)

    def __exit__(self, *exc):
        _kernels._set_ftz(self.before)


def measure(fs, repeats=15, min_time=0.002):
    """Median seconds per call of each (function, ftz) pair, timed alternately
    sample by sample; ftz sets flush-to-zero around that function's samples.

    Each sample loops a function long enough (min_time) to beat timer noise."""
    for f, on in fs:
        with ftz(on):
            f()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fs[0][0]()
        if time.perf_counter() - start >= min_time or loops >= 1 << 16:
            break
        loops *= 2
    times = [[] for _ in fs]
    for _ in range(repeats):
        for (f, on), store in zip(fs, times, strict=True):
            _settle(f)
            with ftz(on):
                start = time.perf_counter()
                for _ in range(loops):
                    f()
                store.append((time.perf_counter() - start) / loops)
    return [float(np.median(t)) for t in times]


def measure_pair(f_mg, f_np, repeats=15, min_time=0.002):
    """Median seconds per call of two functions, timed alternately."""
    return tuple(measure([(f_mg, False), (f_np, False)], repeats, min_time))


def run_cases(cases, repeats, report=print, limits=None):
    """Times every case: minigrad, NumPy without and with flush-to-zero.

    limits: {"GFLOP/s": peak, "GB/s": bandwidth} of this machine (one
    thread); each minigrad rate is also reported as a fraction of its limit."""
    limits = limits or {}
    rows = []
    for name, shape, work, unit, f_mg, f_np in cases:
        t_mg, t_np, t_ftz = measure([(f_mg, False), (f_np, False), (f_np, True)], repeats)
        limit = limits.get(unit)
        row = {"kernel": name, "shape": shape, "unit": unit,
               "minigrad_s": t_mg, "numpy_s": t_np, "numpy_ftz_s": t_ftz,
               "minigrad_rate": work / t_mg / 1e9, "numpy_rate": work / t_np / 1e9,
               "ratio": t_np / t_mg, "ratio_ftz": t_ftz / t_mg,
               "fraction_of_limit": work / t_mg / 1e9 / limit if limit else None}
        rows.append(row)
        report(format_row(row))
    return rows


HEADER = (f"{'kernel':<26} {'shape':<14} {'minigrad':>11} {'numpy':>11} "
          f"{'mg rate':>9} {'np rate':>9} {'unit':<8} {'np/mg':>6} {'ftz':>6} {'%lim':>5}")


def format_row(r):
    frac = r.get("fraction_of_limit")
    return (f"{r['kernel']:<26} {r['shape']:<14} {r['minigrad_s'] * 1e3:>9.4f}ms "
            f"{r['numpy_s'] * 1e3:>9.4f}ms {r['minigrad_rate']:>9.2f} {r['numpy_rate']:>9.2f} "
            f"{r['unit']:<8} {r['ratio']:>6.2f} {r['ratio_ftz']:>6.2f} "
            f"{100 * frac if frac else float('nan'):>5.0f}")


def memory_bandwidth(mib=256, repeats=5):
    """One thread's copy bandwidth in GB/s (bytes read + bytes written) on
    arrays far larger than the caches: the best of a few np.copyto."""
    src = np.ones(mib << 18, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def machine_limits():
    """This core's measured fp32 FMA peak (GFLOP/s, on minigrad's SIMD path)
    and memory bandwidth (GB/s): the limits rates are reported against."""
    return {"GFLOP/s": _kernels._peak_probe(0.5), "GB/s": memory_bandwidth()}


def machine_info():
    """CPU, cores, SIMD path, versions and the measured limits, for the record."""
    cpu = platform.processor() or platform.machine()
    ident = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    cpu = value.strip()
                elif key in ("vendor_id", "cpu family", "model", "stepping", "cache size"):
                    ident[key.replace(" ", "_")] = value.strip()
                elif not line.strip():
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_id": ident,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "minigrad_threads": K.get_num_threads(),
        "simd_path": K.simd_path(),
        "gemm_blocking_f32": dict(zip(("mc", "kc", "nc"), _kernels._gemm_blocking("float32"),
                                      strict=True)),
        "build_flags": K.build_flags(),
        "openmp": K.openmp_enabled(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "limits": machine_limits(),
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
