"""Gradients of every Tensor operation against central finite differences
(float64), over generated shapes including broadcasting, and composed graphs."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad import reference as R
from minigrad.nn import functional as F

small = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)


def t64(rng, shape, positive=False, requires_grad=True):
    a = rng.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return mg.tensor(a, dtype=np.float64, requires_grad=requires_grad)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together: dims dropped or set to 1 on either side."""
    shape = draw(st.lists(small, min_size=1, max_size=3))
    def variant():
        s = [1 if draw(st.booleans()) else n for n in shape]
        return tuple(s[draw(st.integers(0, len(s) - 1)):])
    return variant(), variant()


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "where", "maximum"])
@given(shapes=broadcast_pair(), seed=seeds)
def test_binary_ops_with_broadcasting(op, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = t64(rng, shapes[0]), t64(rng, shapes[1], positive=op == "div")
    cond = rng.random(np.broadcast_shapes(*shapes)) > 0.5
    fn = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "where": lambda a, b: mg.where(cond, a, b),
        "maximum": lambda a, b: a.max(b),
    }[op]
    assert mg.gradcheck(fn, [a, b])


@pytest.mark.parametrize("op", ["neg", "pow2", "pow_half", "exp", "log", "relu", "max0",
                                "sigmoid", "abs", "reshape", "transpose", "index", "rsub",
                                "rdiv", "float_cast"])
@given(shape=st.lists(small, min_size=1, max_size=3), seed=seeds)
def test_unary_ops(op, shape, seed):
    rng = np.random.default_rng(seed)
    x = t64(rng, shape, positive=op in ("log", "pow_half"))
    if op in ("relu", "max0", "abs"):  # keep clear of the kink at 0
        x.numpy()[np.abs(x.numpy()) < 1e-3] = 0.5
    fn = {
        "neg": lambda x: -x,
        "pow2": lambda x: x ** 2,
        "pow_half": lambda x: x ** 0.5,
        "exp": lambda x: x.exp(),
        "log": lambda x: x.log(),
        "relu": lambda x: x.relu(),
        "max0": lambda x: x.max(mg.tensor(0.0, dtype=np.float64)),
        "sigmoid": lambda x: x.sigmoid(),
        "abs": lambda x: x.abs(),
        "reshape": lambda x: x.reshape(-1) * mg.tensor(np.arange(x.numel()), dtype=np.float64),
        "transpose": lambda x: x.T,
        "index": lambda x: x[..., :1] * 3,
        "rsub": lambda x: 1 - x,
        "rdiv": lambda x: 2 / (x * x + 1),
        "float_cast": lambda x: x.float().double() * 2,
    }[op]
    assert mg.gradcheck(fn, [x], atol=1e-4 if op == "float_cast" else 1e-5,
                        rtol=1e-3 if op != "float_cast" else 1e-2, eps=1e-6 if op !=
                        "float_cast" else 1e-3)


@given(shape=st.lists(small, min_size=1, max_size=3), seed=seeds, keepdims=st.booleans(),
       data=st.data())
def test_reductions(shape, seed, keepdims, data):
    rng = np.random.default_rng(seed)
    x = t64(rng, shape)
    axis = data.draw(st.one_of(st.none(), st.integers(0, len(shape) - 1)))
    assert mg.gradcheck(lambda x: x.sum(axis, keepdim=keepdims), [x])
    assert mg.gradcheck(lambda x: x.mean(axis, keepdim=keepdims), [x])
    assert mg.gradcheck(lambda x: x.amax(axis, keepdim=keepdims), [x])


@given(m=small, k=small, n=small, seed=seeds, ranks=st.sampled_from(
    [(2, 2), (1, 2), (2, 1), (1, 1), (3, 2), (3, 3)]))
def test_matmul_all_ranks(m, k, n, seed, ranks):
    rng = np.random.default_rng(seed)
    shape_a = {1: (k,), 2: (m, k), 3: (2, m, k)}[ranks[0]]
    shape_b = {1: (k,), 2: (k, n), 3: (2, k, n)}[ranks[1]]
    a, b = t64(rng, shape_a), t64(rng, shape_b)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])


@given(m=st.integers(1, 6), k=st.integers(1, 6), n=st.integers(1, 6), seed=seeds,
       bias=st.booleans())
