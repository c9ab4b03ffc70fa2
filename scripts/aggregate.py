"""Collect every run into metrics.csv, metrics_mean.csv, pretrain.csv and base_transfer.csv."""

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.analysis import aggregate  # noqa: E402
from ftscale.runtime import faults  # noqa: E402

pretrain = aggregate.pretrain_table(snakemake.input.pretrain, snakemake.params.pretrain_runs)
metrics = aggregate.metrics_table(snakemake.params.runs, snakemake.input.summaries, snakemake.input.evals, pretrain)
pretrain.to_csv(snakemake.output.pretrain, index=False)
metrics.to_csv(snakemake.output.metrics, index=False)
faults.point("aggregate")  # fault-injection tests: killed with metrics.csv complete-looking
aggregate.mean_over_seeds(metrics).to_csv(snakemake.output.mean, index=False)
base = aggregate.base_transfer_table(snakemake.input.base_transfers, snakemake.params.base_transfer_runs, pretrain)
base.to_csv(snakemake.output.base_transfer, index=False)
print(f"{len(metrics)} runs ({(metrics.status != 'ok').sum()} not ok), {len(pretrain)} base models")
