"""Model files of convolutional models: the architecture's JSON (conv layers,
batch norm, pooling, the ResNet), round trips, and corrupt descriptions."""
import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, nn
from minigrad import serialize as S


@pytest.mark.parametrize("make", [
    lambda: models.simple_cnn(1, 10, 8),
    lambda: models.resnet18(2, 1, 4),
    lambda: models.ResNet(models.BasicBlock, [1, 2, 1, 3], 5, 2, 6, small_input=True),
    lambda: nn.Sequential(nn.Conv2d(2, 3, (3, 2), 2, 1, 2), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.MaxPool2d(2, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 4)),
])
def test_round_trip_keeps_outputs_and_running_statistics(tmp_path, make):
    model = make()
    channels = S.architecture(model)[0]["in"]
    x = mg.tensor(np.random.default_rng(0).standard_normal((3, channels, 12, 12))
                  .astype(np.float32))
    model(x)  # training mode: the running statistics move
    values = sum(np.asarray(v.numpy()).size for v in model.state_dict().values())
    assert S.check_architecture(S.architecture(model)) == values
    S.save_model(model, tmp_path / "m.npz", {"task": "digits"})
    loaded, meta = S.load_model(tmp_path / "m.npz")
    assert meta == {"task": "digits"}
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


CNN = S.architecture(models.simple_cnn(1, 10, 8))
RESNET = S.architecture(models.resnet18(2, 1, 4))


def _edit(arch, index, **changes):
    arch = json.loads(json.dumps(arch))
    arch[index].update(changes)
    return arch


@pytest.mark.parametrize("arch,message", [
    (_edit(CNN, 0, out=9), "has 8 features but the layer before gives 9"),
    (_edit(CNN, 0, kernel=[3]), "'kernel' must be 2 integers"),
    (_edit(CNN, 0, padding=[-1, 0]), "'padding' must be 2 integers from 0"),
    (_edit(CNN, 1, momentum="x"), "'momentum' must be a small non-negative number"),
    (_edit(CNN, 3, padding=[2, 0]), "at most half the kernel"),
    (_edit(CNN, 4, **{"in": 7}), "takes 7 channels but the layer before gives 8"),
    (_edit(RESNET, 0, blocks=[2, 2, 2]), "'blocks' must be 4 integers"),
    (_edit(RESNET, 0, width=1 << 20), "'width' must be an integer from 1 to 65536"),
    (_edit(RESNET, 0, small_input=1), "'small_input' must be true or false"),
])
def test_corrupt_descriptions_are_value_errors(arch, message):
    with pytest.raises(ValueError, match=message):
        S.check_architecture(arch)


def test_integer_arrays_other_than_the_batch_count_are_refused(tmp_path):
    model = models.simple_cnn(1, 10, 8)
    state = {k: np.asarray(v.numpy()) for k, v in model.state_dict().items()}
    state["1.running_mean"] = state["1.running_mean"].astype(np.int64)
    np.savez(tmp_path / "m.npz", __format__=np.array(S.FORMAT), __meta__=np.array("{}"),
             __architecture__=np.array(json.dumps(CNN)), **state)
    with pytest.raises(ValueError, match="'1.running_mean' is int64, not a float type"):
        S.load_model(tmp_path / "m.npz")


def test_safetensors_both_ways_with_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    import torch_models as T

    model = models.resnet18(2, 1, 4, small_input=True)
    model(mg.tensor(np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)))
    mg.save(model, tmp_path / "m.safetensors", {"task": "3v7"})
    loaded = mg.load(tmp_path / "m.safetensors")
    tm = T.ResNet([2, 2, 2, 2], 2, 1, 4, small_input=True)
    tm.load_state_dict(st.load_file(str(tmp_path / "m.safetensors")))
    st.save_file(tm.state_dict(), str(tmp_path / "t.safetensors"))
    fresh = mg.load(tmp_path / "t.safetensors", models.resnet18(2, 1, 4, small_input=True))
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    for m in (model, loaded, fresh):
        m.eval()
    tm.eval()
    with torch.no_grad():
        want = tm(torch.tensor(x)).numpy()
    for m in (model, loaded, fresh):
        np.testing.assert_allclose(m(mg.tensor(x)).numpy(), want, atol=1e-5)
