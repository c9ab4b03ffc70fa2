"""The `ftscale` console script.

Subcommands live in SUBCOMMANDS: name -> (add_arguments, run). `add_arguments(parser)` declares the
options; `run(args)` does the work and returns the exit status (None means 0). A run that meets bad
input raises InputError: main prints its one line on stderr and exits 2, without a traceback.
Heavy modules (numpy, pandas, scipy) are imported inside the runs, so `ftscale --help` stays fast.
Past 300 lines because each subcommand's options, input checks and printing sit together here; the
science each one runs is in the library (ftscale.fitting, ftscale.plan, ftscale.evaluate).

    ftscale fit TABLE.csv --law {power,multiplicative,additive,rectified} --x COLUMN [--df COLUMN] --loss COLUMN
                [--where "pandas query"] [--group-by COLUMN[,COLUMN]] [--pool]
                [--objective huber|log-huber] [--delta D] [--heldout "pandas query"] [--bootstrap N]
                [--seed S] [--json OUT]
    ftscale select TABLE.csv --model COLUMN --df COLUMN --loss COLUMN [--method COLUMN] --budget N --target N
                [--law {rectified,power,ats,auto}] [--max-extrapolation F] [--bootstrap K] [--seed S] [--json OUT]
    ftscale grid [CONFIG] [--gpu-peak-tflops T --utilisation U] [--json OUT]
    ftscale run [SNAKEMAKE ARGUMENTS ...]
    ftscale score (--hyp FILE --ref FILE --lang LANG | --samples RUN_DIR [--lang LANG]) [--bleurt DIR] [--json OUT]
    ftscale status [--configfile CONFIG] [--directory DIR]
    ftscale analyze RUNS.csv [--pretrain PRETRAIN.csv] --config CONFIG --out DIR
    ftscale --version
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Callable


class InputError(ValueError):
    """Bad input from the user; str() is the one line to show."""


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    from ftscale.config import schema_default  # the workflow's analysis defaults, from the schema

    objective, delta = schema_default("analysis", "objective"), schema_default("analysis", "huber_delta")
    parser.add_argument("table", help="CSV file, one row per point (or per run)")
    parser.add_argument("--law", required=True, choices=["power", "multiplicative", "additive", "rectified"])
    parser.add_argument("--x", required=True, help="column of the factor X (for the power and rectified laws: of Df)")
    parser.add_argument("--df", help="column of the finetuning-data size (joint laws)")
    parser.add_argument("--loss", required=True, help="column of the observed loss")
    parser.add_argument(
        "--objective",
        default=objective,
        choices=["huber", "log-huber"],
        help=f"huber on (prediction - loss), the paper's; log-huber on logs (default {objective})",
    )
    parser.add_argument("--delta", type=float, default=delta, help=f"Huber delta (default {delta:g})")
    parser.add_argument("--heldout", help='pandas query selecting held-out rows, e.g. "params > 1e9"')
    parser.add_argument("--where", help="pandas query selecting the rows to use, e.g. \"task == 'wmt' and axis_model\"")
    parser.add_argument("--group-by", help="comma-separated columns: one fit per group of rows, e.g. task,method")
    parser.add_argument(
        "--pool",
        action="store_true",
        help=f"fit rows that mix {', '.join(MIXED_COLUMNS)} as one law anyway (a one-line warning)",
    )
    parser.add_argument("--bootstrap", type=int, default=0, help="rows resampled N times for 95%% intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--json", help="also write the result as JSON to this file")


def _read_table(path: str):
    from ftscale.analysis import runs_table

    try:
        table = runs_table.read_csv(path)
    except runs_table.TableError as error:
        raise InputError(str(error))
    if table.empty:
        raise InputError(f"{path}: the table has no rows")
    return table


def _numeric(table, column: str):
    import pandas as pd

    values = pd.to_numeric(table[column], errors="coerce")
    text = values.isna() & table[column].notna()
    if text.any():
        raise InputError(
            f"column {column!r} is not numeric (row {int(text.to_numpy().argmax()) + 2}: "
            f"{table[column][text].iloc[0]!r})"
        )
    return values.to_numpy(dtype=float)


MIXED_COLUMNS = ("task", "method", "axis")  # rows that differ in these are not one law's points


def _query(table, option: str, query: str):
    """Rows matching a pandas query, as a boolean array; a failing query is one line naming the option."""
    import numpy as np

    try:
        return np.asarray(table.eval(query), dtype=bool).reshape(len(table))
    except Exception as error:  # noqa: BLE001 - any failure of the query is the user's input
        raise InputError(f"{option} {query!r}: {(str(error).splitlines() or [type(error).__name__])[0]}")


def mixed_rows(table) -> str | None:
    """What the rows mix that one law cannot: several tasks, methods or axes (a column `axis`, or the
    axis_* flags of metrics.csv with no axis shared by every row); None when they do not."""
    from ftscale.plan.grid import AXES

    mixed = []
    for column in MIXED_COLUMNS:
        values = sorted(map(str, table[column].dropna().unique())) if column in table else []
        if len(values) > 1:
            mixed.append(f"{len(values)} {column}s ({', '.join(values)})".replace("axiss", "axes"))
    flags = [f"axis_{a}" for a in AXES if f"axis_{a}" in table]
    if "axis" not in table and flags:
        from ftscale.analysis.points import as_bool

        if not any(as_bool(table[f]).all() for f in flags):
            mixed.append("several axes (no axis_* column true in every row)")
    return " and ".join(mixed) or None


def fit_table(args: argparse.Namespace) -> dict:
    """The `fit` subcommand's result as a JSON-ready dict (raises InputError on bad input): one fit,
    or with --group-by {"group_by": [...], "fits": [{"group": {...}, ...} or {"group", "error"}]}."""
    if args.delta <= 0 or not math.isfinite(args.delta):
        raise InputError(f"--delta must be positive, got {args.delta}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    table = _read_table(args.table)
    df_column = args.x if args.law in ("power", "rectified") else args.df
    if df_column is None:
        raise InputError(f"--df is required for the {args.law} law")
    group_by = [c.strip() for c in args.group_by.split(",")] if args.group_by else []
    for column in dict.fromkeys([args.x, df_column, args.loss] + group_by):
        if column not in table.columns:
            columns = ", ".join(map(str, table.columns))
            raise InputError(f"column {column!r} is not in {args.table} (columns: {columns})")
    if args.where:
        table = table[_query(table, "--where", args.where)].reset_index(drop=True)
        if table.empty:
            raise InputError(f"--where {args.where!r} selects no row of {args.table}")
    if not group_by:
        return _fit_rows(args, table, df_column)
    fits = []
    for key, rows in table.groupby(group_by, sort=True, dropna=False):
        group = dict(zip(group_by, key if isinstance(key, tuple) else (key,)))
        try:
            fits.append({"group": group} | _fit_rows(args, rows.reset_index(drop=True), df_column))
        except InputError as error:
            fits.append({"group": group, "error": str(error)})
    if all("error" in f for f in fits):
        raise InputError(f"no group could be fitted ({fits[0]['group']}: {fits[0]['error']})")
    return {"group_by": group_by, "fits": fits}


def _fit_rows(args: argparse.Namespace, table, df_column: str) -> dict:
    """One law fitted to the rows of `table` (all of them, or one --group-by group)."""
    import numpy as np

    from ftscale.fitting import laws, solver, statistics

    mixed = mixed_rows(table)
    if mixed and not args.pool:
        raise InputError(
            f"the rows mix {mixed}: select one with --where, fit each with --group-by, "
            "or pass --pool to fit them as one law"
        )
    if mixed:
        print(f"ftscale fit: warning: fitting rows that mix {mixed} as one law (--pool)", file=sys.stderr)
    held = np.zeros(len(table), dtype=bool)
    if args.heldout:
        held = _query(table, "--heldout", args.heldout)
    if held.all():
        raise InputError("every point is held out: nothing left to fit")
    df, loss = _numeric(table, df_column), _numeric(table, args.loss)
    x = None if args.law in ("power", "rectified") else _numeric(table, args.x)
    for name, values in (("X", x), ("Df", df)):
        if values is not None and len(np.unique(values[~held])) < 2 and args.law in laws.JOINT_LAWS:
            raise InputError(f"the fitted rows have one {name} value: the {args.law} law needs two or more")
    if args.law == "rectified":
        return _fit_rectified(args, df, loss, held)

    def group(rows, weight=None):
        return laws.Group(df[rows], loss[rows], None if x is None else x[rows], weight)

    options = {"objective": args.objective, "delta": args.delta}
    try:
        result = solver.fit(args.law, [group(~held)], **options)
    except laws.FitError as error:
        raise InputError(str(error))
    params = result.params[0]
    predicted = laws.predict(args.law, params, df, x)
    keys = [k for k in ("A", "alpha", "B", "beta", "E") if k in params]
    out = {
        "law": args.law,
        "formula": laws.LAWS[args.law].formula,
        "objective": args.objective,
        "delta": args.delta,
        "params": {k: params[k] for k in keys},
        "delta_e": statistics.mean_absolute_deviation(predicted[~held], loss[~held]),
        "delta_h": statistics.mean_absolute_deviation(predicted[held], loss[held]),
        "n_fit": int((~held).sum()),
        "n_heldout": int(held.sum()),
    }
    if args.bootstrap:
        # case bootstrap of the fitted rows, as multiplicity weights: every replicate in one batch
        weights = statistics.case_resample_weights(out["n_fit"], args.bootstrap, np.random.default_rng(args.seed))
        replicates = solver.fit(args.law, [group(~held, weights)], starts=result.start, **options).params[0]
        out["bootstrap"] = args.bootstrap
        out["intervals"] = {k: statistics.percentile_interval(replicates[k]) for k in keys}
    return out


def _fit_rectified(args: argparse.Namespace, df, loss, held) -> dict:
    """`fit --law rectified`: the same result dict as fit_table's, from ftscale.fitting.rectified."""
    import numpy as np

    from ftscale.fitting import laws, rectified, statistics

    options = {"objective": args.objective, "delta": args.delta}
    try:
        result = rectified.fit(df[~held], loss[~held], **options)
    except laws.FitError as error:
        raise InputError(str(error))
    predicted = rectified.predict(result.params, df)
    out = {
        "law": "rectified",
        "formula": rectified.FORMULA,
        "objective": args.objective,
        "delta": args.delta,
        "params": result.params,
        "delta_e": statistics.mean_absolute_deviation(predicted[~held], loss[~held]),
        "delta_h": statistics.mean_absolute_deviation(predicted[held], loss[held]),
        "n_fit": int((~held).sum()),
        "n_heldout": int(held.sum()),
    }
    if args.bootstrap:
        thetas = rectified.bootstrap(
            result, df[~held], loss[~held], args.bootstrap, np.random.default_rng(args.seed), **options
        )
        replicates = rectified.params_of(thetas)
        out["bootstrap"] = args.bootstrap
        out["intervals"] = {k: statistics.percentile_interval(v) for k, v in replicates.items()}
    return out


