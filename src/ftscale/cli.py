"""The `ftscale` console script.

Subcommands live in SUBCOMMANDS: name -> (add_arguments, run). `add_arguments(parser)` declares the
options; `run(args)` does the work and returns the exit status (None means 0). A run that meets bad
input raises InputError: main prints its one line on stderr and exits 2, without a traceback.
Heavy modules (numpy, pandas, scipy) are imported inside the runs, so `ftscale --help` stays fast.

    ftscale fit TABLE.csv --law {power,multiplicative,additive,rectified} --x COLUMN [--df COLUMN] --loss COLUMN
                [--objective huber|log-huber] [--delta D] [--heldout "pandas query"] [--bootstrap N]
                [--seed S] [--json OUT]
    ftscale select TABLE.csv --model COLUMN --df COLUMN --loss COLUMN [--method COLUMN] --budget N --target N
                [--law {rectified,power,ats,auto}] [--bootstrap K] [--seed S] [--json OUT]
    ftscale grid [CONFIG] [--gpu-peak-tflops T --utilisation U] [--json OUT]
    ftscale run [SNAKEMAKE ARGUMENTS ...]
    ftscale score (--hyp FILE --ref FILE --lang LANG | --samples RUN_DIR [--lang LANG]) [--json OUT]
    ftscale status [--configfile CONFIG] [--directory DIR]
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
    from ftscale.config import schema_default   # the workflow's analysis defaults, from the schema

    objective, delta = schema_default("analysis", "objective"), schema_default("analysis", "huber_delta")
    parser.add_argument("table", help="CSV file, one row per point (or per run)")
    parser.add_argument("--law", required=True, choices=["power", "multiplicative", "additive", "rectified"])
    parser.add_argument("--x", required=True, help="column of the factor X (for the power and rectified laws: of Df)")
    parser.add_argument("--df", help="column of the finetuning-data size (joint laws)")
    parser.add_argument("--loss", required=True, help="column of the observed loss")
    parser.add_argument("--objective", default=objective, choices=["huber", "log-huber"],
                        help=f"huber on (prediction - loss), the paper's; log-huber on logs (default {objective})")
    parser.add_argument("--delta", type=float, default=delta, help=f"Huber delta (default {delta:g})")
    parser.add_argument("--heldout", help='pandas query selecting held-out rows, e.g. "params > 1e9"')
    parser.add_argument("--bootstrap", type=int, default=0, help="rows resampled N times for 95%% intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--json", help="also write the result as JSON to this file")


def _read_table(path: str):
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: cannot read it as CSV ({str(error).splitlines()[0]})")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the table is empty")
    if table.empty:
        raise InputError(f"{path}: the table has no rows")
    return table


def _numeric(table, column: str):
    import pandas as pd

    values = pd.to_numeric(table[column], errors="coerce")
    text = values.isna() & table[column].notna()
    if text.any():
        raise InputError(f"column {column!r} is not numeric (row {int(text.to_numpy().argmax()) + 2}: "
                         f"{table[column][text].iloc[0]!r})")
    return values.to_numpy(dtype=float)


def fit_table(args: argparse.Namespace) -> dict:
    """The `fit` subcommand's result as a JSON-ready dict (raises InputError on bad input)."""
    import numpy as np

    from ftscale.fitting import laws, solver, statistics

    if args.delta <= 0 or not math.isfinite(args.delta):
        raise InputError(f"--delta must be positive, got {args.delta}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    table = _read_table(args.table)
    df_column = args.x if args.law in ("power", "rectified") else args.df
    if df_column is None:
        raise InputError(f"--df is required for the {args.law} law")
    for column in dict.fromkeys([args.x, df_column, args.loss]):
        if column not in table.columns:
            columns = ", ".join(map(str, table.columns))
            raise InputError(f"column {column!r} is not in {args.table} (columns: {columns})")
    held = np.zeros(len(table), dtype=bool)
    if args.heldout:
        try:
            held = np.asarray(table.eval(args.heldout), dtype=bool).reshape(len(table))
        except Exception as error:  # noqa: BLE001 - any failure of the query is the user's input
            raise InputError(f"--heldout {args.heldout!r}: {(str(error).splitlines() or [type(error).__name__])[0]}")
    if held.all():
        raise InputError("every point is held out: nothing left to fit")
    df, loss = _numeric(table, df_column), _numeric(table, args.loss)
    x = None if args.law in ("power", "rectified") else _numeric(table, args.x)
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
    out = {"law": args.law, "formula": laws.LAWS[args.law].formula, "objective": args.objective,
           "delta": args.delta, "params": {k: params[k] for k in keys},
           "delta_e": statistics.mean_absolute_deviation(predicted[~held], loss[~held]),
           "delta_h": statistics.mean_absolute_deviation(predicted[held], loss[held]),
           "n_fit": int((~held).sum()), "n_heldout": int(held.sum())}
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

    from ftscale.fitting import rectified
    from ftscale.fitting import laws, statistics

    options = {"objective": args.objective, "delta": args.delta}
    try:
        result = rectified.fit(df[~held], loss[~held], **options)
    except laws.FitError as error:
        raise InputError(str(error))
    predicted = rectified.predict(result.params, df)
    out = {"law": "rectified", "formula": rectified.FORMULA, "objective": args.objective, "delta": args.delta,
           "params": result.params,
           "delta_e": statistics.mean_absolute_deviation(predicted[~held], loss[~held]),
           "delta_h": statistics.mean_absolute_deviation(predicted[held], loss[held]),
           "n_fit": int((~held).sum()), "n_heldout": int(held.sum())}
    if args.bootstrap:
        thetas = rectified.bootstrap(result, df[~held], loss[~held], args.bootstrap,
                                     np.random.default_rng(args.seed), **options)
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
    parser.add_argument("--law", default="auto", choices=["rectified", "power", "ats", "auto"],
                        help="law extrapolated to the target; auto: per candidate, by held-out error (default)")
    parser.add_argument("--bootstrap", type=int, default=0, help="rows resampled K times: intervals and p_best")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--json", help="also write the ranking as JSON to this file")


def select_table(args: argparse.Namespace) -> dict:
    """The `select` subcommand's result as a JSON-ready dict (raises InputError on bad input)."""
    from ftscale.fitting import selection
    from ftscale.fitting import laws

    for name, value in (("--budget", args.budget), ("--target", args.target)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be positive, got {value:g}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    table = _read_table(args.table)
    keys = [args.model] + ([args.method] if args.method else [])
    for column in dict.fromkeys(keys + [args.df, args.loss]):
        if column not in table.columns:
            raise InputError(f"column {column!r} is not in {args.table} (columns: {', '.join(map(str, table.columns))})")
    table = table.assign(_df=_numeric(table, args.df), _loss=_numeric(table, args.loss))
    bad = ~(table["_df"] >= 0) | ~(table["_loss"] > 0)        # NaN fails both comparisons
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(f"row {row + 2}: {args.df} must be >= 0 and {args.loss} positive "
                         f"(got {table[args.df].iloc[row]!r}, {table[args.loss].iloc[row]!r})")
    candidates = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        candidates.append(selection.Candidate(str(key[0]), group["_df"], group["_loss"],
                                              str(key[1]) if args.method else None))
    try:
        return selection.select(candidates, budget=args.budget, target=args.target, law=args.law,
                                bootstrap=args.bootstrap, seed=args.seed)
    except laws.FitError as error:
        raise InputError(str(error))


def run_select(args: argparse.Namespace) -> int:
    """Rank base models (or model x method pairs) by the loss predicted at a target finetuning-data size."""
    from ftscale.fitting import selection

    result = select_table(args)
    _write_json(args.json, result)
    print(f"ranking at {result['target']:g} finetuning examples from runs up to {result['budget']:g}, "
          f"law {result['law']}" + (f", {result['bootstrap']} bootstrap resamples" if result["bootstrap"] else ""))
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
    print(f"{result['law']} law {result['formula']}, {result['objective']} objective (delta {result['delta']:g}): "
          f"{result['n_fit']} points fitted, {result['n_heldout']} held out")
    for key, value in result["params"].items():
        interval = result.get("intervals", {}).get(key)
        print(f"  {key:>5} = {value:.6g}" + (f"   95% [{interval[0]:.6g}, {interval[1]:.6g}]" if interval else ""))
    print(f"  Delta_e = {result['delta_e']:.6g}   Delta_h = {result['delta_h']:.6g}")
    return 0


def _read_config(path: str) -> dict:
    """A study config, validated (schema defaults filled in), or InputError naming the file."""
    import yaml

    from ftscale import config as study_config

    try:
        with open(path, encoding="utf-8") as f:
            return study_config.validate(yaml.safe_load(f))
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}")
    except (yaml.YAMLError, study_config.ConfigError) as error:
        raise InputError(f"{path}: {str(error).splitlines()[0]}")


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default="config.yaml", help="study config (default config.yaml)")
    parser.add_argument("--gpu-peak-tflops", type=float,
                        help="peak FLOP/s of one GPU, in TFLOP/s: with --utilisation, replaces the config's "
                             "cluster.flops_per_second (runtimes, GPU counts, GPU-hours) for this preview")
    parser.add_argument("--utilisation", type=float, default=0.4,
                        help="share of the peak a job sustains (default 0.4; used with --gpu-peak-tflops)")
    parser.add_argument("--json", help="where to write grid.json (default results/<study>/grid.json)")


