"""The OpenMP runtime's wait policy, set before anything can load the runtime.

Unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is already set, importing minigrad
sets GOMP_SPINCOUNT=10000: OpenMP workers then wait for the next kernel by
spinning briefly instead of for ~300,000 iterations. Between kernel calls the
training loop runs Python on one core; long spinning on the other slowed a
2-thread epoch from 0.29 s to 0.47 s on the 2-core test machine
(benchmarks/run.py), and a 2-thread ResNet-18 epoch from 0.235 s to 0.324 s
(benchmarks/RESULTS.md, Run 13). libgomp reads the variable once, when it
loads: ``minigrad/__init__`` imports this module before NumPy (whose BLAS may
load it), and the runtimes already mapped are noted here, so that
``kernels.environment_problems()`` can tell when the extension shares one that
started without it (a source build links ``libgomp.so.1``, and a PyTorch
imported first has loaded its own copy under that name).
"""
import os

RUNTIME_NAMES = ("libgomp", "libomp", "libiomp")


def runtimes():
    """Paths of the OpenMP runtimes mapped into this process; empty where
    /proc/self/maps does not tell (not Linux)."""
    try:
        with open("/proc/self/maps") as f:
            return {line.split(maxsplit=5)[-1].strip() for line in f
                    if any(name in line for name in RUNTIME_NAMES)}
    except OSError:
        return set()


#: a wait policy of the user's own: left alone, and no problem to report
POLICY_PRESET = "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ
#: the runtimes mapped before this import (empty with POLICY_PRESET)
BEFORE = set() if POLICY_PRESET else runtimes()
if not POLICY_PRESET:
    os.environ["GOMP_SPINCOUNT"] = "10000"
