"""minigrad.models: the layouts and names of torchvision's ResNet and the small
convnet, so that PyTorch state_dicts load and give the same results."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import models


def test_resnet18_has_torchvisions_parameter_count():
    model = models.resnet18()
    assert sum(p.numpy().size for p in model.parameters()) == 11_689_512
    assert len(model.state_dict()) == 122  # 62 parameters, 60 batch-norm buffers
    assert model.fc.weight.shape == (1000, 512)


def test_resnet_width_and_input_channels():
    model = models.resnet18(num_classes=2, in_channels=1, width=8, small_input=True)
    assert model.conv1.weight.shape == (8, 1, 3, 3)
    assert model.layer4[0].downsample[0].weight.shape == (64, 32, 1, 1)
    x = mg.tensor(np.zeros((2, 1, 28, 28), np.float32))
    assert model(x).shape == (2, 2)
    with pytest.raises(ValueError, match="4 block counts"):
        models.ResNet(models.BasicBlock, [2, 2, 2])


@pytest.mark.parametrize("name", ["resnet18", "resnet18_small", "simple_cnn"])
def test_models_load_pytorch_weights_and_agree(name):
    torch = pytest.importorskip("torch")
    import torch_models as T
    torch.manual_seed(0)
    if name == "resnet18":
        m, tm, shape = models.resnet18(10, 3, 16), T.ResNet([2, 2, 2, 2], 10, 3, 16), (2, 3, 64, 64)
    elif name == "resnet18_small":
        m = models.resnet18(2, 1, 8, small_input=True)
        tm, shape = T.ResNet([2, 2, 2, 2], 2, 1, 8, small_input=True), (3, 1, 28, 28)
    else:
        m, tm, shape = models.simple_cnn(width=8), T.simple_cnn(width=8), (4, 1, 28, 28)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    m.eval()
    tm.eval()
    with torch.no_grad():
        want = tm(torch.tensor(x)).numpy()
    np.testing.assert_allclose(m(mg.tensor(x)).numpy(), want, atol=1e-5)
    m.train()
    tm.train()
    y, ty = m(mg.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=1e-4)
    y.sum().backward()
    ty.sum().backward()
    for (n, p), (tn, tp) in zip(m.named_parameters(), tm.named_parameters(), strict=True):
        assert n == tn
        scale = np.abs(tp.grad.numpy()).max() + 1e-12
        np.testing.assert_allclose(p.grad.numpy() / scale, tp.grad.numpy() / scale, atol=1e-4)
    for (n, b), (_, tb) in zip(m.named_buffers(), tm.named_buffers(), strict=True):
        np.testing.assert_allclose(b.numpy(), tb.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)


def test_update_bn_recomputes_running_statistics_as_an_equal_average_of_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 3, 4, 5)).astype(np.float32) for n in (4, 6)]
    model = mg.nn.Sequential(mg.nn.BatchNorm2d(3, momentum=0.3), mg.nn.ReLU())
    bn = model.layers[0]
    bn.running_mean.numpy()[...] = 100.0
    model.eval()
    models.update_bn([(mg.tensor(b), None) for b in batches], model)
    means = [b.mean(axis=(0, 2, 3)) for b in batches]
    variances = [b.var(axis=(0, 2, 3), ddof=1) for b in batches]
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean(variances, axis=0), rtol=1e-5)
    assert bn.momentum == 0.3 and not model.training and int(bn.num_batches_tracked.item()) == 2
