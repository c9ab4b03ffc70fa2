"""Pretrain one base model (family, size, token budget) and save it with save_pretrained, and its
intermediate checkpoints where the run has any (pretrain.data_axis: checkpoints)."""

from pathlib import Path

from ftscale.runtime.jobs import SegmentEnd, end_segment, log_to_file, segment_seconds, set_limits

log_to_file(snakemake.log[0])
set_limits(snakemake.resources)  # the segment's deadline from the job's end time, the ranks' timeout
from ftscale.plan import grid  # noqa: E402
from ftscale.runtime import ranks, tracking  # noqa: E402
from ftscale.train.training import derive_seed  # noqa: E402

p = snakemake.params.run
# where its curves go (config tracking: not a param, since no declared output depends on it)
settings = ("family", "model", "tokens", "seq_len", "batch_size", "lr_max", "lr_min", "warmup_steps", "seed")
curves = tracking.spec(
    snakemake.config,
    tracking.pretrain_run(grid.pretrain_id(p["family"], p["model"], p["tokens"])),
    {key: p[key] for key in settings} | p["size"],
)
try:
    # one process (or the warm worker); under torchrun, one rank per GPU, where the plan gives the job several
    ranks.run(
        "ftscale.train.pretrain:pretrain",
        ranks.layout(snakemake.resources),
        log=snakemake.log[0],
        threads=snakemake.threads,
        size=p["size"],
        vocab_size=p["vocab_size"],
        train_tokens=Path(snakemake.input.train) / "tokens.npy",
        val_tokens=Path(snakemake.input.val) / "tokens.npy",
        tokens=p["tokens"],
        seq_len=p["seq_len"],
        batch_size=p["batch_size"],
        lr_max=p["lr_max"],
        lr_min=p["lr_min"],
        warmup_steps=p["warmup_steps"],
        parameter_scaling=p["parameter_scaling"],
        seed=derive_seed(p["seed"], p["family"], p["model"]),
        out_dir=Path(snakemake.output[0]),
        resume_path=Path(p["resume"]),
        tokenizer_file=Path(snakemake.input.tokenizer),
        checkpoints={tokens: Path(path) for tokens, path in p["checkpoints"].items()},
        log_name=f"pretrain {p['family']}/{p['model']}-{p['tokens']}tok",
        micro_batch_size=p["micro_batch_size"],
        segment_seconds=segment_seconds(snakemake.resources),
        val_windows=p["val_windows"],
        log_every=p["log_every"],
        curves=curves,
        # how often the resume state is saved changes no output: read from the config, not a
        # param, so changing it reruns nothing
        checkpoint_every=snakemake.config["pretrain"]["save_every"],
    )
except SegmentEnd as end:  # its time segment is over (resources.segment_seconds): resubmit to continue
    end_segment(end)
