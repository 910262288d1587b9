"""Model files validated as a whole: headers before allocation, the
architecture's JSON types, arrays against the architecture, finite weights."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest

from minigrad import nn
from minigrad import serialize as S

ARCH = [{"type": "Linear", "in": 6, "out": 4, "bias": True, "dtype": "float32"},
        {"type": "ReLU"}, {"type": "Linear", "in": 4, "out": 2, "bias": True,
                           "dtype": "float32"}]


def model():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(6, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng))


def state():
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
            for k, v in model().state_dict().items()}


def write(path, arrays=None, arch=ARCH, meta=None, fmt=S.FORMAT):
    """A model file with any content: json-able values are dumped as given."""
    entries = dict(state() if arrays is None else arrays)
    if fmt is not None:
        entries["__format__"] = np.array(fmt)
    if arch is not None:
        entries["__architecture__"] = np.array(arch if isinstance(arch, str)
                                               else json.dumps(arch))
    if meta is not None or "__meta__" not in entries:
        entries["__meta__"] = np.array(json.dumps({} if meta is None else meta))
    np.savez(path, **entries)
    return path


def load_error(path):
    with pytest.raises(ValueError) as info:
        S.load_model(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_a_well_formed_file_loads(tmp_path):
    loaded, meta = S.load_model(write(tmp_path / "m.npz", meta={"task": "3v7"}))
    assert meta == {"task": "3v7"}
    for k, v in state().items():
        got = loaded.state_dict()[k]
        np.testing.assert_array_equal(got.numpy() if hasattr(got, "numpy") else got, v)


def _linear(**changes):
    return [{**ARCH[0], **changes}] + ARCH[1:]


@pytest.mark.parametrize("arch,message", [
    ({"layers": ARCH}, "non-empty JSON list"),
    ([], "non-empty JSON list"),
    (["Linear"], "must be a JSON object"),
    ([{"type": "Conv"}], "unknown layer type 'Conv'"),
    ([{"no": "type"}], "unknown layer type None"),
    (_linear(**{"in": "6"}), "'in' must be a positive integer"),
    (_linear(**{"in": True}), "'in' must be a positive integer"),
    (_linear(**{"in": 6.0}), "'in' must be a positive integer"),
    (_linear(**{"out": -4}), "'out' must be a positive integer"),
    (_linear(**{"out": None}), "'out' must be a positive integer"),
    (_linear(bias="yes"), "'bias' must be true or false"),
    (_linear(dtype="int8"), "dtype must be one of"),
    ([ARCH[0], ARCH[1], {**ARCH[2], "in": 5}], "takes 5 inputs but the layer before gives 4"),
    ([{"type": "ReLU"}], "no Linear layer"),
    ("[{", "corrupt model description"),
])
def test_architecture_of_the_wrong_json_shape_is_a_value_error(tmp_path, arch, message):
    assert message in load_error(write(tmp_path / "m.npz", arch=arch))


@pytest.mark.parametrize("meta", [[1, 2], "3v7", 7, None])
def test_metadata_must_be_an_object(tmp_path, meta):
    path = tmp_path / "m.npz"
    entries = {**state(), "__format__": np.array(S.FORMAT),
               "__architecture__": np.array(json.dumps(ARCH)),
               "__meta__": np.array(json.dumps(meta))}
    np.savez(path, **entries)
    assert "metadata must be a JSON object" in load_error(path)


@pytest.mark.parametrize("missing", ["__format__", "__architecture__", "__meta__"])
def test_missing_keys(tmp_path, missing):
    path = tmp_path / "m.npz"
    entries = {**state(), "__format__": np.array(S.FORMAT),
               "__architecture__": np.array(json.dumps(ARCH)), "__meta__": np.array("{}")}
    del entries[missing]
    np.savez(path, **entries)
    assert "not a minigrad model file" in load_error(path)


def test_markers_of_the_wrong_type(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **state(), __format__=np.array(S.FORMAT),
             __architecture__=np.array([1.0, 2.0]), __meta__=np.array("{}"))
    assert "no __architecture__ text" in load_error(path)


def _change(key, value):
    arrays = state()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    return arrays


@pytest.mark.parametrize("arrays,message", [
    (_change("0.weight", np.ones((4, 5), np.float32)), "parameters but the file"),
    (_change("0.weight", np.ones((6, 4), np.float32)), "the architecture needs"),
    (_change("0.weight", np.ones((4, 6), np.float64)), "the architecture needs"),
    (_change("0.weight", np.ones((4, 6), np.int32)), "arrays of int32 are not allowed"),
    (_change("0.weight", np.ones((4, 6), np.float16)), "float16, not a float type"),
    (_change("2.bias", None), "parameters but the file"),
    ({**_change("2.bias", None), "extra": np.ones(2, np.float32)}, "do not fit"),
    (_change("0.bias", np.array([1, np.nan, 0, 0], np.float32)), "non-finite"),
    (_change("2.weight", np.full((2, 4), np.inf, np.float32)), "non-finite"),
])
def test_arrays_must_agree_with_the_architecture(tmp_path, arrays, message):
    assert message in load_error(write(tmp_path / "m.npz", arrays))


def test_object_arrays_are_refused(tmp_path):
    path = write(tmp_path / "m.npz", {**state(), "x": np.array([{"a": 1}], dtype=object)})
    assert "not allowed" in load_error(path)


def _npy_header(shape, descr="<f4"):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_an_array_header_is_checked_against_its_bytes_before_allocating(tmp_path):
    path = write(tmp_path / "m.npz")
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "0.weight.npy":
                data = _npy_header((100000, 100000)) + bytes(96)  # claims 40 GB
            dst.writestr(info.filename, data)
    path.write_bytes(buf.getvalue())
    assert "header says (100000, 100000)" in load_error(path)


def test_the_file_size_is_capped(tmp_path):
    path = write(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="more than the limit of 1000"):
        S.load_model(path, max_bytes=1000)


def test_non_finite_weights_are_not_saved(tmp_path):
    m = model()
    bad = {k: np.full(np.shape(v), np.nan, np.float32) for k, v in state().items()}
    with pytest.raises(ValueError, match="non-finite"):
        S.save_model(m, tmp_path / "m.npz", state=bad)
    assert list(tmp_path.iterdir()) == []


def test_zip_sizes_that_lie_allocate_nothing_like_them(tmp_path):
    import tracemalloc

    path = write(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    claim = 0x70000000  # 1.75 GiB
    member = data.index(b"0.weight.npy")  # the local header's name
    start = data.index(b"\x93NUMPY", member)
    header = _npy_header(((claim - 128) // 4,))
    assert len(header) == 128
    data[start:start + 128] = header  # the weights' header, now claiming 1.75 GiB
    central = data.index(b"PK\x01\x02")  # the central directory's first entry
    while True:  # the central directory entry of that member: sizes at +20 and +24
        name_len = struct.unpack("<H", data[central + 28:central + 30])[0]
        if data[central + 46:central + 46 + name_len] == b"0.weight.npy":
            break
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 20:central + 28] = struct.pack("<II", claim, claim)
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        message = load_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than the" in message and peak < 1 << 26, (message, peak)
