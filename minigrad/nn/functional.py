"""The functional namespace (``import minigrad.nn.functional as F``):
activations, linear layers, convolution, pooling, batch norm and losses,
including the chapter's mnist_loss."""
from minigrad.ops.activations import (
    dropout,
    elu,
    gelu,
    hardtanh,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from minigrad.ops.conv import (
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    batch_norm_relu,
    conv2d,
    conv2d_relu,
    max_pool2d,
)
from minigrad.ops.linalg import linear, linear_relu, matmul
from minigrad.ops.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mnist_loss,
    mse_loss,
    nll_loss,
)
from minigrad.ops.shape import pad

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "batch_norm_relu",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d", "conv2d_relu",
           "cross_entropy",
           "dropout", "elu", "gelu", "hardtanh", "l1_loss", "leaky_relu", "linear",
           "linear_relu", "log_softmax", "matmul", "max_pool2d", "mnist_loss", "mse_loss",
           "nll_loss", "pad", "relu", "sigmoid", "silu", "softmax", "softplus", "tanh"]
