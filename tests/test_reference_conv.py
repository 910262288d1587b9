"""The NumPy references of the NCHW kernels: their gradients against central
finite differences (float64), and, when PyTorch is installed, every function
against PyTorch as an independent oracle."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_array, seeds
from test_kernel_conv import conv_cases, pool_cases

from minigrad import reference_conv as R


def assert_vjp(f, x, grad, seed, eps=1e-6):
    """grad must be the gradient of sum(r * f(x)) for the r it was computed
    with: compares <grad, v> with a central difference along a random v."""
    v = random_array(seed, x.shape, np.float64)
    numeric = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert np.vdot(grad, v) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


@given(case=conv_cases(max_c=3), seed=seeds)
def test_conv2d_gradients_are_derivatives(case, seed):
    xs, ws, s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d)
    x, w = random_array(seed, xs, np.float64), random_array(seed + 1, ws, np.float64)
    b = random_array(seed + 2, ws[:1], np.float64)
    r = random_array(seed + 3, R.conv2d(x, w, **geo).shape, np.float64)
    # conv2d is linear in each argument, so a central difference is exact for
    # any step: a large one keeps the sums' rounding (divided by the step) small
    # (with 1e-6, 3x1x3x12 -> 7 channels missed rel=1e-6 by rounding alone)
    assert_vjp(lambda x_: np.sum(r * R.conv2d(x_, w, b, **geo)), x,
               R.conv2d_backward_input(r, w, xs, **geo), seed + 4, eps=1e-2)
    assert_vjp(lambda w_: np.sum(r * R.conv2d(x, w_, b, **geo)), w,
               R.conv2d_backward_weight(x, r, ws[2:], **geo), seed + 5, eps=1e-2)
    assert_vjp(lambda b_: np.sum(r * R.conv2d(x, w, b_, **geo)), b,
               R.conv2d_backward_bias(r), seed + 6, eps=1e-2)


@given(case=pool_cases(), seed=seeds, count_include_pad=st.booleans())
def test_pooling_gradients_are_derivatives(case, seed, count_include_pad):
    xs, k, s, p, d = case
    x = random_array(seed, xs, np.float64)  # distinct values: the max is differentiable
    y, idx = R.max_pool2d(x, k, s, p, d)
    r = np.where(idx >= 0, random_array(seed + 1, y.shape, np.float64), 0)
    # windows of padding only (dilation) give -inf and no gradient
    assert_vjp(lambda x_: np.sum(r * np.where(idx >= 0, R.max_pool2d(x_, k, s, p, d)[0], 0)), x,
               R.max_pool2d_backward(r, idx, xs), seed + 2)
    r = random_array(seed + 3, R.avg_pool2d(x, k, s, p).shape, np.float64)
    assert_vjp(lambda x_: np.sum(r * R.avg_pool2d(x_, k, s, p, count_include_pad)), x,
               R.avg_pool2d_backward(r, xs, k, s, p, count_include_pad), seed + 4)
    r = random_array(seed + 5, xs[:2] + (3, 2), np.float64)
    assert_vjp(lambda x_: np.sum(r * R.adaptive_avg_pool2d(x_, (3, 2))), x,
               R.adaptive_avg_pool2d_backward(r, xs), seed + 6)


@given(n=st.integers(1, 3), c=st.integers(1, 4), seed=seeds, training=st.booleans())
def test_batch_norm_gradients_are_derivatives(n, c, seed, training):
    x = random_array(seed, (n + 1, c, 3, 2), np.float64)
    w, b = random_array(seed + 1, (c,), np.float64), random_array(seed + 2, (c,), np.float64)
    rm, rv = random_array(seed + 3, (c,), np.float64), np.full(c, 1.5)

    def f(x_, w_=w, b_=b):
        return R.batch_norm(x_, w_, b_, rm, rv, training=training)[0]

    _, mean, invstd = R.batch_norm(x, w, b, rm, rv, training=training)
    r = random_array(seed + 4, x.shape, np.float64)
    dx, dw, db = R.batch_norm_backward(r, x, w, mean, invstd, training=training)
    assert_vjp(lambda x_: np.sum(r * f(x_)), x, dx, seed + 5)
    assert_vjp(lambda w_: np.sum(r * f(x, w_)), w, dw, seed + 6)
    assert_vjp(lambda b_: np.sum(r * f(x, w, b_)), b, db, seed + 7)


# ---------------------------------------------------------------- PyTorch oracle

@given(case=conv_cases(max_c=4), seed=seeds)
def test_conv2d_matches_pytorch(case, seed):
    torch = pytest.importorskip("torch")
    xs, ws, s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d)
    x, w = random_array(seed, xs, np.float64), random_array(seed + 1, ws, np.float64)
    b = random_array(seed + 2, ws[:1], np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **geo)
    g = random_array(seed + 3, tuple(ty.shape), np.float64)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(R.conv2d(x, w, b, **geo), ty.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(R.conv2d_backward_input(g, w, xs, **geo), tx.grad.numpy(),
                               atol=1e-10)
    np.testing.assert_allclose(R.conv2d_backward_weight(x, g, ws[2:], **geo),
                               tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(R.conv2d_backward_bias(g), tb.grad.numpy(), atol=1e-10)


@given(case=pool_cases(), seed=seeds, count_include_pad=st.booleans())
def test_pooling_matches_pytorch(case, seed, count_include_pad):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, k, s, p, d = case
    x = np.round(random_array(seed, xs, np.float64) * 2)  # ties: the first maximum wins
    if R.max_pool2d(x, k, s, p, d)[1].min() >= 0:  # PyTorch's index for all-padding differs
        tx = torch.tensor(x, requires_grad=True)
        ty, ti = F.max_pool2d(tx, k, s, p, d, return_indices=True)
        y, idx = R.max_pool2d(x, k, s, p, d)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(idx, ti.numpy())
        g = random_array(seed + 1, y.shape, np.float64)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(R.max_pool2d_backward(g, idx, xs), tx.grad.numpy())
    tx = torch.tensor(x, requires_grad=True)
    ty = F.avg_pool2d(tx, k, s, p, count_include_pad=count_include_pad)
    np.testing.assert_allclose(R.avg_pool2d(x, k, s, p, count_include_pad),
                               ty.detach().numpy(), atol=1e-12)
    g = random_array(seed + 2, tuple(ty.shape), np.float64)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(R.avg_pool2d_backward(g, xs, k, s, p, count_include_pad),
                               tx.grad.numpy(), atol=1e-12)
    out = (xs[2] // 2 + 1, xs[3] + 2)
    tx = torch.tensor(x, requires_grad=True)
    ty = F.adaptive_avg_pool2d(tx, out)
    np.testing.assert_allclose(R.adaptive_avg_pool2d(x, out), ty.detach().numpy(), atol=1e-12)
    g = random_array(seed + 3, tuple(ty.shape), np.float64)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(R.adaptive_avg_pool2d_backward(g, xs), tx.grad.numpy(),
                               atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (1, 2, 1, 2), (6, 5)])
def test_batch_norm_matches_pytorch(training, shape):
    torch = pytest.importorskip("torch")
    x = random_array(0, shape, np.float64) * 3 + 1
    c = shape[1]
    w, b = random_array(1, (c,), np.float64), random_array(2, (c,), np.float64)
    rm, rv = random_array(3, (c,), np.float64), np.full(c, 2.0)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.3, 1e-3)
    y, mean, invstd = R.batch_norm(x, w, b, rm, rv, training=training, momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(rm, trm.numpy(), atol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), atol=1e-12)
    g = random_array(4, shape, np.float64)
    ty.backward(torch.tensor(g))
    for got, want in zip(R.batch_norm_backward(g, x, w, mean, invstd, training=training),
                         (tx.grad, tw.grad, tb.grad), strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-10)
