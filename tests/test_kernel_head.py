"""kernels.linear_cross_entropy: a classifier's last layer, its softmax
cross-entropy and the gradient at its input in one call. Its results must be
those of linear, softmax_cross_entropy, matmul and relu_backward called in
turn, bit for bit (the compiled training step relies on it to stay eager's
twin), on every SIMD path and thread count; and close to the NumPy reference."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_array, seeds, tol

from minigrad import _kernels
from minigrad import kernels as K
from minigrad import reference as R


def _case(seed, n, k, c, dtype, relu, bias):
    x = random_array(seed, (n, k), dtype)
    if relu:  # the output of a ReLU: zeros where the mask must act
        x = np.maximum(x, 0)
    w = random_array(seed + 1, (c, k), dtype)
    b = random_array(seed + 2, c, dtype) if bias else None
    labels = np.random.default_rng(seed).integers(0, c, n)
    return x, w, b, labels


def _unfused(x, w, b, labels, relu, input_grad=True):
    z = K.linear(x, w, b, trans_w=True)
    loss, dz = K.softmax_cross_entropy(z, labels)
    dx = K.matmul(dz, w) if input_grad else None
    if relu and input_grad:
        dx = K.relu_backward(dx, x)
    return loss, z, dz, dx


def _assert_same(got, want):
    assert got[0] == want[0] or (np.isnan(got[0]) and np.isnan(want[0]))
    for g, w in zip(got[1:], want[1:], strict=True):
        if w is None:
            assert g is None
        else:
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


# the batch sizes cover the few-rows GEMM (<= 16 rows), the packed GEMM and
# row tails of the head kernels (not multiples of 8 or 4); hidden sizes cover
# vector tails; classes up to past the head kernels' limit (64)
@given(n=st.sampled_from([1, 3, 16, 17, 29, 64, 100, 256]),
       k=st.sampled_from([1, 5, 16, 30, 64, 100, 128, 131, 300]),
       c=st.sampled_from([1, 2, 10, 16, 17, 40, 64, 65, 100]),
       seed=seeds, relu=st.booleans(), bias=st.booleans(), input_grad=st.booleans())
def test_equals_the_unfused_calls_bit_for_bit(simd, threads, dtype, n, k, c, seed, relu, bias,
                                              input_grad):
    x, w, b, labels = _case(seed, n, k, c, dtype, relu, bias)
    got = K.linear_cross_entropy(x, w, b, labels, relu=relu, input_grad=input_grad)
    _assert_same(got, _unfused(x, w, b, labels, relu, input_grad))


@given(n=st.sampled_from([1, 17, 64, 300]), k=st.sampled_from([3, 30, 128, 200]),
       c=st.sampled_from([2, 10, 33]), seed=seeds, relu=st.booleans(), bias=st.booleans())
def test_matches_the_numpy_reference(simd, dtype, n, k, c, seed, relu, bias):
    x, w, b, labels = _case(seed, n, k, c, dtype, relu, bias)
    loss, z, dz, dx = K.linear_cross_entropy(x, w, b, labels, relu=relu)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)
    want = R.linear_cross_entropy(x64, w64, b64, labels, relu=relu)
    rtol, atol = tol(dtype)
    scale = 10 * (k + c)
    assert loss == pytest.approx(want[0], rel=rtol * scale, abs=atol * scale)
    np.testing.assert_allclose(z, want[1], rtol=rtol * scale, atol=atol * scale)
    np.testing.assert_allclose(dz, want[2], rtol=rtol * scale, atol=atol * scale / n)
    np.testing.assert_allclose(dx, want[3], rtol=rtol * scale, atol=atol * scale / n)


@pytest.mark.parametrize("swap", [None, True, False])
@pytest.mark.parametrize("kc", [0, 16])
def test_other_gemm_roads_and_blockings_stay_bit_identical(one_thread, swap, kc):
    """Where mg_gemm would split a sum into K blocks (a forced kc of 16) or
    take C.T = B.T A.T (swap), the kernel must still give mg_gemm's numbers."""
    try:
        _kernels._set_gemm_swap(swap)
        _kernels._set_gemm_blocking(kc=kc)
        for n, k, c in [(20, 200, 40), (40, 300, 64), (64, 200, 10), (30, 160, 70)]:
            for dtype in (np.float32, np.float64):
                x, w, b, labels = _case(n + k + c, n, k, c, dtype, True, c % 2 == 0)
                got = K.linear_cross_entropy(x, w, b, labels, relu=True)
                _assert_same(got, _unfused(x, w, b, labels, True))
    finally:
        _kernels._set_gemm_swap(None)
        _kernels._set_gemm_blocking()


def test_bit_identical_for_any_thread_count():
    x, w, b, labels = _case(7, 2048, 128, 10, np.float32, True, True)
    before = K.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            K.set_num_threads(t)
            results.append(K.linear_cross_entropy(x, w, b, labels, relu=True))
    finally:
        K.set_num_threads(before)
    for r in results[1:]:
        _assert_same(r, results[0])


