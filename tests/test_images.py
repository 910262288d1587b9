"""Image reading: through Pillow (any PNG/JPEG) and through the built-in
dependency-free readers, each checking sizes before decoding."""
import struct
import zlib

import numpy as np
import pytest

from minigrad import images

PIL = pytest.importorskip("PIL.Image", reason="Pillow is the oracle for these tests")


@pytest.fixture(params=["pillow", "builtin"])
def reader(request, monkeypatch):
    """read_image through either path (the fallback forced with USE_PILLOW)."""
    monkeypatch.setattr(images, "USE_PILLOW", request.param == "pillow")
    return request.param


def chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_bytes(w, h, idat, depth=8, color=0, interlace=0):
    return (images.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0,
                                                          interlace))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def digit():
    return np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)


def gray_of(pil_image):
    return np.asarray(pil_image.convert("L"))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_both_paths_read_ordinary_pngs_like_pillow(tmp_path, reader, mode):
    img = PIL.fromarray(digit()).convert(mode)
    img.save(tmp_path / "a.png")
    got = images.read_image(tmp_path / "a.png")
    np.testing.assert_allclose(got.astype(int), gray_of(img).astype(int), atol=1)


@pytest.mark.parametrize("kind", ["palette", "16-bit", "interlaced", "jpeg"])
def test_pillow_reads_what_drawing_programs_make(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(images, "USE_PILLOW", True)
    base = digit()
    path = tmp_path / ("a.jpg" if kind == "jpeg" else "a.png")
    if kind == "palette":
        PIL.fromarray(base).convert("P").save(path)
        want = base
    elif kind == "16-bit":
        PIL.fromarray(base.astype(np.uint16) * 257).save(path)
        want = base
    elif kind == "interlaced":
        PIL.fromarray(base).save(path, interlace=1)
        want = base
    else:
        PIL.fromarray(base).save(path, quality=100)
        want = gray_of(PIL.open(path))
    got = images.read_image(path)
    assert got.dtype == np.uint8 and got.shape == (28, 28)
    np.testing.assert_allclose(got.astype(int), want.astype(int), atol=1)


@pytest.mark.parametrize("kind,message", [
    ("palette", "does not support palette"), ("16-bit", "does not support 16-bit"),
    ("interlaced", "does not support interlaced"), ("jpeg", "not a PNG or PGM"),
])
def test_the_fallback_names_what_it_does_not_support(tmp_path, monkeypatch, kind, message):
    monkeypatch.setattr(images, "USE_PILLOW", False)
    raw = zlib.compress(bytes(4 * 5))
    data = {"palette": png_bytes(4, 4, raw, color=3), "16-bit": png_bytes(4, 4, raw, depth=16),
            "interlaced": png_bytes(4, 4, raw, interlace=1),
            "jpeg": b"\xff\xd8\xff\xe0" + bytes(100)}[kind]
    (tmp_path / "x").write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        images.read_image(tmp_path / "x")
    if kind != "jpeg":
        assert "minigrad[images]" in str(info.value)


@pytest.mark.parametrize("w,h", [(10000, 10000), (4000, 4000), (1 << 31, 1)])
def test_dimensions_are_capped_before_decoding(tmp_path, reader, w, h):
    # a valid header with a tiny body: the check must come before any decoding
    (tmp_path / "big.png").write_bytes(png_bytes(w, h, zlib.compress(bytes(1000))))
    with pytest.raises(images.ImageTooLarge, match=f"{w}x{h}"):
        images.read_image(tmp_path / "big.png", max_pixels=1 << 20)


def test_inflation_is_capped_at_what_the_header_needs(tmp_path):
    # a small PNG whose data inflates to 64 MB: stopped at 4*(1+4) bytes
    (tmp_path / "bomb.png").write_bytes(png_bytes(4, 4, zlib.compress(bytes(1 << 26), 9)))
    with pytest.raises(ValueError, match="inflates past the 20 bytes"):
        images.read_png(tmp_path / "bomb.png")


@pytest.mark.parametrize("cut", [9, 12, 16, 20, 30, 40])
def test_truncated_pngs_are_value_errors(tmp_path, reader, cut):
    images.write_png(tmp_path / "a.png", digit())
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:cut])
    with pytest.raises(ValueError):
        images.read_image(tmp_path / "cut.png")


def test_a_short_ihdr_is_a_value_error(tmp_path):
    data = images.PNG_MAGIC + chunk(b"IHDR", b"\x00" * 5) + chunk(b"IEND", b"")
    (tmp_path / "a.png").write_bytes(data)
    with pytest.raises(ValueError, match="header of 5 bytes"):
        images.read_png(tmp_path / "a.png")


@pytest.mark.parametrize("data,message", [
    (b"P5 2 2 0\n\x00\x00\x00\x00", "maxval must be 1..65535"),
    (b"P5 2 2 70000\n" + bytes(8), "maxval must be 1..65535"),
    (b"P5 2 2 100\n\x00\x65\x00\x00", "value 101 above its maxval 100"),
    (b"P2 2 2 100\n0 101 0 0", "value 101 above its maxval 100"),
    (b"P2 2 2 100\n0 1 0", "needs 4 decimal values"),
    (b"P2 2 2 100\n0 1 0 -1", "needs 4 decimal values"),
    (b"P5 2 2 255\n\x00", "truncated PGM data"),
    (b"P5 2", "truncated PGM header"),
    (b"P5 2 x 255\n", "as numbers"),
    (b"P5 # comment without end", "truncated PGM header"),
    (b"P5 0 2 255\n", "no pixels"),
])
def test_bad_pgms(tmp_path, reader, data, message):
    (tmp_path / "a.pgm").write_bytes(data)
    with pytest.raises(ValueError, match=message):
        images.read_image(tmp_path / "a.pgm")


def test_pgm_16_bit_and_scaling(tmp_path, reader):
    values = np.array([[0, 1000], [500, 1000]], np.uint16)
    (tmp_path / "a.pgm").write_bytes(b"P5 2 2 1000\n" + values.astype(">u2").tobytes())
    got = images.read_pgm(tmp_path / "a.pgm")
    np.testing.assert_array_equal(got, [[0, 255], [128, 255]])
    (tmp_path / "b.pgm").write_bytes(b"P2 2 2 4\n0 4 2 1")
    np.testing.assert_array_equal(images.read_image(tmp_path / "b.pgm"), [[0, 255], [128, 64]])


def test_garbage_is_a_value_error_on_both_paths(tmp_path, reader):
    (tmp_path / "a.txt").write_text("hello, not an image")
    with pytest.raises(images.UnknownFormat):
        images.read_image(tmp_path / "a.txt")


def test_a_chunk_length_claiming_gigabytes_allocates_nothing_like_it(tmp_path, reader):
    # found by tests/fuzz_readers.py: Pillow reads a chunk as long as its header says
    import tracemalloc

    data = bytearray(png_bytes(1, 1, zlib.compress(b"\x00\x00")))
    at = data.index(b"IDAT") - 4
    data[at:at + 4] = struct.pack(">I", 0x7FFFFFFF)
    (tmp_path / "a.png").write_bytes(bytes(data))
    tracemalloc.start()
    try:
        try:
            images.read_image(tmp_path / "a.png")
        except ValueError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 26, f"{peak} bytes allocated for a {len(data)}-byte file"