def add_select_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="CSV file, one row per candidate and finetuning-data size (or per run)")
    parser.add_argument("--model", required=True, help="column naming the candidate base model")
    parser.add_argument("--df", required=True, help="column of the finetuning-data size")
    parser.add_argument("--loss", required=True, help="column of the observed loss")
    parser.add_argument("--method", help="column of the finetuning method, to rank model x method pairs")
    parser.add_argument("--budget", required=True, type=float, help="use only rows with size <= N")
    parser.add_argument("--target", required=True, type=float, help="rank by predicted loss at this size")
    parser.add_argument(
        "--law",
        choices=["rectified", "power", "ats", "auto"],
        help="law extrapolated to the target (default: ftscale.fitting.selection.DEFAULT_LAW, the "
        "best on Lin et al.'s published curves); auto: per candidate, by held-out error",
    )
    parser.add_argument(
        "--max-extrapolation",
        type=float,
        help="refuse a target more than F times the largest size used (default: "
        "ftscale.fitting.selection.MAX_EXTRAPOLATION, 100)",
    )
    parser.add_argument("--bootstrap", type=int, default=0, help="rows resampled K times: intervals and p_best")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--json", help="also write the ranking as JSON to this file")


def select_table(args: argparse.Namespace) -> dict:
    """The `select` subcommand's result as a JSON-ready dict (raises InputError on bad input)."""
    from ftscale.fitting import laws, selection

    for name, value in (("--budget", args.budget), ("--target", args.target)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be positive, got {value:g}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.max_extrapolation is not None and not (args.max_extrapolation >= 1):
        raise InputError(f"--max-extrapolation must be at least 1, got {args.max_extrapolation:g}")
    table = _read_table(args.table)
    keys = [args.model] + ([args.method] if args.method else [])
    for column in dict.fromkeys(keys + [args.df, args.loss]):
        if column not in table.columns:
            raise InputError(
                f"column {column!r} is not in {args.table} (columns: {', '.join(map(str, table.columns))})"
            )
    table = table.assign(_df=_numeric(table, args.df), _loss=_numeric(table, args.loss))
    bad = ~(table["_df"] >= 0) | ~(table["_loss"] > 0)  # NaN fails both comparisons
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(
            f"row {row + 2}: {args.df} must be >= 0 and {args.loss} positive "
            f"(got {table[args.df].iloc[row]!r}, {table[args.loss].iloc[row]!r})"
        )
    candidates = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        candidates.append(
            selection.Candidate(str(key[0]), group["_df"], group["_loss"], str(key[1]) if args.method else None)
        )
    try:
        result = selection.select(
            candidates,
            budget=args.budget,
            target=args.target,
            law=args.law or selection.DEFAULT_LAW,
            bootstrap=args.bootstrap,
            seed=args.seed,
        )
    except laws.FitError as error:
        raise InputError(str(error))
    refused = selection.refusal(result, *([args.max_extrapolation] if args.max_extrapolation else []))
    if refused:
        raise InputError(refused)
    return result


def run_select(args: argparse.Namespace) -> int:
    """Rank base models (or model x method pairs) by the loss predicted at a target finetuning-data size."""
    from ftscale.fitting import selection

    result = select_table(args)
    _write_json(args.json, result)
    print(
        f"ranking at {result['target']:g} finetuning examples from runs up to {result['budget']:g} "
        f"(up to {result['extrapolation']:.3g}x beyond the largest size used), law {result['law']}"
        + (f", {result['bootstrap']} bootstrap resamples" if result["bootstrap"] else ", no intervals (--bootstrap)")
    )
    print(selection.format_ranking(result))
    return 0


def _write_json(path: str | None, result: dict) -> None:
    if not path:
        return
    try:
        with open(path, "w") as out:
            json.dump(_json_value(result), out, indent=1)
    except OSError as error:
        raise InputError(f"--json {path}: {error.strerror}")


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def run_fit(args: argparse.Namespace) -> int:
    """Fit a scaling law to any CSV; print a summary and optionally write JSON."""
    result = fit_table(args)
    _write_json(args.json, result)
    for one in result.get("fits", [result]):
        if "group" in one:
            print(", ".join(f"{k} = {v}" for k, v in one["group"].items()) + ":")
        if "error" in one:
            print(f"  not fitted: {one['error']}")
        else:
            _print_fit(one)
    return 0


def _print_fit(result: dict) -> None:
    print(
        f"{result['law']} law {result['formula']}, {result['objective']} objective (delta {result['delta']:g}): "
        f"{result['n_fit']} points fitted, {result['n_heldout']} held out"
    )
    for key, value in result["params"].items():
        interval = result.get("intervals", {}).get(key)
        print(f"  {key:>5} = {value:.6g}" + (f"   95% [{interval[0]:.6g}, {interval[1]:.6g}]" if interval else ""))
    print(f"  Delta_e = {result['delta_e']:.6g}   Delta_h = {result['delta_h']:.6g}")


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default="config.yaml", help="study config (default config.yaml)")
    parser.add_argument(
        "--gpu-peak-tflops",
        type=float,
        help="peak FLOP/s of one GPU, in TFLOP/s: with --utilisation, replaces the config's "
        "cluster.flops_per_second (runtimes, GPU counts, GPU-hours) for this preview",
    )
    parser.add_argument(
        "--utilisation",
        type=float,
        default=0.4,
        help="share of the peak a job sustains (default 0.4; used with --gpu-peak-tflops)",
    )
    parser.add_argument("--json", help="where to write grid.json (default results/<study>/grid.json)")


