"""ONNX export: every nn layer has an emitter, and ONNX Runtime gives
minigrad's predictions to 1e-5 for random models and for trained CLI models."""
import inspect
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from interop_models import ACTIVATIONS, predict, random_model

import minigrad as mg
from minigrad import datasets, nn
from minigrad import export as E

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed")


def run(*args):
    """The CLI in a subprocess, away from the checkout (as tests/test_cli.py)."""
    out = subprocess.run([sys.executable, "-m", "minigrad", *args], capture_output=True,
                         text=True, timeout=300, cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def runtime(path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_every_layer_minigrad_has_can_be_exported():
    layers = [cls for name in nn.__all__ if inspect.isclass(cls := getattr(nn, name))
              and issubclass(cls, nn.Module) and not name.endswith("Loss")
              and cls not in (nn.Module, nn.ModuleList)]
    assert nn.Linear in layers and nn.GELU in layers
    assert [c.__name__ for c in layers if c not in E.EMITTERS] == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_onnx_runtime_gives_minigrad_predictions(tmp_path, dtype, seed):
    model, shape = random_model(seed, dtype)
    proto = E.to_onnx(model, tmp_path / "m.onnx", shape)
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)
    assert proto.opset_import[0].version == E.OPSET
    session = runtime(tmp_path / "m.onnx")
    for n in (1, 5):  # the batch dimension is dynamic
        x = np.random.default_rng(seed + n).standard_normal((n, *shape)).astype(dtype)
        got = session.run(["output"], {"input": x})[0]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, predict(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ACTIVATIONS)
def test_each_activation_on_both_sides_of_its_kinks(tmp_path, dtype, make):
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Linear(4, 16, dtype=dtype, rng=rng), make(rng))
    E.to_onnx(model, tmp_path / "m.onnx", (4,))
    x = (3 * rng.standard_normal((9, 4))).astype(dtype)
    got = runtime(tmp_path / "m.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(got, predict(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [nn.Softplus(2.0, 3.0), nn.Softplus(0.5, 1.0), nn.ELU(0.5),
                                   nn.Hardtanh(-0.3, 0.7), nn.LeakyReLU(0.2), nn.GELU("tanh"),
                                   nn.SiLU()], ids=repr)
def test_activation_options_on_a_line_through_the_kinks(tmp_path, dtype, layer):
    E.to_onnx(nn.Sequential(layer), tmp_path / "m.onnx", (401,), dtype=dtype)
    x = np.linspace(-8, 8, 401, dtype=dtype)[None]
    got = runtime(tmp_path / "m.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(got, predict(nn.Sequential(layer), x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", [nn.Flatten(0, -1), nn.Flatten(1, 2), nn.Flatten(2, -1),
                                   nn.Softmax(dim=1), nn.LogSoftmax(dim=-2)])
def test_shapes_and_axes_follow_the_layer(tmp_path, layer):
    model = nn.Sequential(layer)
    E.to_onnx(model, tmp_path / "m.onnx", (3, 4, 2))
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 2)).astype(np.float32)
    got = runtime(tmp_path / "m.onnx").run(None, {"input": x})[0]
    want = predict(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_what_cannot_be_exported_is_named(tmp_path):
    class Custom(nn.ReLU):
        def forward(self, x):
            return x * 2

    with pytest.raises(TypeError, match="layer of type Custom"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 2), Custom()), tmp_path / "m.onnx", (2,))
    with pytest.raises(ValueError, match="gets inputs of size 3"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (3,))
    with pytest.raises(ValueError, match="takes 2-D inputs"):  # as minigrad's Linear
        E.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (3, 2))
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        E.to_onnx(nn.Sequential(nn.Softmax(dim=2)), tmp_path / "m.onnx", (3,))
    with pytest.raises(ValueError, match="opset must be from 13"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (2,), opset=11)
    with pytest.raises(ValueError, match="without the batch dimension"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (0, 2))
    with pytest.raises(TypeError, match="share one float type"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (2,), dtype=np.float64)
    with pytest.raises(TypeError, match="pass input_shape"):
        E.input_shape_of(nn.Sequential(nn.Flatten(), nn.Linear(2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_onnx_package_names_the_extra(tmp_path, monkeypatch, capsys):
    from minigrad import cli

    mg.save(nn.Sequential(nn.Linear(2, 1)), tmp_path / "m.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'minigrad\[onnx\]'"):
        E.to_onnx(nn.Sequential(nn.Linear(2, 1)), tmp_path / "m.onnx", (2,))
    assert cli.main(["export", str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "pip install 'minigrad[onnx]'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m.onnx")


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_trained_cli_model_exports_with_the_same_predictions(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    model_path, onnx_path = tmp_path / f"m{suffix}", tmp_path / "m.onnx"
    run("train", "--epochs", "2", "--seed", "3", "--save", str(model_path), "--no-progress")
    assert "wrote" in run("export", str(model_path), "--onnx", str(onnx_path)).stdout
    model = mg.load(model_path)
    props = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    assert json.loads(props["task"]) == "3v7" and json.loads(props["classes"]) == ["7", "3"]
    x = datasets.mnist_sample()[1][0]  # the validation images the model was judged on
    got = runtime(onnx_path).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, predict(model, x), rtol=1e-5, atol=1e-5)
    assert (got.argmax(1) == predict(model, x).argmax(1)).all()
