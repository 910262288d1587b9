"""Every kernel of csrc/mg_kernels.def against its NumPy reference, found by
name in minigrad.reference: a kernel added to the list is tested here with no
edit. Each runs on both dtypes, every SIMD path and one or two threads."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dims, random_array, scales, seeds, tol

from minigrad import kernels as K
from minigrad import reference as R

KINDS = {kind: sorted(n for n, k in K.LISTED.items() if k == kind)
         for kind in ("unary", "binary", "rows", "rows_backward", "loss")}


def _second_input(name, x, seed, dtype):
    """What a backward kernel takes besides grad_out: the forward's input x, or
    its output y, computed by the reference forward."""
    arg = "y" if K.LISTED[name] == "rows_backward" else \
        getattr(K, name).__code__.co_varnames[1]
    if arg == "x":
        return x
    return getattr(R, name.removesuffix("_backward"))(x.astype(np.float64)).astype(dtype)


def _flat_sizes():
    return st.one_of(dims(0, 300), st.sampled_from([4096, 65537, 200_003]))


def _close(got, want, dtype, factor=1):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol * factor, atol=atol * factor)


def test_every_listed_kernel_has_a_reference_and_a_kind():
    assert KINDS["unary"] and KINDS["binary"] and KINDS["rows"] and KINDS["loss"]
    for name in K.LISTED:
        assert callable(getattr(R, name)), name
        assert getattr(K, name).__doc__, name


def test_binary_kernels_take_their_second_input_by_its_name():
    g, y = np.ones(3), np.full(3, 0.5)
    np.testing.assert_array_equal(K.sigmoid_backward(g, y=y), K.sigmoid_backward(g, y))
    np.testing.assert_array_equal(K.relu_backward(grad_out=g, x=y), g)
    with pytest.raises(TypeError):
        K.relu_backward(g, y=y)


@pytest.mark.parametrize("name", KINDS["unary"] + KINDS["binary"])
@given(n=_flat_sizes(), seed=seeds, scale=scales, in_place=st.booleans())
def test_elementwise_matches_reference(simd, threads, dtype, name, n, seed, scale, in_place):
    x = random_array(seed, n, dtype, scale)
    if K.LISTED[name] == "unary":
        args = [x]
    else:
        args = [random_array(seed + 1, n, dtype), _second_input(name, x, seed, dtype)]
    want = getattr(R, name)(*[a.astype(np.float64) for a in args])
    if in_place:  # the first input becomes the result
        got = getattr(K, name)(*args, out=args[0])
        assert got is args[0]
    else:
        got = getattr(K, name)(*args)
    assert got.dtype == dtype and got.shape == x.shape
    _close(got, want, dtype)


@pytest.mark.parametrize("name", KINDS["unary"] + KINDS["binary"])
def test_elementwise_nan_propagates(dtype, name):
    x = np.array([0.5, np.nan, -2.0], dtype)
    args = [x] if K.LISTED[name] == "unary" else [np.ones(3, dtype), x]
    got = getattr(K, name)(*args)
    assert np.isnan(got[1]) or name.startswith("relu_backward"), got
    assert np.all(np.isfinite(got[[0, 2]]))


@pytest.mark.parametrize("name", KINDS["rows"] + KINDS["rows_backward"])
@given(m=dims(0, 300), n=dims(1, 300), seed=seeds, scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_rows_match_reference(simd, threads, dtype, name, m, n, seed, scale):
    x = random_array(seed, (m, n), dtype, scale)
    if K.LISTED[name] == "rows":
        args = [x]
    else:
        args = [random_array(seed + 1, (m, n), dtype), _second_input(name, x, seed, dtype)]
    got = getattr(K, name)(*args)
    want = getattr(R, name)(*[a.astype(np.float64) for a in args])
    assert got.dtype == dtype and got.shape == (m, n)
    _close(got, want, dtype, factor=10)


@pytest.mark.parametrize("name", KINDS["rows"])
def test_rows_are_stable_for_large_values(dtype, name):
    x = np.array([[1e4, 0.0, -1e4], [500.0, 500.0, 500.0]], dtype)
    got = getattr(K, name)(x)
    assert np.all(np.isfinite(got))
    _close(got, getattr(R, name)(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", KINDS["loss"])
@given(n=_flat_sizes().filter(lambda n: n > 0), seed=seeds,
       scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]), column=st.booleans())
def test_losses_match_reference(simd, threads, dtype, name, n, seed, scale, column):
    shape = (n, 1) if column else (n,)
    z = random_array(seed, shape, dtype, scale)
    t = (np.random.default_rng(seed + 1).random(shape) < 0.5).astype(dtype)
    loss, grad = getattr(K, name)(z, t)
    want_loss, want_grad = getattr(R, name)(z.astype(np.float64), t.astype(np.float64))
    rtol, atol = tol(dtype)
    assert np.isfinite(loss)
    assert loss == pytest.approx(want_loss, rel=rtol * 10, abs=atol)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol * 10, atol=atol / n)


# The references of the backward kernels are the derivatives of the forward
# references: checked by central differences in float64.
_PAIRS = [n for n in KINDS["binary"] + KINDS["rows_backward"]
          if n.removesuffix("_backward") in K.LISTED]


@pytest.mark.parametrize("name", _PAIRS)
def test_backward_references_are_derivatives(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)) * 2
    g = rng.standard_normal((3, 5))
    forward = getattr(R, name.removesuffix("_backward"))
    grad = getattr(R, name)(g, _second_input(name, x, 0, np.float64))
    h = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = h
        numeric[idx] = (np.sum(g * forward(x + d)) - np.sum(g * forward(x - d))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
