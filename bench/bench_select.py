"""Which base model? `ftscale select` against Lin et al.'s published finetuning curves (prints a
table and merges its figures into results/bench/summary.json; no assertions).

Data: bench/data/finetuning-curves/{wmt19,gigaword}.csv, 30 public models finetuned on subsets of
0, 200, ..., 1,638,400 examples (Lin et al., ICML 2024; Apache-2.0, see the README there), with
their own accept-then-stop (AtS) figures. For budgets of 1/8, 1/64 and 1/512 of the target
1,638,400, each law ranks the 30 models from their losses at sizes <= budget:
- PearCorr: Pearson r (%) between predicted and true losses at the target, across models;
- RelAcc: (worst - chosen) / (worst - best) (%) of the true target losses, for the model ranked first.
Defaults only: the same settings for both datasets (no tuning per dataset).

BLAS threads are pinned to 1 (as bench_fitting.py does): every rectified fit is many small scipy
L-BFGS-B runs, which a threaded OpenBLAS slows ~10x on a busy machine.

Usage: .venv/bin/python bench/bench_select.py [--laws ats,power,rectified,auto] [--ratios 8,64,512] [--quick]
"""

from __future__ import annotations

import argparse
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its BLAS

import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import summary as bench_summary  # noqa: E402  (bench/summary.py)

from ftscale.fitting import selection  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "finetuning-curves"
DATASETS = {"WMT19": "wmt19.csv", "Gigaword": "gigaword.csv"}
TARGET = 1_638_400


def published_ats() -> dict:
    """{(dataset, ratio): (PearCorr, RelAcc)} from the table in the data's README."""
    rows = re.findall(r"^\| (\w+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|$", (DATA / "README.md").read_text(), re.M)
    return {(name, int(ratio)): (float(r), float(acc)) for name, ratio, r, acc in rows}


def candidates(table: pd.DataFrame) -> list[selection.Candidate]:
    """One candidate per model (row) from the wide table: columns named by their size."""
    sizes = [c for c in table.columns if c.isdigit()]
    return [
        selection.Candidate(row["config name"], np.array(sizes, float), row[sizes].to_numpy(float))
        for _, row in table.iterrows()
    ]


def scores(predicted: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """PearCorr and RelAcc in percent."""
    chosen = true[np.nanargmin(predicted)]
    return (
        100 * float(np.corrcoef(predicted, true)[0, 1]),
        100 * float((true.max() - chosen) / (true.max() - true.min())),
    )


def evaluate(table: pd.DataFrame, law: str, ratio: int) -> dict:
    result = selection.select(candidates(table), budget=TARGET / ratio, target=TARGET, law=law)
    predicted = {row["model"]: row["predicted_loss"] for row in result["ranking"]}
    keep = table["config name"].isin(predicted)
    pear, rel = scores(
        table.loc[keep, "config name"].map(predicted).to_numpy(float), table.loc[keep, str(TARGET)].to_numpy(float)
    )
    laws = pd.Series([row["law"] for row in result["ranking"]]).value_counts().to_dict()
    return {
        "pearcorr": pear,
        "relacc": rel,
        "n_models": int(keep.sum()),
        "skipped": len(result["skipped"]),
        "laws": laws,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="ats,power,rectified,auto")
    parser.add_argument("--ratios", default="8,64,512")
    parser.add_argument("--quick", action="store_true", help="the AtS law at 1/8 only (the tests' run)")
    args = parser.parse_args()
    if args.quick:
        args.laws, args.ratios = "ats", "8"
    laws, ratios = args.laws.split(","), [int(r) for r in args.ratios.split(",")]
    published = published_ats()
    figures = {}
    print(f"Which base model? target {TARGET:,} examples; PearCorr / RelAcc in %, published AtS beside ours")
    print(
        f"{'dataset':<9} {'ratio':>5} {'budget':>8}  "
        + "  ".join(f"{law:>11}" for law in laws)
        + f"  {'AtS (paper)':>11}"
    )
    for name, file in DATASETS.items():
        table = pd.read_csv(DATA / file)
        for ratio in ratios:
            cells = []
            for law in laws:
                start = time.perf_counter()
                figure = evaluate(table, law, ratio) | {"seconds": time.perf_counter() - start}
                figures[f"select_{name.lower()}_{ratio}_{law}"] = figure
                cells.append(f"{figure['pearcorr']:5.1f}/{figure['relacc']:5.1f}")
            paper = published.get((name, ratio))
            cells.append("n/a" if paper is None else f"{paper[0]:5.1f}/{paper[1]:5.1f}")
            print(f"{name:<9} {ratio:>5} {TARGET // ratio:>8}  " + "  ".join(f"{c:>11}" for c in cells), flush=True)
    auto_laws = {k: v["laws"] for k, v in figures.items() if k.endswith("_auto")}
    if auto_laws:
        print("laws auto chose, per dataset and ratio: " + "; ".join(f"{k[7:-5]} {v}" for k, v in auto_laws.items()))
    print(f"\nmerged into {bench_summary.merge(figures)}")


if __name__ == "__main__":
    main()
