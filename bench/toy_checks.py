"""The toy study's design checks, printed from a finished run (no assertions; README "The toy study").

1. Model axis at the largest Df: the mean test loss of each model size per task and method, and
   whether it falls strictly with model size (each larger model beats the next smaller one).
2. Learnt at all: each base model's zero-shot test loss on the task (no finetuning; the same
   `<s> source <sep> target </s>` format, loss on the target tokens) beside the finetuned loss.
3. The fits: Delta_h per axis and kind of held-out point, and how many joint fits have E at its
   lower bound (E below E_FLOOR: the fit put all of the loss into the power term).
4. Issue 26's targets: the smallest fall of each model-axis curve between adjacent Df (target
   >= 0.02) and the smallest gap between adjacent sizes at the largest Df (target >= 0.05); the
   model-axis Delta_h per task, mean over methods (target <= 0.05); the flagged fits (target none,
   ftscale.fitting.diagnostics); critical sizes inside the measured Df (target >= 1); the largest
   model's BLEU at the largest Df per translation task (target >= 10) and the loss-BLEU correlation
   on the model axis (target r <= -0.8).

Usage: python bench/toy_checks.py [--config config.yaml] [--results results/<study>]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml

from ftscale.data.tokens import TaskSplit
from ftscale.evaluate import samples
from ftscale.fitting import diagnostics, laws
from ftscale.plan import grid
from ftscale.train import batches, finetune
from ftscale.train.model import base_format, load_model

E_FLOOR = 1e-3  # a fitted E below this is "at its bound" (E = e^e with e driven towards -inf)


def zero_shot_loss(base_dir: Path, test_dir: Path, max_source: int, max_target: int) -> float:
    split = TaskSplit(test_dir)
    return finetune.split_loss(load_model(base_dir), split, range(len(split)), 64, max_source, max_target)


def on_model_axis(metrics: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of the model-size axis."""
    return metrics[metrics["axis_model"].astype(str).str.lower().isin(["true", "1"]) & (metrics["status"] == "ok")]