def test_linear_and_fused_linear_relu(m, k, n, seed, bias):
    rng = np.random.default_rng(seed)
    x, w = t64(rng, (m, k)), t64(rng, (n, k))
    b = t64(rng, (n,)) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    assert mg.gradcheck(lambda x, w, *b: F.linear(x, w, *b), inputs)
    z = F.linear(x, w, b).numpy()
    if np.min(np.abs(z)) > 1e-4:  # finite differences are wrong across ReLU's kink
        assert mg.gradcheck(lambda x, w, *b: F.linear_relu(x, w, *b), inputs)


@given(n=st.integers(1, 8), seed=seeds, column=st.booleans())
def test_binary_losses(n, seed, column):
    rng = np.random.default_rng(seed)
    shape = (n, 1) if column else (n,)
    z = t64(rng, shape)
    t = (rng.random(shape) > 0.5).astype(np.float64)
    assert mg.gradcheck(lambda z: F.mnist_loss(z, t), [z])
    assert mg.gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, t), [z])


@given(n=st.integers(1, 6), c=st.integers(1, 6), seed=seeds)
def test_cross_entropy_and_softmax(n, c, seed):
    rng = np.random.default_rng(seed)
    z = t64(rng, (n, c))
    labels = rng.integers(0, c, n)
    assert mg.gradcheck(lambda z: F.cross_entropy(z, labels), [z])
    assert mg.gradcheck(lambda z: F.softmax(z), [z])


# float32 values and gradients of the kernel-backed ops against the NumPy
# reference's own formulas (gradcheck above covers float64 with finite differences)
def _t(a, b):
    return a.T, b.T


KERNEL_OPS = {  # op, reference forward, reference backward(g, x, y)
    "relu": (lambda x: x.relu(), R.relu, lambda g, x, y: R.relu_backward(g, x)),
    "sigmoid": (lambda x: x.sigmoid(), R.sigmoid, lambda g, x, y: R.sigmoid_backward(g, y)),
    "tanh": (lambda x: x.tanh(), R.tanh, lambda g, x, y: R.tanh_backward(g, y)),
    "gelu": (F.gelu, R.gelu, lambda g, x, y: R.gelu_backward(g, x)),
    "softmax": (lambda x: x.softmax(-1), R.softmax, lambda g, x, y: R.softmax_backward(g, y)),
    "softmax_dim0": (lambda x: x.softmax(0), lambda a: R.softmax(a.T).T,
                     lambda g, x, y: R.softmax_backward(*_t(g, y)).T),
    "log_softmax_dim0": (lambda x: F.log_softmax(x, 0), lambda a: R.log_softmax(a.T).T,
                         lambda g, x, y: R.log_softmax_backward(*_t(g, y)).T),
}


@pytest.mark.parametrize("name", KERNEL_OPS)
def test_kernel_ops_match_the_reference_in_float32(name):
    op, forward, backward = KERNEL_OPS[name]
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((5, 7)) * 3).astype(np.float32)
    g = rng.standard_normal((5, 7)).astype(np.float32)
    x = mg.tensor(a, requires_grad=True)
    y = op(x)
    y.backward(g)
    want = forward(a)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), backward(g, a, want), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["mnist_loss", "bce_with_logits", "softmax_cross_entropy"])
def test_losses_match_the_reference_in_float32(name):
    rng = np.random.default_rng(4)
    z = (rng.standard_normal((6, 3)) * 2).astype(np.float32)
    if name == "softmax_cross_entropy":
        t, loss = rng.integers(0, 3, 6), F.cross_entropy
    else:
        t = (rng.random((6, 3)) > 0.5).astype(np.float32)
        loss = F.mnist_loss if name == "mnist_loss" else F.binary_cross_entropy_with_logits
    x = mg.tensor(z, requires_grad=True)
    value = loss(x, t)
    value.backward()
    want, grad = getattr(R, name)(z, t)
    np.testing.assert_allclose(value.item(), want, rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-4, atol=1e-7)


def test_cat_and_stack():
    rng = np.random.default_rng(0)
    a, b = t64(rng, (2, 3)), t64(rng, (4, 3))
    assert mg.gradcheck(lambda a, b: mg.cat([a, b]) * 2, [a, b])
    c = t64(rng, (2, 3))
    assert mg.gradcheck(lambda a, c: mg.stack([a, c], dim=1), [a, c])


