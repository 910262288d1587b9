"""The GEMM's cache blocking (chosen from CPUID, forceable for tests), its
thread split (micro-tiles dealt to the threads) and its packing buffers (a
per-thread arena): results against the reference under blockings small
enough to cut every test shape into many blocks, for 1-3 threads, bit-identical
for any thread count; and the inference fast path of the layers."""
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_matmul_close, dims, random_array, seeds

import minigrad as mg
from minigrad import _kernels, nn
from minigrad import kernels as K
from minigrad import reference as R

# (mc, kc, nc): below the micro-tile (rounded up to it), odd, and tiny K blocks
BLOCKINGS = [(1, 1, 1), (24, 7, 40), (13, 33, 70), (36, 64, 96)]


@pytest.fixture(params=BLOCKINGS, ids=lambda b: "x".join(map(str, b)))
def blocking(request):
    """Forces a blocking for both dtypes; restores the CPUID choice after."""
    _kernels._set_gemm_blocking(*request.param)
    yield request.param
    _kernels._set_gemm_blocking()


@pytest.fixture(params=[None, True, False], ids=["swap-auto", "swap", "no-swap"])
def swap(request):
    """Few rows and many columns: computed as C.T = B.T A.T or not."""
    _kernels._set_gemm_swap(request.param)
    yield request.param
    _kernels._set_gemm_swap()


@pytest.fixture(params=[1, 2, 3])
def threads3(request):
    before = K.get_num_threads()
    K.set_num_threads(request.param)
    yield request.param
    K.set_num_threads(before)


def test_blocking_is_chosen_and_can_be_forced_and_restored(dtype):
    chosen = _kernels._gemm_blocking(dtype)
    assert len(chosen) == 3 and all(isinstance(v, int) and v > 0 for v in chosen)
    try:
        _kernels._set_gemm_blocking(24, 0, 100, dtype=dtype)
        assert _kernels._gemm_blocking(dtype) == (24, chosen[1], 100)
    finally:
        _kernels._set_gemm_blocking(dtype=dtype)
    assert _kernels._gemm_blocking(dtype) == chosen


def test_blocking_rejects_bad_arguments():
    with pytest.raises(ValueError, match="must be >= 0"):
        _kernels._set_gemm_blocking(-1)
    with pytest.raises(ValueError, match="float32 or float64"):
        _kernels._gemm_blocking("int32")


def _operand(seed, shape, dtype, trans):
    stored = shape[::-1] if trans else shape
    return random_array(seed, stored, dtype)


@given(m=dims(1, 130), k=dims(1, 150), n=dims(1, 170), seed=seeds, trans_a=st.booleans(),
       trans_b=st.booleans(), accumulate=st.booleans())
def test_matmul_matches_reference_under_forced_blocking(blocking, swap, threads3, dtype, m, k,
                                                        n, seed, trans_a, trans_b, accumulate):
    a = _operand(seed, (m, k), dtype, trans_a)
    b = _operand(seed + 1, (k, n), dtype, trans_b)
    start = random_array(seed + 2, (m, n), dtype)
    out = start.copy()
    got = K.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, accumulate=accumulate)
    want = R.matmul(a, b, trans_a=trans_a, trans_b=trans_b) + (start if accumulate else 0)
    bound = np.abs(R._op(a, trans_a)).astype(np.float64) @ np.abs(R._op(b, trans_b))
    assert_matmul_close(got, want, bound + (np.abs(start) if accumulate else 0), k + 1, dtype)


@given(m=dims(1, 100), k=dims(1, 120), n=dims(1, 150), seed=seeds, relu=st.booleans())
def test_linear_bias_relu_apply_once_across_k_blocks(blocking, threads3, dtype, m, k, n, seed,
                                                     relu):
    """Bias and ReLU belong to the last K block only, whatever the blocking."""
    x = random_array(seed, (m, k), dtype)
    w = random_array(seed + 1, (n, k), dtype)
    b = random_array(seed + 2, n, dtype)
    got = K.linear(x, w, b, relu=relu, trans_w=True)
    want = R.linear(x, w, b, relu=relu, trans_w=True)
    bound = np.abs(x).astype(np.float64) @ np.abs(w.T) + np.abs(b)
    assert_matmul_close(got, want, bound, k + 1, dtype)


# the chapter's products and shapes that take each path: packed (several M, N
# and K blocks), A read in place (N <= 4 slivers), C.T = B.T A.T (few rows,
# with the swap fixture)
SHAPES = [
    ("dW", (128, 256, 784), True, False),
    ("dW hidden 30", (30, 256, 784), True, False),
    ("dX", (256, 128, 784), False, False),
    ("forward", (256, 784, 128), False, True),
    ("forward, batch 64", (64, 784, 128), False, True),
    ("forward, hidden 30", (64, 784, 30), False, True),
    # A in place, K in two blocks of unequal length (beyond MG_KC_DIRECT)
    ("long K", (256, 5001, 64), True, False),
    ("odd", (131, 517, 263), True, True),
    ("few columns", (301, 400, 70), False, False),
]


