"""Models on disk (``save``/``load``): the architecture as JSON, metadata as
JSON, and every parameter array under its PyTorch state_dict name, in an .npz
file or a .safetensors file (architecture and metadata in its string metadata).

Loading trusts nothing in the file: every array header (npy header, or the
safetensors JSON header) is checked against the bytes present and against
``MAX_MODEL_BYTES`` before anything is allocated; the architecture must be a
well-formed chain of known layers whose parameter count matches the arrays
present; the arrays must match the built model's names, shapes and dtypes
exactly and be finite. Any fault is a
ValueError naming the file."""
import json
import math
import os
import zipfile
from typing import Any

import numpy as np

from minigrad import _safetensors, models, nn
from minigrad import serialize_conv as SC
from minigrad._files import atomic_write

__all__ = ["FORMAT", "MAX_MODEL_BYTES", "architecture", "build", "check_architecture", "load",
           "load_model", "read_arrays", "save", "save_model"]

FORMAT = "minigrad-model-1"
MAX_MODEL_BYTES = 1 << 31
"""The largest model file (uncompressed) load_model reads: 2 GiB."""
_MAX_MEMBERS = 256
_FLOATS = ("float32", "float64")


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


_FLOAT, _INT = "a finite number", "an integer"
_SIMPLE: dict[str, dict[str, tuple[Any, Any]]] = {  # {layer: {option: (default, kind)}}
    "ReLU": {}, "Sigmoid": {}, "Tanh": {}, "SiLU": {}, "Identity": {},
    "GELU": {"approximate": ("none", ("none", "tanh"))},
    "Softplus": {"beta": (1.0, _FLOAT), "threshold": (20.0, _FLOAT)},
    "ELU": {"alpha": (1.0, _FLOAT)},
    "LeakyReLU": {"negative_slope": (0.01, _FLOAT)},
    "Hardtanh": {"min_val": (-1.0, _FLOAT), "max_val": (1.0, _FLOAT)},
    "Softmax": {"dim": (-1, _INT)}, "LogSoftmax": {"dim": (-1, _INT)},
    "Flatten": {"start_dim": (1, _INT), "end_dim": (-1, _INT)},
    "Dropout": {"p": (0.5, _FLOAT)},
}
"""The layers without parameters that a model file may hold, with their options."""
_LINEAR = ("Linear", "LinearReLU")


def architecture(model: nn.Sequential) -> list[dict]:
    """A JSON-able description of a Sequential of Linear, LinearReLU, the
    convolution, batch-norm and pooling layers of serialize_conv and the
    parameter-free layers in ``_SIMPLE`` (exactly those types, not
    subclasses), or of a models.ResNet."""
    if isinstance(model, models.ResNet):
        return SC.resnet_spec(model)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"only nn.Sequential models can be saved, got {type(model).__name__}")
    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in SC.LAYERS and SC.layer_spec(layer) is not None:
            layers.append(SC.layer_spec(layer))
            continue
        if getattr(nn, kind, None) is not type(layer) or kind not in (*_LINEAR, *_SIMPLE):
            raise TypeError(f"cannot save a layer of type {kind}")
        if kind in _LINEAR:
            linear: Any = getattr(layer, "linear", layer)  # LinearReLU wraps a Linear
            layers.append({"type": kind, "in": linear.in_features,
                           "out": linear.out_features, "bias": linear.bias is not None,
                           "dtype": str(linear.weight.dtype)})
        else:
            layers.append({"type": kind, **{k: getattr(layer, k) for k in _SIMPLE[kind]}})
    return layers


def _check_options(i, spec):
    options = _SIMPLE[spec["type"]]
    unknown = set(spec) - {"type", *options}
    if unknown:
        raise ValueError(f"layer {i} ({spec['type']}): unknown options {sorted(unknown)}")
    for key, (default, kind) in options.items():
        value = spec.get(key, default)
        if kind is _FLOAT:
            ok = type(value) in (int, float) and math.isfinite(value)
        elif kind is _INT:
            ok = type(value) is int and -64 <= value < 64
        else:
            ok = value in kind
            kind = f"one of {kind}"
        if not ok:
            raise ValueError(f"layer {i} ({spec['type']}): {key!r} must be {kind}, "
                             f"got {value!r}")
    if spec["type"] == "Dropout" and not 0 <= spec.get("p", 0.5) <= 1:
        raise ValueError(f"layer {i} (Dropout): 'p' must be in [0, 1], got {spec['p']!r}")
    if spec["type"] == "Hardtanh" and not spec.get("min_val", -1.0) < spec.get("max_val", 1.0):
        raise ValueError(f"layer {i} (Hardtanh): 'min_val' must be below 'max_val'")


