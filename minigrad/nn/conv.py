"""Convolution, pooling and batch-norm layers over NCHW tensors (PyTorch's
names, arguments, parameter names and initialisation)."""
import numpy as np

import minigrad.nn.functional as F
from minigrad.nn.layers import ReLU
from minigrad.nn.module import Module, Parameter, runs_as
from minigrad.ops.creation import generator
from minigrad.tensor import Tensor


def _pair(v, name):
    pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(pair) != 2 or not all(isinstance(e, (int, np.integer)) for e in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return tuple(int(e) for e in pair)


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels, kh, kw) and bias drawn
    from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's default (from ``rng``,
    else minigrad's generator). groups=1 and padding_mode='zeros' only."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32,
                 rng=None):
        if groups != 1:
            raise ValueError(f"Conv2d: groups={groups} is not supported (only 1)")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: padding_mode={padding_mode!r} is not supported "
                             f"(only 'zeros')")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d: in_channels and out_channels must be >= 1, got "
                             f"{in_channels} and {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError("Conv2d: kernel_size, stride and dilation must be >= 1")
        if not isinstance(self.padding, str) and min(self.padding) < 0:
            raise ValueError(f"Conv2d: padding must be >= 0, got {padding!r}")
        rng = rng if rng is not None else generator()
        bound = 1.0 / np.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (out_channels, in_channels) + self.kernel_size
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) \
            if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def fuse_with(self, following):
        """Conv2d then ReLU (neither overridden) -> Conv2dReLU, one kernel each way."""
        if runs_as(self, Conv2d) and isinstance(following, ReLU) and runs_as(following, ReLU):
            return Conv2dReLU(self)
        return None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2dReLU(Module):
    """relu(conv(x)) with the ReLU fused into the convolution, sharing its parameters."""

    def __init__(self, conv):
        self.conv = conv

    def forward(self, x):
        c = self.conv
        return F.conv2d_relu(x, c.weight, c.bias, c.stride, c.padding, c.dilation)


class MaxPool2d(Module):
    """Max pooling (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, dilation={self.dilation}")


class AvgPool2d(Module):
    """Average pooling (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}")


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _BatchNorm(Module):
    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, dtype=np.float32):
        if num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be >= 1, got "
                             f"{num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        """running_mean 0, running_var 1, num_batches_tracked 0 (PyTorch's)."""
        if self.running_mean is not None:
            self.running_mean._a[...] = 0
            self.running_var._a[...] = 1
            self.num_batches_tracked._a[...] = 0

    def _check(self, x):
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected a {self._ndims[0]}-D input, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[1]} channels, "
                             f"expected num_features={self.num_features}")

    def _run(self, x, fn):
        self._check(x)
        momentum = self.momentum
        if self.training and self.running_mean is not None:
            self.num_batches_tracked._a[...] += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked._a)
        # without running statistics, eval mode normalizes with the batch's too
        training = self.training or self.running_mean is None
        return fn(x, self.running_mean, self.running_var, self.weight, self.bias, training,
                  momentum or 0.0, self.eps)

    def forward(self, x):
        return self._run(x, F.batch_norm)

    def forward_relu(self, x):
        """relu(self(x)), fused into one kernel each way."""
        return self._run(x, F.batch_norm_relu)

    def fuse_with(self, following):
        """BatchNorm then ReLU (neither overridden) -> one fused kernel each way."""
        if (runs_as(self, _BatchNorm) and isinstance(following, ReLU)
                and runs_as(following, ReLU)):
            return BatchNormReLU(self)
        return None

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W): batch statistics in training
    mode (updating running_mean/running_var), running statistics in eval mode."""
    _ndims = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C)."""
    _ndims = (2,)


class BatchNormReLU(Module):
    """relu(batchnorm(x)) on one kernel each way, sharing the BatchNorm's state."""

    def __init__(self, bn):
        self.bn = bn

    def forward(self, x):
        return self.bn.forward_relu(x)


__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "BatchNormReLU",
           "Conv2d", "Conv2dReLU", "MaxPool2d"]
