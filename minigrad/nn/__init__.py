"""Layers (PyTorch's names): Module, Sequential, ModuleList, Linear, Conv2d,
pooling, BatchNorm1d/2d, activations, Flatten, Dropout, Identity and loss
modules; ``nn.functional``."""
from minigrad.nn import functional
from minigrad.nn.conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    BatchNormReLU,
    Conv2d,
    Conv2dReLU,
    MaxPool2d,
)
from minigrad.nn.layers import (
    ELU,
    GELU,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Hardtanh,
    Identity,
    L1Loss,
    LeakyReLU,
    Linear,
    LinearReLU,
    LogSoftmax,
    MSELoss,
    NLLLoss,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.nn.module import Module, ModuleList, Parameter, Sequential

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
           "BatchNorm2d", "BatchNormReLU", "Conv2d", "Conv2dReLU", "CrossEntropyLoss", "Dropout",
           "ELU", "Flatten", "GELU", "Hardtanh", "Identity", "L1Loss", "LeakyReLU", "Linear",
           "LinearReLU", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleList", "NLLLoss",
           "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh",
           "functional"]