def run_grid(args: argparse.Namespace) -> int:
    """Preview a study's grid: jobs per rule, conditions per axis, compute and GPU-hours."""
    from ftscale.plan import sizing

    config = _read_config(args.config)
    if args.gpu_peak_tflops is not None:
        if not (args.gpu_peak_tflops > 0 and 0 < args.utilisation <= 1):
            raise InputError("--gpu-peak-tflops must be > 0 and --utilisation in (0, 1]")
        config["cluster"] = config["cluster"] | {"flops_per_second": args.gpu_peak_tflops * 1e12 * args.utilisation}
    try:
        summary = sizing.summarize(config)
    except sizing.PlanError as error:
        raise InputError(f"{args.config}: cluster: {error}")
    print(sizing.format_summary(summary))
    out = args.json or f"results/{config['study']}/grid.json"
    try:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as f:
            json.dump(summary, f, indent=1)
    except OSError as error:
        raise InputError(f"{out}: {error.strerror}")
    print(f"\nwritten to {out}")
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snakemake_args", nargs="*",
                        help="passed to snakemake as they are, e.g. --cores all --configfile my-study.yaml")


def run_workflow(args: argparse.Namespace) -> int:
    """Run Snakemake here, after any crash of an earlier run; one run per directory (ftscale.runtime.launch)."""
    from ftscale.runtime import launch

    try:
        return launch.run(args.snakemake_args)
    except launch.RunRefused as error:
        raise InputError(str(error))
