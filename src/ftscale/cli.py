"""The `ftscale` command. Subcommands:

    ftscale fit TABLE.csv --law {power,multiplicative,additive} --x COLUMN [--df COLUMN] --loss COLUMN
                [--objective huber|log-huber] [--delta D] [--heldout "pandas query"] [--bootstrap N] [--json OUT]

fits a scaling law to any CSV and prints the parameters and errors (Delta_e on fitted points,
Delta_h on held-out ones). For `power`, --x is the single variable (finetuning-data size).
Bad input ends with exit status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="CSV file, one row per point (or per run)")
    parser.add_argument("--law", required=True, choices=["power", "multiplicative", "additive"])
    parser.add_argument("--x", required=True, help="column of the factor X (for power: of Df)")
    parser.add_argument("--df", help="column of the finetuning-data size (joint laws)")
    parser.add_argument("--loss", required=True, help="column of the observed loss")
    parser.add_argument("--objective", default="huber", choices=["huber", "log-huber"])
    parser.add_argument("--delta", type=float, default=1e-3, help="Huber delta (default 1e-3)")
    parser.add_argument("--heldout", help='pandas query selecting held-out rows, e.g. "params > 1e9"')
    parser.add_argument("--bootstrap", type=int, default=0, help="resamples for 95%% intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result as JSON here")


def run_fit(args: argparse.Namespace) -> dict:
    import numpy as np
    import pandas as pd

    from ftscale import fitting

    try:
        table = pd.read_csv(args.table)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise fitting.FitError(f"{args.table}: {str(error).splitlines()[0]}")
    if table.empty:
        raise fitting.FitError(f"{args.table}: the table has no rows")
    df_column = args.x if args.law == "power" else args.df
    if df_column is None:
        raise fitting.FitError(f"--df is required for the {args.law} law")
    for column in {args.x, df_column, args.loss}:
        if column not in table.columns:
            raise fitting.FitError(f"column {column!r} is not in {args.table} (columns: {', '.join(table.columns)})")
    held = np.zeros(len(table), dtype=bool)
    if args.heldout:
        try:
            held = table.eval(args.heldout).to_numpy(dtype=bool)
        except Exception as error:  # noqa: BLE001 - any bad query is the user's input
            raise fitting.FitError(f"--heldout {args.heldout!r}: {str(error).splitlines()[0]}")
    if held.all():
        raise fitting.FitError("every point is held out: nothing left to fit")

    def group(rows):
        return fitting.Group(rows[df_column], rows[args.loss], None if args.law == "power" else rows[args.x])

    kw = {"objective": args.objective, "delta": args.delta}
    result = fitting.fit(args.law, [group(table[~held])], **kw)
    params = result.params[0]
    x = None if args.law == "power" else table[args.x]
    predicted = fitting.predict(args.law, params, table[df_column], x)
    keys = [k for k in ("A", "alpha", "B", "beta", "E") if k in params]
    out = {"law": args.law, "objective": args.objective, "delta": args.delta,
           "params": {k: params[k] for k in keys},
           "delta_e": fitting.mean_absolute_deviation(predicted[~held], table[args.loss][~held]),
           "delta_h": fitting.mean_absolute_deviation(predicted[held], table[args.loss][held]),
           "n_fit": int((~held).sum()), "n_heldout": int(held.sum())}
    if args.bootstrap:
        rng, fitted = np.random.default_rng(args.seed), table[~held]
        samples = [fitting.fit(args.law, [group(fitted.iloc[rng.integers(0, len(fitted), len(fitted))])],
                               starts=result.vector, **kw).params[0] for _ in range(args.bootstrap)]
        out["intervals"] = {k: fitting.percentile_interval([s[k] for s in samples]) for k in keys}
    return out


def print_fit(result: dict) -> None:
    print(f"{result['law']} law, {result['objective']} objective: {result['n_fit']} points fitted, "
          f"{result['n_heldout']} held out")
    for key, value in result["params"].items():
        interval = result.get("intervals", {}).get(key)
        print(f"  {key:>5} = {value:.6g}" + (f"  [{interval[0]:.6g}, {interval[1]:.6g}]" if interval else ""))
    print(f"  Delta_e = {result['delta_e']:.6g}   Delta_h = {result['delta_h']:.6g}")


SUBCOMMANDS = {"fit": (add_fit_arguments, run_fit, print_fit)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftscale", description="ftscale: scaling laws of LLM finetuning")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _, _) in SUBCOMMANDS.items():
        add_arguments(commands.add_parser(name, help=(run_fit.__doc__ or name)))
    args = parser.parse_args(argv)
    _, run, show = SUBCOMMANDS[args.command]
    from ftscale.fitting import FitError

    try:
        result = run(args)
    except FitError as error:
        print(f"ftscale {args.command}: {error}", file=sys.stderr)
        return 2
    show(result)
    if getattr(args, "json", None):
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
