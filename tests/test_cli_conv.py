"""`minigrad train --arch cnn|resnet`, run as a user would: in a subprocess."""
import json

from test_cli import run


def test_train_cnn_one_cycle_reaches_high_accuracy(tmp_path):
    record = tmp_path / "run.json"
    out = run("train", "--arch", "cnn", "--epochs", "2", "--hidden", "16", "--json",
              str(record), "--no-progress")
    assert "model: cnn of width 16; 1cycle SGD lr_max=0.2" in out.stdout
    settings = json.loads(record.read_text())
    assert settings["settings"]["arch"] == "cnn"
    assert settings["final"]["valid_accuracy"] > 0.9


def test_conv_models_are_not_saved_yet(tmp_path):
    out = run("train", "--arch", "resnet", "--save", str(tmp_path / "m.npz"), check=False)
    assert out.returncode == 2
    assert "--arch resnet cannot be saved yet" in out.stderr
    assert not (tmp_path / "m.npz").exists()