def test_two_layer_mlp_all_parameters():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(5, 7, dtype=np.float64, rng=rng), nn.ReLU(),
                          nn.Linear(7, 3, dtype=np.float64, rng=rng))
    x = t64(rng, (4, 5))
    labels = np.array([0, 2, 1, 2])
    assert mg.gradcheck(lambda x, *p: F.cross_entropy(model(x), labels),
                        [x] + model.parameters())


def test_tensor_used_twice_and_reused():
    rng = np.random.default_rng(1)
    x, y = t64(rng, (3,)), t64(rng, (3,))
    assert mg.gradcheck(lambda x: x * x + x, [x])
    assert mg.gradcheck(lambda x, y: (x * y).sum() * (x + y).sum() + (x / (y * y + 1)).mean(),
                        [x, y])
    x = mg.tensor([2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


def test_gradients_accumulate_until_zeroed():
    w = mg.tensor([1.0, -2.0], requires_grad=True)
    for _ in range(2):
        (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])
    w.grad.zero_()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, -4.0])
    model = nn.Linear(2, 1)
    model(mg.tensor([[1.0, 1.0]])).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_leaf_gradients_never_share_memory_with_another_array():
    """A leaf's first gradient is the backward's own array when nothing else
    holds it (no copy, as PyTorch's AccumulateGrad), else a copy: two leaves
    given the same upstream array, a gradient passed to backward(), and views
    each end with memory of their own."""
    a = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    F.relu(a + b).sum().backward()  # add's backward gives both parents relu's array
    a.grad.numpy()[0] = 5
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1, 1])
    x = mg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    g = np.ones((2, 3), np.float32)
    x.backward(g)
    x.grad.numpy()[0, 0] = 7
    assert g[0, 0] == 1
    y = x.reshape(6)
    upstream = np.arange(6, dtype=np.float32)
    x.grad = None
    y.backward(upstream)  # reshape's backward returns a view of upstream
    x.grad.numpy()[0, 0] = 9
    assert upstream[0] == 0
    w = mg.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    c = mg.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    h = w * 2
    (h + c).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), np.ones((4, 2)))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((4, 2), 2.0))
    c.grad.numpy()[:] = 0
    np.testing.assert_array_equal(w.grad.numpy(), np.full((4, 2), 2.0))


def test_no_grad_records_nothing():
    w = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = w * 2
    assert not y.requires_grad and y.is_leaf
    assert (w * 2).requires_grad


def test_backward_needs_a_scalar_or_a_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.ones(2, np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="requires_grad"):
        mg.tensor([1.0]).backward()
    with pytest.raises(TypeError):
        mg.tensor([1, 2]).requires_grad_()


def test_tensor_basics():
    t = mg.tensor([[1.0, 2.0]])
    assert t.dtype == np.float32 and t.shape == (1, 2)
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor(np.ones(2)).dtype == np.float64
    assert mg.tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    assert (t * 2).sum().item() == 6.0
    assert t.detach().requires_grad is False
    assert np.asarray(t).shape == (1, 2)
    assert isinstance(np.ones((1, 2), np.float32) + t, mg.Tensor)
    with pytest.raises(ValueError, match="one element"):
        t.item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t == t)
    assert bool(mg.tensor(2.0) > 1) and not bool(mg.tensor([0.0]))


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return mg.tensor((rng.permutation(n).reshape(shape) + rng.random(shape) * 0.5) / n,
                     dtype=np.float64, requires_grad=True)


