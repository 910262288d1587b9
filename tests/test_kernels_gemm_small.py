"""The few-rows GEMM path (at most 16 rows of x @ W.T, W stored (out, in)
row-major, read in place as dot products) against the reference, on every
SIMD path, one and two threads, odd shapes and strided operands; and the
neighbouring layouts that must take the packed path instead."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_matmul_close, dims, random_array, seeds

from minigrad import kernels as K
from minigrad import reference as R

few_rows = st.one_of(st.sampled_from([1, 2, 3, 4, 5, 15, 16, 17]), st.integers(1, 16))


def _x(seed, m, k, dtype, layout):
    """x (m, k) stored C-contiguous, as every other row of a wider array (rows
    contiguous, strided), or column-major (the packed path)."""
    if layout == "rows":
        return random_array(seed, (2 * m, k + 5), dtype)[::2, 3:3 + k]
    if layout == "fortran":
        return np.asfortranarray(random_array(seed, (m, k), dtype))
    return random_array(seed, (m, k), dtype)


@given(m=few_rows, k=dims(0, 800), n=dims(1, 200), seed=seeds, relu=st.booleans(),
       bias=st.booleans(), trans_w=st.booleans(),
       layout=st.sampled_from(["c", "rows", "fortran"]))
def test_linear_few_rows_matches_reference(simd, threads, dtype, m, k, n, seed, relu, bias,
                                           trans_w, layout):
    x = _x(seed, m, k, dtype, layout)
    w = random_array(seed + 1, (n, k) if trans_w else (k, n), dtype)
    b = random_array(seed + 2, n, dtype) if bias else None
    got = K.linear(x, w, b, relu=relu, trans_w=trans_w)
    want = R.linear(x, w, b, relu=relu, trans_w=trans_w)
    bound = np.abs(x).astype(np.float64) @ np.abs(R._op(w, trans_w)) + (
        np.abs(b) if bias else 0)
    assert_matmul_close(got, want, bound, k + 1, dtype)


@given(m=few_rows, k=dims(0, 300), n=dims(1, 150), seed=seeds)
def test_matmul_few_rows_accumulates(simd, dtype, m, k, n, seed):
    a = random_array(seed, (m, k), dtype)
    w = random_array(seed + 1, (n, k), dtype)
    out = random_array(seed + 2, (m, n), dtype)
    want = R.matmul(a, w, trans_b=True) + out
    got = K.matmul(a, w, trans_b=True, out=out, accumulate=True)
    assert got is out
    bound = np.abs(a).astype(np.float64) @ np.abs(w.T) + np.abs(want)
    assert_matmul_close(got, want, bound, k + 1, dtype)


@pytest.mark.parametrize("m", [1, 3, 16])
def test_few_rows_bit_identical_for_any_thread_count(simd, dtype, m):
    """Enough work to use both threads (columns cut into pieces)."""
    x = random_array(0, (m, 1000), dtype)
    w = random_array(1, (700, 1000), dtype)
    b = random_array(2, 700, dtype)
    before = K.get_num_threads()
    try:
        K.set_num_threads(1)
        one = K.linear(x, w, b, relu=True, trans_w=True)
        K.set_num_threads(2)
        two = K.linear(x, w, b, relu=True, trans_w=True)
    finally:
        K.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_batch_one_keeps_nan_and_zero_rows(simd):
    """A NaN input spreads only to its own outputs; ReLU keeps NaN."""
    x = np.zeros((1, 40), np.float32)
    w = random_array(3, (9, 40), np.float32)
    w[4, 7] = np.nan
    x[0, 7] = 1.0
    got = K.linear(x, w, relu=True, trans_w=True)
    assert np.isnan(got[0, 4]) and np.isfinite(np.delete(got[0], 4)).all()
