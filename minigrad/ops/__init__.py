"""Every differentiable operation, forward and backward side by side, split by
concept; importing this package binds them to Tensor as methods (Tensor never
imports ops)."""
from minigrad.ops import (
    activations,
    conv,
    creation,
    elementwise,
    indexing,
    inplace,
    linalg,
    losses,
    reductions,
    shape,
)
from minigrad.ops.activations import *  # noqa: F403
from minigrad.ops.conv import *  # noqa: F403
from minigrad.ops.creation import *  # noqa: F403
from minigrad.ops.elementwise import *  # noqa: F403
from minigrad.ops.indexing import *  # noqa: F403
from minigrad.ops.linalg import *  # noqa: F403
from minigrad.ops.losses import *  # noqa: F403
from minigrad.ops.reductions import *  # noqa: F403
from minigrad.ops.shape import *  # noqa: F403
from minigrad.tensor import Tensor

_MODULES = (activations, conv, creation, elementwise, indexing, inplace, linalg, losses, reductions,
            shape)

for _module in _MODULES:
    for _name, _fn in getattr(_module, "METHODS", {}).items():
        setattr(Tensor, _name, _fn)
for _name, _fn in shape.PROPERTIES.items():
    setattr(Tensor, _name, property(_fn))

__all__ = sorted({fn.__name__ for m in _MODULES for fn in getattr(m, "FUNCTIONS", ())})
