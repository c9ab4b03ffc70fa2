"""ftscale.plan.status reads failed jobs from Snakemake's log as Snakemake's own formatter writes
them: a group's error (on SLURM, finetune + evaluate of a run are one group job) names each failed
job with its output and log; the job's first entry comes before the next unindented line.
(A plain job's error, through real Snakemake: tests/workflow/test_status.py.)"""

from snakemake.logging import DefaultFormatter

from ftscale.plan import status

RUN = "results/tiny/finetune/translation_ende/m1-32768tok/fmt/df16/seed0"
LOGS = "results/tiny/logs"


def group_error_text() -> str:
    message = {
        "msg": "Error in group 1f2e",
        "aux_logs": [".snakemake/slurm_logs/group_run/7_1.log"],
        "job_error_info": [
            {
                "rule_name": "finetune",
                "jobid": 3,
                "output": [f"{RUN}/checkpoint", f"{RUN}/train.json"],
                "log": [f"{LOGS}/finetune/translation_ende/m1-32768tok/fmt/df16/seed0.log"],
            },
            {
                "rule_name": "evaluate",
                "jobid": 4,
                "output": [f"{RUN}/eval.json", f"{RUN}/samples.jsonl"],
                "log": [f"{LOGS}/evaluate/translation_ende/m1-32768tok/fmt/df16/seed0.log"],
            },
        ],
    }
    return DefaultFormatter().format_group_error(message)


def test_a_group_error_gives_each_failed_job_with_its_output_and_log():
    text = group_error_text() + "\n[Wed Dec  2 18:00:01 2026]\nrule aggregate:\n    output: results/tiny/metrics.csv\n"
    assert "Error in group" in text and "        rule finetune:" in text  # the format read here
    assert status.job_errors(text) == [
        ("finetune", f"{RUN}/checkpoint", f"{LOGS}/finetune/translation_ende/m1-32768tok/fmt/df16/seed0.log"),
        ("evaluate", f"{RUN}/eval.json", f"{LOGS}/evaluate/translation_ende/m1-32768tok/fmt/df16/seed0.log"),
    ]


def test_a_started_job_is_no_error():
    text = "[Wed Dec  2 18:00:01 2026]\nrule finetune:\n    output: x\n    log: y\n"
    assert status.job_errors(text) == []
