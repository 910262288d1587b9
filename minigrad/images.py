"""Image files: read any image as uint8 grayscale, write grayscale PNG.

``read_image`` uses Pillow when it is installed (``pip install
'minigrad[images]'``), so any PNG or JPEG a drawing program makes works
(palette, 16-bit, interlaced, alpha). Without Pillow (or with
``USE_PILLOW = False``) the built-in reader takes 8-bit non-interlaced PNG
(gray, gray+alpha, RGB, RGBA) and names what it does not support. PGM (P2/P5,
8 or 16 bit) is always read by the built-in, strict reader. Either way an
image's dimensions are checked against ``max_pixels`` before anything is
decoded, and compressed data is inflated no further than those dimensions need.
"""
import io
import os
import struct
import warnings
import zlib
from typing import Any

import numpy as np

from minigrad._files import atomic_write

__all__ = ["MAX_PIXELS", "USE_PILLOW", "ImageTooLarge", "UnknownFormat", "ascii_art", "grid",
           "read_image", "read_pgm", "read_png", "write_png"]

PathLike = str | os.PathLike

USE_PILLOW = True
"""Read through Pillow when it is importable; False forces the built-in readers."""
MAX_PIXELS = 1 << 24
"""The largest image (width x height) the readers decode by default."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class UnknownFormat(ValueError):
    """A file that is no image format the reader in use knows."""


class ImageTooLarge(ValueError):
    """An image whose declared width x height exceeds the readers' limit."""

    def __init__(self, path, width, height, limit):
        super().__init__(f"{path}: image is {width}x{height}, more than the {limit} pixels "
                         f"allowed")
        self.width, self.height = width, height


