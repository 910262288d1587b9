"""Hypothesis strategies and tolerances shared by the kernel tests."""
import numpy as np
from hypothesis import strategies as st

# Sizes that stress tiling: 0 and 1, primes, just off SIMD widths, a few hundred.
SPECIAL = [0, 1, 2, 3, 7, 13, 15, 16, 17, 31, 33, 63, 65, 97, 127, 129, 257, 300]


def dims(lo=0, hi=300):
    special = [d for d in SPECIAL if lo <= d <= hi]
    return st.one_of(st.sampled_from(special), st.integers(lo, hi))


def random_array(seed, shape, dtype, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


seeds = st.integers(0, 2**32 - 1)
scales = st.sampled_from([1e-3, 1.0, 30.0])

# elementwise tolerances per dtype: (rtol, atol)
TOL = {np.float32: (2e-5, 1e-6), np.float64: (1e-12, 1e-14)}


def tol(dtype):
    return TOL[np.dtype(dtype).type]


def assert_matmul_close(got, want, a_abs_b_abs, k, dtype):
    """Error bound of a K-term dot product in floating point:
    |got - want| <= 2 (k + 2) eps (|op(a)| @ |op(b)|) elementwise."""
    eps = np.finfo(dtype).eps
    bound = 2 * (k + 2) * eps * a_abs_b_abs + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert np.all(err <= bound), f"max error {err.max()} exceeds bound at {np.argmax(err - bound)}"
