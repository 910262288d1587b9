"""Values and gradients of minigrad's ops against PyTorch (the second oracle),
over generated shapes, broadcasting and both float dtypes. Each case is written
once against a module ``T`` that is either ``minigrad`` or ``torch``: the same
code must give the same numbers, which also checks the names and signatures."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad

torch = pytest.importorskip("torch", reason="PyTorch is not installed: no parity oracle")

seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
DTYPES = {"f32": (np.float32, torch.float32, 2e-4, 2e-5),
          "f64": (np.float64, torch.float64, 1e-9, 1e-11)}


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return np.abs(rng.standard_normal(shape)) + 0.5


def away_from_zero(rng, shape):
    a = rng.standard_normal(shape)
    return np.where(np.abs(a) < 0.05, 0.5, a)


def distinct(rng, shape):
    """No ties (max/min/sort-like ops are not differentiable at ties)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) + rng.random(shape) * 0.5) / max(n, 1)


def compare(fn, arrays, dtype_key, float_inputs=None):
    """fn(T, *tensors) in both libraries: same values, same gradients of a
    random weighting of the outputs for every float input."""
    np_dtype, t_dtype, rtol, atol = DTYPES[dtype_key]
    float_inputs = range(len(arrays)) if float_inputs is None else float_inputs
    mine, theirs = [], []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if i in float_inputs:
            mine.append(minigrad.tensor(a.astype(np_dtype), requires_grad=True))
            theirs.append(torch.tensor(a.astype(np_dtype), requires_grad=True))
        else:
            mine.append(minigrad.tensor(a))
            theirs.append(torch.tensor(a))
    out_m, out_t = fn(minigrad, *mine), fn(torch, *theirs)
    outs_m = out_m if isinstance(out_m, tuple | list) else (out_m,)
    outs_t = out_t if isinstance(out_t, tuple | list) else (out_t,)
    assert len(outs_m) == len(outs_t)
    rng = np.random.default_rng(0)
    loss_m, loss_t = 0, 0
    for m, t in zip(outs_m, outs_t, strict=True):
        want = t.detach().numpy()
        assert m.shape == tuple(t.shape), (m.shape, t.shape)
        assert m.dtype == want.dtype, (m.dtype, want.dtype)
        np.testing.assert_allclose(m.numpy(), want, rtol=rtol, atol=atol)
        if t.requires_grad:
            r = rng.standard_normal(want.shape).astype(np_dtype)
            loss_m = loss_m + (m * minigrad.tensor(r)).sum()
            loss_t = loss_t + (t * torch.tensor(r)).sum()
    if isinstance(loss_t, int):
        return
    loss_m.backward()
    loss_t.backward()
    for i in float_inputs:
        g_t = theirs[i].grad
        g_m = mine[i].grad
        if g_t is None:
            assert g_m is None or not np.any(g_m.numpy()), f"input {i}: unexpected gradient"
            continue
        assert g_m is not None, f"input {i}: no gradient"
        np.testing.assert_allclose(g_m.numpy(), g_t.numpy(), rtol=rtol * 10, atol=atol * 10,
                                   err_msg=f"gradient of input {i}")


def F(T):
    return T.nn.functional