def check_architecture(layers: object) -> int:
    """Raise ValueError unless ``layers`` (parsed JSON) is a non-empty list of
    known layers whose widths chain; returns the number of parameters."""
    if not isinstance(layers, list) or not layers:
        raise ValueError("the architecture must be a non-empty JSON list of layers")
    if len(layers) == 1 and isinstance(layers[0], dict) and layers[0].get("type") == "ResNet":
        return SC.check_resnet(layers[0])
    width, params, linears = None, 0, 0
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise ValueError(f"layer {i} must be a JSON object, got {type(spec).__name__}")
        kind = spec.get("type")
        if kind in _LINEAR:
            for key in ("in", "out"):
                if type(spec.get(key)) is not int or not 1 <= spec[key] <= 1 << 30:
                    raise ValueError(f"layer {i} ({kind}): {key!r} must be a positive integer, "
                                     f"got {spec.get(key)!r}")
            if type(spec.get("bias")) is not bool:
                raise ValueError(f"layer {i} ({kind}): 'bias' must be true or false")
            if spec.get("dtype", "float32") not in _FLOATS:
                raise ValueError(f"layer {i} ({kind}): dtype must be one of {_FLOATS}")
            if width is not None and spec["in"] != width:
                raise ValueError(f"layer {i} ({kind}) takes {spec['in']} inputs but the layer "
                                 f"before gives {width}")
            width, linears = spec["out"], linears + 1
            params += spec["in"] * spec["out"] + (spec["out"] if spec["bias"] else 0)
        elif isinstance(kind, str) and kind in SC.LAYERS:
            values, width = SC.check_layer(i, spec, width)
            params += values
        elif isinstance(kind, str) and kind in _SIMPLE:
            _check_options(i, spec)
            if kind == "Flatten":  # may merge dims: the next width is not known here
                width = None
        else:
            raise ValueError(f"layer {i}: unknown layer type {kind!r}")
    if not linears:
        raise ValueError("the architecture has no Linear layer")
    return params


def build(layers: list[dict]) -> nn.Sequential:
    """The Sequential that architecture() described (checked first)."""
    check_architecture(layers)
    if layers[0]["type"] == "ResNet":
        return SC.build_resnet(layers[0])
    modules = []
    for spec in layers:
        options = {k: v for k, v in spec.items() if k != "type"}
        if spec["type"] in SC.LAYERS:
            modules.append(SC.build_layer(spec))
        elif spec["type"] in _LINEAR:
            linear = nn.Linear(spec["in"], spec["out"], bias=spec["bias"],
                               dtype=np.dtype(spec.get("dtype", "float32")))
            modules.append(linear if spec["type"] == "Linear" else nn.LinearReLU(linear))
        else:
            modules.append(getattr(nn, spec["type"])(**options))
    return nn.Sequential(*modules)


def _is_safetensors(path) -> bool:
    return str(path).lower().endswith(".safetensors")


