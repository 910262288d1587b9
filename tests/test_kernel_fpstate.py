"""Kernels run with flush-to-zero / denormals-are-zero in their own threads
and leave the caller's floating-point state as it was."""
import numpy as np
import pytest

from minigrad import kernels as K

TINY = np.float32(1e-39)  # subnormal in float32


def _calls():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000).astype(np.float32)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    z = rng.standard_normal((500, 10)).astype(np.float32)
    return {
        "matmul": lambda: K.matmul(a, a.T), "relu": lambda: K.relu(x),
        "gelu": lambda: K.gelu(x), "softmax": lambda: K.softmax(z),
        "bias_grad": lambda: K.bias_grad(a),
        "softmax_cross_entropy": lambda: K.softmax_cross_entropy(z, np.zeros(500, np.int64)),
        "linear_cross_entropy": lambda: K.linear_cross_entropy(
            a, np.ones((10, 200), np.float32), None, np.zeros(300, np.int64), relu=True),
        "sgd_step": lambda: K.sgd_step(x.copy(), x, 0.1),
        "adam_step": lambda: K.adam_step(x.copy(), x, np.zeros_like(x), np.zeros_like(x), 1,
                                         0.1),
    }


MXCSR_FLAGS = 0x3F  # IE DE ZE OE UE PE


def _subnormals_survive():
    return np.float32(TINY * np.float32(0.5)) != 0


@pytest.mark.parametrize("name", sorted(_calls()))
def test_caller_fp_state_is_unchanged(threads, name):
    # the control bits (FTZ, DAZ, rounding, exception masks); the six sticky
    # status flags below them are raised and cleared by any float code, NumPy's
    # included, so whether one is up here depends on the tests run before
    before = K._mxcsr() & ~MXCSR_FLAGS
    assert _subnormals_survive()
    _calls()[name]()
    assert K._mxcsr() & ~MXCSR_FLAGS == before
    assert _subnormals_survive()  # numpy here still computes subnormals


@pytest.mark.parametrize("n", [1000, 200_000])
def test_subnormal_velocity_is_flushed(simd, threads, n):
    p = np.ones(n, np.float32)
    v = np.full(n, TINY, np.float32)
    K.sgd_step(p, np.zeros(n, np.float32), 1.0, momentum=0.9, velocity=v)
    # 0.9 * 1e-39 would be a subnormal; with denormals-are-zero the input is 0
    np.testing.assert_array_equal(v, 0)
    np.testing.assert_array_equal(p, 1)


def test_subnormal_inputs_count_as_zero(simd):
    y = np.full(10, TINY * 4, np.float32)
    ones = np.ones_like(y)
    np.testing.assert_array_equal(K.sigmoid_backward(ones, y), 0)
    assert np.all(ones * y * (1 - y) > 0)  # numpy outside a kernel keeps them
