"""Models on disk: an .npz file (loaded with allow_pickle=False) holding the
architecture as JSON, metadata as JSON, and every parameter array."""
import json
import zipfile

import numpy as np

from minigrad import nn
from minigrad._files import atomic_write

FORMAT = "minigrad-model-1"


def architecture(model):
    """A JSON-able description of a Sequential of Linear/ReLU/Sigmoid layers."""
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
        else:
            raise TypeError(f"cannot save a layer of type {type(layer).__name__}")
    return layers


def build(layers):
    """The Sequential that architecture() described."""
    modules = []
    for spec in layers:
        kind = spec.get("type")
        if kind == "Linear":
            modules.append(nn.Linear(int(spec["in"]), int(spec["out"]), bias=bool(spec["bias"]),
                                     dtype=np.dtype(spec.get("dtype", "float32"))))
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "Sigmoid":
            modules.append(nn.Sigmoid())
        else:
            raise ValueError(f"unknown layer type {kind!r}")
    return nn.Sequential(*modules)


def save_model(model, path, meta=None, state=None):
    """Write model (or ``state``, a state_dict for it) to path, atomically."""
    arrays = dict(state if state is not None else model.state_dict())
    arrays["__format__"] = np.array(FORMAT)
    arrays["__architecture__"] = np.array(json.dumps(architecture(model)))
    arrays["__meta__"] = np.array(json.dumps(meta or {}))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_model(path):
    """(model, meta) from a file written by save_model; a corrupt or foreign
    file is a ValueError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict(z)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a minigrad model file ({e})") from e
    if not isinstance(files, dict) or str(files.get("__format__", "")) != FORMAT:
        raise ValueError(f"{path}: not a minigrad model file (no {FORMAT} marker)")
    try:
        model = build(json.loads(str(files.pop("__architecture__"))))
        meta = json.loads(str(files.pop("__meta__")))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: corrupt model description ({e})") from e
    files.pop("__format__")
    try:
        model.load_state_dict(files)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    return model, meta
