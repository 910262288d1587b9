"""Models on disk and the small image readers/writers."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import images, nn
from minigrad import serialize as S


def small_model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(6, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng),
                         nn.Sigmoid())


def test_model_round_trip(tmp_path):
    model = small_model()
    S.save_model(model, tmp_path / "m.npz", {"task": "3v7", "note": "x"})
    loaded, meta = S.load_model(tmp_path / "m.npz")
    assert meta == {"task": "3v7", "note": "x"}
    x = mg.tensor(np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32))
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    assert [type(m).__name__ for m in loaded.layers] == ["Linear", "ReLU", "Linear", "Sigmoid"]


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    S.save_model(small_model(0), path)
    before = path.read_bytes()

    def explode(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(S.np, "savez", explode)
    with pytest.raises(KeyboardInterrupt):
        S.save_model(small_model(1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize("content", ["truncated", "text", "foreign", "bad_arch", "bad_shape"])
def test_corrupt_or_foreign_model_files(tmp_path, content):
    path = tmp_path / "m.npz"
    S.save_model(small_model(), path)
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif content == "text":
        path.write_text("not a model")
    elif content == "foreign":
        np.savez(path, weights=np.ones(3))
    elif content == "bad_arch":
        np.savez(path, __format__=np.array(S.FORMAT), __architecture__=np.array("[{"),
                 __meta__=np.array("{}"))
    else:
        state = small_model().state_dict()
        state["0.weight"] = np.ones((2, 2), np.float32)
        np.savez(path, __format__=np.array(S.FORMAT), __meta__=np.array("{}"),
                 __architecture__=np.array(
                     '[{"type": "Linear", "in": 6, "out": 4, "bias": true}, {"type": "ReLU"}, '
                     '{"type": "Linear", "in": 4, "out": 2, "bias": true}, {"type": "Sigmoid"}]'),
                 **state)
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        S.load_model(path)


def test_only_sequential_of_known_layers_saves(tmp_path):
    with pytest.raises(TypeError):
        S.save_model(nn.Linear(2, 2), tmp_path / "m.npz")


def test_png_writer_and_reader_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (13, 7)).astype(np.uint8)
    images.write_png(tmp_path / "a.png", img)
    np.testing.assert_array_equal(images.read_png(tmp_path / "a.png"), img)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
def test_png_reader_against_pillow(tmp_path, mode):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (28, 28)).astype(np.uint8)
    smooth = np.add.outer(np.arange(28), np.arange(28)).astype(np.uint8) * 4  # filters kick in
    for arr in (gray, smooth):
        img = Image.fromarray(arr).convert(mode)
        img.save(tmp_path / "p.png", optimize=True)
        want = np.asarray(img.convert("L"), np.int64)
        got = images.read_png(tmp_path / "p.png").astype(np.int64)
        assert np.abs(got - want).max() <= 1  # Pillow rounds its RGB->L a little differently


def test_pgm_ascii_and_binary(tmp_path):
    (tmp_path / "a.pgm").write_text("P2\n# c\n3 2\n15\n0 15 3\n6 9 12\n")
    np.testing.assert_array_equal(images.read_pgm(tmp_path / "a.pgm"),
                                  [[0, 255, 51], [102, 153, 204]])
    (tmp_path / "b.pgm").write_bytes(b"P5\n2 2\n255\n\x00\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        images.read_pgm(tmp_path / "b.pgm")


def test_bad_png_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        images.read_png(tmp_path / "x.png")
    images.write_png(tmp_path / "y.png", np.zeros((4, 4), np.uint8))
    data = bytearray((tmp_path / "y.png").read_bytes())
    data[41:45] = b"\xff\xff\xff\xff"  # inside the compressed stream
    (tmp_path / "y.png").write_bytes(bytes(data))
    with pytest.raises(ValueError):
        images.read_png(tmp_path / "y.png")


def test_a_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import time; from minigrad import _files;"
            f"_files.atomic_write({str(tmp_path / 'm.npz')!r}, lambda f: time.sleep(600))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)  # not the checkout
    try:
        for _ in range(600):
            if any(p.name.startswith(".tmp-") for p in tmp_path.iterdir()):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".tmp-minigrad-")
    live = tmp_path / f".tmp-minigrad-{os.getpid()}-x"  # a save in progress elsewhere
    live.write_bytes(b"")
    (tmp_path / ".tmp-other-tool").write_bytes(b"")
    S.save_model(small_model(), tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.npz", live.name, ".tmp-other-tool"])


@pytest.mark.parametrize("where", ["a folder", "an unwritable folder"])
def test_a_failed_save_names_the_destination_not_the_temp_file(tmp_path, where):
    model = nn.Sequential(nn.Linear(4, 2))
    if where == "a folder":
        dest = tmp_path / "out.npz"
        dest.mkdir()
    else:
        dest = tmp_path / "no" / "out.npz"
        (tmp_path / "no").write_text("a file where a folder should be")
    with pytest.raises(OSError) as info:
        S.save_model(model, str(dest), {"task": "3v7"})
    assert info.value.filename == str(dest)
    assert ".tmp-minigrad" not in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-minigrad")]


def test_an_empty_destination_path_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="empty path"):
        S.save_model(nn.Sequential(nn.Linear(4, 2)), "", {"task": "3v7"})


def test_an_idx_file_of_no_images_is_a_clear_error(tmp_path):
    import struct

    from minigrad import tasks
    empty = tmp_path / "none.idx"
    empty.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 0, 28, 28))
    with pytest.raises(ValueError, match="none.idx: the IDX file holds no images"):
        tasks.read_images(str(empty))
    one = tmp_path / "one.idx"
    one.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 1, 28, 28) + bytes(784))
    assert [name for name, _ in tasks.read_images(str(one))] == [f"{one}[0]"]


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors"])
def test_saving_a_state_dict_instead_of_the_model_is_a_clear_type_error(tmp_path, name):
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(TypeError, match="expected the model .* got dict"):
        mg.save(model.state_dict(), str(tmp_path / name))
    assert not list(tmp_path.iterdir())
