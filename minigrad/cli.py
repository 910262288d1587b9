"""The `minigrad` command line (also `python -m minigrad`).

    minigrad train [options]          train the chapter's simple_net (3 vs 7 by default)
    minigrad evaluate MODEL           accuracy and confusion matrix
    minigrad predict MODEL IMAGE...   class and probability of 28x28 images
    minigrad show                     digits and the mean 3 / mean 7, as text or PNG
    minigrad bench                    kernels against NumPy on this machine
    minigrad info                     version, SIMD path, threads

Errors are one line on stderr and exit status 2.
"""
import argparse
import json
import os
import sys
import time
from functools import partial

import numpy as np

TASKS = {
    # task: classes, loss, metric, default hidden width, lr, momentum, epochs
    "3v7": dict(classes=["7", "3"], hidden=30, lr=0.5, momentum=0.0, epochs=20),
    "digits": dict(classes=[str(d) for d in range(10)], hidden=128, lr=0.05, momentum=0.9,
                   epochs=10),
}


class CLIError(Exception):
    """A problem to report in one line."""


# ------------------------------------------------------------------ data

def load_task_data(task, data_dir=None):
    """((x_train, y_train), (x_valid, y_valid), source) for a task, flattened floats."""
    from minigrad import datasets as D

    if data_dir is None:
        split = D.mnist_sample() if task == "3v7" else D.mnist_digits()
        return (*split, "the shipped MNIST sample (test set, split index % 5)")
    if not os.path.isdir(data_dir):
        raise CLIError(f"--data {data_dir}: not a directory")
    try:
        train = D.load_mnist(data_dir, "train")
        valid = D.load_mnist(data_dir, "test")
        source = f"{data_dir} (train / test files)"
    except FileNotFoundError:
        images, labels = D.load_mnist(data_dir, "test")
        tr, va = D.split_indices(len(images))
        train, valid = (images[tr], labels[tr]), (images[va], labels[va])
        source = f"{data_dir} (test file, split index % 5)"

    def prepare(images, labels):
        if task == "3v7":
            images, y = D.three_vs_seven(images, labels)
        else:
            y = labels.astype(np.int64)
        return images.reshape(len(images), -1).astype(np.float32) / 255.0, y
    return prepare(*train), prepare(*valid), source


def _targets(task, y):
    return y.reshape(-1, 1) if task == "3v7" else y


def task_parts(task):
    import minigrad as mg
    from minigrad import functional as F

    if task == "3v7":
        return F.mnist_loss, mg.batch_accuracy, 1
    return F.cross_entropy, mg.accuracy, 10


