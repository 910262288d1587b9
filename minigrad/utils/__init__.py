"""PyTorch's ``torch.utils`` namespace, for ported code: ``minigrad.utils.data``."""
from minigrad.utils import data

__all__ = ["data"]
