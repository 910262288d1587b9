"""The functional namespace (``import minigrad.nn.functional as F``):
activations, linear layers, convolution, pooling, batch norm and losses,
including the chapter's mnist_loss."""
from minigrad.ops import activations, conv, losses
from minigrad.ops.activations import *  # noqa: F403
from minigrad.ops.conv import *  # noqa: F403
from minigrad.ops.linalg import linear, linear_relu, matmul
from minigrad.ops.losses import *  # noqa: F403
from minigrad.ops.shape import pad

__all__ = ["linear", "linear_relu", "matmul", "pad"]
__all__ += activations.__all__ + conv.__all__ + losses.__all__
