"""nn modules: names and layouts as PyTorch's (state_dict round trips through a
real torch.nn.Sequential), train/eval, Dropout, ModuleList, loss modules, and
the fused fast path."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import kernels as K
from minigrad import nn
from minigrad.nn import functional as F


def mlp():
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(),
                         nn.Linear(4, 3))


def test_named_parameters_and_state_dict_use_pytorch_names():
    model = mlp()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    state = model.state_dict()
    assert list(state) == names and state["0.weight"].shape == (5, 6)
    assert all(isinstance(v, mg.Tensor) and not v.requires_grad for v in state.values())
    state["0.bias"].fill_(0.0)  # a copy: the model is unchanged
    assert np.any(model[0].bias.numpy() != 0)
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.ModuleList([nn.Linear(2, 1)]))
    assert [n for n, _ in nested.named_parameters()] == [
        "0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias"]


def test_state_dict_round_trips_through_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no parity oracle")
    mg.manual_seed(0)
    model = mlp()
    ref = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4),
                              torch.nn.Tanh(), torch.nn.Linear(4, 3))
    ref.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    np.testing.assert_allclose(model(mg.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)
    for p in ref.parameters():  # and back
        torch.nn.init.normal_(p)
    back = mlp()
    back.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    with torch.no_grad():
        want = ref(torch.tensor(x)).numpy()
    np.testing.assert_allclose(back(mg.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_load_state_dict_checks_names_and_shapes():
    model = mlp()
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing.*4.bias"):
        model.load_state_dict({k: v for k, v in state.items() if k != "4.bias"})
    state["0.weight"] = mg.zeros(6, 5)
    with pytest.raises(ValueError, match="0.weight: expected shape"):
        model.load_state_dict(state)


def test_train_eval_and_dropout():
    mg.manual_seed(1)
    model = nn.Sequential(nn.Linear(50, 50), nn.Dropout(0.5))
    assert model.training and model[1].training
    x = mg.ones(20, 50)
    out = model(x)
    zeros = (out.numpy() == 0).mean()
    assert 0.3 < zeros < 0.7
    kept = model[0](x).numpy() * 2
    np.testing.assert_allclose(out.numpy()[out.numpy() != 0], kept[out.numpy() != 0], rtol=1e-6)
    assert model.eval() is model and not model[1].training
    np.testing.assert_array_equal(model(x).numpy(), model[0](x).numpy())
    model.train()
    assert model[1].training
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = mg.ones(4, 30, requires_grad=True)
    y = F.dropout(x, 0.25)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.numpy())


@pytest.mark.parametrize("make,ref", [
    (nn.Tanh, np.tanh),
    (lambda: nn.LeakyReLU(0.1), lambda a: np.where(a > 0, a, 0.1 * a)),
    (nn.GELU, lambda a: F.gelu(mg.tensor(a)).numpy()),
    (nn.SiLU, lambda a: a / (1 + np.exp(-a))),
    (lambda: nn.Softmax(dim=1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True)),
    (lambda: nn.LogSoftmax(1), lambda a: a - np.log(np.exp(a).sum(1, keepdims=True))),
    (nn.Identity, lambda a: a),
    (nn.Flatten, lambda a: a.reshape(len(a), -1)),
    (nn.Sigmoid, lambda a: 1 / (1 + np.exp(-a))),
])
def test_activation_modules(make, ref):
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(make()(mg.tensor(a)).numpy(), ref(a), rtol=1e-5, atol=1e-6)


def test_flatten_keeps_the_batch_dim():
    assert nn.Flatten()(mg.zeros(2, 3, 4)).shape == (2, 12)
    assert nn.Flatten(0)(mg.zeros(2, 3, 4)).shape == (24,)
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_loss_modules_match_functional():
    rng = np.random.default_rng(0)
    z = mg.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 3, 5))
    p = mg.tensor(rng.random((5, 3)).astype(np.float32))
    assert nn.CrossEntropyLoss()(z, y).item() == F.cross_entropy(z, y).item()
    assert nn.CrossEntropyLoss(label_smoothing=0.1)(z, y).item() == pytest.approx(
        F.cross_entropy(z, y, label_smoothing=0.1).item())
    assert nn.MSELoss(reduction="sum")(z, p).item() == pytest.approx(((z - p) ** 2).sum().item())
    assert nn.L1Loss()(z, p).item() == pytest.approx((z - p).abs().mean().item())
    assert nn.BCEWithLogitsLoss()(z, p).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(z, p).item())
    assert nn.NLLLoss()(z.log_softmax(1), y).item() == pytest.approx(F.cross_entropy(z, y).item())


def test_module_list_registers_parameters():
    class Net(nn.Module):
        def __init__(self):
            self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])
            self.head = nn.Linear(3, 1)

        def forward(self, x):
            for b in self.blocks:
                x = b(x).relu()
            return self.head(x)

    net = Net()
    assert [n for n, _ in net.named_parameters()][:2] == ["blocks.0.weight", "blocks.0.bias"]
    assert len(net.parameters()) == 6 and len(net.blocks) == 2
    net(mg.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    assert not net.blocks[1].training


def test_sequential_runs_linear_relu_on_the_fused_kernel(monkeypatch):
    calls = []
    real = K.linear

    def spy(*args, **kwargs):
        calls.append(kwargs.get("relu", False))
        return real(*args, **kwargs)
    monkeypatch.setattr(K, "linear", spy)
    model = mlp()
    model(mg.randn(2, 6))
    assert calls == [True, False, False]
    assert len(model) == 5 and isinstance(model[1:3], nn.Sequential)


def test_module_dtype_and_freezing():
    model = mlp().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model(mg.randn(2, 6, dtype=mg.float64)).dtype == np.float64
    assert mg.gradcheck(lambda *ps: model(mg.ones(2, 6, dtype=mg.float64)).sum(),
                        model.parameters())
    model.zero_grad()
    model[0].requires_grad_(False)
    assert [n for n, _ in model.named_parameters()][:2] == ["0.weight", "0.bias"]
    model(mg.randn(2, 6, dtype=mg.float64)).sum().backward()
    assert model[0].weight.grad is None and model[2].weight.grad is not None
    with pytest.raises(TypeError, match="floating"):
        model.to(np.int64)
