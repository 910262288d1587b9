"""Convolutional models with PyTorch's (torchvision's) layout and parameter
names, so that their state_dicts load into one another: a small convnet and
ResNets built from BasicBlocks (resnet18's layout, width and input channels
configurable)."""
import numpy as np

from minigrad import nn
from minigrad.grad_mode import no_grad
from minigrad.nn import functional as F
from minigrad.nn.conv import _BatchNorm
from minigrad.ops.creation import generator


def _kaiming_fan_out(conv, rng):
    """torchvision's ResNet init: normal with std sqrt(2 / fan_out)."""
    o, _, kh, kw = conv.weight.shape
    std = np.sqrt(2.0 / (o * kh * kw))
    conv.weight.numpy()[...] = rng.normal(0.0, std, conv.weight.shape)


def simple_cnn(in_channels=1, num_classes=10, width=32, *, dtype=np.float32, rng=None):
    """Three 3x3 conv-batchnorm-ReLU stages (width, 2 width, 4 width channels;
    2x2 max pooling after the first two), global average pooling and a linear
    classifier: 94k parameters at width 32, for 28x28 digits."""
    kw = dict(dtype=dtype, rng=rng)
    layers, c = [], in_channels
    for i, out in enumerate((width, 2 * width, 4 * width)):
        layers += [nn.Conv2d(c, out, 3, padding=1, bias=False, **kw),
                   nn.BatchNorm2d(out, dtype=dtype), nn.ReLU()]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes, **kw)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection
    (torchvision.models.resnet.BasicBlock)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, *, dtype=np.float32,
                 rng=None):
        kw = dict(bias=False, dtype=dtype, rng=rng)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, **kw)
        self.bn1 = nn.BatchNorm2d(planes, dtype=dtype)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, **kw)
        self.bn2 = nn.BatchNorm2d(planes, dtype=dtype)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.bn1.forward_relu(self.conv1(x))  # relu(bn1(.)) fused
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout: conv1 (7x7, stride 2), bn1, relu, maxpool,
    layer1..layer4 (width, 2, 4, 8 x width channels; strides 1, 2, 2, 2),
    avgpool, fc. ``small_input=True`` makes conv1 a 3x3 stride-1 convolution
    without the max pool, for 28x28 or 32x32 images."""

    def __init__(self, block, layers, num_classes=1000, in_channels=3, width=64,
                 small_input=False, *, dtype=np.float32, rng=None):
        if len(layers) != 4:
            raise ValueError(f"ResNet: layers must list 4 block counts, got {layers!r}")
        self._kw = dict(dtype=dtype, rng=rng)
        self.inplanes = width
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False, **self._kw)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False, **self._kw)
        self.bn1 = nn.BatchNorm2d(width, dtype=dtype)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes, **self._kw)
        init_rng = rng if rng is not None else generator()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _kaiming_fan_out(m, init_rng)

    def _make_layer(self, block, planes, blocks, stride=1):
        dtype = self._kw["dtype"]
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False,
                          **self._kw),
                nn.BatchNorm2d(planes * block.expansion, dtype=dtype))
        layers = [block(self.inplanes, planes, stride, downsample, **self._kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **self._kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.bn1.forward_relu(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes=1000, in_channels=3, width=64, small_input=False, **kwargs):
    """ResNet-18: BasicBlocks [2, 2, 2, 2] (11.7M parameters at width 64)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, width, small_input,
                  **kwargs)


def resnet34(num_classes=1000, in_channels=3, width=64, small_input=False, **kwargs):
    """ResNet-34: BasicBlocks [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, width, small_input,
                  **kwargs)


def update_bn(loader, model):
    """Recompute every batch norm's running statistics with the model as it is
    now (PyTorch's torch.optim.swa_utils.update_bn): statistics reset, then one
    pass over ``loader`` (batches, or (input, ...) lists) in training mode
    without gradients, averaging all batches equally (momentum None). The
    model's mode and the layers' momenta are restored."""
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and
           m.running_mean is not None]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)


__all__ = ["BasicBlock", "ResNet", "resnet18", "resnet34", "simple_cnn", "update_bn"]
