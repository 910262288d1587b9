"""Bad input to the NCHW kernels is a clear ValueError or TypeError."""
import numpy as np
import pytest

from minigrad import kernels as K

f32 = np.float32


def x4(n=2, c=3, h=8, w=8, dtype=f32):
    return np.ones((n, c, h, w), dtype)


def test_conv2d_wrong_ranks():
    with pytest.raises(ValueError, match=r"x must be 4-D.*\(3, 8, 8\)"):
        K.conv2d(np.ones((3, 8, 8), f32), x4(4, 3, 3, 3))
    with pytest.raises(ValueError, match="w must be 4-D"):
        K.conv2d(x4(), np.ones((4, 3, 3), f32))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        K.conv2d(x4(), x4(4, 3, 3, 3), np.ones(3, f32))


def test_conv2d_channel_mismatch_names_both_counts():
    with pytest.raises(ValueError, match="w has 2 input channels but x has 3"):
        K.conv2d(x4(), x4(4, 2, 3, 3))
    with pytest.raises(ValueError, match="input channels"):
        K.conv2d_backward_input(x4(2, 4, 6, 6), x4(4, 2, 3, 3), (2, 3, 8, 8))


@pytest.mark.parametrize("kwargs", [dict(), dict(dilation=4), dict(stride=2)])
def test_output_smaller_than_1x1(kwargs):
    with pytest.raises(ValueError, match="smaller than 1x1"):
        K.conv2d(x4(h=2, w=8), x4(1, 3, 3 if not kwargs else 9, 3), **kwargs)
    with pytest.raises(ValueError, match="smaller than 1x1"):
        K.max_pool2d(x4(h=2), 3)


@pytest.mark.parametrize("name,value,match", [
    ("padding", -1, "padding must be >= 0"), ("stride", 0, "stride must be >= 1"),
    ("dilation", 0, "dilation must be >= 1"), ("padding", (1, -2), "padding must be >= 0"),
    ("stride", 1.5, "stride must be an int or a pair"), ("padding", (1, 2, 3), "pair of ints"),
    ("stride", True, "int or a pair"), ("padding", 1 << 40, "too large"),
])
def test_bad_window_parameters(name, value, match):
    err = TypeError if "pair" in match else ValueError
    with pytest.raises(err, match=match):
        K.conv2d(x4(), x4(4, 3, 3, 3), **{name: value})
    if name != "dilation":
        with pytest.raises(err, match=match):
            K.avg_pool2d(x4(), 2, **{name: value})


def test_empty_planes_are_rejected():
    with pytest.raises(ValueError, match="input plane is 0x8"):
        K.conv2d(x4(h=0), x4(4, 3, 1, 1), padding=1)


def test_pool_padding_at_most_half_the_kernel():
    with pytest.raises(ValueError, match="at most half the kernel"):
        K.max_pool2d(x4(), 3, padding=2)
    with pytest.raises(ValueError, match="at most half the kernel"):
        K.avg_pool2d(x4(), (2, 4), padding=(1, 3))


def test_gradient_shapes_are_checked():
    g = np.ones((2, 4, 6, 6), f32)
    with pytest.raises(ValueError, match=r"grad_out has shape \(2, 4, 6, 6\), expected"):
        K.conv2d_backward_input(g, x4(4, 3, 3, 3), (2, 3, 9, 9))
    with pytest.raises(ValueError, match="grad_out has shape"):
        K.conv2d_backward_weight(x4(), g, 2)
    with pytest.raises(ValueError, match="input_shape must be 4"):
        K.conv2d_backward_input(g, x4(4, 3, 3, 3), (3, 8, 8))
    with pytest.raises(ValueError, match="accumulate=True needs out="):
        K.conv2d_backward_weight(x4(), g, 3, accumulate=True)


def test_max_pool_indices_are_validated():
    y, idx = K.max_pool2d(x4(), 2)
    with pytest.raises(TypeError, match="int64"):
        K.max_pool2d_backward(y, idx.astype(np.int32), (2, 3, 8, 8))
    bad = idx.copy()
    bad[0, 0, 0, 0] = 64
    with pytest.raises(ValueError, match=r"indices must lie in \[-1, 64\)"):
        K.max_pool2d_backward(y, bad, (2, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in N or C"):
        K.max_pool2d_backward(y, idx, (2, 4, 8, 8))


def test_dtypes_and_layout():
    with pytest.raises(TypeError, match="one dtype"):
        K.conv2d(x4(), x4(4, 3, 3, 3, np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        K.max_pool2d(x4().astype(np.int32), 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.conv2d(np.ones((2, 8, 8, 3), f32).transpose(0, 3, 1, 2), x4(4, 3, 3, 3))
    x = x4()
    with pytest.raises(ValueError, match="overlaps"):
        K.avg_pool2d(x, 1, out=x)


def test_batch_norm_inputs():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        K.batch_norm(x4(1, 3, 1, 1))
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        K.batch_norm(x4(), training=False)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        K.batch_norm(x4(), np.ones(4, f32))
    with pytest.raises(ValueError, match="4-D .* or 2-D"):
        K.batch_norm(np.ones((2, 3, 4), f32))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        K.batch_norm(x4(), eps=-1.0)
    ro = np.zeros(3, f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean is read-only"):
        K.batch_norm(x4(), running_mean=ro)
    with pytest.raises(ValueError, match="x has shape"):
        K.batch_norm_backward(x4(), x4(h=4), None, np.zeros(3, f32), np.ones(3, f32))
