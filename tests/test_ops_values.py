"""Forward values of every Tensor operation against NumPy (float64 and float32),
over generated shapes with broadcasting. The gradients are in test_autograd.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

small = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


def arr(rng, shape, dtype, positive=False):
    a = rng.standard_normal(shape)
    return (np.abs(a) + 0.5 if positive else a).astype(dtype)


def close(got, want, dtype):
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    got = got.numpy() if isinstance(got, mg.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@st.composite
def broadcast_pair(draw):
    shape = draw(st.lists(small, min_size=1, max_size=3))

    def variant():
        s = [1 if draw(st.booleans()) else n for n in shape]
        return tuple(s[draw(st.integers(0, len(s) - 1)):])
    return variant(), variant()


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "maximum": (lambda a, b: mg.maximum(a, b), np.maximum),
    "minimum": (lambda a, b: mg.minimum(a, b), np.minimum),
    "pow": (lambda a, b: a ** b, np.power),
    "gt": (lambda a, b: a > b, np.greater),
    "lt": (lambda a, b: a < b, np.less),
    "ge": (lambda a, b: a >= b, np.greater_equal),
    "le": (lambda a, b: a <= b, np.less_equal),
    "eq": (lambda a, b: a == b, np.equal),
    "ne": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@given(shapes=broadcast_pair(), seed=seeds, dtype=dtypes)
def test_binary_values(op, shapes, seed, dtype):
    rng = np.random.default_rng(seed)
    a = arr(rng, shapes[0], dtype, positive=op == "pow")
    b = arr(rng, shapes[1], dtype, positive=op == "div")
    ours, ref = BINARY[op]
    close(ours(mg.tensor(a), mg.tensor(b)), ref(a, b), dtype)
    close(ours(mg.tensor(a), 1.5), ref(a, dtype(1.5)), dtype)  # a Python float keeps the dtype
    if op not in ("pow",):
        close(ours(2.5, mg.tensor(b)), ref(dtype(2.5), b), dtype)


def gelu(x):
    from math import erf
    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)).astype(x.dtype))


UNARY = {
    "neg": (lambda x: -x, np.negative),
    "exp": (lambda x: x.exp(), np.exp),
    "log": (lambda x: x.log(), np.log),
    "sqrt": (lambda x: x.sqrt(), np.sqrt),
    "rsqrt": (lambda x: x.rsqrt(), lambda a: 1 / np.sqrt(a)),
    "abs": (lambda x: x.abs(), np.abs),
    "sign": (lambda x: x.sign(), np.sign),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0)),
    "max0": (lambda x: x.max(mg.tensor(0.0)), lambda a: np.maximum(a, 0)),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    "tanh": (lambda x: x.tanh(), np.tanh),
    "pow2": (lambda x: x ** 2, np.square),
    "pow_half": (lambda x: x ** 0.5, np.sqrt),
    "rsub": (lambda x: 1 - x, lambda a: 1 - a),
    "rdiv": (lambda x: 2 / x, lambda a: 2 / a),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7)),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda a: np.maximum(a, 0.1)),
    "gelu": (lambda x: F.gelu(x), gelu),
    "silu": (lambda x: F.silu(x), lambda a: a / (1 + np.exp(-a))),
    "softplus": (lambda x: F.softplus(x), lambda a: np.log1p(np.exp(a))),
    "elu": (lambda x: F.elu(x), lambda a: np.where(a > 0, a, np.expm1(a))),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda a: np.where(a > 0, a, 0.1 * a)),
    "hardtanh": (lambda x: F.hardtanh(x), lambda a: np.clip(a, -1, 1)),
    "isnan": (lambda x: (x / x).isnan(), lambda a: np.isnan(a / a)),
    "reshape": (lambda x: x.reshape(-1), lambda a: a.reshape(-1)),
    "flatten": (lambda x: x.flatten(), lambda a: a.reshape(-1)),
    "T": (lambda x: x.T, lambda a: a.T),
    "flip": (lambda x: x.flip(0), lambda a: np.flip(a, 0)),
    "index": (lambda x: x[..., :1] * 3, lambda a: a[..., :1] * 3),
    "unsqueeze": (lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
    "clone": (lambda x: x.clone(), lambda a: a),
    "to64": (lambda x: x.double(), lambda a: a.astype(np.float64)),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@given(shape=st.lists(small, min_size=1, max_size=3), seed=seeds, dtype=dtypes)
def test_unary_values(op, shape, seed, dtype):
    rng = np.random.default_rng(seed)
    a = arr(rng, shape, dtype, positive=op in ("log", "sqrt", "rsqrt", "pow_half"))
    if op == "isnan":
        a.reshape(-1)[0] = 0
    ours, ref = UNARY[op]
    close(ours(mg.tensor(a)), ref(a), dtype)


REDUCTIONS = {
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda a, d, k: a.sum(d, keepdims=k)),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda a, d, k: a.mean(d, keepdims=k)),
    "max": (lambda x, d, k: x.amax(d, keepdim=k), lambda a, d, k: a.max(d, keepdims=k)),
    "min": (lambda x, d, k: x.amin(d, keepdim=k), lambda a, d, k: a.min(d, keepdims=k)),
    "prod": (lambda x, d, k: x.prod(d, keepdim=k), lambda a, d, k: a.prod(d, keepdims=k)),
    "var": (lambda x, d, k: x.var(d, keepdim=k), lambda a, d, k: a.var(d, ddof=1, keepdims=k)),
    "std0": (lambda x, d, k: x.std(d, correction=0, keepdim=k),
             lambda a, d, k: a.std(d, keepdims=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(d, keepdim=k),
                  lambda a, d, k: np.log(np.exp(a).sum(d, keepdims=k))),
    "softmax": (lambda x, d, k: x.softmax(d),
                lambda a, d, k: np.exp(a) / np.exp(a).sum(d, keepdims=True)),
    "log_softmax": (lambda x, d, k: x.log_softmax(d),
                    lambda a, d, k: a - np.log(np.exp(a).sum(d, keepdims=True))),
}


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@given(shape=st.lists(st.integers(2, 5), min_size=1, max_size=3), seed=seeds, dtype=dtypes,
       keepdim=st.booleans(), data=st.data())
def test_reduction_values(op, shape, seed, dtype, keepdim, data):
    rng = np.random.default_rng(seed)
    a = arr(rng, shape, dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    ours, ref = REDUCTIONS[op]
    close(ours(mg.tensor(a), dim, keepdim), ref(a, dim, keepdim), dtype)
    if op in ("sum", "mean", "prod"):
        close(getattr(mg.tensor(a), op)(), getattr(a, op)(), dtype)


@given(m=small, k=small, n=small, seed=seeds, dtype=dtypes)
def test_matmul_linear_and_losses_values(m, k, n, seed, dtype):
    rng = np.random.default_rng(seed)
    x, w, b = arr(rng, (m, k), dtype), arr(rng, (n, k), dtype), arr(rng, (n,), dtype)
    close(mg.tensor(x) @ mg.tensor(w.T.copy()), x @ w.T, dtype)
    close(F.linear(mg.tensor(x), mg.tensor(w), mg.tensor(b)), x @ w.T + b, dtype)
    close(F.linear_relu(mg.tensor(x), mg.tensor(w), mg.tensor(b)),
          np.maximum(x @ w.T + b, 0), dtype)
    z, t = arr(rng, (m,), dtype), (rng.random(m) > 0.5).astype(dtype)
    s = 1 / (1 + np.exp(-z))
    close(F.mnist_loss(mg.tensor(z), mg.tensor(t)), np.where(t == 1, 1 - s, s).mean(), dtype)
    close(F.binary_cross_entropy_with_logits(mg.tensor(z), mg.tensor(t)),
          -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean(), dtype)
    labels = rng.integers(0, n, m)
    lsm = x @ w.T - np.log(np.exp(x @ w.T).sum(1, keepdims=True))
    close(F.cross_entropy(mg.tensor(x @ w.T), mg.tensor(labels)),
          -lsm[np.arange(m), labels].mean(), dtype)
    close(F.mse_loss(mg.tensor(x), mg.tensor(x * 2)), ((x - x * 2) ** 2).mean(), dtype)
    close(F.l1_loss(mg.tensor(x), mg.tensor(x * 2)), np.abs(x - x * 2).mean(), dtype)


def test_where_cat_stack_values():
    rng = np.random.default_rng(0)
    a, b = arr(rng, (2, 3), np.float32), arr(rng, (4, 3), np.float32)
    close(mg.cat([mg.tensor(a), mg.tensor(b)]), np.concatenate([a, b]), np.float32)
    close(mg.stack([mg.tensor(a), mg.tensor(a * 2)], dim=1), np.stack([a, a * 2], 1), np.float32)
    c = a > 0
    close(mg.where(mg.tensor(c), mg.tensor(a), 0.0), np.where(c, a, np.float32(0)), np.float32)


def test_mean_divides_by_the_count():
    x = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]])
    assert x.mean().item() == 4.0
    np.testing.assert_array_equal(x.mean(0).numpy(), [2.5, 3.5, 6.0])
    np.testing.assert_array_equal(x.mean(1).numpy(), [2.0, 6.0])


def test_sequential_values():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Sigmoid())
    x = arr(rng, (5, 4), np.float32)
    w1, b1, w2, b2 = (p.numpy() for p in model.parameters())
    want = 1 / (1 + np.exp(-(np.maximum(x @ w1.T + b1, 0) @ w2.T + b2)))
    close(model(mg.tensor(x)), want.astype(np.float32), np.float32)


SHAPE_OPS = {
    "permute": (lambda x: x.permute(-1, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "transpose": (lambda x: x.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2)),
    "expand": (lambda x: x[:, :1].expand(-1, 3, -1), lambda a: np.repeat(a[:, :1], 3, 1)),
    "repeat": (lambda x: x.repeat(1, 2, 1, 1), lambda a: np.tile(a, (1, 2, 1, 1))),
    "pad": (lambda x: F.pad(x, (1, 0, 0, 2), value=9.0),
            lambda a: np.pad(a, ((0, 0), (0, 2), (1, 0)), constant_values=9.0)),
    "tril": (lambda x: x.tril(-1), lambda a: np.tril(a, -1)),
    "triu": (lambda x: x.triu(), lambda a: np.triu(a)),
    "gather": (lambda x: x.gather(1, mg.tensor(np.zeros((2, 2, 4), np.int64) + 1)),
               lambda a: np.take_along_axis(a, np.ones((2, 2, 4), np.int64), 1)),
    "masked_fill": (lambda x: x.masked_fill(x < 0, 0.5), lambda a: np.where(a < 0, 0.5, a)),
    "split": (lambda x: x.split([1, 2], 1)[1], lambda a: a[:, 1:]),
    "chunk": (lambda x: x.chunk(2, -1)[0], lambda a: a[..., :2]),
    "flip": (lambda x: x.flip(0, 2), lambda a: a[::-1, :, ::-1]),
    "squeeze": (lambda x: x[:, :1].squeeze(1), lambda a: a[:, 0]),
    "argmax": (lambda x: x.argmax(1, keepdim=True), lambda a: a.argmax(1)[:, None]),
    "argmin": (lambda x: x.argmin(), lambda a: np.int64(a.argmin())),
    "any": (lambda x: (x > 1).any(-1), lambda a: (a > 1).any(-1)),
    "all": (lambda x: (x > -1).all(0), lambda a: (a > -1).all(0)),
    "isclose": (lambda x: mg.isclose(x, x + 1e-9), lambda a: np.ones(a.shape, bool)),
    "min_values": (lambda x: x.min(1).values, lambda a: a.min(1)),
}


@pytest.mark.parametrize("op", sorted(SHAPE_OPS))
@given(seed=seeds, dtype=dtypes)
def test_shape_and_index_values(op, seed, dtype):
    a = arr(np.random.default_rng(seed), (2, 3, 4), dtype)
    ours, ref = SHAPE_OPS[op]
    got, want = ours(mg.tensor(a)), np.asarray(ref(a))
    want = want.astype(dtype) if want.dtype.kind == "f" else want
    close(got, want, dtype)


@given(seed=seeds)
def test_creation_values(seed):
    np.testing.assert_array_equal(mg.arange(2, 11, 3).numpy(), np.arange(2, 11, 3))
    np.testing.assert_allclose(mg.linspace(-1, 1, 5).numpy(), np.linspace(-1, 1, 5))
    np.testing.assert_array_equal(mg.eye(3, 2).numpy(), np.eye(3, 2, dtype=np.float32))
    np.testing.assert_array_equal(mg.full((2, 2), 7).numpy(), np.full((2, 2), 7))
    mg.manual_seed(seed)
    x = mg.randn(4000)
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1
    u = mg.rand(4000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.05
