"""Finetune one condition and seed; keep the checkpoint with the best dev loss."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale import finetune, training  # noqa: E402

run = snakemake.params.run
training.set_threads(snakemake.threads)
finetune.finetune(base_dir=Path(snakemake.input.base), train_dir=Path(snakemake.input.train),
                  dev_dir=Path(snakemake.input.dev), out_dir=Path(snakemake.output.summary).parent,
                  resume_path=Path(snakemake.params.resume),
                  log=training.Log(f"finetune {snakemake.wildcards.condition} seed {snakemake.wildcards.seed}"),
                  **run)