MORE_UNARY = {
    "tanh": lambda x: x.tanh(),
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda x: F.silu(x),
    "softplus": lambda x: F.softplus(x * 3),
    "elu": lambda x: F.elu(x + 0.05),
    "leaky_relu": lambda x: F.leaky_relu(x + 0.05, 0.2),
    "hardtanh": lambda x: F.hardtanh(x * 0.5),
    "softmax": lambda x: x.softmax(0),
    "log_softmax": lambda x: F.log_softmax(x, -1),
    "sqrt": lambda x: (x * x + 1).sqrt(),
    "rsqrt": lambda x: (x * x + 1).rsqrt(),
    "var": lambda x: x.var(-1) if x.shape[-1] > 1 else x.var(-1, correction=0),
    "std": lambda x: (x * x + 1).std(0, correction=0),
    "prod": lambda x: x.prod(-1),
    "prod_all": lambda x: x.prod(),
    "logsumexp": lambda x: x.logsumexp(0),
    "amax": lambda x: x.amax(-1),
    "max_dim": lambda x: x.max(0).values,
    "min_dim": lambda x: x.min(-1, keepdim=True)[0],
    "flatten": lambda x: x.flatten() * mg.arange(x.numel()).double(),
    "unflatten": lambda x: x.reshape(-1).unflatten(0, (1, -1)),
    "squeeze": lambda x: x.unsqueeze(0).squeeze(0),
    "permute": lambda x: x.permute(*range(-1, -x.dim() - 1, -1)),
    "transpose": lambda x: x.transpose(0, -1),
    "expand": lambda x: x.unsqueeze(0).expand(2, *x.shape),
    "flip": lambda x: x.flip(0),
    "repeat": lambda x: x.repeat(2, *[1] * x.dim()),
    "split": lambda x: mg.cat([p * (i + 1) for i, p in enumerate(x.split(1, -1))], -1),
    "chunk": lambda x: mg.cat([p * (i + 1) for i, p in enumerate(x.chunk(2, 0))], 0),
    "pad": lambda x: F.pad(x, (1, 2)),
    "tril": lambda x: x.reshape(x.shape[0], -1).tril(),
    "triu": lambda x: x.reshape(x.shape[0], -1).triu(1),
    "masked_fill": lambda x: x.masked_fill(x > 0.5, 2.0),
    "gather": lambda x: x.gather(0, mg.zeros(*x.shape, dtype=np.int64)),
    "index_tensor": lambda x: x[mg.tensor([0, 0])] * 2,
    "clone": lambda x: x.clone() * x,
    "clamp_tensors": lambda x: x.clamp(min=x.detach() * 0 - 0.3, max=x.detach() * 0 + 0.4),
    "pow_tensor": lambda x: (x * x + 1) ** x,
    "in_place": lambda x: _in_place(x),
    "setitem": lambda x: _setitem(x),
}


def _in_place(x):
    h = x * 1
    h.mul_(x)
    h += 1
    return h


def _setitem(x):
    h = mg.zeros(*x.shape, dtype=np.float64)
    h[0] = x[0] * 3
    return h + x


@pytest.mark.parametrize("op", sorted(MORE_UNARY))
@given(shape=st.lists(small, min_size=1, max_size=3), seed=seeds)
def test_more_ops_gradcheck(op, shape, seed):
    x = _distinct(np.random.default_rng(seed), shape)
    assert mg.gradcheck(MORE_UNARY[op], [x])


@given(shapes=broadcast_pair(), seed=seeds)
def test_minimum_and_tensor_exponent(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = t64(rng, shapes[0]), t64(rng, shapes[1])
    assert mg.gradcheck(lambda a, b: mg.minimum(a, b), [a, b])
    assert mg.gradcheck(lambda a, b: (a * a + 1) ** b, [a, b])


@given(n=st.integers(1, 5), c=st.integers(2, 5), seed=seeds)
def test_loss_options_gradcheck(n, c, seed):
    rng = np.random.default_rng(seed)
    z, p = t64(rng, (n, c)), t64(rng, (n, c))
    y = mg.tensor(rng.integers(0, c, n))
    losses = [
        lambda z, p: F.cross_entropy(z, y, reduction="sum", label_smoothing=0.2),
        lambda z, p: F.cross_entropy(z, p.softmax(-1)),
        lambda z, p: F.cross_entropy(z, y, ignore_index=0, reduction="none"),
        lambda z, p: F.nll_loss(z.log_softmax(1), y),
        lambda z, p: F.mse_loss(z, p),
        lambda z, p: F.l1_loss(z, p * 0.1 + 10.0),  # clear of the kink at 0
        lambda z, p: F.binary_cross_entropy_with_logits(z, p.sigmoid()),
        lambda z, p: F.binary_cross_entropy(z.sigmoid(), p.sigmoid()),
    ]
    for loss in losses:
        assert mg.gradcheck(loss, [z, p])


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_empty_inputs_as_pytorch(shape):
    x = mg.tensor(np.ones(shape, np.float32), requires_grad=True)
    for op in (F.softmax, F.log_softmax, F.tanh, F.gelu):
        y = op(x) if op in (F.tanh, F.gelu) else op(x, -1)
        assert y.shape == shape
    loss = F.cross_entropy(x, np.full(shape, 0.5, np.float32))
    loss.backward()
    assert np.isnan(loss.item()) and x.grad.shape == shape  # PyTorch: nan