def save_model(model: nn.Sequential, path, meta: dict | None = None,
               state: dict | None = None) -> None:
    """Write model (or ``state``, a state_dict for it) to path, atomically: in
    the safetensors format if path ends in ".safetensors" (the architecture and
    ``meta`` go in its string metadata), else as .npz. Non-finite weights are
    refused (ValueError)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"save: expected the model (an nn.Module), got "
                        f"{type(model).__name__}; the file holds its architecture too, and "
                        f"load(path, model) reads its weights into a model")
    arrays = {k: _array(v) for k, v in (state if state is not None
                                         else model.state_dict()).items()}
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: refusing to save non-finite weights ({name})")
    text = {"__format__": FORMAT, "__architecture__": json.dumps(architecture(model)),
            "__meta__": json.dumps(meta or {})}
    if _is_safetensors(path):
        _safetensors.write(path, arrays, text)
        return
    arrays.update({k: np.array(v) for k, v in text.items()})
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


def _text(texts, key, path):
    value = texts.pop(key, None)
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.shape == ():
        value = str(value)
    if not isinstance(value, str):
        hint = "; to read bare weights, pass the model: load(path, model)" \
            if key == "__format__" else ""
        raise ValueError(f"{path}: not a minigrad model file (no {key} text{hint})")
    return value


def _read_any(path, max_bytes):
    """{name: array} and {key: text} of a model file of either format."""
    if not _is_safetensors(path):
        arrays = read_arrays(path, max_bytes)
        return arrays, {k: arrays.pop(k) for k in list(arrays) if k.startswith("__")}
    try:
        return _safetensors.read(path, max_bytes)
    except ValueError as e:
        raise ValueError(f"{path}: not a minigrad model file ({e})") from e


def _check_arrays(arrays, expected, path, what):
    """Raise ValueError unless arrays has expected's names, shapes and float
    dtypes (exact dtypes unless ``what`` is "the model") and finite values."""
    for name, value in arrays.items():
        if value.dtype.name not in _FLOATS and not (  # BatchNorm's batch count
                name.endswith("num_batches_tracked") and value.dtype == np.int64):
            raise ValueError(f"{path}: array {name!r} is {value.dtype}, not a float type")
    if set(expected) != set(arrays):
        raise ValueError(f"{path}: arrays {sorted(arrays)} do not fit {what} "
                         f"(expected {sorted(expected)})")
    for name, want in expected.items():
        got = arrays[name]
        if got.shape != want.shape or (got.dtype != want.dtype and what != "the model"):
            raise ValueError(f"{path}: {name} is {got.dtype}{list(got.shape)}, {what} "
                             f"needs {want.dtype}{list(want.shape)}")
        if not np.all(np.isfinite(got)):
            raise ValueError(f"{path}: {name} holds non-finite weights (NaN or inf)")


def load_model(path, max_bytes: int = MAX_MODEL_BYTES) -> tuple[nn.Sequential, dict]:
    """(model, meta) from a file written by save_model (either format); a
    corrupt, foreign or inconsistent file is a ValueError naming it."""
    arrays, texts = _read_any(path, max_bytes)
    if _text(texts, "__format__", path) != FORMAT:
        raise ValueError(f"{path}: not a minigrad model file (no {FORMAT} marker)")
    try:
        layers = json.loads(_text(texts, "__architecture__", path))
        meta = json.loads(_text(texts, "__meta__", path))
        params = check_architecture(layers)
    except ValueError as e:
        raise ValueError(f"{path}: corrupt model description ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    present = sum(v.size for v in arrays.values())
    if present != params:
        raise ValueError(f"{path}: the architecture has {params} parameters but the file "
                         f"holds {present} values")
    model = build(layers)
    _check_arrays(arrays, {k: _array(v) for k, v in model.state_dict().items()}, path,
                  "the architecture")
    model.load_state_dict(arrays)
    return model, meta


def save(model: nn.Sequential, path, meta: dict | None = None) -> None:
    """Save a Sequential's architecture, weights and JSON ``meta`` to path: a
    ".safetensors" file (PyTorch reads its weights with
    ``safetensors.torch.load_file``) or, for any other name, an .npz file."""
    save_model(model, path, meta)


def load(path, model: nn.Module | None = None,
         max_bytes: int = MAX_MODEL_BYTES) -> nn.Module:
    """The model saved at path. With ``model``, only its weights are read into
    that model (names and shapes must match exactly; values are cast to the
    model's dtypes), so a PyTorch state_dict saved by
    ``safetensors.torch.save_file`` loads into the matching minigrad model."""
    if model is None:
        return load_model(path, max_bytes)[0]
    arrays, _ = _read_any(path, max_bytes)
    _check_arrays(arrays, {k: _array(v) for k, v in model.state_dict().items()}, path,
                  "the model")
    model.load_state_dict(arrays)
    return model
