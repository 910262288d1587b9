"""The IDX reader against every malformed-file case, the shipped sample against
the real MNIST files, and downloads against a local HTTP server."""
import gzip
import hashlib
import http.server
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

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
    ("huge_dims", "more than the limit"),
    ("raw_claims_more", "the file has"),
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
        "raw_claims_more": struct.pack(">HBB3I", 0, 8, 3, 1000, 28, 28) + b"\x00" * 100,
        "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "gzip_cut": gzip.compress(good)[:-20],
        "gzip_garbage": gzip.compress(good)[:30] + b"\xff" * 200,
    }[case]
    path = tmp_path / ("bad.gz" if case.startswith("gzip") else "bad.idx")
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        D.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_caps_gzip_inflation(tmp_path):
    # a small gzip whose header declares 2.6 GB: refused before inflating anything
    bomb = gzip.compress(struct.pack(">HBB3I", 0, 8, 3, 3_400_000, 28, 28) + bytes(1 << 22), 1)
    (tmp_path / "bomb.gz").write_bytes(bomb)
    with pytest.raises(ValueError, match="more than the limit"):
        D.read_idx(tmp_path / "bomb.gz")
    # a header declaring little followed by megabytes: stops one byte past it
    small = gzip.compress(struct.pack(">HBB1I", 0, 8, 1, 10) + bytes(1 << 24), 1)
    (tmp_path / "tail.gz").write_bytes(small)
    with pytest.raises(ValueError, match="past the 10 bytes"):
        D.read_idx(tmp_path / "tail.gz")
    with pytest.raises(ValueError, match="limit of 100"):
        D.read_idx(_write(tmp_path / "c.idx", idx_bytes(np.zeros((2, 64), np.uint8))),
                   max_bytes=100)


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("images,labels,message", [
    (np.zeros((3, 28, 28), np.int8), np.zeros(3, np.uint8), "images must be uint8"),
    (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "images must be uint8"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, -1, 2], np.int8), "labels must be uint8"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, np.nan, 2], np.float32),
     "labels must be uint8"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 12, 2], np.uint8), "digits 0-9"),
    (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8), "N x 28 x 28"),
])
def test_load_mnist_holds_mnist_to_its_promise(tmp_path, images, labels, message):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.float32): 0x0D}
    _write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images, codes[images.dtype]))
    _write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels, codes[labels.dtype]))
    with pytest.raises(ValueError, match=message):
        D.load_mnist(tmp_path, "test")


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

MODES = ("good", "corrupt", "dies", "nolength", "drip", "chunkcut", "nothttp", "stall",
         "wronglength")


class _Handler(http.server.BaseHTTPRequestHandler):
    """/MODE/NAME serves the file as MODE says: good; corrupt (a byte flipped);
    dies (full Content-Length, closes half-way); nolength (no Content-Length,
    zeros without end); drip (one byte every 20 ms); chunkcut (a chunked body
    cut off); nothttp (an answer that is not HTTP); stall (headers, then
    silence); wronglength (a Content-Length that is not the file's size).
    Anything else is 404."""

    root = None

    def do_GET(self):  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        path = os.path.join(self.root, parts[-1])
        if len(parts) != 2 or parts[0] not in MODES or not os.path.exists(path):
            self.send_error(404)
            return
        data = bytearray(open(path, "rb").read())
        mode = parts[0]
        try:
            getattr(self, "serve_" + mode, self.serve_good)(data)
        except OSError:  # the client hung up, as it should
            pass

    def serve_good(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(bytes(data))

    def serve_corrupt(self, data):
        data[len(data) // 2] ^= 0xFF
        self.serve_good(data)

    def serve_dies(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(bytes(data[: len(data) // 2]))
        self.close_connection = True

    def serve_nolength(self, data):
        self.send_response(200)
        self.end_headers()
        self.close_connection = True
        while True:
            self.wfile.write(bytes(1 << 16))

    def serve_drip(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.02)

    def serve_chunkcut(self, data):
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n" % 1000 + bytes(data[:1000]) + b"\r\n")
        self.wfile.write(b"%x\r\n" % 1000 + bytes(data[1000:1500]))
        self.wfile.flush()
        self.close_connection = True

    def serve_nothttp(self, data):
        self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        self.close_connection = True

    def serve_stall(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        time.sleep(5)

    def serve_wronglength(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) * 1000))
        self.end_headers()
        self.wfile.write(bytes(data))

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    if not IMAGES.exists():
        pytest.skip(f"real MNIST files not found in {MNIST_DIR}")
    handler = type("Handler", (_Handler,), {"root": str(MNIST_DIR)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


NAME = "t10k-labels-idx1-ubyte.gz"
FAILURES = [("corrupt", "checksum"), ("dies", "incomplete"), ("missing", "HTTP Error 404"),
            ("nolength", "more than the expected 4542 bytes"), ("drip", "too slow"),
            ("chunkcut", "IncompleteRead"), ("nothttp", "BadStatusLine"),
            ("stall", "timed out"), ("wronglength", "announces 4542000 bytes")]


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.startswith(".tmp-")]


def _download(server, folder, *modes):
    """download_file in a thread, so that a hang fails the test instead of the run."""
    result = {}

    def target():
        try:
            result["path"] = D.download_file(NAME, folder, mirrors=[f"{server}/{m}/"
                                                                    for m in modes],
                                             timeout=1.0, deadline=1.5)
        except Exception as e:  # noqa: BLE001 - handed to the test
            result["error"] = e
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), f"download from {modes} hung"
    return result


def test_download_checks_and_writes(server, tmp_path):
    path = _download(server, tmp_path, "good")["path"]
    assert hashlib.md5(open(path, "rb").read()).hexdigest() == D.MNIST_FILES[NAME][1]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode,message", FAILURES)
def test_every_protocol_failure_falls_back_to_the_next_mirror(server, tmp_path, mode,
                                                              message):
    path = _download(server, tmp_path, mode, "good")["path"]
    D.verify(path, *D.MNIST_FILES[NAME][1:])
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode,message", FAILURES)
def test_failed_download_leaves_nothing_and_keeps_old_file(server, tmp_path, mode, message):
    dest = tmp_path / NAME
    error = _download(server, tmp_path, mode)["error"]
    assert isinstance(error, D.DownloadError) and message in str(error), error
    assert "\n" not in str(error)
    assert not dest.exists() and _leftovers(tmp_path) == []
    dest.write_bytes(b"previous")
    assert isinstance(_download(server, tmp_path, mode)["error"], OSError)
    assert dest.read_bytes() == b"previous" and _leftovers(tmp_path) == []


def test_a_killed_download_leaves_a_temp_file_that_the_next_run_removes(server, tmp_path):
    code = ("from minigrad import datasets as D;"
            f"D.download_file({NAME!r}, {str(tmp_path)!r}, mirrors=['{server}/drip/'],"
            f" deadline=600)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)  # not the checkout
    try:
        for _ in range(600):
            if _leftovers(tmp_path):
                break
            time.sleep(0.05)
        assert _leftovers(tmp_path), "the child never started its download"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_leftovers(tmp_path)) == 1  # SIGKILL runs no cleanup
    (tmp_path / ".tmp-unrelated").write_bytes(b"not ours")
    _download(server, tmp_path, "good")
    assert _leftovers(tmp_path) == [".tmp-unrelated"]


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
