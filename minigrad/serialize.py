"""Models on disk: an .npz file holding the architecture as JSON, metadata as
JSON, and every parameter array.

Loading trusts nothing in the file: every array header is checked against the
bytes its zip member holds and against ``MAX_MODEL_BYTES`` before anything is
allocated; the architecture must be a well-formed chain of known layers whose
parameter count matches the arrays present; the arrays must match the built
model's names, shapes and dtypes exactly and be finite. Any fault is a
ValueError naming the file."""
import json
import math
import os
import zipfile

import numpy as np

from minigrad import models, nn
from minigrad import serialize_conv as SC
from minigrad._files import atomic_write

FORMAT = "minigrad-model-1"
MAX_MODEL_BYTES = 1 << 31
"""The largest model file (uncompressed) load_model reads: 2 GiB."""
_MAX_MEMBERS = 256
_FLOATS = ("float32", "float64")


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def architecture(model):
    """A JSON-able description of a Sequential of Linear/ReLU/Sigmoid and
    convolution, batch-norm, pooling and Flatten layers, or of a models.ResNet."""
    if isinstance(model, models.ResNet):
        return SC.resnet_spec(model)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"only nn.Sequential models can be saved, got {type(model).__name__}")
    layers = []
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            layers.append({"type": "Linear", "in": layer.in_features,
                           "out": layer.out_features, "bias": layer.bias is not None,
                           "dtype": str(layer.weight.dtype)})
        elif isinstance(layer, (nn.ReLU, nn.Sigmoid)):
            layers.append({"type": type(layer).__name__})
        elif SC.layer_spec(layer) is not None:
            layers.append(SC.layer_spec(layer))
        else:
            raise TypeError(f"cannot save a layer of type {type(layer).__name__}")
    return layers


def check_architecture(layers):
    """Raise ValueError unless ``layers`` (parsed JSON) is a non-empty list of
    known layers whose widths chain; returns the number of parameters."""
    if not isinstance(layers, list) or not layers:
        raise ValueError("the architecture must be a non-empty JSON list of layers")
    if len(layers) == 1 and isinstance(layers[0], dict) and layers[0].get("type") == "ResNet":
        return SC.check_resnet(layers[0])
    width, params, linear = None, 0, False
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise ValueError(f"layer {i} must be a JSON object, got {type(spec).__name__}")
        kind = spec.get("type")
        if kind == "Linear":
            for key in ("in", "out"):
                if type(spec.get(key)) is not int or not 1 <= spec[key] <= 1 << 30:
                    raise ValueError(f"layer {i} (Linear): {key!r} must be a positive integer, "
                                     f"got {spec.get(key)!r}")
            if type(spec.get("bias")) is not bool:
                raise ValueError(f"layer {i} (Linear): 'bias' must be true or false")
            if spec.get("dtype", "float32") not in _FLOATS:
                raise ValueError(f"layer {i} (Linear): dtype must be one of {_FLOATS}")
            if width is not None and spec["in"] != width:
                raise ValueError(f"layer {i} (Linear) takes {spec['in']} inputs but the layer "
                                 f"before gives {width}")
            width, linear = spec["out"], True
            params += spec["in"] * spec["out"] + (spec["out"] if spec["bias"] else 0)
        elif kind in SC.LAYERS:
            values, width = SC.check_layer(i, spec, width)
            params += values
        elif kind not in ("ReLU", "Sigmoid"):
            raise ValueError(f"layer {i}: unknown layer type {kind!r}")
    if not linear:
        raise ValueError("the architecture has no Linear layer")
    return params


def build(layers):
    """The Sequential that architecture() described (checked first)."""
    check_architecture(layers)
    if layers[0]["type"] == "ResNet":
        return SC.build_resnet(layers[0])
    modules = []
    for spec in layers:
        if spec["type"] in SC.LAYERS:
            modules.append(SC.build_layer(spec))
        elif spec["type"] == "Linear":
            modules.append(nn.Linear(spec["in"], spec["out"], bias=spec["bias"],
                                     dtype=np.dtype(spec.get("dtype", "float32"))))
        else:
            modules.append(nn.ReLU() if spec["type"] == "ReLU" else nn.Sigmoid())
    return nn.Sequential(*modules)


