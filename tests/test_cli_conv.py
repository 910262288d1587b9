"""`minigrad train --arch cnn|resnet`, saving, evaluating and predicting with
the models, run as a user would: in a subprocess."""
import json

import numpy as np
from test_cli import run

from minigrad import datasets, images


def test_train_cnn_save_evaluate_predict(tmp_path):
    record, model = tmp_path / "run.json", tmp_path / "cnn.npz"
    # one epoch: evaluated at chance before the batch-norm statistics were
    # recomputed at the end of fit (tasks._batch_norm_refresh)
    out = run("train", "--arch", "cnn", "--epochs", "1", "--hidden", "16", "--json",
              str(record), "--save", str(model), "--no-progress")
    assert "model: cnn of width 16; SGD momentum=0.9, one-cycle schedule lr_max=0.2" in out.stdout
    settings = json.loads(record.read_text())
    assert settings["settings"]["arch"] == "cnn"
    assert settings["final"]["valid_accuracy"] > 0.9
    evaluated = run("evaluate", str(model)).stdout
    accuracy = float(evaluated.split("accuracy: ")[1].split()[0])
    assert accuracy > 0.9
    (x, y), _ = datasets.mnist_sample(flatten=False)
    for label, name in ((1, "three"), (0, "seven")):
        images.write_png(tmp_path / f"{name}.png", x[np.argmax(y == label)])
    predicted = run("predict", str(model), str(tmp_path / "three.png"),
                    str(tmp_path / "seven.png")).stdout.splitlines()
    assert predicted[0].split(": ")[1].startswith("3 (") and \
        predicted[1].split(": ")[1].startswith("7 (")
    try:
        import onnx  # noqa: F401
    except ImportError:
        return
    run("export", str(model), "--onnx", str(tmp_path / "cnn.onnx"))
    assert (tmp_path / "cnn.onnx").stat().st_size > 0


def test_resnet_saves_and_loads(tmp_path):
    model = tmp_path / "resnet.npz"
    run("train", "--arch", "resnet", "--hidden", "4", "--epochs", "1", "--task", "digits",
        "--save", str(model), "--no-progress")
    out = run("evaluate", str(model)).stdout
    assert "task digits" in out and "accuracy: " in out


def test_a_color_model_is_refused_for_grayscale_digits(tmp_path):
    from minigrad import models
    from minigrad.serialize import save_model

    save_model(models.resnet18(1, 3, 4), tmp_path / "rgb.npz",
               {"task": "3v7", "classes": ["7", "3"]})
    out = run("evaluate", str(tmp_path / "rgb.npz"), check=False)
    assert out.returncode == 2 and "takes 3-channel images" in out.stderr
