"""The grid behind `minigrad train`'s default recipes: SGD (with and without
momentum) and Adam, constant rate and fastai's one-cycle, a few learning
rates and epoch counts, on the shipped data, trained exactly as the command
line trains (minigrad.tasks.make_learner / fit). Prints a table per task and
per (optimizer, schedule) the best rate; the finalists (the best rate of each
optimizer and schedule at the default epoch count) are rerun on more seeds.

    python benchmarks/recipes.py                 # both tasks, seed 0, finalists on 0 1 2
    python benchmarks/recipes.py --task digits --seeds 0 --final-seeds 0 1 2 3

The choice is by final valid accuracy (the command line's figure) at equal
epoch counts; times are wall-clock seconds of the whole fit, indicative only
on a shared machine. A constant-rate run of N epochs is the first N epochs of
the longest run (same seed, same batches), so it is read from that run.
"""
import argparse
import time

import numpy as np

from minigrad import tasks as T

# optimizer variants: (name in the table, --opt, SGD momentum, learning rates to try)
VARIANTS = {
    "3v7": [("sgd", "sgd", 0.0, [0.1, 0.3, 0.5, 1.0, 2.0]),
            ("sgd+mom", "sgd", 0.9, [0.02, 0.05, 0.1, 0.2, 0.5]),
            ("adam", "adam", None, [0.001, 0.003, 0.01, 0.03])],
    "digits": [("sgd", "sgd", 0.0, [0.1, 0.2, 0.5, 1.0, 2.0]),
               ("sgd+mom", "sgd", 0.9, [0.02, 0.05, 0.1, 0.2, 0.5]),
               ("adam", "adam", None, [0.001, 0.003, 0.01, 0.03])],
}
EPOCHS = {"3v7": [5, 10, 20], "digits": [3, 5, 10]}


def run(task, data, opt, momentum, schedule, lr, epochs, seed):
    """History rows (dicts) and seconds of one fit."""
    s = T.recipe(task, opt, schedule, lr, momentum, epochs)
    learn = T.make_learner(s, *data, seed=seed, log=lambda *a: None)
    start = time.perf_counter()
    T.fit(learn, s, progress=False)
    return learn.recorder.history, time.perf_counter() - start


def grid(task, seeds, log=print):
    """{(variant, schedule, lr, epochs): [(accuracy, valid_loss, seconds) per seed]}."""
    data = T.load_task_data(task)[:2]
    metric = T.task_parts(task)[1].__name__
    results = {}
    longest = max(EPOCHS[task])
    for name, opt, mom, lrs in VARIANTS[task]:
        for lr in lrs:
            for seed in seeds:
                hist, secs = run(task, data, opt, mom, "constant", lr, longest, seed)
                for n in EPOCHS[task]:
                    row = hist[n - 1]
                    results.setdefault((name, "constant", lr, n), []).append(
                        (row[metric], row["valid_loss"], secs * n / longest))
                for n in EPOCHS[task]:
                    hist, secs = run(task, data, opt, mom, "one-cycle", lr, n, seed)
                    results.setdefault((name, "one-cycle", lr, n), []).append(
                        (hist[-1][metric], hist[-1]["valid_loss"], secs))
            log(f"  {task} {name} lr={lr} done")
    return results


def finalists(task, results, epochs):
    """The best rate of each variant and schedule at ``epochs``: the highest
    accuracy, ties broken by the lower valid loss."""
    best = {}
    for (name, sched, lr, n), rows in results.items():
        score = (np.mean([r[0] for r in rows]), -np.mean([r[1] for r in rows]))
        if n == epochs and score > best.get((name, sched), ((-1, 0), None))[0]:
            best[name, sched] = (score, lr)
    return {k: lr for k, (_, lr) in best.items()}


def rerun(task, chosen, epochs, seeds, results):
    """Add the finalists' runs on more seeds to ``results``."""
    data = T.load_task_data(task)[:2]
    metric = T.task_parts(task)[1].__name__
    opts = {name: (opt, mom) for name, opt, mom, _ in VARIANTS[task]}
    for (name, sched), lr in chosen.items():
        rows = results[name, sched, lr, epochs]
        for seed in seeds[len(rows):]:
            hist, secs = run(task, data, *opts[name], sched, lr, epochs, seed)
            rows.append((hist[-1][metric], hist[-1]["valid_loss"], secs))


def table(results, keys=None):
    """Markdown rows: accuracy as mean (min) over seeds."""
    lines = ["| optimizer | schedule | lr | epochs | seeds | valid acc mean (min) | "
             "valid loss | seconds |", "|---|---|---|---|---|---|---|---|"]
    for key in keys or sorted(results, key=lambda k: (k[3], k[0], k[1], k[2])):
        rows = np.array(results[key])
        name, sched, lr, n = key
        lines.append(f"| {name} | {sched} | {lr:g} | {n} | {len(rows)} | "
                     f"{rows[:, 0].mean():.4f} ({rows[:, 0].min():.4f}) | "
                     f"{rows[:, 1].mean():.4f} | {rows[:, 2].mean():.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=sorted(T.TASKS), action="append")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--final-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    for task in args.task or sorted(T.TASKS):
        epochs = T.TASKS[task]["epochs"]
        start = time.perf_counter()
        results = grid(task, args.seeds)
        print(f"\n## {task}: the grid (seeds {args.seeds})\n")
        print(table(results))
        chosen = finalists(task, results, epochs)
        rerun(task, chosen, epochs, sorted(set(args.seeds) | set(args.final_seeds)), results)
        keys = sorted(((n, s, lr, epochs) for (n, s), lr in chosen.items()),
                      key=lambda k: (-np.mean([r[0] for r in results[k]]),
                                     np.mean([r[1] for r in results[k]])))
        print(f"\n## {task}: finalists at {epochs} epochs, best first\n")
        print(table(results, keys))
        print(f"\n({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