def run_grid(args: argparse.Namespace) -> int:
    """Preview a study's grid: jobs per rule, conditions per axis, compute and GPU-hours."""
    from ftscale.plan import sizing
    from ftscale.plan import summary as grid_summary

    config = _study_config(args.config)
    if args.gpu_peak_tflops is not None:
        if not (args.gpu_peak_tflops > 0 and 0 < args.utilisation <= 1):
            raise InputError("--gpu-peak-tflops must be > 0 and --utilisation in (0, 1]")
        config["cluster"] = config["cluster"] | {"flops_per_second": args.gpu_peak_tflops * 1e12 * args.utilisation}
    try:
        summary = grid_summary.summarize(config)
    except sizing.PlanError as error:
        raise InputError(f"{args.config}: cluster: {error}")
    print(grid_summary.format_summary(summary))
    out = args.json or f"results/{config['study']}/grid.json"
    try:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as f:
            json.dump(summary, f, indent=1)
    except OSError as error:
        raise InputError(f"{out}: {error.strerror}")
    print(f"\nwritten to {out}")
    return 0


def _study_config(path: str) -> dict:
    """A study config read, validated (schema defaults filled in) and its data files found, or
    InputError naming the file."""
    from ftscale import config as study_config

    config = _read_config(path)
    try:
        config = study_config.validate(config)
        study_config.check_data_files(config)
    except study_config.ConfigError as error:
        raise InputError(f"{path}: {error}")
    return config


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "snakemake_args", nargs="*", help="passed to snakemake as they are, e.g. --cores all --configfile my-study.yaml"
    )


