"""Fuzz the byte-level readers: IDX, PNG (built-in and through Pillow), PGM and
model files, with valid files mutated (bytes flipped, cut, inserted; header
fields set to 0, 1, 2**31, 2**32-1; JSON replaced by random JSON) and with
random bytes. Each read must return a well-formed result or raise ValueError
(FileNotFoundError aside): never MemoryError, never another exception, never
a crash or a hang.

Not collected by pytest directly: test_reader_fuzz.py runs it in a child
process under an address-space cap, so that a reader allocating what a header
claims fails as MemoryError here (a test failure) instead of swapping, and a
crash of the interpreter fails the parent's test. FUZZ_READER_EXAMPLES sets
the examples per reader (default 150).
"""
import gzip
import json
import os
import resource
import struct
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad import datasets, images, nn, serialize

EXAMPLES = int(os.environ.get("FUZZ_READER_EXAMPLES", "150"))
CAP = 1 << 30  # 1 GiB of address space beyond what the interpreter has mapped

if not os.environ.get("MINIGRAD_SANITIZE"):
    with open("/proc/self/statm") as _f:
        _mapped = int(_f.read().split()[0]) * resource.getpagesize()
    _soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    _cap = _mapped + CAP
    if _hard == resource.RLIM_INFINITY or _hard > _cap:
        resource.setrlimit(resource.RLIMIT_AS, (_cap, _hard))

fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=bool(os.environ.get("CI")),
                suppress_health_check=list(HealthCheck))
FOLDER = tempfile.mkdtemp(prefix="minigrad-fuzz-")
EXTREMES = [0, 1, 2, 255, 256, 65535, 2**31 - 1, 2**31, 2**32 - 1]