def test_writes_into_the_given_arrays():
    x, w, b, labels = _case(3, 50, 30, 10, np.float32, True, True)
    z, dz, dx = np.empty((50, 10), np.float32), np.empty((50, 10), np.float32), \
        np.empty((50, 30), np.float32)
    loss, z2, dz2, dx2 = K.linear_cross_entropy(x, w, b, labels, relu=True, logits_out=z,
                                                grad_out=dz, input_grad_out=dx)
    assert z2 is z and dz2 is dz and dx2 is dx
    _assert_same((loss, z, dz, dx), _unfused(x, w, b, labels, True))


def test_non_finite_logits_give_a_nan_loss():
    x, w, b, labels = _case(5, 40, 20, 10, np.float32, False, True)
    x[3, 4] = np.inf
    got = K.linear_cross_entropy(x, w, b, labels)
    assert np.isnan(got[0])
    _assert_same(got, _unfused(x, w, b, labels, False))


def test_bad_inputs_raise_clear_errors():
    f32 = np.float32
    x, w, b, labels = _case(1, 6, 4, 3, f32, False, True)
    fn = K.linear_cross_entropy
    with pytest.raises(ValueError, match="x must be 2-D|x must have 2 dimensions|2-D"):
        fn(x[0], w, b, labels)
    with pytest.raises(ValueError, match="inner dimensions"):
        fn(x, np.ones((3, 3), f32), b, labels)
    with pytest.raises(TypeError, match="w"):
        fn(x, w.astype(np.float64), b, labels)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        fn(x, w, b[:2], labels)
    with pytest.raises(ValueError, match="out of range"):
        fn(x, w, b, np.array([0, 1, 2, 3, 0, 0]))
    with pytest.raises(ValueError, match="labels must have shape"):
        fn(x, w, b, labels[:5])
    with pytest.raises(TypeError, match="integer dtype"):
        fn(x, w, b, labels.astype(np.float32))
    with pytest.raises(ValueError, match="at least one row"):
        fn(x[:0], w, b, labels[:0])
    with pytest.raises(ValueError, match="contiguous"):
        fn(np.asfortranarray(x), w, b, labels)
    with pytest.raises(ValueError, match="input_grad_out= given with input_grad=False"):
        fn(x, w, b, labels, input_grad=False, input_grad_out=np.empty((6, 4), f32))
    with pytest.raises(ValueError, match="logits_out"):
        fn(x, w, b, labels, logits_out=np.empty((6, 4), f32))
    with pytest.raises(ValueError, match="overlap"):
        z = np.empty((6, 3), f32)
        fn(x, w, b, labels, logits_out=z, grad_out=z)


@pytest.mark.parametrize("n, k, c", [(40, 16, 129), (20, 8, 300), (40, 5000, 10)])
def test_first_call_on_a_new_thread(n, k, c):
    """A new thread starts with an empty packing arena: the kernel's scratch
    and the GEMM it calls in between (for the logits when its own kernel does
    not apply: K = 5000 is two K blocks, on two threads each with its own B
    panel) must not hold on to memory the other has reallocated (the
    sanitizer run sees a use after free if they do)."""
    import threading

    before = K.get_num_threads()
    K.set_num_threads(2)
    try:
        _on_a_new_thread(n, k, c, threading)
    finally:
        K.set_num_threads(before)


def _on_a_new_thread(n, k, c, threading):
    x, w, b, labels = _case(n + k + c, n, k, c, np.float32, True, True)
    got = []
    t = threading.Thread(target=lambda: got.append(
        K.linear_cross_entropy(x, w, b, labels, relu=True)))
    t.start()
    t.join()
    _assert_same(got[0], _unfused(x, w, b, labels, True))


@pytest.mark.parametrize("fn", ["linear_cross_entropy", "softmax_cross_entropy"])
def test_labels_sharing_memory_with_an_output_are_read_first(fn):
    """Labels that are a view of an output's memory: the kernel writes the
    output before it reads the labels, so it must read a copy (it crashed)."""
    x, w, b, labels = _case(11, 8, 6, 4, np.float64, False, True)
    buf = np.zeros((8, 4))
    view = buf.view(np.int64).reshape(-1)[:8]  # contiguous: used in place, unless copied
    view[:] = labels
    if fn == "linear_cross_entropy":
        got = K.linear_cross_entropy(x, w, b, view, logits_out=buf)
        want = _unfused(x, w, b, labels, False)
    else:
        z = K.linear(x, w, b, trans_w=True)
        got = K.softmax_cross_entropy(z, view, out=buf)
        want = K.softmax_cross_entropy(z, labels)
    _assert_same(got, want)


def test_many_classes_or_a_long_weight_take_the_packed_gemm():
    """Past 64 classes, or a packed weight over 1 MiB, the unfused products
    run (same numbers): the head kernels' packed w would stay in the
    thread's arena and their narrow tiles lose to the packed GEMM there."""
    for n, k, c in [(64, 3000, 200), (20, 300_000, 2)]:
        x, w, b, labels = _case(n + k, n, k, c, np.float32, True, True)
        _assert_same(K.linear_cross_entropy(x, w, b, labels, relu=True),
                     _unfused(x, w, b, labels, True))
