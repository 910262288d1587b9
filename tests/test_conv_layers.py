"""Convolution, pooling and batch-norm ops and layers: gradchecks in float64,
train/eval behaviour, PyTorch's parameter names and results, bad inputs."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_array, seeds

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def t64(seed, shape, requires_grad=True):
    return mg.tensor(random_array(seed, shape, np.float64), requires_grad=requires_grad)


@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), k=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       bias=st.booleans(), seed=seeds)
def test_conv2d_gradcheck(n, c, o, k, stride, padding, dilation, bias, seed):
    size = (k - 1) * dilation + 2
    x, w = t64(seed, (n, c, size, size + 1)), t64(seed + 1, (o, c, k, k))
    b = t64(seed + 2, (o,)) if bias else None
    geo = dict(stride=stride, padding=padding, dilation=dilation)
    assert mg.gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, **geo), [x, w] + ([b] if bias else []))


@given(k=st.integers(1, 3), stride=st.integers(1, 3), seed=seeds, cip=st.booleans())
def test_pooling_gradcheck(k, stride, seed, cip):
    x = t64(seed, (2, 2, 5, 6))
    p = k // 2
    assert mg.gradcheck(lambda x: F.max_pool2d(x, k, stride, p), [x])
    assert mg.gradcheck(lambda x: F.avg_pool2d(x, k, stride, p, count_include_pad=cip), [x])
    assert mg.gradcheck(lambda x: F.adaptive_avg_pool2d(x, (k + 1, 4)), [x])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fn", [F.batch_norm, F.batch_norm_relu])
def test_batch_norm_gradcheck(training, fn):
    x, w, b = t64(0, (3, 2, 3, 2)), t64(1, (2,)), t64(2, (2,))
    rm, rv = np.zeros(2), np.ones(2)
    assert mg.gradcheck(lambda x, w, b: fn(x, mg.tensor(rm.copy()), mg.tensor(rv.copy()), w, b,
                                           training), [x, w, b])


def test_batch_norm_relu_is_relu_of_batch_norm():
    x = mg.tensor(random_array(0, (4, 3, 5, 5), np.float32))
    y = F.batch_norm_relu(x, None, None, training=True)
    np.testing.assert_allclose(y.numpy(), F.relu(F.batch_norm(x, None, None, training=True))
                               .numpy(), atol=1e-6)


def test_conv2d_layer_matches_pytorch_and_names():
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2))
    tconv = torch.nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2))
    assert [n for n, _ in conv.named_parameters()] == [n for n, _ in tconv.named_parameters()]
    conv.load_state_dict({k: v.detach().numpy() for k, v in tconv.state_dict().items()})
    x = random_array(0, (2, 3, 9, 8), np.float32)
    np.testing.assert_allclose(conv(mg.tensor(x)).numpy(),
                               tconv(torch.tensor(x)).detach().numpy(), atol=1e-5)
    bound = 1 / np.sqrt(3 * 3 * 2)  # PyTorch's default init range
    assert bound / 2 < np.abs(conv.weight.numpy()).max() <= bound


def test_padding_same_keeps_the_size():
    x = mg.tensor(random_array(0, (1, 2, 7, 6), np.float32))
    assert nn.Conv2d(2, 3, 5, padding="same", dilation=2)(x).shape == (1, 3, 7, 6)
    with pytest.raises(ValueError, match="odd effective kernel"):
        nn.Conv2d(2, 3, 4, padding="same")(x)


def test_batch_norm_train_eval_and_running_statistics():
    torch = pytest.importorskip("torch")
    bn, tbn = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    for seed in range(3):
        x = random_array(seed, (4, 3, 5, 5), np.float32) * 2 + 1
        np.testing.assert_allclose(bn(mg.tensor(x)).numpy(),
                                   tbn(torch.tensor(x)).detach().numpy(), atol=1e-5)
    for name, b in tbn.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[name].numpy(), b.numpy(), rtol=1e-6)
    assert int(bn.num_batches_tracked.numpy()) == 3
    bn.eval()
    tbn.eval()
    x = random_array(9, (2, 3, 4, 4), np.float32)
    before = bn.running_mean.numpy().copy()
    np.testing.assert_allclose(bn(mg.tensor(x)).numpy(), tbn(torch.tensor(x)).detach().numpy(),
                               atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)  # eval: no update


def test_batch_norm_cumulative_average_and_no_running_stats():
    bn = nn.BatchNorm2d(2, momentum=None)
    xs = [random_array(s, (3, 2, 4, 4), np.float32) for s in range(3)]
    for x in xs:
        bn(mg.tensor(x))
    want = np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), want, rtol=1e-5)
    free = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert free.state_dict() == {}
    y = free(mg.tensor(xs[0])).numpy()  # eval without running stats: batch statistics
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_sequential_fuses_batch_norm_and_relu():
    x = mg.tensor(random_array(0, (2, 3, 6, 6), np.float32), requires_grad=True)
    bn = nn.BatchNorm2d(3)
    bn.weight.numpy()[:] = [1.0, -2.0, 0.5]
    model = nn.Sequential(bn, nn.ReLU())
    y = model(x)
    assert isinstance(model._plan[0], nn.BatchNormReLU)
    assert y.grad_fn.op == "batch_norm_relu"
    bn2 = nn.BatchNorm2d(3)
    bn2.weight.numpy()[:] = [1.0, -2.0, 0.5]
    want = F.relu(bn2(x))
    np.testing.assert_allclose(y.numpy(), want.numpy(), atol=1e-6)


@pytest.mark.parametrize("layer,shape,match", [
    (lambda: nn.Conv2d(3, 4, 3), (2, 3, 8), "4-D"),
    (lambda: nn.Conv2d(3, 4, 3), (2, 2, 8, 8), "w has 3 input channels but x has 2"),
    (lambda: nn.Conv2d(3, 4, 5), (1, 3, 4, 4), "smaller than 1x1"),
    (lambda: nn.MaxPool2d(3, padding=2), (1, 3, 8, 8), "at most half the kernel"),
    (lambda: nn.AvgPool2d(2, ceil_mode=True), (1, 3, 8, 8), "ceil_mode=True is not supported"),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5), "4 channels, expected num_features=3"),
    (lambda: nn.BatchNorm2d(3), (2, 3), "4-D"),
    (lambda: nn.BatchNorm2d(3), (1, 3, 1, 1), "more than 1 value per channel"),
    (lambda: nn.AdaptiveAvgPool2d(0), (1, 3, 4, 4), "output_size must be >= 1"),
])
def test_bad_inputs_are_clear_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer()(mg.tensor(np.ones(shape, np.float32)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="padding must be >= 0"):
        nn.Conv2d(3, 4, 3, padding=-1)
    with pytest.raises(ValueError, match="groups=2 is not supported"):
        nn.Conv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)


def test_double_casts_parameters_and_running_statistics():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).double()
    bn = model[1]
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    y = model(mg.tensor(random_array(0, (2, 1, 5, 5), np.float64)))
    assert y.dtype == np.float64 and int(bn.num_batches_tracked.numpy()) == 1


def test_conv2d_relu_gradcheck_and_sequential_fusion():
    x, w, b = t64(0, (2, 2, 6, 5)), t64(1, (3, 2, 3, 3)), t64(2, (3,))
    assert mg.gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, padding=1), [x, w, b])
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64)
    model = nn.Sequential(conv, nn.ReLU())
    y = model(x)
    assert isinstance(model._plan[0], nn.Conv2dReLU) and y.grad_fn.op == "conv2d_relu"
    np.testing.assert_array_equal(y.numpy(), F.relu(conv(x)).numpy())
