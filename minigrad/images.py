"""Minimal image files without extra dependencies: read PGM and 8-bit PNG,
write grayscale PNG (for digits and the mean-3 / mean-7 pictures)."""
import struct
import zlib

import numpy as np

from minigrad._files import atomic_write


def read_pgm(path):
    """A binary (P5) or ASCII (P2) PGM image as a uint8 2-D array."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError(f"{path}: truncated PGM header")
        tokens.append(data[start:pos])
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic == b"P5":
        if maxval > 255:
            raise ValueError(f"{path}: 16-bit PGM is not supported")
        body = data[pos + 1:pos + 1 + w * h]
        if len(body) != w * h:
            raise ValueError(f"{path}: truncated PGM data")
        img = np.frombuffer(body, np.uint8).reshape(h, w)
    elif magic == b"P2":
        img = np.array(data[pos:].split()[:w * h], dtype=np.int64).reshape(h, w)
    else:
        raise ValueError(f"{path}: not a PGM file")
    return (img.astype(np.float64) * (255.0 / maxval)).round().astype(np.uint8)


def _unfilter(raw, height, stride, bpp):
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int64)
    pos = 0
    for y in range(height):
        kind, line = raw[pos], np.frombuffer(raw, np.uint8, stride, pos + 1).astype(np.int64)
        pos += 1 + stride
        cur = line.copy()
        if kind == 1:
            for x in range(bpp, stride):
                cur[x] = (cur[x] + cur[x - bpp]) & 255
        elif kind == 2:
            cur = (cur + prev) & 255
        elif kind == 3:
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (cur[x] + pred) & 255
        elif kind != 0:
            raise ValueError(f"bad PNG filter type {kind}")
        out[y] = cur
        prev = cur
    return out


def read_png(path):
    """An 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA) as uint8 gray."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError(f"{path}: PNG without a header")
    w, h, depth, color, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: only 8-bit non-interlaced gray/RGB(A) PNG is supported")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError(f"{path}: corrupt PNG data ({e})") from e
    if len(raw) < h * (1 + w * channels):
        raise ValueError(f"{path}: truncated PNG data")
    img = _unfilter(raw, h, w * channels, channels).reshape(h, w, channels).astype(np.float64)
    gray = img[..., 0] if channels <= 2 else img[..., :3] @ [0.299, 0.587, 0.114]
    return gray.round().astype(np.uint8)


def write_png(path, image):
    """Save a 2-D array (uint8, or floats in [0, 1]) as a grayscale PNG."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write(path, lambda f: f.write(png))


def grid(images, columns=10, pad=2):
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


def ascii_art(image, chars=" .:-=+*#%@"):
    """A 2-D array as text (scaled to its maximum), two characters per pixel."""
    img = np.clip(np.asarray(image, np.float64), 0, None)
    img = img / img.max() if img.max() > 0 else img
    idx = (img * (len(chars) - 1)).round().astype(int)
    return "\n".join("".join(chars[v] * 2 for v in row) for row in idx)