def _read_config(path: str) -> dict:
    from ftscale import config as study_config

    try:
        return study_config.read_yaml(path)
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}")
    except study_config.ConfigError as error:
        raise InputError(str(error))


def config_files(snakemake_args: list[str]) -> list[str]:
    """The files after --configfile/--configfiles (either spelling, `=` or not) in Snakemake's arguments."""
    files, taking = [], False
    for arg in snakemake_args:
        option, equals, value = arg.partition("=")
        if option in ("--configfile", "--configfiles"):
            files += [value] if equals else []
            taking = not equals
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
    return files


def run_workflow(args: argparse.Namespace) -> int:
    """Run Snakemake here, after any crash of an earlier run; one run per directory (ftscale.runtime.launch)."""
    from ftscale.runtime import launch

    for path in config_files(args.snakemake_args):  # Snakemake's own message names no file or line
        _read_config(path)
    try:
        return launch.run(args.snakemake_args)
    except launch.RunRefused as error:
        raise InputError(str(error))


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hyp", help="system output, one segment a line (UTF-8)")
    parser.add_argument("--ref", help="references, line by line with --hyp")
    parser.add_argument("--samples", help="instead of --hyp and --ref: a run's samples.jsonl, or its directory")
    parser.add_argument(
        "--lang",
        help="target language (picks the BLEU tokenizer: zh, ja, else 13a); "
        "with --samples, default: the samples' own when they have one",
    )
    parser.add_argument(
        "--bleurt",
        help="also BLEURT, with this checkpoint: a study's results/<study>/scorers/bleurt, or a "
        "BLEURT-20 directory (hf download lucadiliello/BLEURT-20 --local-dir DIR)",
    )
    parser.add_argument("--json", help="also write the scores as JSON to this file")


