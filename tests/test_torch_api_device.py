"""Devices as PyTorch names them: minigrad runs on the CPU only, so "cpu",
``device("cpu")`` and None are accepted wherever PyTorch takes a device, and
any other device raises a RuntimeError that says so. Checked against PyTorch
(when installed) for the device objects and ``Tensor.to``'s argument forms."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

CPU_ONLY = "minigrad runs on the CPU only"

CREATORS = {
    "tensor": lambda **kw: mg.tensor([1.0, 2.0], **kw),
    "zeros": lambda **kw: mg.zeros(2, 3, **kw), "ones": lambda **kw: mg.ones((2, 3), **kw),
    "empty": lambda **kw: mg.empty(2, **kw), "full": lambda **kw: mg.full((2,), 7.0, **kw),
    "arange": lambda **kw: mg.arange(0, 4, **kw),
    "linspace": lambda **kw: mg.linspace(0, 1, 5, **kw),
    "eye": lambda **kw: mg.eye(3, **kw), "randn": lambda **kw: mg.randn(2, 2, **kw),
    "rand": lambda **kw: mg.rand(2, **kw), "randint": lambda **kw: mg.randint(0, 9, (3,), **kw),
    "randperm": lambda **kw: mg.randperm(4, **kw),
    "zeros_like": lambda **kw: mg.zeros_like(mg.ones(2), **kw),
    "ones_like": lambda **kw: mg.ones_like(mg.ones(2), **kw),
    "empty_like": lambda **kw: mg.empty_like(mg.ones(2), **kw),
    "rand_like": lambda **kw: mg.rand_like(mg.ones(2), **kw),
    "randn_like": lambda **kw: mg.randn_like(mg.ones(2), **kw),
    "full_like": lambda **kw: mg.full_like(mg.ones(2), 3.0, **kw),
}


@pytest.mark.parametrize("name", sorted(CREATORS))
@pytest.mark.parametrize("device", ["cpu", "cpu:0", mg.device("cpu"), None])
def test_creation_takes_the_cpu_as_device(name, device):
    made = CREATORS[name](device=device)
    assert made.device == mg.device("cpu")
    np.testing.assert_array_equal(made.shape, CREATORS[name]().shape)


@pytest.mark.parametrize("name", sorted(CREATORS))
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps", mg.device("cuda", 1), 0])
def test_creation_on_another_device_says_cpu_only(name, device):
    with pytest.raises(RuntimeError, match=CPU_ONLY):
        CREATORS[name](device=device)


def test_an_unknown_device_name_is_an_error():
    for bad in ("gpu", "CPU", "cuda:x", "float64"):
        with pytest.raises(RuntimeError, match="device"):
            mg.device(bad)
    with pytest.raises(TypeError, match="device"):
        mg.device(1.5)


def test_device_objects():
    cpu = mg.device("cpu")
    assert cpu.type == "cpu" and cpu.index is None and str(cpu) == "cpu"
    assert repr(cpu) == "device(type='cpu')" and mg.device(cpu) == cpu
    assert mg.device("cpu:0") == mg.device("cpu", 0) != cpu
    assert repr(mg.device("cuda", 1)) == "device(type='cuda', index=1)"
    assert len({mg.device("cpu"), mg.device("cpu"), mg.device("cpu:0")}) == 2
    assert cpu != "cpu"  # as in PyTorch: a device is not equal to its name


def test_tensor_device_attributes():
    x = mg.ones(2)
    assert x.device == mg.device("cpu") and x.device.type == "cpu"
    assert x.is_cpu and not x.is_cuda


@pytest.mark.parametrize("args,kwargs", [(("cpu",), {}), ((mg.device("cpu"),), {}),
                                         ((), {"device": "cpu"}), ((mg.float32,), {}),
                                         (("cpu", mg.float32), {}),
                                         ((), {"dtype": mg.float32, "device": None})])
def test_to_without_a_change_returns_the_tensor_itself(args, kwargs):
    x = mg.ones(3)
    assert x.to(*args, **kwargs) is x
    copied = x.to(*args, copy=True, **kwargs)
    assert copied is not x and not np.shares_memory(copied.numpy(), x.numpy())
    np.testing.assert_array_equal(copied.numpy(), x.numpy())
    assert x.cpu() is x


@pytest.mark.parametrize("args,kwargs", [((mg.float64,), {}), (("cpu", mg.float64), {}),
                                         ((mg.device("cpu"),), {"dtype": mg.float64}),
                                         ((), {"device": "cpu", "dtype": mg.float64}),
                                         ((mg.zeros(1, dtype=mg.float64),), {})])
def test_to_casts_differentiably(args, kwargs):
    x = mg.tensor([1.5, -2.0], requires_grad=True)
    y = x.to(*args, **kwargs)
    assert y.dtype == np.float64 and y.tolist() == [1.5, -2.0]
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, -4.0]


@pytest.mark.parametrize("call", [lambda x: x.to("cuda"), lambda x: x.to("mps", mg.float64),
                                  lambda x: x.to(device="cuda:0"), lambda x: x.cuda(),
                                  lambda x: x.to(mg.device("cuda"))])
def test_to_another_device_says_cpu_only(call):
    with pytest.raises(RuntimeError, match=CPU_ONLY):
        call(mg.ones(2))


def test_to_rejects_what_pytorch_rejects():
    x = mg.ones(2)
    with pytest.raises(RuntimeError, match="device"):
        x.to("float64")  # a string names a device, as in PyTorch
    with pytest.raises(TypeError):
        x.to("cpu", mg.float64, True)
    with pytest.raises(TypeError):
        x.to(mg.float64, dtype=mg.float32)
    with pytest.raises(TypeError):
        x.to(pin_memory=True)


def test_module_to_device_and_dtype():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    weight = model[0].weight
    assert model.to("cpu") is model and model.to(mg.device("cpu")) is model
    assert model.cpu() is model and model[0].weight is weight
    assert model.to("cpu", mg.float64) is model and weight.dtype == np.float64
    assert model.to(mg.zeros(1)) is model and weight.dtype == np.float32
    assert model.to(device="cpu", dtype=mg.float64) is model and weight.dtype == np.float64
    for call in (lambda: model.to("cuda"), lambda: model.cuda(), lambda: model.to("mps")):
        with pytest.raises(RuntimeError, match=CPU_ONLY):
            call()
    with pytest.raises(TypeError, match="floating point"):
        model.to(mg.int64)


def test_the_device_picking_line_of_pytorch_code_picks_the_cpu():
    torch = mg
    device = torch.device("cuda" if torch.cuda.is_available() else
                          "mps" if torch.backends.mps.is_available() else "cpu")
    assert device == mg.device("cpu") and torch.cuda.device_count() == 0
    torch.cuda.manual_seed_all(0)
    torch.backends.cudnn.benchmark = True
    model = nn.Linear(2, 1).to(device)
    assert model(torch.ones(4, 2, device=device).to(device)).shape == (4, 1)


@pytest.mark.parametrize("spec", ["cpu", "cpu:0", "cuda", "cuda:1", "mps", "meta"])
def test_device_objects_against_pytorch(spec):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    ours, theirs = mg.device(spec), torch.device(spec)
    assert (repr(ours), str(ours), ours.type, ours.index) == (
        repr(theirs), str(theirs), theirs.type, theirs.index)
    assert (ours == mg.device("cpu")) == (theirs == torch.device("cpu"))


TO_FORMS = [  # each a function of the library: (args, kwargs) for Tensor.to
    lambda T: (("cpu",), {}), lambda T: ((), {"device": T.device("cpu")}),
    lambda T: ((T.float64,), {}), lambda T: (("cpu", T.float64), {}),
    lambda T: ((T.float32,), {"copy": True}), lambda T: ((), {"copy": True}),
    lambda T: ((T.zeros(1, dtype=T.float64),), {}),
    lambda T: (("float64",), {}), lambda T: (("cpu", 1), {}), lambda T: ((), {"dtype": "cpu"}),
    lambda T: (("cpu", "float64"), {}), lambda T: (("cuda:0",), {}),
    lambda T: (("cpu",), {"non_blocking": True}), lambda T: ((T.float64,), {"non_blocking": True}),
]


@pytest.mark.parametrize("form", range(len(TO_FORMS)))
def test_to_forms_against_pytorch(form):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    outcomes = []
    for T in (mg, torch):
        x = T.ones(2)
        args, kwargs = TO_FORMS[form](T)
        try:
            y = x.to(*args, **kwargs)
        except (RuntimeError, TypeError, AssertionError):  # torch without CUDA: AssertionError
            outcomes.append("error")
            continue
        outcomes.append((y is x, str(y.dtype).split(".")[-1], np.shares_memory(
            np.asarray(y.numpy()), np.asarray(x.numpy()))))
    assert outcomes[0] == outcomes[1]