UNARY = {
    "tanh": (lambda T, x: x.tanh(), normal),
    "sigmoid": (lambda T, x: T.sigmoid(x), normal),
    "relu": (lambda T, x: T.relu(x), away_from_zero),
    "exp": (lambda T, x: T.exp(x), normal),
    "log": (lambda T, x: T.log(x), positive),
    "sqrt": (lambda T, x: x.sqrt(), positive),
    "rsqrt": (lambda T, x: T.rsqrt(x), positive),
    "abs": (lambda T, x: x.abs(), away_from_zero),
    "sign": (lambda T, x: x.sign() * x, away_from_zero),
    "neg": (lambda T, x: -x, normal),
    "pow2": (lambda T, x: x ** 2, normal),
    "pow0": (lambda T, x: (x * 0) ** 0 + x ** 0, normal),
    "rpow": (lambda T, x: 2.0 ** x, normal),
    "softmax": (lambda T, x: F(T).softmax(x, dim=-1), normal),
    "softmax0": (lambda T, x: x.softmax(0), normal),
    "log_softmax": (lambda T, x: F(T).log_softmax(x, dim=0), normal),
    "leaky_relu": (lambda T, x: F(T).leaky_relu(x, 0.2), away_from_zero),
    "gelu": (lambda T, x: F(T).gelu(x), normal),
    "gelu_tanh": (lambda T, x: F(T).gelu(x, approximate="tanh"), normal),
    "silu": (lambda T, x: F(T).silu(x), normal),
    "softplus": (lambda T, x: F(T).softplus(x * 10), normal),
    "elu": (lambda T, x: F(T).elu(x), away_from_zero),
    "hardtanh": (lambda T, x: F(T).hardtanh(x * 2), away_from_zero),
    "clamp": (lambda T, x: x.clamp(-0.5, 0.5), away_from_zero),
    "clamp_min": (lambda T, x: T.clamp(x, min=0.2), away_from_zero),
    "sum": (lambda T, x: x.sum(), normal),
    "sum_dim": (lambda T, x: x.sum(-1, keepdim=True), normal),
    "mean_dim": (lambda T, x: x.mean(0), normal),
    "mean_dims": (lambda T, x: x.mean((0, -1)) if x.dim() > 1 else x.mean(0), normal),
    "var": (lambda T, x: x.var(0), normal),
    "var_all": (lambda T, x: x.var(), normal),
    "std0": (lambda T, x: x.std(-1, correction=0, keepdim=True), normal),
    "prod": (lambda T, x: x.prod(-1), normal),
    "prod_zero": (lambda T, x: (x * (x > 0.3)).prod(0), normal),
    "prod_all": (lambda T, x: x.prod(), normal),
    "logsumexp": (lambda T, x: T.logsumexp(x, -1), normal),
    "amax": (lambda T, x: x.amax(0), distinct),
    "amin": (lambda T, x: T.amin(x, -1, keepdim=True), distinct),
    "max": (lambda T, x: x.max(), distinct),
    "max_dim": (lambda T, x: tuple(x.max(-1)), distinct),
    "min_dim": (lambda T, x: tuple(x.min(0, keepdim=True)), distinct),
    "argmax": (lambda T, x: x.argmax(-1, keepdim=True), distinct),
    "argmin": (lambda T, x: x.argmin(), distinct),
    "any_all": (lambda T, x: ((x > 0).any(0), (x > 0).all(-1), (x > 0).any()), normal),
    "isnan": (lambda T, x: T.isnan(T.log(x)), normal),
    "flatten": (lambda T, x: x.flatten(), normal),
    "flatten1": (lambda T, x: x.unsqueeze(0).flatten(1), normal),
    "unflatten": (lambda T, x: x.reshape(-1).unflatten(0, (1, -1)), normal),
    "squeeze": (lambda T, x: x.unsqueeze(1).squeeze(1), normal),
    "squeeze_all": (lambda T, x: x.unsqueeze(-1).squeeze(), normal),
    "unsqueeze": (lambda T, x: x.unsqueeze(-1), normal),
    "transpose": (lambda T, x: x.transpose(0, -1), normal),
    "permute": (lambda T, x: x.permute(*range(-1, -x.dim() - 1, -1)), normal),
    "T": (lambda T, x: x.T if x.dim() == 2 else x.unsqueeze(0).mT, normal),
    "expand": (lambda T, x: x.unsqueeze(0).expand(3, *x.shape), normal),
    "flip": (lambda T, x: x.flip(-1), normal),
    "repeat": (lambda T, x: x.repeat(2, *([1] * (x.dim() - 1)), 3), normal),
    "split": (lambda T, x: tuple(x.split(2, dim=-1)), normal),
    "split_sizes": (lambda T, x: tuple(x.split([1, x.shape[0] - 1])) if x.shape[0] > 1
                    else (x,), normal),
    "chunk": (lambda T, x: tuple(x.chunk(2, 0)), normal),
    "pad": (lambda T, x: F(T).pad(x, (1, 2)), normal),
    "pad_crop": (lambda T, x: F(T).pad(x, (0, 1, -x.shape[-2] // 2, 1)) if x.dim() > 1
                 else F(T).pad(x, (2, -1)) if x.shape[0] > 1 else x, normal),
    "tril": (lambda T, x: x.reshape(x.shape[0], -1).tril(), normal),
    "triu": (lambda T, x: T.triu(x.reshape(-1, x.shape[-1]), 1), normal),
    "masked_fill": (lambda T, x: x.masked_fill(x > 0, -1.0), normal),
    "index_int_slice_tensor": (lambda T, x: x.unsqueeze(0).unsqueeze(-1).repeat(2, *[1] * x.dim(),
                               3)[0, ..., T.tensor([2, 0, 2])], normal),
    "index_slice_tensor": (lambda T, x: x[:, T.tensor([0, 0])] if x.dim() > 1 else
                           x[T.tensor([0, 0])], normal),
    "index_bool": (lambda T, x: x[x > 0], normal),
    "clone": (lambda T, x: x.clone() * 2, normal),
    "cat_stack": (lambda T, x: (T.cat([x, x * 2], dim=-1), T.stack([x, -x], dim=1)), normal),
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("op", sorted(UNARY))
@settings(max_examples=15)
@given(shape=shapes, seed=seeds)
def test_unary(op, dtype, shape, seed):
    fn, gen = UNARY[op]
    compare(fn, [gen(np.random.default_rng(seed), shape)], dtype)


@st.composite
def broadcast_pair(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))

    def variant():
        s = [1 if draw(st.booleans()) else n for n in shape]
        return tuple(s[draw(st.integers(0, len(s) - 1)):])
    return variant(), variant()


BINARY = {
    "add": (lambda T, a, b: a + b, normal),
    "sub": (lambda T, a, b: T.sub(a, b, alpha=2), normal),
    "mul": (lambda T, a, b: a * b, normal),
    "div": (lambda T, a, b: a / b, positive),
    "pow": (lambda T, a, b: a.abs() ** b, away_from_zero),
    "maximum": (lambda T, a, b: T.maximum(a, b), normal),
    "minimum": (lambda T, a, b: T.minimum(a, b), normal),
    "maximum_ties": (lambda T, a, b: T.maximum(a.round(), b.round() * 0 + a.round()), normal),
    "max_tensor": (lambda T, a, b: a.max(b), normal),
    "where": (lambda T, a, b: T.where(a > b, a, b), normal),
    "where_numbers": (lambda T, a, b: T.where(a > 0, 4.0, b), normal),
    "clamp_tensors": (lambda T, a, b: T.clamp(a, min=b, max=b + 1), normal),
    "isclose": (lambda T, a, b: T.isclose(a, a + b * 1e-9), normal),
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=15)
@given(shapes=broadcast_pair(), seed=seeds)
def test_binary_broadcasting(op, dtype, shapes, seed):
    fn, gen = BINARY[op]
    rng = np.random.default_rng(seed)
    compare(fn, [gen(rng, shapes[0]), gen(rng, shapes[1])], dtype)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@settings(max_examples=15)
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5), seed=seeds,
       ranks=st.sampled_from([(2, 2), (1, 2), (2, 1), (1, 1), (3, 2), (3, 3)]))
