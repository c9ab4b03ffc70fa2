"""Finetune one condition and seed; keep the checkpoint with the best dev loss."""

from pathlib import Path

from ftscale.runtime.jobs import SegmentEnd, end_segment, log_to_file, segment_seconds, set_limits

log_to_file(snakemake.log[0])
set_limits(snakemake.resources)  # the segment's deadline from the job's end time, the ranks' timeout
from ftscale.runtime import ranks  # noqa: E402

wc = snakemake.wildcards
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
        **snakemake.params.run,
    )
except SegmentEnd as end:  # its time segment is over (resources.segment_seconds): resubmit to continue
    end_segment(end)
