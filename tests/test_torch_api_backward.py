"""backward() frees what operations saved for it, as PyTorch's does: a second
backward() through those operations raises RuntimeError unless the first had
``retain_graph=True`` (then gradients accumulate); operations that save no
tensor (add, reshape, sum, mean...) can be walked again, also as in PyTorch."""
import gc
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F

SECOND_TIME = "backward through the graph a second time.*retain_graph=True"


def _functional(x):
    """minigrad's or PyTorch's functional namespace, after the tensor's kind."""
    if isinstance(x, mg.Tensor):
        return F
    import torch.nn.functional
    return torch.nn.functional


# graphs whose nodes save tensors in PyTorch and in minigrad: a second backward fails
SAVING = {
    "mul": lambda x: (x * x).sum(), "mul_scalar": lambda x: (x * 2).sum(),
    "div_scalar": lambda x: (x / 2).sum(), "exp": lambda x: x.exp().sum(),
    "relu": lambda x: x.relu().sum(), "sigmoid": lambda x: x.sigmoid().sum(),
    "pow": lambda x: (x ** 2).sum(), "abs": lambda x: x.abs().sum(),
    "matmul": lambda x: (x.T @ x).sum(), "amax": lambda x: x.amax(),
    "softmax": lambda x: x.softmax(1).sum(), "log_softmax": lambda x: x.log_softmax(1).sum(),
    "var": lambda x: x.var(), "std": lambda x: x.std(),
    "linear": lambda x: _functional(x).linear(x, x.detach()).sum(),
}
# graphs of operations that save no tensor: backward() can go through them again
NOT_SAVING = {
    "add": lambda x: (x + 1).sum(), "sub": lambda x: (x - x).sum(), "neg": lambda x: (-x).sum(),
    "reshape": lambda x: x.reshape(-1).sum(), "mean": lambda x: x.mean(),
    "index": lambda x: x[0].sum(), "clone": lambda x: x.clone().sum(),
    "flip": lambda x: x.flip(0).sum(), "cast": lambda x: x.double().sum(),
}
X = np.array([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]])


def _fresh():
    return mg.tensor(X, requires_grad=True)


@pytest.mark.parametrize("name", sorted(SAVING))
def test_a_second_backward_raises_and_retain_graph_allows_it(name):
    x = _fresh()
    loss = SAVING[name](x)
    loss.backward()
    once = x.grad.numpy().copy()
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        loss.backward()

    x = _fresh()
    loss = SAVING[name](x)
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * once, rtol=1e-12)
    loss.backward()  # the graph is still there; this call frees it
    np.testing.assert_allclose(x.grad.numpy(), 3 * once, rtol=1e-12)
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        loss.backward()


@pytest.mark.parametrize("name", sorted(NOT_SAVING))
def test_a_graph_that_saves_nothing_can_be_walked_again(name):
    x = _fresh()
    loss = NOT_SAVING[name](x)
    loss.backward()
    once = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * once)


def test_another_root_through_a_freed_node_raises():
    x = _fresh()
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        (y * 2).sum().backward()
    z = x.exp()
    z.sum().backward(retain_graph=True)
    (z * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp(X), rtol=1e-12)


def test_only_the_nodes_a_backward_went_through_are_freed():
    x = _fresh()
    y = x + 1  # saves nothing
    a, b = y.exp(), y.sigmoid()
    a.sum().backward()
    b.sum().backward()  # sigmoid's node was not on the first path
    s = 1 / (1 + np.exp(-(X + 1)))
    np.testing.assert_allclose(x.grad.numpy(), np.exp(X + 1) + s * (1 - s), rtol=1e-12)
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        b.sum().backward()


def test_backward_frees_the_saved_tensors():
    x = _fresh()
    hidden = x * 3
    probe = weakref.ref(hidden)
    loss = (hidden * hidden).sum()  # mul saves hidden
    del hidden
    gc.collect()
    assert probe() is not None
    loss.backward()
    gc.collect()
    assert probe() is None

    x = _fresh()
    hidden = x * 3
    probe = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    loss.backward(retain_graph=True)
    gc.collect()
    assert probe() is not None  # kept for the next backward()


@pytest.mark.parametrize("name", sorted(SAVING) + sorted(NOT_SAVING))
def test_against_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    fn = {**SAVING, **NOT_SAVING}[name]
    outcomes = []
    for x in (_fresh(), torch.tensor(X, requires_grad=True)):
        loss = fn(x)
        loss.backward()
        try:
            loss.backward()
            outcomes.append("ok")
        except RuntimeError as e:
            assert "backward through the graph a second time" in str(e)
            outcomes.append("error")
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == ("error" if name in SAVING else "ok")