def _read_lines(path: str, option: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"{option} {path}: no such file")
    except UnicodeDecodeError as error:
        raise InputError(f"{option} {path}: not UTF-8 text (byte {error.start})")
    except OSError as error:
        raise InputError(f"{option} {path}: {error.strerror}")


def run_score(args: argparse.Namespace) -> int:
    """Score a system output as the study does: BLEU (with its signature), chrF, ROUGE-L; BLEURT with --bleurt."""
    from ftscale.evaluate import metrics, samples

    if args.samples:
        if args.hyp or args.ref:
            raise InputError("--samples replaces --hyp and --ref: give one or the other")
        path = samples.file_of(args.samples)
        try:
            hypotheses, references, langs = samples.parse(_read_lines(str(path), "--samples"), path)
        except samples.SamplesError as error:
            raise InputError(str(error))
        if not hypotheses:
            raise InputError(f"--samples {args.samples}: no samples (a diverged run has none)")
        args.lang = args.lang or (langs[0] if len(set(langs)) == 1 else None)  # several: summarization's
    else:
        if not (args.hyp and args.ref and args.lang):
            raise InputError("give --hyp, --ref and --lang, or --samples")
        hypotheses, references = _read_lines(args.hyp, "--hyp"), _read_lines(args.ref, "--ref")
        if len(hypotheses) != len(references):
            raise InputError(f"--hyp {args.hyp} has {len(hypotheses)} lines, --ref {args.ref} has {len(references)}")
        if not hypotheses:
            raise InputError(f"--hyp {args.hyp} and --ref {args.ref} are empty: nothing to score")
    result = metrics.score_lines(hypotheses, references, args.lang)
    if args.bleurt:
        result |= _bleurt_scores(args.bleurt, hypotheses, references)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(result, out, indent=1, ensure_ascii=False)
        except OSError as error:
            raise InputError(f"--json {args.json}: {error.strerror}")
    bleurt = f"BLEURT {result['bleurt']:.4f}  " if args.bleurt else ""
    print(
        f"BLEU {result['bleu']:.2f}  chrF {result['chrf']:.2f}  ROUGE-L {result['rougeL']:.2f}  {bleurt}"
        f"({result['lines']} lines)\n{result['signature']}"
    )
    return 0


