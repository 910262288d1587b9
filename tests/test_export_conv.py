"""ONNX export of convolutional models: ONNX Runtime gives minigrad's
eval-mode predictions, running statistics included."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import export as E
from minigrad import models, nn

pytest.importorskip("onnx", reason="the onnx package is not installed")


def _misc():
    return nn.Sequential(nn.Conv2d(2, 4, 3, 2, 1, 2), nn.ReLU(),
                         nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.BatchNorm2d(4),
                         nn.MaxPool2d(2, 1, 1, 2), nn.AdaptiveAvgPool2d((3, 1)), nn.Flatten(),
                         nn.Linear(12, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,shape", [
    (lambda d: models.simple_cnn(1, 10, 8, dtype=d), (1, 28, 28)),
    (lambda d: models.resnet18(10, 3, 8, dtype=d), (3, 32, 32)),
    (lambda d: models.resnet18(2, 1, 4, small_input=True, dtype=d), (1, 28, 28)),
    (lambda d: _misc().to(d), (2, 12, 12)),
])
def test_onnx_runtime_gives_minigrad_predictions(tmp_path, dtype, make, shape):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    rng = np.random.default_rng(0)
    model = make(dtype)
    model(mg.tensor(rng.standard_normal((4, *shape)).astype(dtype)))  # running stats move
    model.eval()
    E.to_onnx(model, tmp_path / "m.onnx", shape)  # checked by onnx.checker
    if dtype == np.float64:
        return  # ONNX Runtime has no float64 Conv on the CPU
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, *shape)).astype(dtype)
    with mg.no_grad():
        want = model(mg.tensor(x)).numpy()
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], want, rtol=1e-5,
                               atol=1e-5)


def test_what_cannot_be_exported_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="divide the input"):
        E.to_onnx(nn.Sequential(nn.AdaptiveAvgPool2d(2)), tmp_path / "m.onnx", (1, 5, 5))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        E.to_onnx(nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False)),
                  tmp_path / "m.onnx", (1, 4, 4))
    with pytest.raises(ValueError, match="smaller|at least 1x1"):
        E.to_onnx(nn.Sequential(nn.Conv2d(1, 1, 5)), tmp_path / "m.onnx", (1, 3, 3))
