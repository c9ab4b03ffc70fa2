"""Finetune one condition and seed; keep the checkpoint with the best dev loss."""

from pathlib import Path

from ftscale.runtime.jobs import SegmentEnd, end_segment, log_to_file, segment_seconds, set_limits

log_to_file(snakemake.log[0])
set_limits(snakemake.resources)  # the segment's deadline from the job's end time, the ranks' timeout
import dataclasses  # noqa: E402

from ftscale.plan import grid  # noqa: E402
from ftscale.runtime import ranks, tracking  # noqa: E402

wc = snakemake.wildcards
condition = grid.expand_conditions(snakemake.config)[wc.condition]
# where its curves go (config tracking: not a param, since no declared output depends on it); its
# parameters in MLflow: the condition's fields and the job's settings
curves = tracking.spec(
    snakemake.config,
    tracking.finetune_run(wc.condition, wc.seed),
    dataclasses.asdict(condition) | {"axes": ",".join(sorted(condition.axes))} | snakemake.params.run,
)
try:
    # one process (or the warm worker); under torchrun, one rank per GPU, where the plan gives the job several
    ranks.run(
        "ftscale.train.finetune:finetune",
        ranks.layout(snakemake.resources),
        log=snakemake.log[0],
        threads=snakemake.threads,
        base_dir=Path(snakemake.input.base),
        train_dir=Path(snakemake.input.train),
        dev_dir=Path(snakemake.input.dev),
        out_dir=Path(snakemake.output.summary).parent,
        resume_path=Path(snakemake.params.resume),
        log_name=f"finetune {wc.condition} seed {wc.seed}",
        segment_seconds=segment_seconds(snakemake.resources),
        curves=curves,
        **snakemake.params.run,
    )
except SegmentEnd as end:  # its time segment is over (resources.segment_seconds): resubmit to continue
    end_segment(end)