def test_matmul(dtype, m, k, n, seed, ranks):
    rng = np.random.default_rng(seed)
    sa = {1: (k,), 2: (m, k), 3: (2, m, k)}[ranks[0]]
    sb = {1: (k,), 2: (k, n), 3: (2, k, n)}[ranks[1]]
    compare(lambda T, a, b: a @ b, [normal(rng, sa), normal(rng, sb)], dtype)
    w, b = normal(rng, (n, k)), normal(rng, (n,))
    compare(lambda T, x, w, b: F(T).linear(x, w, b), [normal(rng, (m, k)), w, b], dtype)


LOSSES = {
    "ce": lambda T, z, y, p: F(T).cross_entropy(z, y),
    "ce_sum": lambda T, z, y, p: F(T).cross_entropy(z, y, reduction="sum"),
    "ce_none": lambda T, z, y, p: F(T).cross_entropy(z, y, reduction="none"),
    "ce_smooth": lambda T, z, y, p: F(T).cross_entropy(z, y, label_smoothing=0.1),
    "ce_ignore": lambda T, z, y, p: F(T).cross_entropy(z, y, ignore_index=1),
    "ce_weight": lambda T, z, y, p: F(T).cross_entropy(z, y, weight=p[0].detach().abs() + 0.1),
    "ce_probs": lambda T, z, y, p: F(T).cross_entropy(z, p.softmax(-1)),
    "ce_probs_smooth": lambda T, z, y, p: F(T).cross_entropy(z, p.softmax(-1),
                                                             label_smoothing=0.2),
    "nll": lambda T, z, y, p: F(T).nll_loss(F(T).log_softmax(z, 1), y),
    "nll_sum": lambda T, z, y, p: F(T).nll_loss(z, y, reduction="sum"),
    "mse": lambda T, z, y, p: F(T).mse_loss(z, p),
    "mse_none": lambda T, z, y, p: F(T).mse_loss(z, p, reduction="none"),
    "l1": lambda T, z, y, p: F(T).l1_loss(z, p),
    "bce_logits": lambda T, z, y, p: F(T).binary_cross_entropy_with_logits(z, p.sigmoid()),
    "bce_logits_none": lambda T, z, y, p: F(T).binary_cross_entropy_with_logits(
        z, p.sigmoid(), reduction="none"),
    "bce": lambda T, z, y, p: F(T).binary_cross_entropy(z.sigmoid(), p.sigmoid()),
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("loss", sorted(LOSSES))
@settings(max_examples=15)
@given(n=st.integers(1, 6), c=st.integers(2, 5), seed=seeds, extra=st.booleans())
def test_losses(loss, dtype, n, c, seed, extra):
    rng = np.random.default_rng(seed)
    shape = (n, c, 2) if extra and loss.startswith(("ce", "nll")) and "probs" not in loss \
        and "weight" not in loss else (n, c)
    z = normal(rng, shape)
    y = rng.integers(0, c, (n,) + shape[2:])
    compare(LOSSES[loss], [z, y, normal(rng, shape)], dtype, float_inputs=(0, 2))


def test_gather():
    rng = np.random.default_rng(0)
    for dim in (0, 1, -1):
        x = normal(rng, (3, 4))
        idx = rng.integers(0, x.shape[dim], (2, 3) if dim == 0 else (3, 2))
        for key in DTYPES:
            compare(lambda T, x, i, d=dim: x.gather(d, i), [x, idx], key, float_inputs=(0,))


def test_creation_matches_pytorch_shapes_and_dtypes():
    for name, args in [("zeros", (2, 3)), ("ones", ((2, 3),)), ("empty", (4,)),
                       ("randn", (2, 3)), ("rand", (3,)), ("eye", (3,)), ("eye", (2, 4))]:
        m, t = getattr(minigrad, name)(*args), getattr(torch, name)(*args)
        assert m.shape == tuple(t.shape) and str(m.dtype) == str(t.dtype).split(".")[1], name
    for args in [(5,), (1, 4), (0, 1, 0.25), (2.0, 5.0), (10, 0, -3)]:
        m, t = minigrad.arange(*args), torch.arange(*args)
        np.testing.assert_allclose(m.numpy(), t.numpy())
        assert str(m.dtype) == str(t.dtype).split(".")[1]
    np.testing.assert_allclose(minigrad.linspace(0, 1, 7).numpy(), torch.linspace(0, 1, 7),
                               rtol=1e-6)
    for fill in (1.5, 3, True):
        m, t = minigrad.full((2,), fill), torch.full((2,), fill)
        assert str(m.dtype) == str(t.dtype).split(".")[1], fill
    r = minigrad.randint(3, 9, (50,))
    assert r.dtype == np.int64 and r.min().item() >= 3 and r.max().item() < 9
    x = minigrad.ones(2, 3, dtype=minigrad.float64)
    for like in ("zeros_like", "ones_like", "rand_like", "randn_like", "empty_like"):
        y = getattr(minigrad, like)(x)
        assert y.shape == x.shape and y.dtype == x.dtype
    assert minigrad.full_like(x, 7).numpy().tolist() == [[7.0] * 3] * 2


def test_manual_seed_repeats_random_draws():
    minigrad.manual_seed(3)
    a = (minigrad.randn(4), minigrad.rand(2), minigrad.randint(0, 10, (3,)))
    minigrad.manual_seed(3)
    b = (minigrad.randn(4), minigrad.rand(2), minigrad.randint(0, 10, (3,)))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(minigrad.randn(4).numpy(), a[0].numpy())
