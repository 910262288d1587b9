"""Bad input to any kernel is a clear Python exception, never a crash or a
silently wrong answer."""
import numpy as np
import pytest

from minigrad import kernels as K

f32 = np.float32


def a2(m=4, n=5, dtype=f32):
    return np.ones((m, n), dtype)


def test_matmul_mismatched_shapes_names_both():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(6, 3\)"):
        K.matmul(a2(4, 5), a2(6, 3))
    with pytest.raises(ValueError, match="inner dimensions"):
        K.matmul(a2(4, 5), a2(4, 3), trans_b=True)


@pytest.mark.parametrize("bad", [np.ones(5, f32), np.ones((2, 2, 2), f32), np.array(1.0, f32)])
def test_matmul_wrong_ndim(bad):
    with pytest.raises(ValueError, match="2-D"):
        K.matmul(bad, a2())


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.complex64, object, bool])
def test_non_float_dtypes_are_type_errors(dtype):
    x = np.ones((3, 3), dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.matmul(x, x)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.relu(x)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.sigmoid(x)


def test_mixed_dtypes_are_type_errors():
    with pytest.raises(TypeError, match="one dtype"):
        K.matmul(a2(), a2(5, 3, np.float64))
    with pytest.raises(TypeError, match="one dtype"):
        K.relu_backward(np.ones(3, f32), np.ones(3))
    with pytest.raises(TypeError, match="one dtype"):
        K.relu(np.ones(3, f32), out=np.ones(3))


def test_non_arrays_are_type_errors():
    with pytest.raises(TypeError, match="numpy.ndarray"):
        K.matmul([[1.0]], [[1.0]])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        K.relu(3.0)


def test_byteswapped_input_is_rejected():
    x = np.ones(4, dtype=">f4")
    with pytest.raises(TypeError, match="byte order"):
        K.relu(x)


def test_misaligned_input_is_rejected():
    buf = np.zeros(4 * 10 + 1, np.uint8)
    x = buf[1:].view(f32)
    with pytest.raises(ValueError, match="aligned"):
        K.relu(x)


def test_elementwise_requires_c_contiguous():
    x = np.ones((4, 6), f32)[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        K.relu(x)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.sgd_step(np.ones((4, 6), f32).T, np.ones((6, 4), f32), 0.1)


def test_matmul_takes_any_strides_without_copy():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((9, 12)).astype(f32)
    a = base[::-2, 1::3]  # negative and non-unit strides
    b = np.broadcast_to(rng.standard_normal((1, 5)).astype(f32), (4, 5))  # zero stride
    np.testing.assert_allclose(K.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["shape", "dtype", "readonly", "noncontig"])
def test_bad_out_is_rejected(case):
    a, b = a2(4, 5), a2(5, 3)
    out = {
        "shape": np.empty((3, 4), f32),
        "dtype": np.empty((4, 3), np.float64),
        "readonly": np.empty((4, 3), f32),
        "noncontig": np.empty((4, 6), f32)[:, ::2],
    }[case]
    if case == "readonly":
        out.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        K.matmul(a, b, out=out)


def test_out_overlapping_an_input_is_rejected():
    buf = np.ones(32, f32)
    a = buf[:16].reshape(4, 4)
    with pytest.raises(ValueError, match="overlaps"):
        K.matmul(a, a, out=buf[8:24].reshape(4, 4))
    with pytest.raises(ValueError, match="overlaps"):
        K.matmul(a, a, out=a)
    x = np.ones(10, f32)
    with pytest.raises(ValueError, match="overlaps"):
        K.relu(x[:8], out=x[2:])
    # exactly the same array is allowed: in place
    assert K.relu(x, out=x) is x


def test_accumulate_needs_out():
    with pytest.raises(ValueError, match="accumulate"):
        K.matmul(a2(), a2(5, 3), accumulate=True)


def test_linear_bias_shape_is_checked():
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        K.linear(a2(4, 5), a2(5, 3), np.ones(4, f32))


def test_loss_shape_and_dtype_checks():
    with pytest.raises(ValueError, match="must match"):
        K.mnist_loss(np.ones(4, f32), np.ones(5, f32))
    with pytest.raises(TypeError, match="one dtype"):
        K.bce_with_logits(np.ones(4, f32), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        K.mnist_loss(np.ones(0, f32), np.ones(0, f32))


@pytest.mark.parametrize("labels", [np.array([0, 3]), np.array([-1, 0]),
                                    np.array([0, 2**40]), np.array([0, 2**63], np.uint64)])
def test_softmax_label_out_of_range(labels):
    with pytest.raises(ValueError, match="range"):
        K.softmax_cross_entropy(np.zeros((2, 3), f32), labels)


def test_softmax_label_checks():
    z = np.zeros((2, 3), f32)
    with pytest.raises(TypeError, match="integer"):
        K.softmax_cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        K.softmax_cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="at least one"):
        K.softmax_cross_entropy(np.zeros((2, 0), f32), np.array([0, 0]))
    # any integer dtype is accepted
    loss, _ = K.softmax_cross_entropy(z, np.array([0, 2], np.uint8))
    assert loss == pytest.approx(np.log(3))


def test_sgd_step_checks():
    p, g = np.ones(4, f32), np.ones(4, f32)
    with pytest.raises(ValueError, match="velocity"):
        K.sgd_step(p, g, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="lr"):
        K.sgd_step(p, g, float("nan"))
    with pytest.raises(ValueError, match="lr"):
        K.sgd_step(p, g, -1.0)
    with pytest.raises(ValueError, match="overlaps"):
        K.sgd_step(p, p, 0.1)
    ro = np.ones(4, f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        K.sgd_step(ro, g, 0.1)
    np.testing.assert_array_equal(p, 1)  # nothing was changed by the failed calls


def test_huge_shapes_fail_cleanly():
    big = np.broadcast_to(np.ones(1, f32), (2**40, 2**20))  # 2**60 elements, no memory
    with pytest.raises(MemoryError):
        K.matmul(big, big.T[:, :1])  # the (2**40, 1) output cannot be allocated


def test_thread_and_simd_settings_are_checked():
    with pytest.raises(ValueError):
        K.set_num_threads(0)
    with pytest.raises(ValueError, match="unknown"):
        K.set_simd_path("sse9")


def test_row_kernels_need_2d_c_contiguous_input():
    with pytest.raises(ValueError, match="2-D"):
        K.softmax(np.ones(5, f32))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.log_softmax(np.ones((4, 6), f32)[:, ::2])
    with pytest.raises(ValueError, match="must match"):
        K.softmax_backward(np.ones((2, 3), f32), np.ones((3, 2), f32))


def test_kernel_ids_are_checked():
    from minigrad import _kernels

    relu = next(i for i, _, name, _, _ in _kernels.catalog() if name == "relu")
    with pytest.raises(ValueError, match="no unary kernel"):
        _kernels.unary(10_000, np.ones(3, f32))
    with pytest.raises(ValueError, match="no binary kernel"):
        _kernels.binary(relu, np.ones(3, f32), np.ones(3, f32))