def _bleurt_scores(checkpoint: str, hypotheses: list[str], references: list[str]) -> dict:
    """bleurt and bleurt_checkpoint, as the evaluate job computes them (ftscale.evaluate.bleurt)."""
    from ftscale.config import schema_default
    from ftscale.evaluate import bleurt

    try:
        return bleurt.bleurt_metrics(
            hypotheses, references, checkpoint, schema_default("evaluate", "bleurt", "batch_size")
        )
    except (bleurt.BleurtError, OSError) as error:
        raise InputError(f"--bleurt {checkpoint}: {error}")


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", default="config.yaml", help="study config (default config.yaml)")
    parser.add_argument("--directory", default=".", help="where the study runs (default: here)")


def run_status(args: argparse.Namespace) -> int:
    """A study's runs done, running, failed and pending; hours spent against the plan; the last failures."""
    from ftscale.plan import status

    print(status.format_status(status.study_status(_study_config(args.configfile), args.directory)))
    return 0


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", help="runs table with metrics.csv's columns (docs/analyze.md: the minimum ones)")
    parser.add_argument("--pretrain", help="pretraining table with pretrain.csv's columns (Fig 10 and its fits)")
    parser.add_argument(
        "--config",
        required=True,
        help="study config whose analysis: options apply (e.g. configs/paper.yaml; a file with only analysis: works)",
    )
    parser.add_argument("--out", required=True, help="writes DIR/fits/ and DIR/figures/ as a study's results")


def run_analyze(args: argparse.Namespace) -> int:
    """Run the workflow's whole analysis (fits, tables, figures) on any runs table."""
    from ftscale import config as study_config
    from ftscale.analysis import procedure, runs_table
    from ftscale.figures import files

    options = _read_config(args.config).get("analysis") or {}
    try:
        procedure.resolve_options(options)  # a bad key is one line before any work
    except study_config.ConfigError as error:
        raise InputError(f"{args.config}: analysis: {error}")
    try:
        skipped = files.analyze_files(args.runs, args.pretrain, options, args.out)
    except (runs_table.TableError, files.OutputError) as error:
        raise InputError(str(error))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    print(f"written: {os.path.join(args.out, 'fits')}/ and {os.path.join(args.out, 'figures')}/ (sealed)")
    return 0


SUBCOMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = {
    "fit": (add_fit_arguments, run_fit),
    "select": (add_select_arguments, run_select),
    "grid": (add_grid_arguments, run_grid),
    "run": (add_run_arguments, run_workflow),
    "score": (add_score_arguments, run_score),
    "status": (add_status_arguments, run_status),
    "analyze": (add_analyze_arguments, run_analyze),
}


def version() -> str:
    """The installed package's version (its one home: pyproject.toml, read by the installer)."""
    from importlib import metadata

    try:
        return metadata.version("ftscale")
    except metadata.PackageNotFoundError:
        return "unknown (ftscale is not installed: pip install -e .)"


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line too (exit status 2, as argparse's own)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="ftscale", description="ftscale: scaling laws of LLM finetuning")
    parser.add_argument("--version", action="version", version=f"ftscale {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in SUBCOMMANDS.items():
        summary = (run.__doc__ or name).strip().splitlines()[0]
        add_arguments(commands.add_parser(name, help=summary, description=summary))
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"] and argv[1:2] not in (["-h"], ["--help"]):
        argv = ["run", "--", *argv[1:]]  # everything after `run` is Snakemake's, options included
    args = parser.parse_args(argv)
    _, run = SUBCOMMANDS[args.command]
    try:
        return run(args) or 0
    except InputError as error:
        print(f"ftscale {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