@st.composite
def mutated(draw, data, header=32, fields=()):
    """data with a few mutations, favouring its first ``header`` bytes and the
    offsets of its size fields (``fields``, set to extreme values)."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "int", "delete"]
                                    + ["field"] * (3 if fields else 0)))
        limit = max(1, min(len(data), header if draw(st.booleans()) else len(data)))
        pos = draw(st.integers(0, limit - 1)) if data else 0
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            data = data[:pos]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif kind == "field":
            pos = draw(st.sampled_from(fields))
            data[pos:pos + 4] = struct.pack(">I", draw(st.sampled_from(EXTREMES)))[
                :max(0, len(data) - pos)]
        elif kind == "int" and len(data) >= pos + 4:
            data[pos:pos + 4] = struct.pack(">I", draw(st.sampled_from(EXTREMES)))
    return bytes(data)


def write(name, data):
    path = os.path.join(FOLDER, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def only_value_errors(read, path):
    """read(path), allowing ValueError only; returns the result or None."""
    try:
        return read(path)
    except ValueError as e:
        assert str(e), "a ValueError without a message"
        return None


# ------------------------------------------------------------------ IDX

@st.composite
def idx_files(draw):
    code = draw(st.sampled_from(sorted(datasets._IDX_TYPES)))
    shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    arr = np.arange(int(np.prod(shape))).reshape(shape)
    data = (struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
            + arr.astype(datasets._IDX_TYPES[code]).tobytes())
    data = draw(mutated(data, header=4 + 4 * len(shape),
                        fields=tuple(range(4, 4 + 4 * len(shape), 4))))
    return gzip.compress(data, 1) if draw(st.booleans()) else data


@fuzz
@given(idx_files())
def test_idx_reader(data):
    arr = only_value_errors(datasets.read_idx, write("a.idx", data))
    if arr is not None:
        assert isinstance(arr, np.ndarray) and arr.nbytes <= len(data) * 1100 + 64


@fuzz
@given(st.binary(max_size=64).map(lambda b: gzip.compress(b) if b[:1] == b"\x00" else b))
def test_idx_reader_random_bytes(data):
    only_value_errors(datasets.read_idx, write("r.idx", data))


# ------------------------------------------------------------------ images

def _png_of(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    img = np.arange(h * w, dtype=np.uint8).reshape(h, w) * 37
    path = os.path.join(FOLDER, "base.png")
    images.write_png(path, img)
    with open(path, "rb") as f:
        return f.read()


@st.composite
def png_files(draw):
    # fields: IHDR's length, width, height, depth/color/..., IDAT's length
    return draw(mutated(_png_of(draw), header=40, fields=(8, 16, 20, 24, 33)))


def check_image(img):
    if img is not None:
        assert img.dtype == np.uint8 and img.ndim == 2
        assert img.size <= images.MAX_PIXELS


@fuzz
@given(png_files(), st.booleans())
def test_png_readers(data, pillow):
    images.USE_PILLOW = pillow
    try:
        check_image(only_value_errors(images.read_image, write("a.png", data)))
    finally:
        images.USE_PILLOW = True


@st.composite
def pgm_files(draw):
    magic = draw(st.sampled_from([b"P5", b"P2"]))
    w, h = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    maxval = draw(st.sampled_from([1, 15, 255, 256, 65535]))
    values = np.arange(w * h) % (maxval + 1)
    if magic == b"P5":
        body = values.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    else:
        body = " ".join(map(str, values)).encode()
    header = b"%s\n# c\n%d %d\n%d\n" % (magic, w, h, maxval)
    data = header + body
    if draw(st.booleans()):  # header numbers replaced by extremes, as text
        tokens = [b"%d" % draw(st.sampled_from(EXTREMES + [-1])) for _ in range(3)]
        data = b"%s %s %s %s\n" % (magic, *tokens) + body
    return draw(mutated(data, header=len(header)))


@fuzz
@given(pgm_files(), st.booleans())
def test_pgm_readers(data, pillow):
    images.USE_PILLOW = pillow
    try:
        check_image(only_value_errors(images.read_image, write("a.pgm", data)))
    finally:
        images.USE_PILLOW = True


# ------------------------------------------------------------------ model files

def _model_bytes():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 2, rng=rng), nn.ReLU(), nn.Linear(2, 1, rng=rng))
    path = os.path.join(FOLDER, "base.npz")
    serialize.save_model(model, path, {"task": "3v7", "classes": ["7", "3"]})
    with open(path, "rb") as f:
        return f.read()


BASE_MODEL = _model_bytes()
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats()
                    | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.sampled_from(["type", "in", "out", "bias", "dtype",
                                                       "task", "x"]), kids, max_size=5),
                    max_leaves=12)
LAYER = st.fixed_dictionaries(
    {"type": st.sampled_from(["Linear", "ReLU", "Sigmoid", "Conv"])},
    optional={"in": st.sampled_from(EXTREMES + [3, -1, "3", True, 3.0]),
              "out": st.sampled_from(EXTREMES + [2, 1, None]),
              "bias": st.sampled_from([True, False, 1, "yes"]),
              "dtype": st.sampled_from(["float32", "float64", "int8", 3])})


@st.composite
def model_files(draw):
    kind = draw(st.sampled_from(["bytes", "json", "arrays"]))
    if kind == "bytes":
        return draw(mutated(BASE_MODEL, header=len(BASE_MODEL)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = {"0.weight": rng.standard_normal((2, 3)).astype(np.float32),
              "0.bias": np.zeros(2, np.float32),
              "2.weight": np.ones((1, 2), np.float32),
              "2.bias": np.zeros(1, np.float32)}
    arch = [{"type": "Linear", "in": 3, "out": 2, "bias": True}, {"type": "ReLU"},
            {"type": "Linear", "in": 2, "out": 1, "bias": True}]
    meta = {"task": "3v7"}
    if kind == "json":
        if draw(st.booleans()):
            arch = draw(st.lists(LAYER, max_size=4) | JSON)
        else:
            meta = draw(JSON)
    else:
        name = draw(st.sampled_from(sorted(arrays)))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int32]))
        value = draw(st.sampled_from([0.5, np.nan, np.inf]))
        arrays[name] = np.full(shape, value if np.dtype(dtype).kind == "f" else 1, dtype)
        if draw(st.booleans()):
            del arrays[draw(st.sampled_from(sorted(arrays)))]
    path = os.path.join(FOLDER, "gen.npz")
    np.savez(path, __format__=np.array(serialize.FORMAT),
             __architecture__=np.array(json.dumps(arch, allow_nan=True)),
             __meta__=np.array(json.dumps(meta, allow_nan=True)), **arrays)
    with open(path, "rb") as f:
        return f.read()


@fuzz
@given(model_files())
def test_model_reader(data):
    result = only_value_errors(serialize.load_model, write("m.npz", data))
    if result is not None:
        model, meta = result
        assert isinstance(meta, dict) and isinstance(model, nn.Sequential)
        for value in model.state_dict().values():
            value = value.numpy() if hasattr(value, "numpy") else value
            assert np.all(np.isfinite(value))
