"""The command line's tasks: their data, models, checks and outputs.

A task ("3v7": the chapter's 3s against 7s, one logit; "digits": all ten,
ten logits) fixes the classes, the loss, the metric and the default recipe
(optimizer, schedule, rates: measured by benchmarks/recipes.py). Everything
here raises ValueError with a one-line message on bad input; the command line
(minigrad.cli) turns that into its error policy.
"""
import os
from functools import partial

import numpy as np

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}
SCHEDULES = ("constant", "one-cycle")

TASKS = {
    # classes by label; the default recipe: hidden width, epochs, optimizer, schedule, SGD's
    # momentum, and the learning rate (lr_max for one-cycle) of each optimizer and schedule,
    # all as measured by benchmarks/recipes.py
    "3v7": dict(classes=["7", "3"], hidden=30, epochs=20, opt="sgd", schedule="constant",
                momentum=0.0, lr={("sgd", "constant"): 1.0, ("sgd", "one-cycle"): 2.0,
                                  ("adam", "constant"): 0.003, ("adam", "one-cycle"): 0.01}),
    "digits": dict(classes=[str(d) for d in range(10)], hidden=128, epochs=10, opt="sgd",
                   schedule="one-cycle", momentum=0.9,
                   lr={("sgd", "constant"): 0.1, ("sgd", "one-cycle"): 0.2,
                       ("adam", "constant"): 0.003, ("adam", "one-cycle"): 0.01}),
}
PIXELS = 28 * 28
ARCHS = {
    # --arch cnn (models.simple_cnn) and resnet (ResNet-18) on 1x28x28 images, SGD with
    # weight decay 5e-4: the same keys as a task's recipe. Measured (one-cycle SGD):
    # resnet on 3v7 99.34-99.56% over seeds 0-3 (the shipped 457 valid digits: 2-3
    # wrong; one earlier build's rounding gave 100.00%; lr 0.05 or 0.2, batch 32 or 5-6
    # epochs gave 98.91-99.78%, no better; on AMD Zen 5 99.34-99.56% over seeds 0-7, 5
    # of 8 at 99.56%, and shifts, weight decay or 6 epochs no reliably better:
    # benchmarks/RESULTS.md, Run 13); cnn on 3v7
    # 99.78% (8 epochs), 96.06% (1); on digits 99.00% (8), 94.55% (1), with the batch-norm
    # statistics recomputed at the end of fit; the other rates are unmeasured.
    "cnn": dict(hidden=32, epochs=8, opt="sgd", schedule="one-cycle", momentum=0.9,
                lr={("sgd", "constant"): 0.05, ("sgd", "one-cycle"): 0.2,
                    ("adam", "constant"): 0.001, ("adam", "one-cycle"): 0.005}),
    "resnet": dict(hidden=64, epochs=4, opt="sgd", schedule="one-cycle", momentum=0.9,
                   lr={("sgd", "constant"): 0.02, ("sgd", "one-cycle"): 0.1,
                       ("adam", "constant"): 0.001, ("adam", "one-cycle"): 0.003}),
}
CONV_WEIGHT_DECAY = 5e-4


# ------------------------------------------------------------------ data

def _prepare(task, images, labels, source):
    from minigrad import datasets as D
    from minigrad.data import ScaledBytes

    if task == "3v7":
        wanted = (3, 7)
        missing = [d for d in wanted if not np.any(labels == d)]
        images, y = D.three_vs_seven(images, labels)
    else:
        wanted = range(10)
        missing = [d for d in wanted if not np.any(labels == d)]
        y = labels.astype(np.int64)
    if missing:
        raise ValueError(f"{source}: no images of digit(s) {', '.join(map(str, missing))}, "
                         f"which task {task} needs")
    return ScaledBytes(images.reshape(len(images), -1), 255), y


def load_task_data(task, data_dir=None):
    """((x_train, y_train), (x_valid, y_valid), source) for a task, x flattened
    images as ScaledBytes (uint8 read as floats in [0, 1], x / 255); a data set
    without the task's classes is a ValueError."""
    from minigrad import datasets as D

    if data_dir is None:
        split = (D.mnist_sample if task == "3v7" else D.mnist_digits)(as_bytes=True)
        return (*split, "the shipped MNIST sample (test set, split index % 5)")
    if not os.path.isdir(data_dir):
        raise ValueError(f"--data {data_dir}: not a directory")
    try:
        train = D.load_mnist(data_dir, "train")
        valid = D.load_mnist(data_dir, "test")
        source = f"{data_dir} (train / test files)"
    except FileNotFoundError:
        images, labels = D.load_mnist(data_dir, "test")
        tr, va = D.split_indices(len(images))
        train, valid = (images[tr], labels[tr]), (images[va], labels[va])
        source = f"{data_dir} (test file, split index % 5)"
    return (_prepare(task, *train, f"{source}, training part"),
            _prepare(task, *valid, f"{source}, validation part"), source)


def targets(task, y):
    """Targets in the shape the task's loss takes."""
    return y.reshape(-1, 1) if task == "3v7" else y


