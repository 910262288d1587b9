"""The IDX reader against every malformed-file case, the shipped sample against
the real MNIST files, and downloads against a local HTTP server."""
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading

import numpy as np
import pytest
from mnist_files import IMAGES, LABELS, MNIST_DIR, needs_mnist

from minigrad import datasets as D


def idx_bytes(arr, code=0x08):
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(D._IDX_TYPES[code]).tobytes()


@pytest.fixture
def digits():
    return np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_round_trips(tmp_path, compress, code):
    arr = np.arange(24).reshape(2, 3, 4)
    data = idx_bytes(arr, code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    got = D.read_idx(path)
    np.testing.assert_array_equal(got, arr)
    assert got.dtype.isnative


@pytest.mark.parametrize("case,message", [
    ("empty", "too short"),
    ("short_header", "too short"),
    ("bad_magic", "not an IDX"),
    ("bad_type", "not an IDX"),
    ("zero_dims", "not an IDX"),
    ("dims_cut", "truncated in the header"),
    ("body_cut", "truncated"),
    ("trailing", "past the"),
    ("huge_dims", "truncated"),
    ("png", "not an IDX"),
    ("gzip_cut", "corrupt"),
    ("gzip_garbage", "corrupt"),
])
def test_read_idx_rejects_malformed_files(tmp_path, digits, case, message):
    good = idx_bytes(digits)
    data = {
        "empty": b"",
        "short_header": good[:3],
        "bad_magic": b"\x01" + good[1:],
        "bad_type": good[:2] + b"\x07" + good[3:],
        "zero_dims": good[:3] + b"\x00",
        "dims_cut": good[:9],
        "body_cut": good[:-1],
        "trailing": good + b"\x00",
        "huge_dims": struct.pack(">HBB3I", 0, 8, 3, 2**31, 2**31, 2**31) + b"\x00" * 100,
        "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "gzip_cut": gzip.compress(good)[:-20],
        "gzip_garbage": gzip.compress(good)[:30] + b"\xff" * 200,
    }[case]
    path = tmp_path / "bad.gz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        D.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        D.read_idx(tmp_path / "nope")


@needs_mnist
def test_shipped_sample_is_the_real_test_set(tmp_path):
    images, labels = D.read_idx(IMAGES), D.read_idx(LABELS)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    shipped_images, shipped_labels = D._sample_arrays()
    np.testing.assert_array_equal(shipped_images, images)
    np.testing.assert_array_equal(shipped_labels, labels)
    D.make_sample(MNIST_DIR, tmp_path / "again.npz")  # regenerating checks checksums
    (xt, yt), (xv, yv) = D.mnist_sample()
    assert len(xt) + len(xv) == 2038  # the 3s and 7s
    valid = (np.arange(10000) % 5 == 0) & ((labels == 3) | (labels == 7))
    np.testing.assert_array_equal(yv, labels[valid] == 3)
    np.testing.assert_array_equal(xv, images[valid].reshape(-1, 784) / np.float32(255))


def test_sample_shapes_and_ranges():
    (xt, yt), (xv, yv) = D.mnist_sample()
    assert xt.dtype == np.float32 and xt.shape[1] == 784 and 0 <= xt.min() and xt.max() <= 1
    assert set(np.unique(yt)) == {0.0, 1.0}
    (xt, yt), (xv, yv) = D.mnist_digits(flatten=False)
    assert xt.shape[1:] == (28, 28) and len(xt) == 8000 and len(xv) == 2000
    assert set(np.unique(yv)) == set(range(10))


def test_make_sample_checks_checksums(tmp_path, digits):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(digits)))
    with pytest.raises(ValueError, match="checksum"):
        D.make_sample(tmp_path, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


# ------------------------------------------------------------------ downloads

class _Handler(http.server.BaseHTTPRequestHandler):
    """/good/NAME serves the file, /corrupt/NAME flips a byte, /dies/NAME
    announces the full length and closes half-way, anything else is 404."""

    root = None

    def do_GET(self):  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        path = os.path.join(self.root, parts[-1])
        if len(parts) != 2 or parts[0] not in ("good", "corrupt", "dies") or \
                not os.path.exists(path):
            self.send_error(404)
            return
        data = bytearray(open(path, "rb").read())
        mode = parts[0]
        if mode == "corrupt":
            data[len(data) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "dies":
            self.wfile.write(bytes(data[: len(data) // 2]))
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(bytes(data))

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    if not IMAGES.exists():
        pytest.skip(f"real MNIST files not found in {MNIST_DIR}")
    handler = type("Handler", (_Handler,), {"root": str(MNIST_DIR)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


NAME = "t10k-labels-idx1-ubyte.gz"


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.startswith(".tmp-")]


def test_download_checks_and_writes(server, tmp_path):
    path = D.download_file(NAME, tmp_path, mirrors=[f"{server}/good/"])
    assert hashlib.md5(open(path, "rb").read()).hexdigest() == D.MNIST_FILES[NAME][0]
    assert _leftovers(tmp_path) == []


def test_download_falls_back_to_second_mirror(server, tmp_path):
    path = D.download_file(NAME, tmp_path, mirrors=[f"{server}/corrupt/", f"{server}/missing/",
                                                    f"{server}/good/"])
    D.verify(path, *D.MNIST_FILES[NAME])
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode,message", [("corrupt", "checksum"), ("dies", "incomplete"),
                                          ("missing", "HTTP Error 404")])
def test_failed_download_leaves_nothing_and_keeps_old_file(server, tmp_path, mode, message):
    dest = tmp_path / NAME
    with pytest.raises(OSError, match=message):
        D.download_file(NAME, tmp_path, mirrors=[f"{server}/{mode}/"], timeout=10)
    assert not dest.exists() and _leftovers(tmp_path) == []
    dest.write_bytes(b"previous")
    with pytest.raises(OSError):
        D.download_file(NAME, tmp_path, mirrors=[f"{server}/{mode}/"], timeout=10)
    assert dest.read_bytes() == b"previous" and _leftovers(tmp_path) == []


def test_load_mnist_downloads_into_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_CACHE_DIR", str(tmp_path / "cache"))
    assert D.cache_dir() == str(tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="download=True"):
        D.load_mnist(split="test")
    images, labels = D.load_mnist(split="test", download=True, mirrors=[f"{server}/good/"])
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])


def test_load_mnist_reads_a_directory(tmp_path):
    if not IMAGES.exists():
        pytest.skip("no MNIST files")
    shutil.copy(IMAGES, tmp_path)
    with open(LABELS, "rb") as f, open(tmp_path / "t10k-labels-idx1-ubyte", "wb") as g:
        g.write(gzip.decompress(f.read()))  # raw (uncompressed) files work too
    images, labels = D.load_mnist(tmp_path, "test")
    assert len(images) == len(labels) == 10000
    with pytest.raises(ValueError, match="split"):
        D.load_mnist(tmp_path, "valid")