def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hyp", help="system output, one segment a line (UTF-8)")
    parser.add_argument("--ref", help="references, line by line with --hyp")
    parser.add_argument("--samples", help="instead of --hyp and --ref: a run's samples.jsonl, or its directory")
    parser.add_argument("--lang", help="target language (picks the BLEU tokenizer: zh, ja, else 13a); "
                                       "with --samples, default: the samples' own when they have one")
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
    """Score a system output as the study does: BLEU (with its signature), chrF, ROUGE-L."""
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
        args.lang = args.lang or (langs[0] if len(set(langs)) == 1 else None)   # several: summarization's
    else:
        if not (args.hyp and args.ref and args.lang):
            raise InputError("give --hyp, --ref and --lang, or --samples")
        hypotheses, references = _read_lines(args.hyp, "--hyp"), _read_lines(args.ref, "--ref")
        if len(hypotheses) != len(references):
            raise InputError(f"--hyp {args.hyp} has {len(hypotheses)} lines, --ref {args.ref} has {len(references)}")
        if not hypotheses:
            raise InputError(f"--hyp {args.hyp} and --ref {args.ref} are empty: nothing to score")
    result = metrics.score_lines(hypotheses, references, args.lang)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(result, out, indent=1, ensure_ascii=False)
        except OSError as error:
            raise InputError(f"--json {args.json}: {error.strerror}")
    print(f"BLEU {result['bleu']:.2f}  chrF {result['chrf']:.2f}  ROUGE-L {result['rougeL']:.2f}  "
          f"({result['lines']} lines)\n{result['signature']}")
    return 0


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", default="config.yaml", help="study config (default config.yaml)")
    parser.add_argument("--directory", default=".", help="where the study runs (default: here)")


def run_status(args: argparse.Namespace) -> int:
    """A study's runs done, running, failed and pending; hours spent against the plan; the last failures."""
    from ftscale.plan import status

    print(status.format_status(status.study_status(_read_config(args.configfile), args.directory)))
    return 0


SUBCOMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = {
    "fit": (add_fit_arguments, run_fit),
    "select": (add_select_arguments, run_select),
    "grid": (add_grid_arguments, run_grid),
    "run": (add_run_arguments, run_workflow),
    "score": (add_score_arguments, run_score),
    "status": (add_status_arguments, run_status),
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
        argv = ["run", "--", *argv[1:]]   # everything after `run` is Snakemake's, options included
    args = parser.parse_args(argv)
    _, run = SUBCOMMANDS[args.command]
    try:
        return run(args) or 0
    except InputError as error:
        print(f"ftscale {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