@pytest.mark.parametrize("label,shape,ta,tb", SHAPES, ids=[s[0] for s in SHAPES])
# (36, 64, 64): more than one column panel where threads split the column slivers
@pytest.mark.parametrize("forced", [None, (24, 100, 200), (36, 64, 64)])
def test_gemm_bit_identical_for_1_2_3_threads(swap, label, shape, ta, tb, forced):
    m, k, n = shape
    a = _operand(0, (m, k), np.float32, ta)
    b = _operand(1, (k, n), np.float32, tb)
    before = K.get_num_threads()
    try:
        if forced:
            _kernels._set_gemm_blocking(*forced)
        results = []
        for t in (1, 2, 3):
            K.set_num_threads(t)
            results.append(K.matmul(a, b, trans_a=ta, trans_b=tb))
    finally:
        K.set_num_threads(before)
        _kernels._set_gemm_blocking()
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_column_split_with_a_shorter_last_k_block_is_race_free():
    """Two threads each computing their own column slivers with A read in
    place and K in blocks of 2501 and 2500: without the barrier before the
    shorter block, one thread repacked slivers the other was still reading
    (30 of 200 products differed from one thread's)."""
    a = random_array(0, (5001, 256), np.float32)
    b = random_array(1, (5001, 64), np.float32)
    before = K.get_num_threads()
    try:
        K.set_num_threads(1)
        want = K.matmul(a, b, trans_a=True)
        for t in (2, 3) * 20:
            K.set_num_threads(t)
            np.testing.assert_array_equal(K.matmul(a, b, trans_a=True), want)
    finally:
        K.set_num_threads(before)


def test_blocking_changes_only_rounding():
    """A different K blocking sums in another order: close, not equal, results."""
    a = random_array(0, (200, 1000), np.float32)
    b = random_array(1, (1000, 300), np.float32)
    default = K.matmul(a, b)
    try:
        _kernels._set_gemm_blocking(kc=100)
        other = K.matmul(a, b)
    finally:
        _kernels._set_gemm_blocking()
    bound = np.abs(a).astype(np.float64) @ np.abs(b)
    assert_matmul_close(other, R.matmul(a, b), bound, 1000, np.float32)
    assert not np.array_equal(default, other)


def test_packing_arena_grows_and_serves_concurrent_threads():
    """Each calling thread packs into its own persistent buffer: growing it
    (small, large, small again) and running GEMMs from several Python threads
    at once keeps every result right."""
    shapes = [(20, 30, 40), (300, 700, 500), (50, 60, 70), (129, 257, 65)]
    ops = []
    for i, (m, k, n) in enumerate(shapes):
        a = random_array(i, (m, k), np.float32)
        b = random_array(i + 10, (k, n), np.float32)
        ops.append((a, b, R.matmul(a, b), np.abs(a).astype(np.float64) @ np.abs(b), k))
    for a, b, want, bound, k in ops:
        assert_matmul_close(K.matmul(a, b), want, bound, k, np.float32)
    errors = []

    def worker(seed):
        order = np.random.default_rng(seed).permutation(len(ops))
        for _ in range(5):
            for j in order:
                a, b, want, bound, k = ops[j]
                got = K.matmul(a, b)
                if not np.allclose(got, want, rtol=1e-4, atol=1e-4 * bound.max()):
                    errors.append((seed, j))
    pool = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 3, 16, 40])
def test_layers_under_no_grad_give_the_graph_paths_values(bias, rows):
    """The inference fast path of Linear and the fused Linear+ReLU returns what
    the recording path returns, records nothing, and keeps the checks."""
    mg.manual_seed(0)
    net = nn.Sequential(nn.Linear(50, 20, bias=bias), nn.ReLU(), nn.Linear(20, 3, bias=bias))
    x = mg.randn(rows, 50)
    with_graph = net(x)
    assert with_graph.grad_fn is not None
    with mg.no_grad():
        fast = net(x)
        plain = net[0](x)
    assert fast.grad_fn is None and not fast.requires_grad
    assert plain.grad_fn is None and not plain.requires_grad
    np.testing.assert_array_equal(fast.numpy(), with_graph.numpy())
    np.testing.assert_array_equal(plain.numpy(), mg.nn.functional.linear(
        x, net[0].weight, net[0].bias).numpy())
    with mg.no_grad(), pytest.raises(TypeError, match="dtype"):
        net(mg.randn(rows, 50, dtype=np.float64))
    with mg.no_grad(), pytest.raises(ValueError, match="inner dimensions"):
        net(mg.randn(rows, 49))