def save_model(model, path, meta=None, state=None):
    """Write model (or ``state``, a state_dict for it) to path, atomically.
    Non-finite weights are refused (ValueError)."""
    arrays = {k: _array(v) for k, v in (state if state is not None
                                         else model.state_dict()).items()}
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: refusing to save non-finite weights ({name})")
    arrays["__format__"] = np.array(FORMAT)
    arrays["__architecture__"] = np.array(json.dumps(architecture(model)))
    arrays["__meta__"] = np.array(json.dumps(meta or {}))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _read_member(zf, info, path):
    """One .npy member, its header checked against the member's size first."""
    fmt = np.lib.format
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy version {version} not supported")
        if dtype.hasobject or (dtype.kind not in "fU" and dtype != np.int64):
            raise ValueError(f"{info.filename}: arrays of {dtype} are not allowed")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise ValueError(f"{info.filename}: header says {shape} {dtype} ({nbytes} bytes) "
                             f"but the member holds {info.file_size - f.tell()}")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{info.filename}: truncated")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def read_arrays(path, max_bytes=MAX_MODEL_BYTES):
    """{name: array} from an .npz file, never allocating more than it holds."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise ValueError(f"{len(infos)} arrays, more than {_MAX_MEMBERS}")
            present = os.path.getsize(path)
            for info in infos:  # the zip's own sizes, against the bytes present
                if info.compress_size > present or info.file_size > (
                        info.compress_size if info.compress_type == zipfile.ZIP_STORED
                        else 1032 * info.compress_size + 64):  # deflate's largest ratio
                    raise ValueError(f"{info.filename}: claims {info.file_size} bytes, "
                                     f"more than the {present}-byte file can hold")
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise ValueError(f"holds {total} bytes, more than the limit of {max_bytes}")
            arrays = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"unexpected member {info.filename!r}")
                arrays[info.filename[:-4]] = _read_member(zf, info, path)
            return arrays
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
            NotImplementedError, RuntimeError) as e:
        raise ValueError(f"{path}: not a minigrad model file ({e})") from e


def _text(arrays, key, path):
    value = arrays.pop(key, None)
    if value is None or value.dtype.kind != "U" or value.shape != ():
        raise ValueError(f"{path}: not a minigrad model file (no {key} text)")
    return str(value)


def load_model(path, max_bytes=MAX_MODEL_BYTES):
    """(model, meta) from a file written by save_model; a corrupt, foreign or
    inconsistent file is a ValueError naming it."""
    arrays = read_arrays(path, max_bytes)
    if _text(arrays, "__format__", path) != FORMAT:
        raise ValueError(f"{path}: not a minigrad model file (no {FORMAT} marker)")
    try:
        layers = json.loads(_text(arrays, "__architecture__", path))
        meta = json.loads(_text(arrays, "__meta__", path))
        params = check_architecture(layers)
    except ValueError as e:
        raise ValueError(f"{path}: corrupt model description ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    for name, value in arrays.items():
        if value.dtype.name not in _FLOATS and not (  # BatchNorm's batch count
                name.endswith("num_batches_tracked") and value.dtype == np.int64):
            raise ValueError(f"{path}: array {name!r} is {value.dtype}, not a float type")
    present = sum(v.size for v in arrays.values())
    if present != params:
        raise ValueError(f"{path}: the architecture has {params} parameters but the file "
                         f"holds {present} values")
    model = build(layers)
    expected = {k: _array(v) for k, v in model.state_dict().items()}
    if set(expected) != set(arrays):
        raise ValueError(f"{path}: arrays {sorted(arrays)} do not fit the architecture "
                         f"(expected {sorted(expected)})")
    for name, want in expected.items():
        got = arrays[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ValueError(f"{path}: {name} is {got.dtype}{list(got.shape)}, the "
                             f"architecture needs {want.dtype}{list(want.shape)}")
        if not np.all(np.isfinite(got)):
            raise ValueError(f"{path}: {name} holds non-finite weights (NaN or inf)")
    model.load_state_dict(arrays)
    return model, meta