def probabilities(task, logits):
    """Per-class probabilities from a model's outputs."""
    z = np.asarray(logits, np.float64)
    if task == "3v7":
        p3 = 1 / (1 + np.exp(-z[:, 0]))
        return np.stack([1 - p3, p3], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ commands

def cmd_train(args):
    import minigrad as mg
    from minigrad import nn
    from minigrad.serialize import save_model

    task = TASKS[args.task]
    hidden = args.hidden or task["hidden"]
    lr = args.lr if args.lr is not None else task["lr"]
    momentum = args.momentum if args.momentum is not None else task["momentum"]
    epochs = args.epochs or task["epochs"]
    if args.threads:
        mg.set_num_threads(args.threads)
    if args.plot:
        _need_matplotlib()
    (x_train, y_train), (x_valid, y_valid), source = load_task_data(args.task, args.data)
    loss_func, metric, outputs = task_parts(args.task)
    print(f"task {args.task}: {len(x_train)} train, {len(x_valid)} valid images from {source}")
    dls = mg.DataLoaders.from_arrays(x_train, _targets(args.task, y_train), x_valid,
                                     _targets(args.task, y_valid), batch_size=args.batch_size,
                                     seed=args.seed)
    rng = np.random.default_rng(args.seed)
    model = nn.Sequential(nn.Linear(x_train.shape[1], hidden, rng=rng), nn.ReLU(),
                          nn.Linear(hidden, outputs, rng=rng))
    print(f"model: Linear({x_train.shape[1]}, {hidden}), ReLU, Linear({hidden}, {outputs}); "
          f"SGD lr={lr} momentum={momentum}, batch {args.batch_size}, "
          f"{mg.get_num_threads()} thread(s), {mg.kernels.simd_path()} kernels")
    learn = mg.Learner(dls, model, loss_func, opt_func=partial(mg.SGD, momentum=momentum),
                       lr=lr, metrics=[metric])
    start = time.perf_counter()
    learn.fit(epochs, target=args.target_accuracy, time_limit=args.time_limit,
              patience=args.patience, progress=None if args.progress else False)
    seconds = time.perf_counter() - start
    final = learn.history[-1][metric.__name__] if learn.history else float("nan")
    print(f"final valid accuracy: {final:.4f} ({seconds:.2f}s)")
    meta = {"task": args.task, "classes": task["classes"], "metric": metric.__name__}
    if args.save:
        state = learn.best_state or model.state_dict()
        best = min(learn.history, key=lambda r: r["valid_loss"]) if learn.history else None
        if best is not None:
            meta["epoch"], meta["valid_accuracy"] = best["epoch"], best[metric.__name__]
        save_model(model, args.save, meta, state)
        where = "" if best is None else f" (epoch {best['epoch']})"
        print(f"saved the model with the best valid loss{where} to {args.save}")
    if args.json:
        record = {
            "settings": {"task": args.task, "data": source, "epochs": epochs, "lr": lr,
                         "momentum": momentum, "batch_size": args.batch_size,
                         "hidden": hidden, "seed": args.seed,
                         "target_accuracy": args.target_accuracy,
                         "time_limit": args.time_limit, "patience": args.patience,
                         "threads": mg.get_num_threads(),
                         "simd_path": mg.kernels.simd_path()},
            "history": learn.history, "stop_reason": learn.stop_reason,
            "final": {"valid_accuracy": final, "valid_loss": learn.history[-1]["valid_loss"]
                      if learn.history else None, "seconds": seconds},
        }
        from minigrad._files import atomic_write
        atomic_write(args.json, lambda f: f.write(json.dumps(record, indent=2).encode()))
        print(f"wrote {args.json}")
    if args.plot:
        plot_history(learn.history, metric.__name__, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _need_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise CLIError("--plot needs matplotlib: pip install 'minigrad[plot]'") from e


def plot_history(history, metric, path):
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


def _load(path):
    from minigrad.serialize import load_model

    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    model, meta = load_model(path)
    if meta.get("task") not in TASKS:
        raise CLIError(f"{path}: model has no known task in its metadata")
    return model, meta


def cmd_evaluate(args):
    model, meta = _load(args.model)
    task = meta["task"]
    _, (x, y), source = load_task_data(task, args.data)
    n_in = model.layers[0].in_features
    if x.shape[1] != n_in:
        raise CLIError(f"the model takes {n_in} inputs but the images have {x.shape[1]} pixels")
    import minigrad as mg
    with mg.no_grad():
        probs = probabilities(task, model(mg.tensor(x)).data)
    pred = probs.argmax(axis=1)
    truth = y.astype(np.int64)
    classes = meta["classes"]
    k = len(classes)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    print(f"{args.model}: task {task}, {len(x)} valid images from {source}")
    print(f"accuracy: {np.mean(pred == truth):.4f}")
    print("confusion matrix (rows: true class, columns: predicted)")
    order = list(range(k)) if task == "digits" else [1, 0]  # show 3 before 7
    print("      " + "".join(f"{classes[j]:>6}" for j in order))
    for i in order:
        print(f"{classes[i]:>6}" + "".join(f"{confusion[i, j]:>6}" for j in order))
    return 0


def read_images(path):
    """[(label, 28x28 uint8)] from a PNG, a PGM or an IDX file."""
    from minigrad import datasets, images

    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89PNG"):
        found = [(path, images.read_png(path))]
    elif head[:2] in (b"P5", b"P2"):
        found = [(path, images.read_pgm(path))]
    else:
        try:
            arr = datasets.read_idx(path)
        except ValueError as e:
            raise CLIError(f"{path}: not a PNG, PGM or IDX image file ({e})") from e
        if arr.ndim == 2:
            arr = arr[None]
        found = [(f"{path}[{i}]", a) for i, a in enumerate(arr)]
    for name, img in found:
        if img.shape != (28, 28):
            raise CLIError(f"{name}: images must be 28x28 grayscale, got {img.shape}")
    return found


def cmd_predict(args):
    import minigrad as mg

    model, meta = _load(args.model)
    items = [item for path in args.images for item in read_images(path)]
    x = np.stack([img for _, img in items]).reshape(len(items), -1).astype(np.float32) / 255
    if x.shape[1] != model.layers[0].in_features:
        raise CLIError(f"the model takes {model.layers[0].in_features} inputs, images have "
                       f"{x.shape[1]}")
    with mg.no_grad():
        probs = probabilities(meta["task"], model(mg.tensor(x)).data)
    for (name, _), p in zip(items, probs, strict=True):
        k = int(p.argmax())
        print(f"{name}: {meta['classes'][k]} (probability {p[k]:.4f})")
    return 0


def cmd_show(args):
    from minigrad import datasets, images

    (x, y), _ = datasets.mnist_sample(flatten=False)
    mean3, mean7 = x[y == 1].mean(axis=0), x[y == 0].mean(axis=0)
    if args.out:
        pad = np.zeros((28, 4), np.float32)
        images.write_png(args.out, np.hstack([mean3, pad, mean7]))
        print(f"wrote the mean 3 and mean 7 to {args.out}")
    if args.digits:
        (xd, _), _ = datasets.mnist_digits(flatten=False)
        images.write_png(args.digits, images.grid(xd[:100]))
        print(f"wrote the first 100 digits to {args.digits}")
    if not args.out and not args.digits:
        left = images.ascii_art(mean3).split("\n")
        right = images.ascii_art(mean7).split("\n")
        print(f"{'mean 3':<56}  mean 7")
        print("\n".join(f"{a}  {b}" for a, b in zip(left, right, strict=True)))
    return 0


def cmd_bench(args):
    import minigrad as mg
    from minigrad import bench

    if args.threads:
        mg.set_num_threads(args.threads)
    print(json.dumps(bench.machine_info()))
    bench.quick_suite(repeats=args.repeats)
    if args.epoch:
        bench.epoch_suite(quick=True, repeats=2)
    return 0


def cmd_info(args):
    import minigrad
    from minigrad import kernels as K

    print(f"minigrad {minigrad.__version__}")
    print(f"simd path: {K.simd_path()} (available: {', '.join(K.simd_paths_available())})")
    print(f"threads: {K.get_num_threads()} (OpenMP {'on' if K.openmp_enabled() else 'off'})")
    print(f"build flags: {K.build_flags()}")
    print(f"numpy: {np.__version__}")
    print(f"python: {sys.version.split()[0]}")
    return 0


# ------------------------------------------------------------------ parser

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonneg_float(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def build_parser():
    ap = argparse.ArgumentParser(prog="minigrad", description="minigrad: train, evaluate "
                                 "and benchmark digit classifiers")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the chapter's simple_net")
    p.add_argument("--task", choices=sorted(TASKS), default="3v7")
    p.add_argument("--data", metavar="DIR", help="a directory of MNIST IDX files "
                   "(default: the sample shipped in the package)")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--lr", type=_nonneg_float)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--hidden", type=_positive_int)
    p.add_argument("--momentum", type=_nonneg_float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-accuracy", type=_nonneg_float, metavar="ACC")
    p.add_argument("--time-limit", type=_nonneg_float, metavar="SECONDS")
    p.add_argument("--patience", type=_positive_int, metavar="EPOCHS")
    p.add_argument("--threads", type=_positive_int)
    p.add_argument("--save", metavar="PATH", help="save the best model (.npz)")
    p.add_argument("--plot", metavar="PATH", help="PNG of loss and accuracy per epoch")
    p.add_argument("--json", metavar="PATH", help="settings, history and final metrics")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model")
    p.add_argument("model")
    p.add_argument("--data", metavar="DIR")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify 28x28 images (PNG, PGM, IDX)")
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("show", help="the mean 3 and mean 7 (text, or PNG with --out)")
    p.add_argument("--out", metavar="PNG")
    p.add_argument("--digits", metavar="PNG", help="also write a grid of 100 digits")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("bench", help="a quick table of the kernels against NumPy")
    p.add_argument("--repeats", type=_positive_int, default=7)
    p.add_argument("--threads", type=_positive_int)
    p.add_argument("--no-epoch", dest="epoch", action="store_false",
                   help="skip the short whole-epoch comparison")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("info", help="version, build flags, SIMD path, threads")
    p.set_defaults(func=cmd_info)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as e:
        print(f"minigrad: error: {e}", file=sys.stderr)
    except (ValueError, TypeError, OSError) as e:
        print(f"minigrad: error: {e}".splitlines()[0], file=sys.stderr)
    except KeyboardInterrupt:
        print("minigrad: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
