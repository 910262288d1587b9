"""The safetensors file format (https://github.com/huggingface/safetensors),
read and written through the optional ``safetensors`` package.

A file is an 8-byte little-endian header length, a JSON header giving each
tensor's dtype, shape and byte range (plus an optional ``__metadata__`` object
of strings), then the tensors' bytes. ``read_header`` checks all of that
against the file's size before the package allocates anything."""
import json
import math
import os
import struct

import numpy as np

from minigrad._files import atomic_write

__all__ = ["MAX_HEADER_BYTES", "read", "read_header", "write"]

MAX_HEADER_BYTES = 100_000_000
"""The largest JSON header read (the safetensors package's own limit)."""
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_FLOATS = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}


def _package():
    try:
        import safetensors.numpy
    except ImportError as e:
        raise ImportError("reading or writing .safetensors files needs the safetensors "
                          "package: pip install 'minigrad[safetensors]'") from e
    return safetensors.numpy


def write(path, arrays: dict, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` (and string ``metadata``) to path, atomically."""
    st = _package()
    data = st.save({k: np.asarray(v, order="C") for k, v in arrays.items()},  # 0-d stays 0-d
                   metadata=metadata)
    atomic_write(path, lambda f: f.write(data))


def _entry(name, entry):
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"tensor {name!r}: the header entry must hold exactly dtype, "
                         f"shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _ITEMSIZE:
        raise ValueError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > 32 or not all(
            type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"tensor {name!r}: shape must be a list of sizes, got {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
        raise ValueError(f"tensor {name!r}: data_offsets must be [begin, end], got {offsets!r}")
    nbytes = math.prod(shape) * _ITEMSIZE[dtype]
    if nbytes != offsets[1] - offsets[0]:
        raise ValueError(f"tensor {name!r}: header says {dtype}{shape} ({nbytes} bytes) but "
                         f"its data_offsets span {offsets[1] - offsets[0]}")
    return dtype, shape, offsets


def read_header(path, max_bytes: int) -> tuple[dict, dict]:
    """({name: (dtype, shape, offsets)}, metadata) of a safetensors file, the
    tensors' byte ranges checked to tile the rest of the file exactly and the
    total checked against ``max_bytes``; ValueError on any fault."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise ValueError(f"header length {n} exceeds the {size}-byte file")
        text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise ValueError("the header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ must map names to strings")
    entries = {name: _entry(name, e) for name, e in header.items()}
    end = 0
    for name, (_, _, (begin, stop)) in sorted(entries.items(), key=lambda e: e[1][2]):
        if begin != end:
            raise ValueError(f"tensor {name!r} starts at byte {begin}, not {end}: tensors "
                             f"overlap or leave a gap")
        end = stop
    if end != size - 8 - n:
        raise ValueError(f"the tensors span {end} bytes but the file holds {size - 8 - n} "
                         f"after the header")
    if end > max_bytes:
        raise ValueError(f"holds {end} bytes, more than the limit of {max_bytes}")
    return entries, metadata


def read(path, max_bytes: int) -> tuple[dict, dict]:
    """({name: float array}, metadata) of a safetensors file, checked by
    read_header first; tensors that are not float32/float64 are refused (but
    BatchNorm's int64 num_batches_tracked)."""
    entries, metadata = read_header(path, max_bytes)
    for name, (dtype, _, _) in entries.items():
        if dtype not in _FLOATS and not (dtype == "I64" and name.endswith("num_batches_tracked")):
            raise ValueError(f"tensor {name!r} is {dtype}; minigrad models hold "
                             f"float32 (F32) or float64 (F64)")
    st = _package()
    try:
        arrays = st.load_file(str(path))
    except Exception as e:  # the package's SafetensorError, whatever it wraps
        raise ValueError(f"safetensors could not read it ({e})") from e
    return arrays, metadata
