"""bench/bench_startup.py's quick mode runs end to end, so the bench cannot rot: the toy's dry run and a
generated bare Snakefile that plans as many jobs (the bench stops if the counts differ). No timings
are asserted (bench/, not tests, holds speed)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_quick_mode_compares_the_toy_dry_run_with_a_bare_snakefile_of_as_many_jobs():
    import bench_startup

    figures = bench_startup.main(["--quick"])
    assert figures["toy_dry_run_jobs"] > 100  # the toy's grid, not an empty plan
    for side in ("ours", "bare"):
        assert figures[f"toy_dry_run_{side}_s"] > 0 and figures[f"toy_dry_run_{side}_cpu_s"] > 0
    assert figures["slurm_probe_plain_s"] > 0 and figures["slurm_probe_ours_s"] > 0


def test_the_bare_snakefile_plans_the_job_count_it_is_given(tmp_path):
    import bench_startup

    snakefile = bench_startup.bare_snakefile(tmp_path, 7)
    _, _, output = bench_startup.timed([*bench_startup.SNAKEMAKE, "-s", str(snakefile), "-n", "-q", "rules"], tmp_path)
    assert bench_startup.job_total(output) == 7
