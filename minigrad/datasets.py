"""MNIST: an IDX reader, the sample shipped inside the package, and the full
data set from a directory or downloaded from a mirror.

The shipped sample (``minigrad/data/mnist_t10k.npz``) is the real MNIST test
set (10,000 digits), stored as uint8. Its fixed split: every fifth image
(index % 5 == 0) is valid, the rest is train. ``mnist_sample()`` keeps the 3s
(label 1) and 7s (label 0), the chapter's task; ``mnist_digits()`` keeps all
ten digits.
"""
import gzip
import hashlib
import http.client
import os
import struct
import time
import urllib.request
import zlib
from collections.abc import Sequence
from importlib import resources

import numpy as np

from minigrad._files import atomic_write

__all__ = ["MAX_IDX_BYTES", "MIRRORS", "MNIST_FILES", "DownloadError", "cache_dir",
           "check_pair", "download_file", "load_mnist", "make_sample", "mnist_digits",
           "mnist_sample", "read_idx", "split_indices", "three_vs_seven", "verify"]

PathLike = str | os.PathLike

SAMPLE_FILE = "mnist_t10k.npz"

# name -> (size in bytes, md5, sha256 or None); MD5s are the ones MNIST publishes.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
    "train-labels-idx1-ubyte.gz": (28881, "d53e105ee54ea40749a09fcbcd1e9432", None),
    "t10k-images-idx3-ubyte.gz": (
        1648877, "9fb629c4189551a2d022fa330f9573f3",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (
        4542, "ec29112dd5afa0611ce80d1b7f02629c",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CHUNK = 1 << 20
MAX_IDX_BYTES = 1 << 28
"""The largest IDX payload read_idx accepts by default (256 MiB; MNIST's
training images are 47 MB): a header may not make it allocate or inflate more."""


# ------------------------------------------------------------------ IDX

def _read_upto(f, n):
    """Up to n bytes, read in chunks (never more than the file holds)."""
    parts, got = [], 0
    while got < n:
        part = f.read(min(_CHUNK, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx(path: PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or raw).

    Checks the magic number and the dimensions, and the size they declare
    against ``max_bytes`` and (for a raw file) the bytes present, before
    reading the data; gzip data is inflated no further than that size. A
    truncated, corrupt, oversized or foreign file is a ValueError naming the
    file and the fault."""
    path = os.fspath(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = _read_upto(f, 4)
            if len(head) < 4:
                raise ValueError(f"{path}: too short for an IDX header ({len(head)} bytes)")
            zero, code, ndim = struct.unpack(">HBB", head)
            if zero != 0 or code not in _IDX_TYPES or ndim == 0:
                raise ValueError(f"{path}: not an IDX file (magic number 0x{head.hex()})")
            dims_raw = _read_upto(f, 4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise ValueError(f"{path}: truncated in the header ({ndim} dimensions "
                                 f"announced)")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            dtype = np.dtype(_IDX_TYPES[code])
            expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if expected > max_bytes:
                raise ValueError(f"{path}: dimensions {dims} declare {expected} bytes of "
                                 f"data, more than the limit of {max_bytes}")
            if not gz and os.path.getsize(path) - 4 - 4 * ndim < expected:
                raise ValueError(f"{path}: truncated: dimensions {dims} need {expected} bytes "
                                 f"of data, the file has "
                                 f"{os.path.getsize(path) - 4 - 4 * ndim}")
            body = _read_upto(f, expected)
            if len(body) < expected:
                raise ValueError(f"{path}: truncated: dimensions {dims} need {expected} bytes "
                                 f"of data, found {len(body)}")
            if f.read(1):
                raise ValueError(f"{path}: has data past the {expected} bytes its "
                                 f"dimensions {dims} describe")
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: corrupt compressed data ({e})") from e
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


# ------------------------------------------------------------------ shipped sample

def _sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("minigrad").joinpath("data", SAMPLE_FILE).open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return z["images"], z["labels"]


def _prepare(images, flatten, as_bytes=False):
    if flatten:
        images = images.reshape(len(images), -1)
    if as_bytes:
        from minigrad.data import ScaledBytes

        return ScaledBytes(images, 255)
    return images.astype(np.float32) / 255.0


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented split of the test set: index % 5 == 0 is valid, the rest train."""
    valid = np.arange(n) % 5 == 0
    return ~valid, valid


def three_vs_seven(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3s (label 1.0) and 7s (label 0.0), the chapter's binary task."""
    keep = (labels == 3) | (labels == 7)
    return images[keep], (labels[keep] == 3).astype(np.float32)


def _split(images, labels, flatten, binary, as_bytes):
    train, valid = split_indices(len(images))
    pick = three_vs_seven if binary else (lambda x, y: (x, y.astype(np.int64)))
    (xt, yt), (xv, yv) = pick(images[train], labels[train]), pick(images[valid], labels[valid])
    return (_prepare(xt, flatten, as_bytes), yt), (_prepare(xv, flatten, as_bytes), yv)


def mnist_sample(flatten: bool = True,
                 as_bytes: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """3s vs 7s from the shipped sample: ((x_train, y_train), (x_valid, y_valid)),
    images float32 in [0, 1] (flattened to 784 unless flatten=False), y 1.0 for a 3.
    ``as_bytes``: the images as ``minigrad.data.ScaledBytes`` (the same floats,
    kept as uint8: batches gathered 4x faster)."""
    return _split(*_sample_arrays(), flatten, binary=True, as_bytes=as_bytes)


def mnist_digits(flatten: bool = True,
                 as_bytes: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """All ten digits from the shipped sample, labels int64 0-9 (``as_bytes``:
    see mnist_sample)."""
    return _split(*_sample_arrays(), flatten, binary=False, as_bytes=as_bytes)


def make_sample(src_dir: PathLike, dest: PathLike) -> None:
    """Write the shipped sample from the MNIST test set's IDX files in src_dir
    (checked against their known checksums)."""
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        verify(os.path.join(src_dir, name), *MNIST_FILES[name][1:])
    images = read_idx(os.path.join(src_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(src_dir, "t10k-labels-idx1-ubyte.gz"))
    check_pair(images, labels, src_dir)
    atomic_write(dest, lambda f: np.savez_compressed(f, images=images, labels=labels))


def check_pair(images: np.ndarray, labels: np.ndarray, where: object) -> None:
    """MNIST's promise: uint8 images N x 28 x 28 and N uint8 labels 0-9."""
    if images.dtype != np.uint8:
        raise ValueError(f"{where}: MNIST images must be uint8, got {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: images must be N x 28 x 28, got {images.shape}")
    if labels.dtype != np.uint8:
        raise ValueError(f"{where}: MNIST labels must be uint8, got {labels.dtype}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{where}: {len(images)} images but labels of shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{where}: labels must be digits 0-9, found {labels.max()}")


# ------------------------------------------------------------------ full MNIST

def cache_dir() -> str:
    """$MINIGRAD_CACHE_DIR, or ~/.cache/minigrad."""
    return os.environ.get("MINIGRAD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "minigrad")


def _digest(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: PathLike, md5: str, sha256: str | None = None) -> None:
    """Raise ValueError unless the file has the given checksums."""
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want and _digest(path, algo) != want:
            raise ValueError(f"{path}: {algo} checksum mismatch (file corrupt or not the "
                             f"published one)")


class DownloadError(OSError):
    """A mirror gave no complete, correct file: reported and the next one tried."""


def _fetch(url, f, size, md5, sha256, timeout, deadline):
    """Stream url into f: at most ``size`` bytes, before ``deadline`` (a
    time.monotonic() value), each read waiting at most ``timeout`` seconds."""
    h_md5, h_sha, got = hashlib.md5(), hashlib.sha256(), 0
    wait = max(0.01, min(timeout, deadline - time.monotonic()))
    with urllib.request.urlopen(url, timeout=wait) as r:
        length = r.headers.get("Content-Length")
        if length is not None and length.strip() != str(size):
            raise DownloadError(f"announces {length.strip()} bytes, expected {size}")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DownloadError(f"too slow: {got} of {size} bytes when the deadline "
                                    f"passed")
            sock = getattr(getattr(r.fp, "raw", None), "_sock", None)
            if sock is not None:  # a drip-feed must not outlive the deadline
                sock.settimeout(max(0.01, min(timeout, left)))
            try:
                block = r.read1(_CHUNK)
            except TimeoutError as e:
                if time.monotonic() < deadline:
                    raise DownloadError(f"no data for {timeout}s (timed out)") from e
                raise DownloadError(f"too slow: {got} of {size} bytes when the deadline "
                                    f"passed") from e
            if not block:
                break
            got += len(block)
            if got > size:
                raise DownloadError(f"sent more than the expected {size} bytes")
            f.write(block)
            h_md5.update(block)
            h_sha.update(block)
    if got != size:
        raise DownloadError(f"incomplete download: got {got} of {size} bytes")
    if h_md5.hexdigest() != md5 or (sha256 and h_sha.hexdigest() != sha256):
        raise DownloadError("checksum mismatch")


def download_file(name: str, dest_dir: PathLike, mirrors: Sequence[str] = MIRRORS,
                  timeout: float = 30.0, deadline: float = 600.0) -> str:
    """Fetch one MNIST file into dest_dir, checked against its known size and
    checksums; returns the path. Each mirror is tried in turn; any protocol
    error (refused, cut, not HTTP, too long, too slow, wrong size or hash)
    moves on to the next. ``timeout`` bounds each read, ``deadline`` each
    mirror's whole transfer (seconds). Nothing partial is left behind."""
    size, md5, sha256 = MNIST_FILES[name]
    dest = os.path.join(dest_dir, name)
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        end = time.monotonic() + deadline
        try:
            atomic_write(dest, lambda f, url=url, end=end: _fetch(url, f, size, md5, sha256,
                                                                  timeout, end))
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:
            kind = f"{type(e).__name__}: " if isinstance(e, http.client.HTTPException) else ""
            errors.append(f"{url}: {kind}{' '.join(str(e).split())}")
    raise DownloadError(f"could not download {name}: " + "; ".join(errors))


def load_mnist(root: PathLike | None = None, split: str = "train", download: bool = False,
               mirrors: Sequence[str] = MIRRORS) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels uint8) of the full MNIST ``split``
    ("train" or "test") from the IDX files in ``root`` (default: the cache
    directory). With ``download=True`` missing files are fetched first."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = root or cache_dir()
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        path = os.path.join(root, name)
        if not os.path.exists(path):
            raw = path[:-3]
            if os.path.exists(raw):
                path = raw
            elif download:
                path = download_file(name, root, mirrors)
            else:
                raise FileNotFoundError(f"{path} not found (use download=True, or put the "
                                        f"MNIST IDX files in {root})")
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    check_pair(images, labels, root)
    return images, labels