# ------------------------------------------------------------------ models

def task_parts(task):
    """(loss function, metric, number of outputs) of a task."""
    import minigrad as mg
    from minigrad.nn import functional as F

    if task == "3v7":
        return F.mnist_loss, mg.batch_accuracy, 1
    return F.cross_entropy, mg.accuracy, 10


def conv_loss(task):
    """The loss of a convolutional model: cross-entropy on logits (binary for 3v7)."""
    from minigrad.nn import functional as F

    if task == "3v7":
        return F.binary_cross_entropy_with_logits
    return F.cross_entropy


def build_model(task, n_in, hidden, seed):
    """The chapter's simple_net: Linear(n_in, hidden), ReLU, Linear(hidden, outputs)."""
    from minigrad import nn

    rng = np.random.default_rng(seed)
    outputs = task_parts(task)[2]
    return nn.Sequential(nn.Linear(n_in, hidden, rng=rng), nn.ReLU(),
                         nn.Linear(hidden, outputs, rng=rng))


def build_conv_model(task, arch, width, seed):
    """models.simple_cnn ("cnn") or models.resnet18 ("resnet", torchvision's
    layout) for 1x28x28 images, with the task's number of outputs."""
    from minigrad import models

    rng = np.random.default_rng(seed)
    outputs = task_parts(task)[2]
    if arch == "cnn":
        return models.simple_cnn(1, outputs, width, rng=rng)
    return models.resnet18(outputs, 1, width, rng=rng)


# ------------------------------------------------------------------ recipes

def recipe(task, opt=None, schedule=None, lr=None, momentum=None, epochs=None, hidden=None,
           arch="mlp"):
    """The settings of a training run (a dict): the default recipe of the task
    (``arch`` "mlp") or of the architecture wherever an argument is None. The
    default learning rate depends on the optimizer and schedule; ``momentum``
    is SGD's only (Adam's beta1 is fixed, and one-cycle schedules it);
    ``hidden`` is the width of a convolutional architecture."""
    t = TASKS[task] if arch == "mlp" else ARCHS[arch]
    opt, schedule = opt or t["opt"], schedule or t["schedule"]
    if opt not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {opt!r} (known: {', '.join(OPTIMIZERS)})")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
    if momentum is not None and opt != "sgd":
        raise ValueError(f"--momentum is SGD's; --opt {opt} takes none")
    if opt == "sgd" and momentum is None:
        momentum = t["momentum"]
    return dict(task=task, arch=arch, opt=opt, schedule=schedule,
                lr=t["lr"][opt, schedule] if lr is None else lr, momentum=momentum,
                epochs=epochs or t["epochs"], hidden=hidden or t["hidden"])


def describe(settings):
    """The optimizer and schedule of a recipe, in words."""
    name = OPTIMIZERS[settings["opt"]]
    extra = f" momentum={settings['momentum']}" if settings["opt"] == "sgd" else ""
    if settings["schedule"] == "one-cycle":
        return f"{name}{extra}, one-cycle schedule lr_max={settings['lr']}"
    return f"{name} lr={settings['lr']}{extra}, constant schedule"


def make_learner(settings, train, valid, batch_size=64, seed=0, log=print):
    """A Learner for a recipe: the task's model (seeded), loss and metric,
    shuffled batches (seeded) and the recipe's optimizer."""
    import minigrad as mg

    task, arch = settings["task"], settings.get("arch", "mlp")
    (x_train, y_train), (x_valid, y_valid) = train, valid
    # Images as floats (ScaledBytes give them) where batches would convert bytes every
    # epoch: the validation set (in-order batches are views) and the conv nets' training
    # (eager); the MLP's compiled step reads shuffled training batches as bytes.
    x_valid = np.asarray(x_valid)
    loss_func, metric, _ = task_parts(task)
    decay = {}
    if arch != "mlp":  # images as (N, 1, 28, 28)
        x_train = np.asarray(x_train).reshape(-1, 1, 28, 28)
        x_valid = x_valid.reshape(-1, 1, 28, 28)
        loss_func, decay = conv_loss(task), dict(weight_decay=CONV_WEIGHT_DECAY)
    dls = mg.DataLoaders.from_arrays(x_train, targets(task, y_train), x_valid,
                                     targets(task, y_valid), batch_size=batch_size, seed=seed)
    if arch == "mlp":
        model = build_model(task, x_train.shape[1], settings["hidden"], seed)
    else:
        model = build_conv_model(task, arch, settings["hidden"], seed)
    if settings["opt"] == "sgd":
        opt_func = partial(mg.optim.SGD, momentum=settings["momentum"], **decay)
    else:
        opt_func = partial(mg.optim.Adam, **decay)
    return mg.Learner(dls, model, loss_func, opt_func=opt_func, lr=settings["lr"],
                      metrics=[metric], log=log)


