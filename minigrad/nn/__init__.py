"""Layers (PyTorch's names): Module, Sequential, ModuleList, Linear,
activations, Flatten, Dropout, Identity and loss modules; ``nn.functional``."""
from minigrad.nn import functional
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

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU", "Flatten",
           "GELU", "Hardtanh", "Identity", "L1Loss", "LeakyReLU", "Linear", "LinearReLU",
           "LogSoftmax", "MSELoss", "Module", "ModuleList", "NLLLoss", "Parameter", "ReLU",
           "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh", "functional"]
