"""nn.Linear and F.linear (and the fused Linear+ReLU) on inputs of shape (in,)
and (..., in), as PyTorch's: values and gradients against NumPy, finite
differences and PyTorch (when installed)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

SHAPES = [(5,), (3, 5), (2, 3, 5), (2, 1, 3, 5), (0, 5), (2, 0, 5)]


def _numpy_linear(X, W, b, relu):
    Y = X @ W.T + b
    return np.maximum(Y, 0) if relu else Y


def _run(shape, relu, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape).astype(dtype)
    W = rng.standard_normal((4, 5)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    G = rng.standard_normal((*shape[:-1], 4)).astype(dtype)
    x, w, bias = (mg.tensor(a, requires_grad=True) for a in (X, W, b))
    y = (F.linear_relu if relu else F.linear)(x, w, bias)
    y.backward(mg.tensor(G))
    return (X, W, b, G), y, (x.grad, w.grad, bias.grad)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_values_and_gradients_against_numpy(shape, relu):
    (X, W, b, G), y, (dx, dw, db) = _run(shape, relu)
    Y = _numpy_linear(X, W, b, relu)
    assert y.shape == Y.shape == (*shape[:-1], 4)
    np.testing.assert_allclose(y.numpy(), Y, rtol=1e-12, atol=1e-12)
    Gz = G * (Y > 0) if relu else G
    rows = Gz.reshape(-1, 4)
    np.testing.assert_allclose(dx.numpy(), Gz @ W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw.numpy(), rows.T @ X.reshape(-1, 5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db.numpy(), rows.sum(0), rtol=1e-12, atol=1e-12)
    assert dx.shape == shape and dw.shape == (4, 5) and db.shape == (4,)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5)])
def test_gradcheck_on_one_and_three_dims(shape):
    rng = np.random.default_rng(2)
    x, w, b = (mg.tensor(rng.standard_normal(s), requires_grad=True)
               for s in (shape, (4, 5), (4,)))
    assert mg.gradcheck(F.linear, [x, w, b])
    assert mg.gradcheck(lambda x, w: F.linear(x, w), [x, w])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_on_a_single_sample_equals_the_batch_of_one(dtype):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4, dtype=dtype), nn.ReLU(),
                          nn.Linear(4, 3, dtype=dtype))
    x = mg.randn(5, dtype=dtype)
    one = model(x)
    assert one.shape == (3,) and one.dtype == dtype
    np.testing.assert_array_equal(one.numpy(), model(x.reshape(1, 5)).numpy()[0])
    batch = mg.randn(2, 6, 5, dtype=dtype)
    np.testing.assert_allclose(model(batch).numpy(),
                               model(batch.reshape(12, 5)).numpy().reshape(2, 6, 3),
                               rtol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
def test_inference_without_a_graph_takes_the_same_shapes(fused):
    """Under no_grad the layers call the kernel directly: on (in,) and
    (..., in) too, with the values of the graph path."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    if fused:
        model = model.fuse()
    for shape in [(5,), (2, 6, 5), (7, 5)]:
        x = mg.randn(*shape)
        with mg.no_grad():
            fast = model(x)
            direct = F.linear_relu(x, model[0].weight, model[0].bias) if fused else None
        assert fast.shape == (*shape[:-1], 3) and not fast.requires_grad
        np.testing.assert_array_equal(fast.numpy(), model(x).numpy())
        if fused:
            np.testing.assert_array_equal(direct.numpy(), F.linear_relu(
                x, model[0].weight, model[0].bias).numpy())


def test_a_zero_dim_input_is_refused():
    with pytest.raises(RuntimeError, match="at least one dimension"):
        F.linear(mg.tensor(1.0), mg.ones(2, 1))
    with pytest.raises(ValueError, match="shapes do not match"):
        F.linear(mg.ones(3), mg.ones(2, 4))


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (2, 2, 3, 5)])
@pytest.mark.parametrize("relu", [False, True])
def test_against_pytorch(shape, relu):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    mg.manual_seed(1)
    ours = nn.Sequential(nn.Linear(5, 4), *([nn.ReLU()] if relu else []))
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), *([torch.nn.ReLU()] if relu else []))
    with torch.no_grad():
        theirs[0].weight.copy_(torch.from_numpy(ours[0].weight.numpy()))
        theirs[0].bias.copy_(torch.from_numpy(ours[0].bias.numpy()))
    X = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    x, tx = mg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[0].weight.grad.numpy(), theirs[0].weight.grad.numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[0].bias.grad.numpy(), theirs[0].bias.grad.numpy(),
                               rtol=1e-5, atol=1e-5)
