"""minigrad.save/load in the safetensors format: round trips within minigrad,
to PyTorch and back, and files checked as a whole before anything is allocated."""
import json
import re
import struct
import sys

import numpy as np
import pytest
from interop_models import predict, random_model

import minigrad as mg
from minigrad import nn
from minigrad import serialize as S

pytest.importorskip("safetensors", reason="the safetensors package is not installed")


def torch_twin(model):
    """The torch.nn.Sequential with the same layers (no weights copied)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    layers = []
    for spec in S.architecture(model):
        options = {k: v for k, v in spec.items() if k != "type"}
        if spec["type"] == "Linear":
            layers.append(torch.nn.Linear(spec["in"], spec["out"], bias=spec["bias"],
                                          dtype=getattr(torch, spec["dtype"])))
        else:
            layers.append(getattr(torch.nn, spec["type"])(**options))
    return torch.nn.Sequential(*layers).eval()


def torch_predict(twin, x):
    import torch

    with torch.no_grad():
        return twin(torch.from_numpy(x)).numpy()


def sample(shape, seed=0, dtype=np.float32, n=6):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(dtype)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_every_layer_round_trips_through_a_file(tmp_path, suffix, dtype, seed):
    model, shape = random_model(seed, dtype)
    path = tmp_path / f"m{suffix}"
    mg.save(model, path, {"task": "demo", "n": seed})
    loaded, meta = S.load_model(path)
    assert meta == {"task": "demo", "n": seed}
    assert S.architecture(loaded) == S.architecture(model)
    assert repr(loaded) == repr(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name].numpy(), value.numpy())
    x = sample(shape, seed, dtype)
    np.testing.assert_array_equal(predict(mg.load(path), x), predict(model, x))


@pytest.mark.parametrize("seed", range(4))
def test_pytorch_reads_a_minigrad_safetensors_file(tmp_path, seed):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file

    model, shape = random_model(seed, fused=False)
    mg.save(model, tmp_path / "m.safetensors")
    state = load_file(tmp_path / "m.safetensors")
    assert sorted(state) == sorted(model.state_dict())
    twin = torch_twin(model)
    twin.load_state_dict(state)  # strict: same names, shapes (out, in) and dtypes
    x = sample(shape, seed)
    np.testing.assert_allclose(torch_predict(twin, x), predict(model, x), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_a_pytorch_state_dict_loads_into_the_matching_minigrad_model(tmp_path, seed):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import save_file

    model, shape = random_model(seed, fused=False)
    twin = torch_twin(model)  # torch's own initialisation, not minigrad's weights
    save_file(twin.state_dict(), tmp_path / "t.safetensors")
    assert mg.load(tmp_path / "t.safetensors", model) is model
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name].numpy(), value.numpy())
    x = sample(shape, seed)
    np.testing.assert_allclose(predict(model, x), torch_predict(twin, x), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="pass the model"):
        mg.load(tmp_path / "t.safetensors")  # no architecture in a bare state_dict


def bare(tmp_path, arrays, name="w.safetensors"):
    from safetensors.numpy import save_file

    save_file(arrays, tmp_path / name)
    return tmp_path / name


def test_loading_into_a_model_checks_names_shapes_and_values(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    good = {k: v.numpy() for k, v in model.state_dict().items()}
    cases = [({**good, "0.weight": np.ones((3, 2), np.float32)}, "needs float32[2, 3]"),
             ({k: v for k, v in good.items() if k != "2.bias"}, "do not fit the model"),
             ({**good, "extra": np.ones(1, np.float32)}, "do not fit the model"),
             ({**good, "2.bias": np.array([np.nan], np.float32)}, "non-finite"),
             ({**good, "0.bias": np.ones(2, np.int32)}, "I32")]
    for arrays, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            mg.load(bare(tmp_path, arrays), model)
        np.testing.assert_array_equal(model.state_dict()["0.weight"].numpy(),
                                      good["0.weight"])  # nothing half-loaded
    wide = {k: np.full(v.shape, 0.1, np.float64) for k, v in good.items()}
    mg.load(bare(tmp_path, wide), model)  # cast to the model's dtype, as PyTorch does
    assert model.state_dict()["0.weight"].numpy().dtype == np.float32
    np.testing.assert_array_equal(model.state_dict()["0.weight"].numpy(),
                                  np.full((2, 3), 0.1, np.float32))


def test_a_missing_safetensors_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'minigrad\[safetensors\]'"):
        mg.save(nn.Sequential(nn.Linear(2, 1)), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


ARCH = [{"type": "Linear", "in": 3, "out": 2, "bias": True, "dtype": "float32"},
        {"type": "ReLU"}]
WEIGHTS = {"0.weight": np.ones((2, 3), np.float32), "0.bias": np.zeros(2, np.float32)}


def raw(tmp_path, tensors=None, arch=ARCH, header=None, tail=b"", metadata=None):
    """A safetensors file written byte by byte: tensors back to back unless
    ``header`` (the JSON object, without metadata) is given."""
    tensors = WEIGHTS if tensors is None else tensors
    data, entries, offset = b"", {}, 0
    for name, value in tensors.items():
        code = {"float32": "F32", "float64": "F64", "float16": "F16"}[value.dtype.name]
        entries[name] = {"dtype": code, "shape": list(value.shape),
                         "data_offsets": [offset, offset + value.nbytes]}
        data += value.tobytes()
        offset += value.nbytes
    entries = dict(header if header is not None else entries)
    entries["__metadata__"] = metadata if metadata is not None else {
        "__format__": S.FORMAT, "__architecture__": json.dumps(arch), "__meta__": "{}"}
    text = json.dumps(entries).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data + tail)
    return path


def load_error(path, **kwargs):
    with pytest.raises(ValueError) as info:
        S.load_model(path, **kwargs)
    assert str(path) in str(info.value)
    return str(info.value)


def _entry(**changes):
    return {"0.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
            "0.bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}, **changes}


def test_a_hand_written_file_loads(tmp_path):
    model, meta = S.load_model(raw(tmp_path))
    np.testing.assert_array_equal(model.state_dict()["0.weight"].numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("kwargs,message", [
    ({"header": _entry(**{"0.bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 32]}})},
     "header says F32[3] (12 bytes)"),
    ({"header": _entry(**{"0.bias": {"dtype": "F32", "shape": [2], "data_offsets": [28, 36]}})},
     "overlap or leave a gap"),
    ({"header": _entry(**{"0.bias": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}})},
     "overlap or leave a gap"),
    ({"header": _entry(**{"0.bias": {"dtype": "F32", "shape": [2]}})}, "exactly dtype"),
    ({"header": _entry(**{"0.bias": {"dtype": "Q4", "shape": [2], "data_offsets": [24, 32]}})},
     "unknown dtype 'Q4'"),
    ({"header": _entry(**{"0.bias": {"dtype": "F32", "shape": [-2],
                                     "data_offsets": [24, 32]}})}, "shape must be a list"),
    ({"tail": b"\0" * 4}, "span 32 bytes but the file holds 36"),
    ({"tensors": {**WEIGHTS, "0.bias": np.zeros(2, np.float16)}}, "'0.bias' is F16"),
    ({"tensors": {**WEIGHTS, "0.bias": np.array([0, np.nan], np.float32)}}, "non-finite"),
    ({"tensors": {**WEIGHTS, "0.weight": np.ones((3, 2), np.float32)}}, "architecture needs"),
    ({"tensors": {"0.weight": WEIGHTS["0.weight"]}}, "parameters but the file"),
    ({"tensors": {**WEIGHTS, "0.bias": np.zeros(2, np.float64)}}, "architecture needs"),
    ({"metadata": {}}, "pass the model"),
    ({"metadata": {"__format__": S.FORMAT, "__architecture__": "[", "__meta__": "{}"}},
     "corrupt model description"),
    ({"metadata": {"__format__": S.FORMAT, "__architecture__": "[]", "__meta__": "{}"}},
     "non-empty JSON list"),
    ({"metadata": {"a": 1}}, "__metadata__ must map names to strings"),
    ({"arch": [ARCH[0], {"type": "ReLU", "inplace": True}]}, "unknown options ['inplace']"),
    ({"arch": [ARCH[0], {"type": "LeakyReLU", "negative_slope": "x"}]}, "a finite number"),
    ({"arch": [ARCH[0], {"type": "ELU", "alpha": True}]}, "a finite number"),
    ({"arch": [ARCH[0], {"type": "Softmax", "dim": 1.0}]}, "must be an integer"),
    ({"arch": [ARCH[0], {"type": "GELU", "approximate": "fast"}]}, "one of ('none', 'tanh')"),
    ({"arch": [ARCH[0], {"type": "Dropout", "p": 1.5}]}, "in [0, 1]"),
    ({"arch": [ARCH[0], {"type": "Hardtanh", "min_val": 1.0, "max_val": 1.0}]},
     "'min_val' must be below"),
    ({"arch": [ARCH[0], {"type": ["ReLU"]}]}, "unknown layer type ['ReLU']"),
])
def test_a_file_that_disagrees_with_itself_is_refused(tmp_path, kwargs, message):
    assert message in load_error(raw(tmp_path, **kwargs))


@pytest.mark.parametrize("head,message", [
    (b"", "too short"), (struct.pack("<Q", 1 << 40), "exceeds the"),
    (struct.pack("<Q", 3) + b"\xff{}", "not JSON"), (struct.pack("<Q", 2) + b"[]", "JSON object"),
])
def test_a_broken_header_is_refused(tmp_path, head, message):
    path = tmp_path / "m.safetensors"
    path.write_bytes(head)
    assert message in load_error(path)


def test_sizes_are_checked_before_allocating(tmp_path):
    import tracemalloc

    claim = {"0.weight": {"dtype": "F32", "shape": [1 << 15, 1 << 15],
                          "data_offsets": [0, 1 << 32]},
             "0.bias": {"dtype": "F32", "shape": [2], "data_offsets": [1 << 32, (1 << 32) + 8]}}
    path = raw(tmp_path, header=claim)  # claims 4 GiB, holds 32 bytes
    tracemalloc.start()
    try:
        message = load_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "span 4294967304 bytes but the file holds 32" in message and peak < 1 << 24
    assert "more than the limit of 16" in load_error(raw(tmp_path), max_bytes=16)


def test_only_known_layers_of_a_sequential_are_saved(tmp_path):
    class Custom(nn.ReLU):
        pass

    for model in [nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1), Custom())]:
        with pytest.raises(TypeError, match="only nn.Sequential|cannot save a layer"):
            mg.save(model, tmp_path / "m.safetensors")
    mg.save(nn.Sequential(nn.Linear(2, 1)), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="non-finite"):
        S.save_model(nn.Sequential(nn.Linear(2, 1)), tmp_path / "n.safetensors",
                     state={"0.weight": np.full((1, 2), np.inf, np.float32),
                            "0.bias": np.zeros(1, np.float32)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_a_saved_model_loads_into_a_model_built_in_code(tmp_path, suffix):
    model, shape = random_model(5)
    mg.save(model, tmp_path / f"m{suffix}")
    fresh, _ = random_model(5)  # the same layers, other weights
    fresh.load_state_dict({k: np.zeros(v.shape, v.dtype) for k, v in
                           ((k, v.numpy()) for k, v in fresh.state_dict().items())})
    x = sample(shape, 5)
    np.testing.assert_array_equal(predict(mg.load(tmp_path / f"m{suffix}", fresh), x),
                                  predict(model, x))
