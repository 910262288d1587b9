"""The `minigrad` command line (also `python -m minigrad`).

    minigrad train [options]          train the chapter's simple_net (3 vs 7 by default)
                                      with --opt {sgd,adam}, --schedule {constant,one-cycle},
                                      or a convnet or ResNet-18 (--arch cnn|resnet)
    minigrad evaluate MODEL           accuracy and confusion matrix
    minigrad predict MODEL IMAGE...   class and probability of 28x28 images
    minigrad show                     digits and the mean 3 / mean 7, as text or PNG
    minigrad info                     version, SIMD path, threads
    minigrad export MODEL --onnx PATH write a saved model as ONNX

(The benchmarks are not part of the package: `python benchmarks/run.py` in
a source checkout.)

Error policy: every failure is one line on stderr, ``minigrad: error: ...``,
and exit status 2 -- bad arguments or environment, unreadable or
inconsistent files, not enough memory, a result computed from NaN, training
that never reached a finite loss. Ctrl-C is exit status 130. A traceback
never reaches the user (MINIGRAD_DEBUG=1 shows it for an internal error).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from minigrad import tasks as T
from minigrad.cli_types import (
    THREADS_PER_CPU,
    cpus,
    fraction,
    max_threads,
    nonneg_float,
    nonneg_int,
    positive_int,
    threads,
)


class CLIError(Exception):
    """A problem to report in one line."""


class _Stage:
    """What the command is doing, for the 'not enough memory for ...' message."""
    what = "this command"


def _doing(what):
    _Stage.what = what


def check_environment(environ=os.environ):
    """One-line CLIError for a bad MINIGRAD_NUM_THREADS or MINIGRAD_SIMD."""
    text = environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if text and (not text.isdigit() or not 1 <= int(text) <= max_threads()):
        raise CLIError(f"MINIGRAD_NUM_THREADS must be an integer from 1 to {max_threads()} "
                       f"({THREADS_PER_CPU}x the {cpus()} CPUs), got {text!r}")
    simd = environ.get("MINIGRAD_SIMD", "").strip()
    if simd:
        from minigrad import kernels as K

        if simd not in K.simd_paths_available():
            raise CLIError(f"MINIGRAD_SIMD must be one of "
                           f"{', '.join(K.simd_paths_available())} on this machine, "
                           f"got {simd!r}")


# ------------------------------------------------------------------ commands

def _set_threads(count):
    import minigrad as mg

    if count:
        mg.set_num_threads(count)


def cmd_train(args):
    import minigrad as mg
    from minigrad.serialize import save_model

    s = T.recipe(args.task, args.opt, args.schedule, args.lr, args.momentum, args.epochs,
                 args.hidden, args.arch)
    _set_threads(args.threads)
    if args.plot:
        _need_matplotlib()
    for option in ("save", "json", "plot"):
        _check_writable(getattr(args, option), f"--{option}")
    _doing("the training data")
    train, valid, source = T.load_task_data(args.task, args.data)
    print(f"task {args.task}: {len(train[0])} train, {len(valid[0])} valid images from {source}")
    conv = args.arch != "mlp"
    _doing(f"a {args.arch} of width {s['hidden']}" if conv
           else f"a model with {s['hidden']} hidden units")
    learn = T.make_learner(s, train, valid, args.batch_size, args.seed)
    outputs = T.task_parts(args.task)[2]
    what = f"{args.arch} of width {s['hidden']}" if conv else \
        f"Linear({train[0].shape[1]}, {s['hidden']}), ReLU, Linear({s['hidden']}, {outputs})"
    print(f"model: {what}; {T.describe(s)}, {s['epochs']} epochs, batch {args.batch_size}, "
          f"{mg.get_num_threads()} thread(s), {mg.kernels.simd_path()} kernels")
    _doing("training")
    start = time.perf_counter()
    T.fit(learn, s, target=args.target_accuracy, time_limit=args.time_limit,
          patience=args.patience, progress=None if args.progress else False)
    seconds = time.perf_counter() - start
    rec, metric = learn.recorder, learn.metrics[0].__name__
    if not rec.history:
        raise CLIError("training recorded no epoch: no result to report")
    if not rec.had_finite_loss:
        raise CLIError("training never reached a finite loss (NaN or inf in the data, or "
                       "a learning rate too large?); no model saved")
    final = rec.history[-1][metric]
    print(f"final valid accuracy: {final:.4f} ({seconds:.2f}s)")
    best = next(r for r in rec.history if r["epoch"] == rec.best_epoch)
    if args.save:
        _doing(f"saving {args.save}")
        meta = {"task": args.task, "classes": T.TASKS[args.task]["classes"], "metric": metric,
                "epoch": rec.best_epoch, "valid_accuracy": best[metric]}
        save_model(learn.model, args.save, meta, learn.best_state)
        print(f"saved the model with the best valid loss (epoch {rec.best_epoch}) to {args.save}")
    if args.json:
        record = {
            "settings": {**s, "data": source, "batch_size": args.batch_size, "seed": args.seed,
                         "target_accuracy": args.target_accuracy,
                         "time_limit": args.time_limit, "patience": args.patience,
                         "threads": mg.get_num_threads(),
                         "simd_path": mg.kernels.simd_path()},
            "history": rec.history, "lrs": rec.lrs, "stop_reason": learn.stop_reason,
            "best_epoch": rec.best_epoch,
            "final": {"valid_accuracy": final, "valid_loss": rec.history[-1]["valid_loss"],
                      "seconds": seconds},
        }
        from minigrad._files import atomic_write
        atomic_write(args.json, lambda f: f.write(json.dumps(record, indent=2).encode()))
        print(f"wrote {args.json}")
    if args.plot:
        T.plot_history(rec.history, metric, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _check_writable(path, option):
    """Refuse an output path that cannot be written before training, not after
    (missing folders are created by the save)."""
    if path is not None and not path.strip():
        raise CLIError(f"{option}: an empty path")
    if path and os.path.isdir(path):
        raise CLIError(f"{option} {path}: is a directory, not a file")
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if path and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        raise CLIError(f"{option} {path}: cannot write into {folder}")


def _need_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise CLIError("--plot needs matplotlib: pip install 'minigrad[plot]'") from e


def _load(path):
    """(model, meta, task) of a model file, checked as a whole and against its task."""
    from minigrad.serialize import load_model

    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    _doing(f"loading {path}")
    model, meta = load_model(path)
    return model, meta, T.check_model(model, meta, path)


def _predict(model, task, x):
    import minigrad as mg

    shape = T.input_shape(model)
    if x.shape[1] != np.prod(shape):
        raise CLIError(f"the model takes {shape[0]} inputs but the images have "
                       f"{x.shape[1]} pixels")
    model.eval()
    with mg.no_grad():
        out = model(mg.tensor(x.reshape(-1, *shape)))
    return T.probabilities(task, out.numpy())


def cmd_evaluate(args):
    model, meta, task = _load(args.model)
    _doing("the validation data")
    _, (x, y), source = T.load_task_data(task, args.data)
    probs = _predict(model, task, x)
    pred, truth = probs.argmax(axis=1), y.astype(np.int64)
    classes = meta["classes"]
    k = len(classes)
    counts = T.confusion(truth, pred, k)
    print(f"{args.model}: task {task}, {len(x)} valid images from {source}")
    print(f"accuracy: {np.mean(pred == truth):.4f}")
    print("confusion matrix (rows: true class, columns: predicted)")
    order = list(range(k)) if task == "digits" else [1, 0]  # show 3 before 7
    print("      " + "".join(f"{classes[j]:>6}" for j in order))
    for i in order:
        print(f"{classes[i]:>6}" + "".join(f"{counts[i, j]:>6}" for j in order))
    return 0


def cmd_predict(args):
    model, meta, task = _load(args.model)
    _doing("reading the images")
    items = [item for path in args.images for item in T.read_images(path)]
    x = np.stack([img for _, img in items]).reshape(len(items), -1).astype(np.float32) / 255
    probs = _predict(model, task, x)
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


def cmd_export(args):
    from minigrad.export import export_file

    if not os.path.exists(args.model):
        raise CLIError(f"{args.model}: no such file")
    try:
        export_file(args.model, args.onnx)
    except ImportError as e:
        raise CLIError(str(e)) from e
    print(f"wrote {args.onnx}")
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

class _Parser(argparse.ArgumentParser):
    """argparse with the error policy: one line on stderr, exit status 2."""

    def error(self, message):
        where = self.prog.removeprefix("minigrad").strip()
        self.exit(2, f"minigrad: error: {where + ': ' if where else ''}{_one_line(message)} "
                     f"(see {self.prog} --help)\n")


def build_parser():
    ap = _Parser(prog="minigrad", description="minigrad: train, evaluate "
                                 "and use digit classifiers")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a digit classifier (mlp, cnn or resnet)")
    p.add_argument("--task", choices=sorted(T.TASKS), default="3v7")
    p.add_argument("--data", metavar="DIR", help="a directory of MNIST IDX files "
                   "(default: the sample shipped in the package)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--lr", type=nonneg_float, help="learning rate, lr_max for one-cycle "
                   "(default: the task's best measured for the optimizer and schedule)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--arch", choices=["mlp", *T.ARCHS], default="mlp",
                   help="mlp: the chapter's simple_net; cnn: a small convnet; resnet: "
                        "ResNet-18")
    p.add_argument("--hidden", type=positive_int, help="hidden units (mlp) or width (cnn, "
                   "resnet)")
    p.add_argument("--momentum", type=nonneg_float, help="SGD's (default: the recipe's)")
    p.add_argument("--opt", choices=sorted(T.OPTIMIZERS), help="optimizer (default: the "
                   "task's recipe; --lr defaults per optimizer and schedule)")
    p.add_argument("--schedule", choices=T.SCHEDULES, help="constant rate, or fastai's "
                   "one-cycle with --lr as lr_max (default: the task's recipe)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--target-accuracy", type=fraction, metavar="ACC")
    p.add_argument("--time-limit", type=nonneg_float, metavar="SECONDS")
    p.add_argument("--patience", type=positive_int, metavar="EPOCHS")
    p.add_argument("--threads", type=threads)
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

    p = sub.add_parser("info", help="version, build flags, SIMD path, threads")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="write a saved model as ONNX (needs the onnx package)")
    p.add_argument("model")
    p.add_argument("--onnx", metavar="PATH", required=True)
    p.set_defaults(func=cmd_export)
    return ap


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    _doing(f"minigrad {args.command}")
    try:
        check_environment()
        import minigrad  # noqa: F401 - its import reads the environment too
        return args.func(args)
    except CLIError as e:
        message = str(e)
    except MemoryError:
        message = f"not enough memory for {_Stage.what}"
    except (ValueError, TypeError, OSError) as e:
        message = _one_line(e)
    except KeyboardInterrupt:
        print("minigrad: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("MINIGRAD_DEBUG"):
            raise
        message = (f"internal error ({type(e).__name__}: {_one_line(e)}); "
                   f"MINIGRAD_DEBUG=1 shows the traceback")
    print(f"minigrad: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
