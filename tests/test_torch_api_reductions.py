"""Reductions take NumPy's ``axis=`` and ``keepdims=`` as aliases of ``dim=`` and
``keepdim=``, as PyTorch's do: checked against NumPy (always) and PyTorch (when
installed), values, shapes and gradients."""
import numpy as np
import pytest

import minigrad as mg

A = np.random.default_rng(0).permutation(24).reshape(2, 3, 4).astype(np.float64) / 7 - 1.5

# name -> NumPy's reduction over (axis, keepdims); max/min along a dim give (values, indices)
NUMPY = {
    "sum": np.sum, "mean": np.mean, "amax": np.amax, "amin": np.amin, "prod": np.prod,
    "argmax": np.argmax, "argmin": np.argmin, "any": lambda a, axis, keepdims:
    np.any(a > 0, axis, keepdims=keepdims), "all": lambda a, axis, keepdims:
    np.all(a > -1, axis, keepdims=keepdims),
    "std": lambda a, axis, keepdims: np.std(a, axis, ddof=1, keepdims=keepdims),
    "var": lambda a, axis, keepdims: np.var(a, axis, ddof=1, keepdims=keepdims),
    "logsumexp": lambda a, axis, keepdims: np.log(np.exp(a).sum(axis, keepdims=keepdims)),
    "max": lambda a, axis, keepdims: np.amax(a, axis, keepdims=keepdims),
    "min": lambda a, axis, keepdims: np.amin(a, axis, keepdims=keepdims),
}
SINGLE_AXIS = {"argmax", "argmin", "prod", "max", "min"}  # these take one dim only


def _input(name, x):
    return x > 0 if name == "any" else x > -1 if name == "all" else x


def _value(out):
    return out.values if isinstance(out, tuple) else out


def _cases(axes):
    """(name, axis) pairs; a tuple of axes only for reductions over several dims."""
    return [(name, axis) for name in sorted(NUMPY) for axis in axes
            if not (name in SINGLE_AXIS and isinstance(axis, tuple))]


@pytest.mark.parametrize(("name", "axis"), _cases([1, -1, (0, 2)]))
@pytest.mark.parametrize("keepdims", [False, True])
def test_axis_and_keepdims_mean_dim_and_keepdim(name, axis, keepdims):
    x = mg.tensor(A)
    out = _value(getattr(_input(name, x), name)(axis=axis, keepdims=keepdims))
    expected = NUMPY[name](A, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    as_function = _value(getattr(mg, name)(_input(name, x), axis=axis, keepdims=keepdims))
    np.testing.assert_array_equal(as_function.numpy(), out.numpy())
    by_dim = _value(getattr(_input(name, x), name)(dim=axis, keepdim=keepdims))
    np.testing.assert_array_equal(by_dim.numpy(), out.numpy())


@pytest.mark.parametrize("kwargs", [dict(axis=1, keepdim=True), dict(dim=1, keepdims=True)])
def test_an_alias_mixes_with_the_other_pytorch_name(kwargs):
    assert mg.tensor(A).sum(**kwargs).shape == (2, 1, 4)
    assert mg.tensor(A).max(**kwargs).indices.shape == (2, 1, 4)


@pytest.mark.parametrize("call", [
    lambda x: x.sum(0, axis=1), lambda x: x.sum(dim=0, axis=1),
    lambda x: x.mean(axis=1, keepdim=True, keepdims=True), lambda x: mg.amax(x, 0, axis=0)])
def test_a_dim_given_twice_is_a_type_error(call):
    with pytest.raises(TypeError, match="alias"):
        call(mg.tensor(A))


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "std", "var", "logsumexp", "prod",
                                  "max"])
def test_gradients_through_axis_keepdims_match_dim_keepdim(name):
    weights = np.random.default_rng(1).standard_normal((2, 1, 4))

    def grad(**kwargs):
        x = mg.tensor(A, requires_grad=True)
        (_value(getattr(x, name)(**kwargs)) * mg.tensor(weights)).sum().backward()
        return x.grad.numpy()
    np.testing.assert_array_equal(grad(axis=1, keepdims=True), grad(dim=1, keepdim=True))
    assert not np.allclose(grad(axis=1, keepdims=True), 0)


def test_mean_gradient_with_axis_and_keepdims():
    x = mg.tensor(A, requires_grad=True)
    x.mean(axis=(0, 2), keepdims=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(A.shape, 1 / 8))


@pytest.mark.parametrize(("name", "axis"), _cases([1, -1, (0, 1)]))
@pytest.mark.parametrize("keywords", [("axis", "keepdims"), ("dim", "keepdims"),
                                      ("axis", "keepdim")])
@pytest.mark.parametrize("keep", [False, True])
def test_against_pytorch(name, axis, keywords, keep):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    kwargs = {keywords[0]: axis, keywords[1]: keep}
    outs, grads = [], []
    for T, x in ((mg, mg.tensor(A, requires_grad=True)),
                 (torch, torch.tensor(A, requires_grad=True))):
        out = _value(getattr(_input(name, x), name)(**kwargs))
        outs.append(np.asarray(out.detach().numpy() if T is torch else out.numpy()))
        if out.dtype in (mg.float64, torch.float64):
            out.sum().backward()
            grads.append(np.asarray(x.grad.numpy()))
    assert outs[0].shape == outs[1].shape
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    if grads:
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
