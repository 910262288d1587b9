"""Layers (PyTorch's names): Module, Sequential, ModuleList, Linear, Conv2d,
pooling, BatchNorm1d/2d, activations, Flatten, Dropout, Identity and loss
modules; ``nn.functional``."""
from minigrad.nn import conv, functional, layers
from minigrad.nn.conv import *  # noqa: F403
from minigrad.nn.layers import *  # noqa: F403
from minigrad.nn.module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "functional"]
__all__ += conv.__all__ + layers.__all__