def _batch_norm_refresh():
    """A callback that, after the last epoch's training (or a stop), recomputes
    the batch norms' running statistics for the final weights over one pass of
    the training set (models.update_bn), before that epoch's validation. With a
    one-cycle schedule the weights move fast until the last batches, and
    running statistics with momentum 0.1 trail them: a one-epoch cnn on 3v7
    validated at 47% without it."""
    from minigrad import models
    from minigrad.callbacks import Callback

    class BatchNormRefresh(Callback):
        order = 50  # after the schedulers and stop rules

        def after_train(self):
            if self.epoch == self.n_epoch - 1 or self.stop_reason is not None:
                models.update_bn(self.dls.train, self.model)

    return BatchNormRefresh()


def fit(learn, settings, **kwargs):
    """Train with the recipe's schedule: ``fit`` at a constant rate, or
    ``fit_one_cycle`` with the rate as lr_max. ``kwargs`` go to ``fit``
    (stop rules, progress). Convolutional models get their batch-norm
    statistics recomputed at the end (``_batch_norm_refresh``). Returns the
    recorder's history."""
    if settings.get("arch", "mlp") != "mlp":
        kwargs["cbs"] = [*kwargs.get("cbs", ()), _batch_norm_refresh()]
    if settings["schedule"] == "one-cycle":
        return learn.fit_one_cycle(settings["epochs"], settings["lr"], **kwargs)
    return learn.fit(settings["epochs"], **kwargs)


def check_model(model, meta, path):
    """Raise ValueError unless a loaded model and its metadata agree with each
    other and with a known task: task name, class names, inputs, outputs."""
    task = meta.get("task")
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"{path}: model has no known task in its metadata (got {task!r}; "
                         f"known: {', '.join(sorted(TASKS))})")
    classes = meta.get("classes")
    if classes != TASKS[task]["classes"]:
        raise ValueError(f"{path}: metadata classes {classes!r} are not task {task}'s "
                         f"{TASKS[task]['classes']}")
    last = getattr(model, "fc", None) or [m for m in model.layers
                                          if hasattr(m, "in_features")][-1]
    outputs = task_parts(task)[2]
    if last.out_features != outputs:
        raise ValueError(f"{path}: task {task} needs {outputs} output(s), the model has "
                         f"{last.out_features}")
    shape = input_shape(model)
    if len(shape) == 3 and shape != (1, 28, 28):
        raise ValueError(f"{path}: the model takes {shape[0]}-channel images, not 28x28 "
                         f"grayscale ones")
    return task


def input_shape(model):
    """The shape of one input: (pixels,) for the chapter's net, (channels, 28,
    28) for a convolutional model."""
    first = getattr(model, "conv1", None) or model.layers[0]
    if hasattr(first, "in_channels"):
        return (first.in_channels, 28, 28)
    return (next(m for m in model.layers if hasattr(m, "in_features")).in_features,)


# ------------------------------------------------------------------ outputs

def probabilities(task, logits):
    """Per-class probabilities from a model's outputs; non-finite outputs are
    a ValueError (a result computed from NaN is not an answer)."""
    z = np.asarray(logits, np.float64)
    if not np.all(np.isfinite(z)):
        raise ValueError("the model's outputs are not finite (NaN or inf): no answer")
    if task == "3v7":
        p3 = 1 / (1 + np.exp(-np.clip(z[:, 0], -700, 700)))
        return np.stack([1 - p3, p3], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def confusion(truth, pred, k):
    """k x k counts: rows the true class, columns the predicted one."""
    out = np.zeros((k, k), np.int64)
    np.add.at(out, (truth, pred), 1)
    return out


def read_images(path):
    """[(name, 28x28 uint8)] from an image file (PNG, PGM, or whatever Pillow
    reads) or an IDX file of uint8 images."""
    from minigrad import datasets, images

    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] in (b"\x1f\x8b", b"\x00\x00"):  # gzip or an IDX magic number
        arr = datasets.read_idx(path, max_bytes=1 << 26)
        if arr.dtype != np.uint8:
            raise ValueError(f"{path}: IDX images must be uint8, got {arr.dtype}")
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise ValueError(f"{path}: images must be 28x28 grayscale, got {arr.shape}")
        if not len(arr):
            raise ValueError(f"{path}: the IDX file holds no images")
        return [(f"{path}[{i}]", a) for i, a in enumerate(arr)]
    try:
        img = images.read_image(path, max_pixels=PIXELS)
    except images.ImageTooLarge as e:
        raise ValueError(f"{path}: images must be 28x28 grayscale, got "
                         f"{e.width}x{e.height}") from e
    except images.UnknownFormat as e:
        raise ValueError(f"{path}: not a PNG, PGM or IDX image file ({e})") from e
    if img.shape != (28, 28):
        raise ValueError(f"{path}: images must be 28x28 grayscale, got {img.shape}")
    return [(path, img)]


def plot_history(history, metric, path):
    """A PNG of train/valid loss and the metric per epoch (needs matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in history], "o-", label="train loss")
    ax1.plot(epochs, [r["valid_loss"] for r in history], "o-", label="valid loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [r[metric] for r in history], "o-", color="C2")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"valid {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