def model_axis(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean test loss per task, method and model of the model-size axis at the task's largest Df."""
    on_axis = on_model_axis(metrics)
    largest = on_axis.groupby("task")["finetune_examples"].transform("max")
    at_largest = on_axis[on_axis["finetune_examples"] == largest]
    return (
        at_largest.groupby(["task", "method", "model", "params", "finetune_examples"], as_index=False)
        .agg(test_loss=("test_loss", "mean"), runs=("test_loss", "size"))
        .sort_values(["task", "method", "params"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--results", default=None, help="results/<study> (default: from the config)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    results = Path(args.results or f"results/{config['study']}")
    table = model_axis(pd.read_csv(results / "metrics.csv"))
    print("model axis at the largest Df: test loss by model size (zero-shot: the base model, no finetuning)")
    zero_cache = {}
    for (task, method), rows in table.groupby(["task", "method"], sort=True):
        spec = config["tasks"][task]
        tokens = config["pretrain"]["budgets"][spec["family"]][-1]
        zeros = []
        for model in rows["model"]:
            if (task, model) not in zero_cache:
                base = results / "pretrain" / spec["family"] / f"{model}-{tokens}tok"
                zero_cache[(task, model)] = zero_shot_loss(
                    base,
                    results / "data" / "tokens" / task / "test",
                    spec["max_source_tokens"],
                    spec["max_target_tokens"],
                )
            zeros.append(zero_cache[(task, model)])
        losses = rows["test_loss"].tolist()
        falling = all(b < a for a, b in zip(losses, losses[1:]))
        print(
            f"  {task:17} {method:6} Df {int(rows['finetune_examples'].iloc[0]):5d}: "
            + " > ".join(f"{m} {v:.4f}" for m, v in zip(rows["model"], losses))
            + f"  {'strictly falling' if falling else 'NOT strictly falling'}; zero-shot "
            + " / ".join(f"{z:.3f}" for z in zeros)
        )
    errors = pd.read_csv(results / "fits" / "heldout_error.csv")
    print("Delta_h (mean over methods) by task, axis and kind of held-out point: multiplicative / additive")
    for key, rows in errors.groupby(["task", "axis", "heldout"], sort=True):
        print(
            f"  {'/'.join(key):40} {rows['delta_h_multiplicative'].mean():.4f} / {rows['delta_h_additive'].mean():.4f}"
            f"  (n_heldout {rows['n_heldout'].tolist()})"
        )
    fits = json.loads((results / "fits" / "fits.json").read_text())
    joint = [f for f in fits["joint"]]
    for law in ("multiplicative", "additive"):
        of_law = [f for f in joint if f["law"] == law]
        at_bound = [f"{f['task']}/{f['axis']}/{f['method']}" for f in of_law if f["params"]["E"] < E_FLOOR]
        print(f"{law}: E at its bound (< {E_FLOOR:g}) in {len(at_bound)} of {len(of_law)} fits: {', '.join(at_bound)}")
    issue_targets(results, config)


def model_axis_runs(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean test loss and BLEU per task, method, model and Df of the model-size axis."""
    keys = ["task", "method", "model", "params", "finetune_examples"]
    return (
        on_model_axis(metrics).groupby(keys, as_index=False).agg(test_loss=("test_loss", "mean"), bleu=("bleu", "mean"))
    )


def seed_runs(results: Path, on_axis: pd.DataFrame, run: pd.Series):
    """(condition, run directory) of each seed of a model-axis run."""
    keys = ["task", "method", "model", "finetune_examples"]
    for _, row in on_axis[(on_axis[keys] == run[keys]).all(axis=1)].iterrows():
        pet_size = None if pd.isna(row["pet_size"]) else int(row["pet_size"])
        condition = grid.Condition(
            row["task"],
            row["family"],
            row["model"],
            int(row["pretrain_tokens"]),
            row["method"],
            pet_size,
            int(row["finetune_examples"]),
            frozenset(),
        )
        yield condition, results / "finetune" / condition.id / f"seed{row['seed']}"


def distinct_outputs(results: Path, on_axis: pd.DataFrame, run: pd.Series) -> str:
    """How many different generations a model-axis run's test sources got, per seed: a model that
    ignores its source gives every source the same few (the toy's BLEU near 0 is that)."""
    counts = []
    for _, run_dir in seed_runs(results, on_axis, run):
        hypotheses, _, _ = samples.read(run_dir)
        counts.append(f"{len(set(hypotheses))} of {len(hypotheses)}")
    return f"distinct outputs {', '.join(counts)}"


def shifted_loss(model, pairs: list, fmt, shift: int) -> float:
    """Test loss of each example's target after the source of the example `shift` places on, in
    batches of 64 (the toy's evaluate.batch_size: shift 0 is the evaluated test loss)."""
    sources = [pairs[(i + shift) % len(pairs)][0] for i in range(len(pairs))]
    return batches.sequences_loss(model, [batches.encode(s, t, fmt) for s, (_, t) in zip(sources, pairs)], 64)


def source_use(results: Path, config: dict, on_axis: pd.DataFrame, run: pd.Series) -> str:
    """How far a model-axis run's test loss rises when each test target follows the next example's
    source instead of its own (nats, per seed): about 0 for a model that does not read its source,
    larger the more of the target it takes from the source (a model that copies: several nats)."""
    spec = config["tasks"][run["task"]]
    test = TaskSplit(results / "data" / "tokens" / run["task"] / "test")
    pairs = [test.example(i, spec["max_source_tokens"], spec["max_target_tokens"]) for i in range(len(test))]
    rises = []
    for condition, run_dir in seed_runs(results, on_axis, run):
        base = results / "pretrain" / condition.pretrain_id
        model = finetune.load_finetuned(base, run_dir / "checkpoint", condition.method)
        fmt = base_format(base)
        rises.append(f"{shifted_loss(model, pairs, fmt, 1) - shifted_loss(model, pairs, fmt, 0):.3f}")
    return f"source use {', '.join(rises)} nats"


def issue_targets(results: Path, config: dict) -> None:
    metrics = pd.read_csv(results / "metrics.csv")
    runs = model_axis_runs(metrics)
    print("issue 26 targets")
    drops, gaps = [], []
    for (task, method, model), curve in runs.groupby(["task", "method", "model"]):
        losses = curve.sort_values("finetune_examples")["test_loss"].to_numpy()
        drops.append((float(min(losses[:-1] - losses[1:])), f"{task}/{method}/{model}"))
    for (task, method), rows in runs.groupby(["task", "method"]):
        at_largest = rows[rows["finetune_examples"] == rows["finetune_examples"].max()].sort_values("params")
        losses = at_largest["test_loss"].to_numpy()
        gaps.append((float(min(losses[:-1] - losses[1:])), f"{task}/{method}"))
    for name, values, target in (("fall between adjacent Df", drops, 0.02), ("gap between adjacent sizes", gaps, 0.05)):
        short = sorted(v for v in values if v[0] < target)
        print(
            f"  smallest {name}: {min(values)[0]:.4f} ({min(values)[1]}); below {target}: {len(short)} of {len(values)}"
        )
        for value, where in short:
            print(f"    {where}: {value:.4f}")
    errors = pd.read_csv(results / "fits" / "heldout_error.csv")
    to_model = errors[(errors["axis"] == "model") & (errors["heldout"] == "x")]
    for task, rows in to_model.groupby("task"):
        print(
            f"  Delta_h to the held-out model, {task}: multiplicative {rows['delta_h_multiplicative'].mean():.4f}, "
            f"additive {rows['delta_h_additive'].mean():.4f}"
        )
    fits = json.loads((results / "fits" / "fits.json").read_text())
    kinds = {"single-variable": fits["single_variable"]}  # params.csv shows only the multiplicative law
    kinds |= {law: [f for f in fits["joint"] if f["law"] == law] for law in laws.JOINT_LAWS}
    for kind, rows in kinds.items():
        flagged = [f for f in rows if f["diagnostics"].get("flagged")]
        print(f"  flagged {kind} fits: {len(flagged)} of {len(rows)}")
        for f in flagged:
            where = "/".join(str(f[k]) for k in ("task", "axis", "model", "method") if k in f)
            print(f"    {where}: {diagnostics.describe(f['diagnostics'])}")
    critical = pd.read_csv(results / "fits" / "critical.csv")
    inside = critical[critical["where"].astype(str).str.startswith("inside")]
    print(f"  critical sizes inside the measured Df: {len(inside)} of {len(critical)}")
    for _, row in inside.iterrows():
        print(
            f"    {row['task']}/{row['axis']} {row['method_1']} vs {row['method_2']} at x {row['x']}: "
            f"Df {row['critical_df']:.0f} ({row['where']})"
        )
    on_axis = on_model_axis(metrics)
    for (task, method), rows in runs.dropna(subset=["bleu"]).groupby(["task", "method"]):
        top = rows[rows["finetune_examples"] == rows["finetune_examples"].max()].sort_values("params").iloc[-1]
        print(
            f"  BLEU of {top['model']} at Df {top['finetune_examples']}, {task}/{method}: {top['bleu']:.2f}; "
            f"{distinct_outputs(results, on_axis, top)}; {source_use(results, config, on_axis, top)}"
        )
    correlation = pd.read_csv(results / "fits" / "correlation.csv")
    for _, row in correlation[correlation["axis"] == "model"].iterrows():
        print(f"  loss-{row['metric']} correlation, {row['task']}/{row['method']}: r {row['r']:.3f} (n {row['n']})")


if __name__ == "__main__":
    main()
