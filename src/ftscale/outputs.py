"""The names of what the analysis writes: the fit tables (with the columns each has even when
empty) and the figures. ftscale.analysis.tables and ftscale.figures.paper write them; the workflow's analysis rules
read the names here, at every Snakemake start, so this module imports nothing heavy (the writers
import matplotlib, scipy and pandas: 5 s on this 2-core machine, against a 2 s no-op run).
"""

from __future__ import annotations

from ftscale.fitting.laws import JOINT_LAWS

TABLE_COLUMNS = {  # fits/<name>.csv and .md: the columns each has even when empty (rows may add more)
    "single_variable": [
        "task",
        "method",
        "model",
        "params",
        "A",
        "beta",
        "E",
        "delta_e",
        "delta_h",
        "n_fit",
        "n_heldout",
        "flagged",
        "diagnostics",
    ],
    "heldout_error": ["task", "axis", "method", "heldout"]
    + [f"delta_{k}_{law}" for law in JOINT_LAWS for k in ("e", "h")]
    + ["n_fit", "n_heldout", "flagged"],
    "params": [
        "task",
        "axis",
        "method",
        "A",
        "alpha",
        "beta",
        "E",
        "delta_e",
        "delta_h",
        "n_fit",
        "n_heldout",
        "shared_from",
        "n_bootstrap",
        "flagged",
        "diagnostics",
    ],
    "critical": [
        "task",
        "axis",
        "method_1",
        "method_2",
        "H",
        "gamma",
        "E_1",
        "E_2",
        "x",
        "crossing",
        "n_crossings",
        "critical_df",
        "where",
        "beyond_1",
        "beyond_2",
        "df_low_1",
        "df_high_1",
        "df_low_2",
        "df_high_2",
        "closed_form_df",
        "closed_form_exact",
        "flagged",
        "diagnostics",
    ],
    "leave_one_out": ["task", "axis", "method", "leave_out"] + [f"error_{law}" for law in JOINT_LAWS] + ["n_values"],
    "law_comparison": [
        "task",
        "n_fits",
        "delta_h_multiplicative",
        "delta_h_additive",
        "difference",
        "difference_low",
        "difference_high",
        "p_multiplicative_lower",
        "n_bootstrap",
    ],
    "correlation": ["task", "axis", "method", "metric", "r", "p", "n"],
    "which_method": ["task", "axis", "x", "finetune_examples", "best_method", "probability"],
    "which_model": [
        "task",
        "method",
        "budget",
        "target",
        "rank",
        "model",
        "params",
        "law",
        "predicted_loss",
        "low",
        "high",
        "p_best",
        "observed_loss",
        "observed_rank",
    ],
}
TABLES = tuple(TABLE_COLUMNS)

FIGURES = (  # figures/<name>.png and .pdf; captions in report/<name>.rst
    "fig01_single_variable",
    "fig02_model_size",
    "fig03_pretrain_data",
    "fig04_pet_size",
    "fig05_critical_size",
    "fig06_zero_shot",
    "fig07_metric_model_size",
    "fig08_metric_pretrain_data",
    "fig09_metric_pet_size",
    "fig10_pretraining",
    "fig11_few_shot",
    "fig13_few_shot_pretrain_data",
    "which_base_model",
)  # ftscale select on the study's model axis: no figure of the paper
# Zero- and few-shot evaluation: data only where the study has transfer jobs of the kind (evaluate.transfer)
ZERO_SHOT_FIGURES = ("fig06_zero_shot",)
FEW_SHOT_FIGURES = ("fig11_few_shot", "fig13_few_shot_pretrain_data")
TRANSFER_FIGURES = ZERO_SHOT_FIGURES + FEW_SHOT_FIGURES


def study_figures(zero_shot: bool, few_shot: bool) -> tuple[str, ...]:
    """The figures a study's workflow draws: ZERO_SHOT_FIGURES only with zero-shot sets,
    FEW_SHOT_FIGURES only with few-shot prompts (translation's or summarization's); either would be
    blank without."""
    left_out = (() if zero_shot else ZERO_SHOT_FIGURES) + (() if few_shot else FEW_SHOT_FIGURES)
    return tuple(name for name in FIGURES if name not in left_out)
