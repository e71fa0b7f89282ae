"""Long-range supervised learning: PLRNN, PLRNN + MAR and an LSTM of the same size and budget.

Tasks (``plrnn_native.tasks``): the addition problem at several sequence lengths T (a fresh batch
for every update, a fixed test set of 1000 sequences), the multiplication problem, and sequential
digits (scikit-learn's 8x8 digits pixel by pixel: 64 steps; upsampled to 28x28: 784 steps;
permuted). Models, all trained with the same budget (updates x batch size), optimiser (Adam,
learning rate decayed exponentially from ``--lr`` to ``--lr-end``) and gradient-norm clipping:

* ``plrnn``: standard PLRNN (M latent units, positive-definite initialisation), no regularisation;
* ``plrnn_mar``: the same network with manifold-attractor regularisation: the last ``mar_fraction``
  of the units start as silent exact integrators (A = 1, W row = 0, h = 0 and input weights C = 0)
  and are pulled back there by MAR(weight, fraction, reduce="mean") during training;
* ``plrnn_mar_awh`` (optional): the same but with random C for the regularised units;
* ``lstm``: ``torch.nn.LSTM`` + linear readout with the hidden size whose parameter count is closest
  to the PLRNN's (``benchmarks/_torch_lstm.py``; needs torch).

The PLRNNs train in float64 by default: in float32, 8 of 22 addition runs at T >= 200 (all three
PLRNN variants) overflowed: a transient growth of the latent states beyond float32's 3e38 that
float64 rides out (``--dtype float32`` reproduces them; benchmarks/results/lr_addition_f32.json).

Every finished run is appended to the JSON file at once (``--out``), and runs already in it are
skipped, so an interrupted sweep continues where it stopped. ``--report`` prints the Markdown
tables (and with ``--plot`` writes the error-vs-T figure) from one or more result files.

    python benchmarks/long_range.py --tasks addition --T 100 200 500 1000 --seeds 0 1 2
    python benchmarks/long_range.py --tasks digits8 pdigits8 --seeds 0 1 2
    python benchmarks/long_range.py --tasks digits28 pdigits28 --updates 1000 --seeds 0
    python benchmarks/long_range.py --report benchmarks/results/long_range.json --plot docs/long_range.png

"Solved" (regression) is the threshold of the issue: test MSE below 0.04 of the trivial (best
constant) predictor's, i.e. normalized MSE < 0.04; Hochreiter & Schmidhuber's per-sequence
criterion (|error| < 0.04) is reported alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import plrnn_native as pn
from plrnn_native import tasks
from plrnn_native.supervised import SupervisedConfig, SupervisedPLRNN, train_supervised

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parent.parent
from _timing import machine_info  # noqa: E402
MODELS = ("plrnn", "plrnn_mar", "lstm")
#: Optional: the MAR initialisation of the issue alone (A = 1, W row = 0, h = 0; C random).
EXTRA_MODELS = ("plrnn_mar_awh",)
#: Runs at another learning rate than 1e-3 are recorded as <model>_lr<lr> (e.g. lstm_lr0.01).
REGRESSION = ("addition", "multiplication")
CLASSIFICATION = ("digits8", "digits28", "pdigits8", "pdigits28")
TEST_SIZE = 1000


def make_data(task: str, T: int):
    """(train, test, fresh): the train split (None for regression), the test split, and for
    regression the generator of fresh training batches."""
    if task in REGRESSION:
        gen = getattr(tasks, task)
        test = gen(TEST_SIZE, T, rng=np.random.default_rng([12345, T]))
        return None, test, (lambda n, rng: gen(n, T, rng))
    size = 28 if task.endswith("28") else 8
    permuted = task.startswith("p")
    return (tasks.digits("train", size=size, permuted=permuted),
            tasks.digits("test", size=size, permuted=permuted), None)


def run_plrnn(model: str, task: str, T: int, seed: int, args, train, test, fresh) -> dict:
    O = test.n_outputs
    net = SupervisedPLRNN("standard", M=args.M, K=test.K, O=O, dtype=args.dtype, seed=seed)
    mar = model.startswith("plrnn_mar")
    cfg = SupervisedConfig(updates=args.updates, batch_size=args.batch_size, lr=args.lr, lr_end=args.lr_end,
                           grad_clip=args.grad_clip, mar_weight=args.mar_weight if mar else 0.0,
                           mar_fraction=args.mar_fraction, mar_reduce="mean", mar_init=mar,
                           mar_init_inputs=model == "plrnn_mar",
                           eval_every=args.eval_every, seed=seed)
    res = train_supervised(net, fresh if fresh is not None else train, test, cfg)
    return {"params": net.n_params, "status": res.status, "message": res.message, "updates_done": res.updates_done,
            "test": res.metrics, "train_seconds": res.seconds, "history": res.history,
            "config": {**net.config, **{k: v for k, v in vars(cfg).items() if k != "betas"}}}


def run_lstm(task: str, T: int, seed: int, args, train, test, fresh) -> dict:
    import _torch_lstm

    O = test.n_outputs
    target = SupervisedPLRNN("standard", M=args.M, K=test.K, O=O).n_params
    hidden = _torch_lstm.lstm_hidden_for_params(target, test.K, O)
    res = _torch_lstm.train_lstm(train, test, hidden=hidden, updates=args.updates, batch_size=args.batch_size,
                                 lr=args.lr, lr_end=args.lr_end, seed=seed, grad_clip=args.grad_clip,
                                 eval_every=args.eval_every or None, threads=args.threads, fresh_data=fresh)
    return {"params": res["params"], "status": "completed" if res["status"] == "ok" else res["status"],
            "updates_done": res["updates_done"], "test": res["test"],
            "train_seconds": res["wall_time_s"] - res["eval_time_s"], "history": res["history"],
            "config": {"hidden": hidden, "updates": args.updates, "batch_size": args.batch_size, "lr": args.lr,
                       "lr_end": args.lr_end, "grad_clip": args.grad_clip}}


def key(rec: dict) -> tuple:
    return rec["task"], rec["T"], rec["model"], rec["seed"], rec["updates"], rec.get("dtype", "float32")


def load(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": []}


def save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def sweep(args) -> Path:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = load(out)
    machine = machine_info(REPO)
    data["machine"] = machine  # of the latest invocation; each run records its own CPU and revision
    done = {key(r) for r in data["runs"]}
    pn.set_num_threads(args.threads)
    for task in args.tasks:
        lengths = args.T if task in REGRESSION else [None]
        for T in lengths:
            train, test, fresh = make_data(task, T)
            T = test.T
            for seed in args.seeds:
                for model in args.models:
                    name = model if args.lr == 1e-3 else f"{model}_lr{args.lr:g}"
                    rec = {"task": task, "T": T, "model": name, "seed": seed, "updates": args.updates,
                           "dtype": "float32" if model == "lstm" else args.dtype}
                    if key(rec) in done:
                        continue
                    t0 = time.perf_counter()
                    if model == "lstm":
                        try:
                            rec.update(run_lstm(task, T, seed, args, train, test, fresh))
                        except ImportError as exc:
                            print(f"skipping lstm: {exc}", file=sys.stderr)
                            continue
                    else:
                        rec.update(run_plrnn(model, task, T, seed, args, train, test, fresh))
                    rec["wall_seconds"] = time.perf_counter() - t0
                    rec["cpu_model"], rec["git_revision"] = machine["cpu_model"], machine.get("git_revision")
                    rec["seq_steps_per_second"] = args.updates * args.batch_size * T / max(rec["train_seconds"], 1e-9)
                    data["runs"].append(rec)
                    save(out, data)
                    print(f"{task:>14} T={T:<5} {name:<16} seed={seed}  {summary_metric(rec):<28} "
                          f"train {rec['train_seconds']:7.1f} s", flush=True)
    return out


def summary_metric(rec: dict) -> str:
    m = rec["test"]
    if not m.get("finite", True):
        return "non-finite outputs"
    if "normalized_mse" in m:
        return f"nMSE {m['normalized_mse']:.4f} ({'solved' if m['solved'] else 'not solved'})"
    return f"accuracy {m['accuracy']:.3f}"


# ---- report -----------------------------------------------------------------------------------
def _cell(values, fmt="{:.3f}"):
    if not values:
        return "–"
    v = np.asarray(values, float)
    return fmt.format(v.mean()) + (f" ± {fmt.format(v.std(ddof=1))}" if len(v) > 1 else "")


def _columns(runs) -> list:
    present = {r["model"] for r in runs}
    return list(MODELS) + sorted(m for m in present if m not in MODELS)


def _nmse(rec) -> str:
    m = rec["test"]
    if rec["status"] == "diverged" or not m.get("finite", True):
        return "div."
    v = m["normalized_mse"]
    return f"{v:.3f}" if v < 100 else "≥100"  # finite parameters, but outputs grown far out of range


def report(paths, plot_path=None) -> str:
    runs = [r for p in paths for r in json.loads(Path(p).read_text())["runs"]]
    lines = []
    reg = [r for r in runs if r["task"] in REGRESSION]
    for task in sorted({r["task"] for r in reg}):
        cols = _columns([r for r in reg if r["task"] == task])
        lines += [f"**{task}**: test MSE / trivial predictor's MSE per seed (div.: training overflowed and "
                  "stopped); [solved seeds / seeds], solved = below 0.04; columns <model>_lr0.01: learning rate "
                  "1e-2 instead of 1e-3", "",
                  "| T | " + " | ".join(cols) + " |", "|--:|" + "--:|" * len(cols)]
        for T in sorted({r["T"] for r in reg if r["task"] == task}):
            cells = []
            for model in cols:
                sel = sorted((r for r in reg if (r["task"], r["T"], r["model"]) == (task, T, model)),
                             key=lambda r: r["seed"])
                solved = sum(bool(r["test"].get("solved")) and r["status"] != "diverged" for r in sel)
                cells.append(", ".join(_nmse(r) for r in sel) + f" [{solved}/{len(sel)}]" if sel else "–")
            lines.append(f"| {T} | " + " | ".join(cells) + " |")
        lines.append("")
    cls = [r for r in runs if r["task"] in CLASSIFICATION]
    if cls:
        ccols = _columns(cls)
        lines += ["**sequential digits**: test accuracy, mean ± sd over seeds (number of seeds; updates)", "",
                  "| task | steps | " + " | ".join(ccols) + " |", "|---|--:|" + "--:|" * len(ccols)]
        for task in [t for t in CLASSIFICATION if any(r["task"] == t for r in cls)]:
            cells = []
            for model in ccols:
                sel = [r for r in cls if (r["task"], r["model"]) == (task, model)]
                vals = [r["test"]["accuracy"] if r["test"].get("finite", True) else 0.0 for r in sel]
                ups = sorted({r["updates"] for r in sel})
                cells.append(f"{_cell(vals)} ({len(sel)}; {'/'.join(map(str, ups))})" if sel else "–")
            T = next(r["T"] for r in cls if r["task"] == task)
            lines.append(f"| {task} | {T} | " + " | ".join(cells) + " |")
        lines.append("")
    speed = {}
    for r in runs:
        speed.setdefault((r["task"], r["T"], r["model"]), []).append(r["seq_steps_per_second"])
    lines += ["**training throughput** (sequence-steps per second, median over runs)", "",
              "| task | T | " + " | ".join(MODELS) + " | PLRNN / LSTM |", "|---|--:|" + "--:|" * (len(MODELS) + 1)]
    for task, T in sorted({(k[0], k[1]) for k in speed}):
        med = {m: float(np.median(speed[(task, T, m)])) for m in MODELS if (task, T, m) in speed}
        ratio = f"{med['plrnn'] / med['lstm']:.1f}×" if "plrnn" in med and "lstm" in med else "–"
        lines.append(f"| {task} | {T} | " + " | ".join(f"{med[m]:.3g}" if m in med else "–" for m in MODELS)
                     + f" | {ratio} |")
    text = "\n".join(lines)
    if plot_path:
        _plot(reg, cls, plot_path)
    return text


def _plot(reg, cls, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if cls else 1, figsize=(12 if cls else 6, 4.2), squeeze=False)
    ax = axes[0, 0]
    base = {"plrnn": "PLRNN", "plrnn_mar": "PLRNN + MAR", "lstm": "LSTM", "plrnn_mar_awh": "PLRNN + MAR (random C)"}

    def label(model):
        name, _, lr = model.partition("_lr")
        return base.get(name, name) + (f", lr {lr}" if lr else ", lr 0.001")

    colors = {"plrnn": "C0", "plrnn_mar": "C1", "lstm": "C2", "plrnn_mar_awh": "C3"}
    for model in _columns(reg):
        Ts = sorted({r["T"] for r in reg if r["task"] == "addition" and r["model"] == model})
        if not Ts:
            continue
        vals = [[min(r["test"]["normalized_mse"], 10.0) if r["status"] != "diverged" and r["test"].get("finite", True)
                 else 10.0 for r in reg if (r["task"], r["T"], r["model"]) == ("addition", T, model)] for T in Ts]
        name, _, lr = model.partition("_lr")
        ax.plot(Ts, [np.median(v) for v in vals], marker="o", ls="--" if lr else "-", color=colors.get(name),
                label=label(model))  # median over seeds
    ax.axhline(0.04, color="k", ls="--", lw=0.8, label="solved (0.04)")
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="test MSE / trivial MSE (median)",
           title="addition problem (median over seeds; diverged at 10)")
    ax.legend(fontsize=7)
    if cls:
        ax = axes[0, 1]
        names = [t for t in CLASSIFICATION if any(r["task"] == t for r in cls)]
        cols = _columns(cls)
        width = 0.8 / len(cols)
        for i, model in enumerate(cols):
            acc = [[r["test"].get("accuracy", 0.0) for r in cls if (r["task"], r["model"]) == (t, model)] for t in names]
            name, _, lr = model.partition("_lr")
            ax.bar(np.arange(len(names)) + (i - (len(cols) - 1) / 2) * width, [np.mean(a) if a else 0 for a in acc],
                   width, yerr=[np.std(a) if len(a) > 1 else 0 for a in acc], label=label(model), capsize=2,
                   color=colors.get(name), alpha=0.55 if lr else 1.0)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set(ylabel="test accuracy", ylim=(0, 1), title="sequential digits")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["addition"], choices=REGRESSION + CLASSIFICATION)
    p.add_argument("--T", nargs="+", type=int, default=[100, 200, 500, 1000], help="lengths (regression tasks)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS + EXTRA_MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-end", type=float, default=1e-4)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"),
                   help="of the PLRNNs (the LSTM computes in float32)")
    p.add_argument("--M", type=int, default=40, help="PLRNN latent units (the LSTM is matched in parameters)")
    p.add_argument("--mar-weight", type=float, default=5.0)
    p.add_argument("--mar-fraction", type=float, default=0.5)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "long_range.json"))
    p.add_argument("--report", nargs="*", help="print the tables of these result files instead of running")
    p.add_argument("--plot", help="with --report: write the figure here")
    args = p.parse_args(argv)
    if args.report is not None:
        print(report(args.report or [args.out], args.plot))
        return
    out = sweep(args)
    print()
    print(report([out]))


if __name__ == "__main__":
    main()
