"""uint8 GEMM operands converted (byte / scale) while packing: the product
equals the kernel's product of the converted float array bit for bit on every
SIMD path and thread count, for every layout and GEMM path (few rows, swapped,
direct, packed), and is close to the NumPy reference; bad arguments raise."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_matmul_close, dims, random_array, seeds

from minigrad import kernels as K
from minigrad import reference as R

# 255 and 127.5: x * (1 / s) differs from x / s for 126 of the 256 bytes
scales = st.one_of(st.sampled_from([255.0, 127.5, 3.0, 1.0, 0.5, 256.0]),
                   st.floats(2.0 ** -100, 2.0 ** 100))


def _bytes(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@given(m=dims(1, 300), k=dims(0, 800), n=dims(1, 300), seed=seeds, scale=scales,
       relu=st.booleans(), bias=st.booleans())
def test_linear_uint8_x_equals_float_x(simd, threads, dtype, m, k, n, seed, scale, relu, bias):
    """The forward x @ W.T + b of a first layer fed bytes."""
    x = _bytes(seed, (m, k))
    w = random_array(seed + 1, (n, k), dtype)
    b = random_array(seed + 2, n, dtype) if bias else None
    xf = R.from_uint8(x, scale, dtype)
    got = K.linear(x, w, b, relu=relu, trans_w=True, scale=scale)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, K.linear(xf, w, b, relu=relu, trans_w=True))
    want = R.linear(xf, w, b, relu=relu, trans_w=True)
    bound = np.abs(xf).astype(np.float64) @ np.abs(w.T) + (np.abs(b) if bias else 0)
    assert_matmul_close(got, want, bound, k + 1, dtype)


@given(m=dims(1, 200), k=dims(1, 300), n=dims(1, 900), seed=seeds, scale=scales,
       trans_a=st.booleans(), trans_b=st.booleans(), which=st.sampled_from("ab"),
       accumulate=st.booleans())
def test_matmul_uint8_operand_equals_float(simd, threads, dtype, m, k, n, seed, scale,
                                           trans_a, trans_b, which, accumulate):
    """Either operand bytes, stored either way round: the weight gradient
    dz.T @ x (x the B operand), swapped products of few rows, packed blocks."""
    shape_a = (k, m) if trans_a else (m, k)
    shape_b = (n, k) if trans_b else (k, n)
    if which == "a":
        a, b = _bytes(seed, shape_a), random_array(seed + 1, shape_b, dtype)
        af, bf = R.from_uint8(a, scale, dtype), b
    else:
        a, b = random_array(seed, shape_a, dtype), _bytes(seed + 1, shape_b)
        af, bf = a, R.from_uint8(b, scale, dtype)
    out0 = random_array(seed + 2, (m, n), dtype)
    out1, out2 = out0.copy(), out0.copy()
    K.matmul(a, b, trans_a=trans_a, trans_b=trans_b, scale=scale, out=out1,
             accumulate=accumulate)
    K.matmul(af, bf, trans_a=trans_a, trans_b=trans_b, out=out2, accumulate=accumulate)
    np.testing.assert_array_equal(out1, out2)
    want = R.matmul(af, bf, trans_a=trans_a, trans_b=trans_b) + (out0 if accumulate else 0)
    bound = np.abs(R._op(af, trans_a)).astype(np.float64) @ np.abs(R._op(bf, trans_b)) + (
        np.abs(out0) if accumulate else 0)
    assert_matmul_close(out1, want, bound, k + 1, dtype)


@pytest.mark.parametrize("shape", [(256, 128, 784), (64, 128, 784), (10, 128, 784),
                                   (256, 30, 784), (64, 10, 128)])
def test_chapter_shapes_bit_identical(simd, threads, dtype, shape):
    """The compiled step's two products on the chapter's shapes: forward
    x @ W1.T (direct and few-rows paths) and dW1 = dz.T @ x (packed, swapped)."""
    m, n, k = shape  # batch, outputs, inputs
    x = _bytes(0, (m, k))
    w = random_array(1, (n, k), dtype)
    xf = R.from_uint8(x, 255, dtype)
    np.testing.assert_array_equal(K.linear(x, w, relu=True, trans_w=True, scale=255),
                                  K.linear(xf, w, relu=True, trans_w=True))
    dz = random_array(2, (m, n), dtype)
    np.testing.assert_array_equal(K.matmul(dz, x, trans_a=True, scale=255),
                                  K.matmul(dz, xf, trans_a=True))


def test_every_byte_converts_exactly(simd, dtype):
    """All 256 byte values through one column of the product: x / s exactly,
    including the scales where multiplying by 1 / s rounds differently."""
    x = np.arange(256, dtype=np.uint8).reshape(256, 1)
    one = np.ones((1, 1), dtype)
    for scale in (255.0, 127.5, 100.0, 7.0, 3.0, 2.0 ** -100, 2.0 ** 100):
        np.testing.assert_array_equal(K.matmul(x, one, scale=scale),
                                      R.from_uint8(x, scale, dtype))


def test_bad_uint8_arguments_raise():
    x = _bytes(0, (4, 6))
    w = np.ones((6, 3), np.float32)
    with pytest.raises(TypeError, match="x is uint8: pass scale="):
        K.linear(x, w)
    with pytest.raises(TypeError, match="scale= applies to a uint8 operand"):
        K.matmul(w.T.copy(), w, scale=255)
    with pytest.raises(TypeError, match="both uint8"):
        K.matmul(x, _bytes(1, (6, 2)), scale=255)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.matmul(_bytes(2, (6, 4)).T, w, scale=255)
    for bad in (0.0, -1.0, float("nan"), float("inf"), 2.0 ** 101):
        with pytest.raises(ValueError, match="scale must lie in"):
            K.linear(x, w, scale=bad)
    with pytest.raises(TypeError, match="scale must be a number"):
        K.linear(x, w, scale="255")
    with pytest.raises(TypeError, match="float32 or float64"):
        K.matmul(x, w.astype(np.int32), scale=255)
    with pytest.raises(ValueError, match="shapes do not match"):
        K.matmul(x, w[:5], scale=255)
