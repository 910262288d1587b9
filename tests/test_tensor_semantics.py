"""PyTorch's storage semantics (.data, in-place ops, version counters), dtype
rules, conversions, and the wrong answers issue 10 listed, each pinned down."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def test_data_is_a_tensor_sharing_storage():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    d = p.data
    assert isinstance(d, mg.Tensor) and not d.requires_grad
    assert d.numpy() is p.numpy() and isinstance(p.numpy(), np.ndarray)
    d[0] = 5.0
    assert p.tolist() == [5.0, 2.0]


def test_chapter_update_rule_changes_the_parameter():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    p.data -= p.grad * 0.5
    np.testing.assert_array_equal(p.numpy(), [0.0, 0.0])
    assert isinstance(p.data, mg.Tensor) and p.requires_grad
    p.grad = None
    with mg.no_grad():
        p -= 1.0
        p[0] *= 3.0
    np.testing.assert_array_equal(p.numpy(), [-3.0, -1.0])


@pytest.mark.parametrize("method,args,want", [
    ("add_", (2.0,), [3.0, 4.0]), ("sub_", (1.0,), [0.0, 1.0]), ("mul_", (3.0,), [3.0, 6.0]),
    ("div_", (2.0,), [0.5, 1.0]), ("zero_", (), [0.0, 0.0]), ("fill_", (7.0,), [7.0, 7.0]),
    ("copy_", (mg.tensor([9.0, 8.0]),), [9.0, 8.0]), ("clamp_", (1.5,), [1.5, 2.0]),
])
def test_in_place_methods_return_self_and_bump_the_version(method, args, want):
    x = mg.tensor([1.0, 2.0])
    v = x._version
    assert getattr(x, method)(*args) is x
    np.testing.assert_array_equal(x.numpy(), want)
    assert x._version > v


def test_augmented_assignment_is_in_place():
    x = mg.tensor([1.0, 2.0])
    storage = x.numpy()
    x += 1
    x *= 2
    x -= mg.tensor([1.0, 1.0])
    x /= 2
    assert x.numpy() is storage
    np.testing.assert_array_equal(storage, [1.5, 2.5])
    i = mg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i /= 2


def test_modifying_a_leaf_that_requires_grad_is_an_error():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    for change in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__setitem__(0, 3.0),
                   lambda: w.mul_(2)):
        with pytest.raises(RuntimeError, match="leaf"):
            change()
    with mg.no_grad():
        w.zero_()
    w.data.fill_(4.0)
    assert w.tolist() == [4.0, 4.0]


def test_tensor_saved_for_backward_and_modified_makes_backward_fail():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.zero_()  # x was saved by mul
    with pytest.raises(RuntimeError, match="mul.*modified by an in-place.*version 1"):
        y.backward()
    h = w.exp()
    z = h.sum()
    h.data.mul_(2)  # exp saves its output; .data shares its version counter
    with pytest.raises(RuntimeError, match="exp"):
        z.backward()
    a = w * 1
    s = (a + 1).sum()  # add saves nothing: modifying a afterwards is fine
    a.data.zero_()
    s.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_in_place_on_a_graph_tensor_joins_the_graph():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2
    h.mul_(w)      # h = 2 w^2
    h += 1
    h[0] = h[0] * 3  # h0 = 6 w0^2 + 3
    h.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [12.0 * 1.0, 4.0 * 2.0])
    v = mg.tensor([5.0], requires_grad=True)
    t = mg.zeros(3)
    t[1:2] = v * 2
    t.sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [2.0])
    u = mg.tensor([1.0, 2.0], requires_grad=True)
    h = u * 1
    y = h + 2      # uses h's value before the in-place change
    h.mul_(2)
    h.mul_(h)      # h = (2u)^2
    (y + h).sum().backward()
    np.testing.assert_allclose(u.grad.numpy(), [1 + 8.0 * 1.0, 1 + 8.0 * 2.0])


def test_views_share_the_version_counter_and_refuse_graph_writes():
    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = w.exp()
    loss = h.sum()
    with mg.no_grad():
        h.reshape(-1)[0] = 0.0  # a view: h's version moves too
    with pytest.raises(RuntimeError, match="exp"):
        loss.backward()
    with pytest.raises(RuntimeError, match="view"):
        (w * 1)[0].mul_(2)
    t = mg.zeros(3)
    with pytest.raises(RuntimeError, match="view"):
        t[1:2].copy_(w[0, :1] * 2)
    y = w.detach().flip(0)  # flip copies, as in PyTorch
    y.zero_()
    assert w.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    out = mg.nn.functional.linear_relu(mg.ones(1, 2), w)
    s = out.sum()
    out.data.zero_()  # linear_relu's backward reads its output
    with pytest.raises(RuntimeError, match="linear_relu"):
        s.backward()


def test_dtype_rules_follow_pytorch():
    f32, i64 = mg.tensor([1.0, 2.0]), mg.tensor([1, 2])
    assert f32.dtype == np.float32 and i64.dtype == np.int64
    assert (f32 * 1.5).dtype == np.float32 and (1.5 + f32).dtype == np.float32
    assert (i64 + 1).dtype == np.int64 and (i64 * 2).dtype == np.int64
    assert (i64 + 1.5).dtype == np.float32
    assert (i64 / i64).dtype == np.float32 and (i64 / 2).dtype == np.float32
    assert (f32 + mg.tensor(2.0, dtype=np.float64)).dtype == np.float32  # 0-d does not upcast
    assert (f32 + mg.tensor([2.0], dtype=np.float64)).dtype == np.float64
    assert (f32 + i64).dtype == np.float32
    u = mg.tensor(np.array([250, 3], np.uint8))
    assert (u + 10).dtype == np.uint8 and (u + 10).tolist() == [4, 13]  # wraps
    assert (u > 5).dtype == np.bool_
    assert mg.tensor([True]).dtype == np.bool_
    assert mg.randn(2).dtype == np.float32 and mg.arange(3).dtype == np.int64
    image = pytest.importorskip("PIL.Image").fromarray(np.full((2, 3), 200, np.uint8))
    assert mg.tensor(image).dtype == np.uint8  # image data stays uint8
    assert mg.tensor(np.float64(1.0)).dtype == np.float64


def test_one_element_conversions():
    t = mg.tensor([[2.5]])
    assert f"{t:.3f}" == "2.500" and float(t) == 2.5 and int(t) == 2
    assert t.item() == 2.5 and t.dim() == 2 and t.size() == (1, 1) and t.size(0) == 1
    assert [10, 20, 30][mg.tensor(1)] == 20
    with pytest.raises(TypeError, match="integer"):
        [1, 2][mg.tensor(1.0)]
    with pytest.raises(ValueError, match="one element"):
        float(mg.tensor([1.0, 2.0]))
    assert mg.tensor([1, 2]).type() == "minigrad.LongTensor"
    assert mg.tensor([1, 2]).type(mg.float32).dtype == np.float32
    c = t.clone()
    c += 1
    assert t.item() == 2.5 and c.item() == 3.5
    assert mg.tensor([[1, 2]]).tolist() == [[1, 2]]


def test_issue_10_wrong_answers():
    x = mg.tensor(np.arange(6.0).reshape(1, 2, 3), requires_grad=True)
    x.permute(-1, 0, -2).sum().backward()
    assert x.grad.shape == (1, 2, 3)
    z, t = mg.tensor([0.5, -1.0], requires_grad=True), mg.tensor([0.2, 0.9], requires_grad=True)
    F.binary_cross_entropy_with_logits(z, t).backward()
    np.testing.assert_allclose(t.grad.numpy(), [-0.25, 0.5])
    assert mg.where(mg.tensor([True, False]), 4, 2).tolist() == [4, 2]
    s = mg.tensor(3.0, requires_grad=True)
    s.sum(0).backward()
    s.sum(-1).backward()
    assert s.grad.item() == 2.0 and s.squeeze(0).shape == () and s.unsqueeze(0).shape == (1,)
    a, b = mg.tensor([1.0, 2.0], requires_grad=True), mg.tensor([1.0, 3.0], requires_grad=True)
    mg.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]
    r = mg.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    r.max(mg.tensor(0.0)).sum().backward()
    assert r.grad.tolist() == [0.0, 0.5, 1.0]  # torch.maximum at the tie, not relu's 0
    p = mg.tensor([0.0, 2.0], requires_grad=True)
    (p ** 0).sum().backward()
    assert p.grad.tolist() == [0.0, 0.0]
    assert np.isnan(mg.zeros(0).mean().item())
    m = mg.tensor([[1, 2, 3], [4, 5, 6]])
    assert m.transpose(0, 1).tolist() == [[1, 4], [2, 5], [3, 6]]
    cube = mg.tensor(np.arange(24).reshape(2, 3, 4))
    assert cube[0, :, mg.tensor([1, 2])].shape == (3, 2)  # NumPy would give (2, 3)
    assert cube[:, mg.tensor([0, 2]), 1].shape == (2, 2)


def test_masks_combine_and_device_calls_are_no_ops():
    a, b = mg.tensor([1.0, -2.0, 3.0]), mg.tensor([0.0, 1.0, 1.0])
    assert ((a > 0) & (b > 0)).tolist() == [False, False, True]
    assert ((a > 0) | (b > 0)).tolist() == [True, True, True]
    assert (~(a > 0)).tolist() == [False, True, False]
    with pytest.raises(TypeError, match="bool or integer"):
        a & b
    assert a.to("cpu") is a and a.cpu().detach().numpy() is a.numpy()
    assert a.device == mg.device("cpu")
    assert mg.is_tensor(a) and not mg.is_tensor(a.numpy())


def test_grad_mode_switches():
    w = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        assert not (w * 2).requires_grad
        with mg.enable_grad():
            assert (w * 2).requires_grad
        with mg.set_grad_enabled(True):
            assert (w * 2).requires_grad
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert nn.ReLU(inplace=True)(mg.tensor([-1.0])).tolist() == [0.0]


def test_bad_input_gets_clear_errors():
    x = mg.randn(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        x.sum(2)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(TypeError, match="class indices"):
        F.nll_loss(x, mg.tensor([0.5, 1.0]))
    with pytest.raises(IndexError, match="target values"):
        F.cross_entropy(x, mg.tensor([0, 3]), reduction="sum")


def test_mean_of_integers_is_an_error_and_dims_must_be_distinct():
    with pytest.raises(TypeError, match="floating"):
        mg.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="more than once"):
        mg.randn(2, 3).sum((1, -1))


def _import_graph():
    """minigrad module -> the minigrad modules it imports anywhere (lazy imports too)."""
    import ast
    import pathlib
    root = pathlib.Path(mg.__file__).parent
    names = {".".join(("minigrad",) + p.relative_to(root).with_suffix("").parts).removesuffix(
        ".__init__"): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in names.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)  # `from pkg import sub` runs pkg/__init__ too
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in names and d != name}
    return graph


def test_no_import_cycle_among_autograd_modules():
    graph = _import_graph()
    # import nothing from minigrad
    leaves = {"minigrad.grad_mode", "minigrad._tensor_ops", "minigrad._device"}
    assert not graph["minigrad.tensor"] - leaves, graph["minigrad.tensor"]
    assert not set().union(*(graph[m] for m in leaves))
    core = {m for m in graph if m.startswith(("minigrad.ops", "minigrad.nn", "minigrad.tensor",
                                              "minigrad.gradcheck",
                                              "minigrad.metrics"))}
    for m in core:
        assert not {d for d in graph[m] if d.startswith(("minigrad.learner", "minigrad.cli",
                                                         "minigrad.optim"))}, m
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for d in sorted(graph[m]):
            if d != "minigrad":  # the package itself is the entry point
                visit(d, path + [m])
        state[m] = "done"
    for m in sorted(graph):  # every module, not only the core
        visit(m, [])


def test_no_autograd_module_over_400_lines():
    import pathlib
    root = pathlib.Path(mg.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in root.rglob("*.py")
             if p.parent.name in ("ops", "nn") or p.name == "tensor.py"}
    assert max(sizes.values()) <= 400, sizes


def test_linear_subclass_with_its_own_forward_is_not_fused():
    class Scaled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    mg.manual_seed(0)
    model = nn.Sequential(Scaled(3, 2), nn.ReLU())
    x = mg.randn(4, 3)
    want = (x @ model[0].weight.T + model[0].bias) * 2
    np.testing.assert_allclose(model(x).numpy(), np.maximum(want.numpy(), 0), rtol=1e-6)
    plain = nn.Sequential(nn.Linear(3, 2), nn.ReLU()).fuse()
    assert isinstance(plain._plan[0], nn.LinearReLU)


def test_repr_names_the_dtype_unless_pytorch_leaves_it_implied():
    assert repr(mg.tensor([1.5])) == "tensor([1.5])"
    assert repr(mg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(mg.tensor([True])) == "tensor([ True])"
    assert repr(mg.tensor([1.5], dtype=mg.float64)) == "tensor([1.5], dtype=minigrad.float64)"
    assert repr(mg.tensor([1], dtype=mg.int32)) == "tensor([1], dtype=minigrad.int32)"
    x = mg.tensor([1.0], dtype=mg.float64, requires_grad=True)
    assert repr(x) == "tensor([1.], dtype=minigrad.float64, requires_grad=True)"
    assert eval(repr(mg.tensor([2.0], dtype=mg.float64)), {"tensor": mg.tensor,
                                                           "minigrad": mg}).dtype == mg.float64


def test_grad_modes_are_decorators_with_or_without_the_call_and_act_only_when_entered():
    w = mg.tensor([1.0], requires_grad=True)

    @mg.no_grad
    def bare(x):
        return x * 2

    @mg.no_grad()
    def called(x, depth=0):
        return called(x, depth - 1) if depth else (x * 2, mg.is_grad_enabled())

    @mg.enable_grad
    def inside(x):
        return x * 2

    assert not bare(w).requires_grad and bare.__name__ == "bare"
    out, enabled = called(w, depth=3)
    assert not out.requires_grad and not enabled
    assert mg.is_grad_enabled()
    with mg.no_grad():
        assert inside(w).requires_grad and not (w * 2).requires_grad
    context = mg.enable_grad()
    with mg.no_grad():
        mg.enable_grad()  # made, never entered: changes nothing, as in PyTorch
        assert not mg.is_grad_enabled()
        with context, context:
            assert mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_gather_refuses_an_index_modified_after_the_forward_pass():
    """As in PyTorch: gather saves its index for backward."""
    x = mg.tensor(np.arange(12.0, dtype=np.float32).reshape(4, 3), requires_grad=True)
    i = mg.tensor([[0], [1], [2], [0]])
    r = x.gather(1, i)
    i.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        r.sum().backward()
    x.grad = None
    r = x.gather(1, mg.tensor([[0], [1], [2], [0]]))
    r.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])


def test_one_grad_mode_instance_nests_and_each_thread_starts_recording():
    import threading

    off, on = mg.no_grad(), mg.enable_grad()
    with off:
        with on:
            with off:
                assert not mg.is_grad_enabled()
            assert mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
        seen = []
        worker = threading.Thread(target=lambda: seen.append(mg.is_grad_enabled()))
        worker.start()
        worker.join()
        assert seen == [True]
    assert mg.is_grad_enabled()


def test_sequential_replans_when_its_layer_list_changes():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    x = mg.randn(4, 3)
    net(x)
    net.layers[1] = nn.Sigmoid()
    with mg.no_grad():
        y = net(x)
    lin = net.layers[0]
    z = x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(y.numpy(), 1 / (1 + np.exp(-z)), rtol=1e-5)
