"""The paper's answers at the paper's scale: runs drawn from the paper's own Table 4 laws for WMT14
En-De on configs/paper.yaml's En-De grid (models 1B-16B, budgets, Df per method, 3 seeds, noise
0.002; tests.synthetic_study.paper_anchored_metrics), put through the analysis the fit rule runs
(tables.run_analysis with the paper config's analysis options, bootstrap off to keep it quick).
They must give back Table 4's exponents, Table 5's gammas, and crossings that an independent solver
confirms at every model size. One analysis for the module: 41 s of CPU (176 s of wall time on the
shared 2-core machine at load 8), most of it the which-model ranking (selection.which_model)."""

import numpy as np
import pytest

from ftscale.analysis import tables
from tests.synthetic_study import PAPER_ENDE_TABLE4, every_root, paper_anchored_metrics

TABLE5_GAMMA = {("fmt", "prompt"): -1.2, ("fmt", "lora"): -2.4, ("prompt", "lora"): 1.5}  # En-De, model size
# Prompt vs LoRA: gamma = (alpha_L - alpha_P) / (beta_P - beta_L) = 0.04 / 0.03, a ratio of small
# differences. Table 4's own rounding (alphas 0.40 / 0.36, betas 0.051 / 0.081 to two digits) allows
# 0.97-1.72; over six noise seeds of this design the fitted value ranged 0.46-2.44 (1.19 at seed 0).
# So 0.3 is asked of the two FMT pairs only; prompt vs LoRA must have Table 5's sign and size.
GAMMA_TOLERANCE = {("fmt", "prompt"): 0.3, ("fmt", "lora"): 0.3, ("prompt", "lora"): 1.0}


@pytest.fixture(scope="module")
def paper_ende(tmp_path_factory):
    table, config = paper_anchored_metrics()
    options = config["analysis"] | {"bootstrap": 0}
    return tables.run_analysis(table, None, options, tmp_path_factory.mktemp("paper_fits"))


def test_table4_exponents_are_recovered_within_5_percent(paper_ende):
    params = paper_ende["params"].set_index(["axis", "method"])
    for method, (_, alpha_m, _, alpha_p, beta, _) in PAPER_ENDE_TABLE4.items():
        assert params.loc[("model", method), "alpha"] == pytest.approx(alpha_m, rel=0.05), method
        assert params.loc[("pretrain", method), "alpha"] == pytest.approx(alpha_p, rel=0.05), method
        assert params.loc[("model", method), "beta"] == pytest.approx(beta, rel=0.05), method


def test_table5_gammas(paper_ende):
    critical = paper_ende["critical"]
    model_axis = critical[critical.axis == "model"].groupby(["method_1", "method_2"])["gamma"].first()
    for pair, gamma in TABLE5_GAMMA.items():
        assert model_axis[pair] == pytest.approx(gamma, abs=GAMMA_TOLERANCE[pair]), pair
        assert np.sign(model_axis[pair]) == np.sign(gamma)


def test_every_crossing_at_every_model_size_is_an_independent_root(paper_ende):
    """At each X of both axes and each pair, the reported crossings are exactly the roots that a dense
    scan plus brentq finds on the two reported laws' difference; none is left blank, and the FMT-vs-
    PET crossings the paper's grids put between the methods' Df ranges are numbers."""
    fits = {(f["axis"], f["method"]): f["params"] for f in paper_ende.fits["joint"] if f["law"] == "multiplicative"}
    critical = paper_ende["critical"]
    for (axis, first, second, x), rows in critical.groupby(["axis", "method_1", "method_2", "x"]):
        roots = every_root("multiplicative", fits[(axis, first)], fits[(axis, second)], x)
        reported = rows["critical_df"].dropna().sort_values().to_numpy()
        np.testing.assert_allclose(reported, roots, rtol=1e-6, err_msg=f"{axis} {first}-{second} at {x:g}")
        assert (rows["n_crossings"] == len(roots)).all()
        assert rows["where"].eq("no crossing").all() if not roots else rows["where"].ne("no crossing").all()
    fmt_prompt = critical[(critical.axis == "model") & (critical.method_1 == "fmt") & (critical.method_2 == "prompt")]
    first_crossing = fmt_prompt[fmt_prompt.crossing == 1].set_index("x")["critical_df"]
    assert len(first_crossing) >= 3  # the 1B, 2B and 4B models: FMT wins from 2.4e5-9.4e5 examples
    assert set(fmt_prompt.loc[fmt_prompt.crossing == 1, "where"]) == {"inside fmt only"}
    assert (fmt_prompt.loc[fmt_prompt.crossing == 1, "beyond_2"] > 1).all()  # beyond prompt's 100K
    assert "nan" not in tables.markdown("critical", critical)


def test_crossings_below_1e10_examples_are_the_generating_laws_crossings(paper_ende):
    """On the model axis, the crossings a study could reach (below 1e10 examples) are those of the
    Table 4 laws that drew the runs: as many at each model size, each within a factor 1.6 (over three
    noise seeds the largest miss was 1.57x, prompt vs LoRA at 16B; FMT vs prompt within 1.15x)."""
    critical = paper_ende["critical"]
    for (first, second, x), rows in critical[critical.axis == "model"].groupby(["method_1", "method_2", "x"]):
        (a_1, alpha_1, _, _, beta_1, e_1), (a_2, alpha_2, _, _, beta_2, e_2) = (
            PAPER_ENDE_TABLE4[first],
            PAPER_ENDE_TABLE4[second],
        )
        truth = [
            r
            for r in every_root(
                "multiplicative",
                {"A": a_1, "alpha": alpha_1, "beta": beta_1, "E": e_1},
                {"A": a_2, "alpha": alpha_2, "beta": beta_2, "E": e_2},
                x,
            )
            if r < 1e10
        ]
        reported = rows.loc[rows.critical_df < 1e10, "critical_df"].sort_values().to_numpy()
        assert len(reported) == len(truth), (first, second, x)
        assert np.all(np.abs(np.log(reported / np.array(truth))) < np.log(1.6)), (first, second, x, reported, truth)