def _check_size(path, width, height, max_pixels):
    if width < 1 or height < 1:
        raise ValueError(f"{path}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(path, width, height, max_pixels)


def _read_file(path, max_pixels):
    """The file's bytes, refusing a file larger than any image of max_pixels
    pixels can honestly be (16 bytes a pixel covers ASCII PGM and compression
    overhead; 1 MiB more, metadata such as colour profiles and EXIF)."""
    limit = 16 * max_pixels + (1 << 20)
    parts, got = [], 0
    with open(path, "rb") as f:  # in chunks: f.read(n) would allocate n bytes first
        while got <= limit:
            part = f.read(min(1 << 20, limit + 1 - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
    data = b"".join(parts)
    if len(data) > limit:
        raise ValueError(f"{path}: file larger than {limit} bytes, the limit for images of "
                         f"at most {max_pixels} pixels")
    return data


def _pillow():
    if not USE_PILLOW:
        return None
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def read_image(path: PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file as a 2-D uint8 gray array. PGM always goes through the
    built-in reader (it is complete and strict: maxval, values above it);
    everything else through Pillow when installed, else the built-in PNG reader."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] in (b"P5", b"P2"):
        return read_pgm(path, max_pixels)
    Image = _pillow()
    if Image is not None:
        return _read_with_pillow(Image, path, max_pixels)
    if head == PNG_MAGIC:
        return read_png(path, max_pixels)
    raise UnknownFormat(f"{path}: not a PNG or PGM file (the built-in reader knows only "
                        f"these; install Pillow for JPEG and others: "
                        f"pip install 'minigrad[images]')")


def _read_with_pillow(Image, path, max_pixels):
    from PIL import UnidentifiedImageError

    try:
        # Opening reads only the header: our own limit (below) replaces Pillow's
        # decompression-bomb check, so that the message can give the size.
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                # from memory: Pillow reads a chunk as long as its header claims
                # (a 2 GiB allocation for a 100-byte file); a buffer holds no more
                img = Image.open(io.BytesIO(_read_file(path, max_pixels)))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
        with img:
            _check_size(path, img.width, img.height, max_pixels)
            img.load()
            if img.mode.startswith("I;16") or img.mode == "I":
                wide = np.asarray(img, dtype=np.float64)
                return np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except (ValueError, MemoryError):
        raise
    except UnidentifiedImageError as e:
        raise UnknownFormat(f"{path}: not an image file Pillow can read") from e
    except (OSError, SyntaxError, EOFError, struct.error, zlib.error, IndexError,
            Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: not an image Pillow can read ({e})") from e


# ------------------------------------------------------------------ PGM

def _pgm_header(path, data):
    tokens, pos = [], 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            end = data.find(b"\n", pos)
            pos = len(data) if end < 0 else end
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError(f"{path}: truncated PGM header")
        tokens.append(data[start:pos])
    if tokens[0] not in (b"P5", b"P2"):
        raise ValueError(f"{path}: not a PGM file")
    if not all(t.isdigit() for t in tokens[1:]):
        raise ValueError(f"{path}: PGM header needs width, height and maxval as numbers")
    return tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3]), pos


def read_pgm(path: PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A binary (P5) or ASCII (P2) PGM image, 8 or 16 bit, as uint8 gray."""
    data = _read_file(path, max_pixels)
    magic, w, h, maxval, pos = _pgm_header(path, data)
    if not 1 <= maxval <= 65535:
        raise ValueError(f"{path}: PGM maxval must be 1..65535, got {maxval}")
    _check_size(path, w, h, max_pixels)
    if magic == b"P5":
        size = 2 if maxval > 255 else 1
        body = data[pos + 1:pos + 1 + w * h * size]
        if len(body) != w * h * size:
            raise ValueError(f"{path}: truncated PGM data ({len(body)} of {w * h * size} "
                             f"bytes)")
        img = np.frombuffer(body, ">u2" if size == 2 else np.uint8).reshape(h, w)
    else:
        values = data[pos:].split()
        if len(values) < w * h or not all(v.isdigit() for v in values[:w * h]):
            raise ValueError(f"{path}: PGM needs {w * h} decimal values")
        img = np.array([int(v) for v in values[:w * h]], np.int64).reshape(h, w)
    if img.max() > maxval:
        raise ValueError(f"{path}: PGM value {int(img.max())} above its maxval {maxval}")
    return (img.astype(np.float64) * (255.0 / maxval)).round().astype(np.uint8)


# ------------------------------------------------------------------ PNG

def _paeth_row(cur, prev, bpp):
    for x in range(len(cur)):
        a = cur[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255


def _unfilter(raw, height, stride, bpp):
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int64)
    rows = np.frombuffer(raw, np.uint8, height * (stride + 1)).reshape(height, stride + 1)
    for y in range(height):
        kind, cur = rows[y, 0], rows[y, 1:].astype(np.int64)
        if kind == 1:  # sub: a running sum per channel
            cur = np.cumsum(cur.reshape(-1, bpp), axis=0).reshape(-1) & 255
        elif kind == 2:
            cur = (cur + prev) & 255
        elif kind == 3:
            cur = cur.tolist()
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + ((left + int(prev[x])) >> 1)) & 255
            cur = np.array(cur, np.int64)
        elif kind == 4:
            cur = cur.tolist()
            _paeth_row(cur, prev.tolist(), bpp)
            cur = np.array(cur, np.int64)
        elif kind != 0:
            raise ValueError(f"bad PNG filter type {kind}")
        out[y] = cur
        prev = cur
    return out


def _png_chunks(path, data):
    pos, header, idat = 8, None, []
    while True:
        if pos + 8 > len(data):
            raise ValueError(f"{path}: truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > len(data):
            raise ValueError(f"{path}: truncated PNG chunk {kind!r}")
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            if length != 13:
                raise ValueError(f"{path}: PNG header of {length} bytes, expected 13")
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError(f"{path}: PNG without a header")
    return header, b"".join(idat)


def read_png(path: PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA) as uint8 gray:
    the dependency-free reader."""
    data = _read_file(path, max_pixels)
    if data[:8] != PNG_MAGIC:
        raise ValueError(f"{path}: not a PNG file")
    (w, h, depth, color, _, _, interlace), idat = _png_chunks(path, data)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color, 0)
    unsupported = [what for what, bad in (
        (f"{depth}-bit", depth != 8), ("palette" if color == 3 else f"color type {color}",
                                       not channels), ("interlaced", interlace != 0)) if bad]
    if unsupported:
        raise ValueError(f"{path}: the built-in PNG reader does not support "
                         f"{' '.join(unsupported)} PNG (only 8-bit non-interlaced gray/RGB(A));"
                         f" install Pillow: pip install 'minigrad[images]'")
    _check_size(path, w, h, max_pixels)
    need = h * (1 + w * channels)
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(idat, need)
        if inflate.unconsumed_tail and inflate.decompress(inflate.unconsumed_tail, 1):
            raise ValueError(f"{path}: PNG data inflates past the {need} bytes its "
                             f"{w}x{h} header needs")
    except zlib.error as e:
        raise ValueError(f"{path}: corrupt PNG data ({e})") from e
    if len(raw) < need:
        raise ValueError(f"{path}: truncated PNG data ({len(raw)} of {need} bytes)")
    img = _unfilter(raw, h, w * channels, channels).reshape(h, w, channels).astype(np.float64)
    gray = img[..., 0] if channels <= 2 else img[..., :3] @ [0.299, 0.587, 0.114]
    return gray.round().astype(np.uint8)


def write_png(path: PathLike, image: Any) -> None:
    """Save a 2-D array (uint8, or floats in [0, 1]) as a grayscale PNG."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    png = (PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write(path, lambda f: f.write(png))


def grid(images: Any, columns: int = 10, pad: int = 2) -> np.ndarray:
    """Tile N x H x W images into one picture."""
    images = np.asarray(images)
    n, h, w = images.shape
    rows = -(-n // columns)
    out = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad), images.dtype)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):
            pad + c * (w + pad) + w] = img
    return out


def ascii_art(image: Any, chars: str = " .:-=+*#%@") -> str:
    """A 2-D array as text (scaled to its maximum), two characters per pixel."""
    img = np.clip(np.asarray(image, np.float64), 0, None)
    img = img / img.max() if img.max() > 0 else img
    idx = (img * (len(chars) - 1)).round().astype(int)
    return "\n".join("".join(chars[v] * 2 for v in row) for row in idx)
