"""Every kernel against its NumPy reference, over generated shapes and values,
for both dtypes, every SIMD path and one or two threads."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_matmul_close, dims, random_array, seeds, tol

from minigrad import kernels as K
from minigrad import reference as R


def _operand(seed, shape, dtype, trans, layout):
    """An array whose op() has `shape`, stored as asked: C order, a transposed
    view, or a strided slice of a larger array."""
    stored = shape[::-1] if trans else shape
    if layout == "slice":
        big = random_array(seed, (stored[0] * 2 + 1, stored[1] + 3), dtype)
        return big[1::2, 2:2 + stored[1]]
    if layout == "fortran":
        return np.asfortranarray(random_array(seed, stored, dtype))
    return random_array(seed, stored, dtype)


@given(m=dims(), k=dims(), n=dims(), seed=seeds, trans_a=st.booleans(), trans_b=st.booleans(),
       layout=st.sampled_from(["c", "fortran", "slice"]))
def test_matmul_matches_reference(simd, threads, dtype, m, k, n, seed, trans_a, trans_b, layout):
    a = _operand(seed, (m, k), dtype, trans_a, layout)
    b = _operand(seed + 1, (k, n), dtype, trans_b, "c")
    got = K.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    want = R.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == (m, n) and got.dtype == dtype
    bound = np.abs(R._op(a, trans_a)).astype(np.float64) @ np.abs(R._op(b, trans_b))
    assert_matmul_close(got, want, bound, k, dtype)


@given(m=dims(0, 80), k=dims(0, 80), n=dims(0, 80), seed=seeds)
def test_matmul_out_overwrites_and_accumulate_adds(dtype, m, k, n, seed):
    a = random_array(seed, (m, k), dtype)
    b = random_array(seed + 1, (k, n), dtype)
    start = random_array(seed + 2, (m, n), dtype)
    bound = np.abs(a).astype(np.float64) @ np.abs(b)

    out = np.full((m, n), np.nan, dtype)
    assert K.matmul(a, b, out=out) is out
    assert_matmul_close(out, a @ b, bound, k, dtype)

    acc = start.copy()
    K.matmul(a, b, out=acc, accumulate=True)
    assert_matmul_close(acc, start + a @ b, bound + np.abs(start), k + 1, dtype)


@given(m=dims(), k=dims(), n=dims(), seed=seeds, relu=st.booleans(), bias=st.booleans(),
       trans_w=st.booleans())
def test_linear_matches_reference(simd, threads, dtype, m, k, n, seed, relu, bias, trans_w):
    x = random_array(seed, (m, k), dtype)
    w = random_array(seed + 1, (n, k) if trans_w else (k, n), dtype)
    b = random_array(seed + 2, (n,), dtype) if bias else None
    got = K.linear(x, w, b, relu=relu, trans_w=trans_w)
    want = R.linear(x, w, b, relu=relu, trans_w=trans_w)
    bound = np.abs(x).astype(np.float64) @ np.abs(R._op(w, trans_w))
    if b is not None:
        bound += np.abs(b)
    assert_matmul_close(got, want, bound, k + 1, dtype)
    if relu:
        assert np.all(got >= 0)


@given(m=dims(0, 200), n=dims(0, 200), seed=seeds)
def test_bias_grad_matches_reference(simd, dtype, m, n, seed):
    dy = random_array(seed, (m, n), dtype)
    got = K.bias_grad(dy)
    np.testing.assert_allclose(got, R.bias_grad(dy), rtol=tol(dtype)[0] * 10,
                               atol=tol(dtype)[1] * max(m, 1) * 10)


def _flat_sizes():
    return st.one_of(dims(0, 300), st.sampled_from([4096, 65537, 200_003]))


@given(m=dims(0, 200), n=dims(0, 200), seed=seeds)
def test_relu_backward_bias_grad_matches_reference(simd, dtype, m, n, seed):
    g = random_array(seed, (m, n), dtype)
    y = R.relu(random_array(seed + 1, (m, n), dtype))
    got, got_db = K.relu_backward_bias_grad(g, y)
    want, want_db = R.relu_backward_bias_grad(g, y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_db, want_db, rtol=tol(dtype)[0] * 10,
                               atol=tol(dtype)[1] * max(m, 1) * 10)


def test_sigmoid_extremes_are_exact_limits(simd, dtype):
    x = np.array([-1e4, -200.0, -50.0, 0.0, 50.0, 200.0, 1e4, np.inf, -np.inf], dtype)
    y = K.sigmoid(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, R.sigmoid(x), rtol=tol(dtype)[0], atol=1e-30)
    assert y[3] == 0.5 and y[-2] == 1.0 and y[-1] == 0.0


def test_bce_with_logits_is_accurate_at_huge_logits(dtype):
    z = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype)
    t = np.array([1, 0, 0, 1, 1], dtype)
    loss, grad = K.bce_with_logits(z, t)
    # exact: (0 + 0 + 1e4 + 1e4 + log 2) / 5
    assert loss == pytest.approx((2e4 + np.log(2)) / 5, rel=1e-6)
    np.testing.assert_allclose(grad, [0, 0, 0.2, -0.2, -0.1], atol=1e-7)


@given(m=dims(1, 300), c=dims(1, 40), seed=seeds, scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]))
def test_softmax_cross_entropy_matches_reference(simd, threads, dtype, m, c, seed, scale):
    z = random_array(seed, (m, c), dtype, scale)
    labels = np.random.default_rng(seed).integers(0, c, m)
    loss, grad = K.softmax_cross_entropy(z, labels)
    want_loss, want_grad = R.softmax_cross_entropy(z.astype(np.float64), labels)
    rtol, atol = tol(dtype)
    assert loss == pytest.approx(want_loss, rel=rtol * 10, abs=atol * 10)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol * 10, atol=atol * 10 / m)


def test_softmax_cross_entropy_large_logits_are_stable(dtype):
    z = np.array([[1e4, 0.0, -1e4], [500.0, 500.0, 500.0]], dtype)
    loss, grad = K.softmax_cross_entropy(z, np.array([0, 2]))
    assert loss == pytest.approx(np.log(3) / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-7)


@given(n=_flat_sizes(), seed=seeds, lr=st.sampled_from([0.0, 0.01, 1.0]),
       momentum=st.sampled_from([0.0, 0.9]), wd=st.sampled_from([0.0, 1e-2]))
def test_sgd_step_matches_reference(simd, threads, dtype, n, seed, lr, momentum, wd):
    p = random_array(seed, n, dtype)
    g = random_array(seed + 1, n, dtype)
    v = random_array(seed + 2, n, dtype)
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(2):
        K.sgd_step(p, g, lr, momentum=momentum, velocity=v if momentum else None,
                   weight_decay=wd)
        R.sgd_step(p_ref, g, lr, momentum=momentum, velocity=v_ref if momentum else None,
                   weight_decay=wd)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(p, p_ref, rtol=rtol, atol=atol * 10)
    if momentum:
        np.testing.assert_allclose(v, v_ref, rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("fn", ["matmul", "relu", "gelu", "mnist_loss", "softmax_ce", "log_softmax",
                                "adam"])
def test_results_are_bit_identical_for_any_thread_count(fn):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((700, 300)).astype(np.float32)
    b = rng.standard_normal((300, 500)).astype(np.float32)
    x = rng.standard_normal(3_000_001).astype(np.float32)
    t = (x > 0.3).astype(np.float32)
    z = rng.standard_normal((40_000, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 40_000)
    call = {
        "matmul": lambda: K.matmul(a, b),
        "relu": lambda: K.relu(x),
        "gelu": lambda: K.gelu(x),
        "mnist_loss": lambda: K.mnist_loss(x, t),
        "softmax_ce": lambda: K.softmax_cross_entropy(z, labels),
        "log_softmax": lambda: K.log_softmax(z),
        "adam": lambda: K.adam_step(x.copy(), t, np.zeros_like(x), np.zeros_like(x), 1, 1e-3),
    }[fn]
    before = K.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            K.set_num_threads(n)
            results.append(call())
    finally:
        K.set_num_threads(before)
    for r in results[1:]:
        if isinstance(r, tuple):
            assert r[0] == results[0][0]
            np.testing.assert_array_equal(r[1], results[0][1])
        else:
            np.testing.assert_array_equal(r, results[0])


def _ulps(got, want64):
    """Error of float32 results in units of the last place of the exact value."""
    want32 = want64.astype(np.float32)
    ulp = np.spacing(np.abs(want32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want64) / np.maximum(ulp, np.finfo(np.float32).tiny)


_GRID = np.concatenate([np.linspace(-12, 12, 200_001),
                        np.geomspace(1e-30, 1, 1000)]).astype(np.float32)


@pytest.mark.parametrize("name", ["gelu", "tanh"])
def test_float32_gelu_and_tanh_are_within_2_5_ulp(simd, name):
    # computed in double (erfc to a relative 1.2e-7, tanh to a few ulp of
    # double) and rounded once: at most ~1.7 ulp of erfc error + 0.5 of rounding
    got = getattr(K, name)(_GRID)
    want = getattr(R, name)(_GRID.astype(np.float64))
    normal = np.abs(want) > np.finfo(np.float32).tiny  # smaller: flushed to zero
    assert _ulps(got[normal], want[normal]).max() <= 2.5


def test_float32_gelu_backward_is_accurate(simd):
    # Phi(x) + x phi(x) cancels near x = -0.75, so the error is bounded by the
    # size of its terms rather than of the result
    x = _GRID.astype(np.float64)
    got = K.gelu_backward(np.ones_like(_GRID), _GRID)
    want = R.gelu_backward(np.ones_like(x), x)
    terms = R._phi_cdf(x) + np.abs(x) * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    assert np.all(np.abs(got - want) <= 3e-7 * terms + 1e-38)


@pytest.mark.parametrize("name", ["gelu", "tanh", "softmax", "log_softmax"])
def test_forward_kernels_match_pytorch(dtype, name):
    torch = pytest.importorskip("torch", reason="PyTorch is the semantic reference here")
    x = random_array(7, (64, 33), dtype, 4.0)
    t = torch.from_numpy(x)
    want = {"gelu": lambda: torch.nn.functional.gelu(t), "tanh": lambda: torch.tanh(t),
            "softmax": lambda: torch.softmax(t, -1),
            "log_softmax": lambda: torch.log_softmax(t, -1)}[name]().numpy()
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(getattr(K, name)(x), want, rtol=rtol * 10, atol=atol * 10)
