"""Devices, as PyTorch names them: minigrad computes on the CPU only, so
``device("cpu")`` (or None) is accepted wherever PyTorch takes a device and
any other device raises a RuntimeError saying so. ``cuda.is_available()`` and
``backends.mps.is_available()`` are False, so the usual device-picking line
of PyTorch code chooses the CPU. Imports nothing from minigrad."""
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["backends", "check", "cuda", "device", "to_args"]

# the device types PyTorch knows (a device of any of them can be named, not used)
_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "ipu", "mkldnn", "opengl",
          "opencl", "ideep", "ve", "fpga", "maia", "lazy", "vulkan", "hpu", "mtia",
          "privateuseone")


class device:  # noqa: N801 - PyTorch's name
    """A device: ``device("cpu")``, ``device("cuda:1")``, ``device("cpu", 0)``.
    Any device PyTorch knows can be named; only the CPU can hold tensors."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index  # noqa: A001
        elif isinstance(type, (int, np.integer)) and not isinstance(type, bool):
            type, index = "cuda", int(type)  # noqa: A001 - an accelerator's ordinal
        elif not isinstance(type, str):
            raise TypeError(f"device() takes a string, a device or an int, "
                            f"got {type.__class__.__name__}")
        elif ":" in type:
            if index is not None:
                raise RuntimeError(f"device(): the index is given twice: {type!r} and {index}")
            type, _, ordinal = type.partition(":")  # noqa: A001
            if not ordinal.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{ordinal}'")
            index = int(ordinal)
        if type not in _TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_TYPES)} device type at start of "
                               f"device string: {type}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = type, index

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, device) and self.type == other.type
                and self.index == other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{extra})"


CPU = device("cpu")


def check(where: Any) -> device:
    """The device named by ``where`` (None means the CPU); RuntimeError unless it is the CPU."""
    if where is None:
        return CPU
    where = device(where)
    if where.type != "cpu":
        raise RuntimeError(f"minigrad runs on the CPU only; device '{where}' is not available "
                           f"(use device='cpu' or leave the device out)")
    return where


def _is_dtype(x: Any) -> bool:
    if isinstance(x, (str, int, device)) or x is None:
        return False
    try:
        np.dtype(x)
    except TypeError:
        return False
    return True


def to_args(args: tuple, kwargs: dict) -> tuple[Any, bool]:
    """``(dtype or None, copy)`` from the arguments of PyTorch's ``Tensor.to`` /
    ``Module.to`` without a tensor among them: ``to(dtype)``, ``to(device)``,
    ``to(device, dtype)`` and the keywords device, dtype, copy, non_blocking
    (ignored here), memory_format (ignored); a device must be the CPU."""
    kwargs = dict(kwargs)
    unknown = set(kwargs) - {"device", "dtype", "copy", "non_blocking", "memory_format"}
    if unknown:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(unknown)}")
    if len(args) > 2:
        raise TypeError(f"to() takes at most a device and a dtype, got {len(args)} arguments")
    positional = {}
    if args and _is_dtype(args[0]):
        positional["dtype"] = args[0]
        if len(args) > 1:
            raise TypeError("to(dtype) takes no second positional argument (to(device, dtype))")
    elif args:
        positional["device"] = args[0]
        if len(args) > 1:
            positional["dtype"] = args[1]
    for name in positional.keys() & kwargs.keys():
        raise TypeError(f"to() got {name} both as an argument and as a keyword")
    kwargs.update(positional)
    check(kwargs.get("device"))
    dtype = kwargs.get("dtype")
    if dtype is not None and not _is_dtype(dtype):
        raise TypeError(f"to(): {dtype!r} is not a dtype")
    return (None if dtype is None else np.dtype(dtype)), bool(kwargs.get("copy", False))


def _false(*_args: Any) -> bool:
    return False


def _nothing(*_args: Any) -> None:
    return None


#: ``torch.cuda`` stand-in: no CUDA device is ever available
cuda = SimpleNamespace(is_available=_false, is_initialized=_false, device_count=lambda: 0,
                       manual_seed=_nothing, manual_seed_all=_nothing, synchronize=_nothing,
                       empty_cache=_nothing)
#: ``torch.backends`` stand-in: no MPS; cudnn's flags can be set (and change nothing)
backends = SimpleNamespace(mps=SimpleNamespace(is_available=_false, is_built=_false),
                           cudnn=SimpleNamespace(is_available=_false, enabled=True,
                                                 benchmark=False, deterministic=False))
