"""Pretrain one base model (family, size, token budget) and save it with save_pretrained."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale import worker  # noqa: E402
from ftscale.training import derive_seed  # noqa: E402

p, wc = snakemake.params, snakemake.wildcards
worker.run("ftscale.pretrain:pretrain", log=snakemake.log[0], threads=snakemake.threads,
           size=p.size, vocab_size=p.vocab_size, train_tokens=Path(snakemake.input.train) / "tokens.npy",
           val_tokens=Path(snakemake.input.val) / "tokens.npy", tokens=int(wc.tokens), seq_len=p.seq_len,
           batch_size=p.batch_size, lr_max=p.lr_max, lr_min=p.lr_min, warmup_steps=p.warmup_steps,
           parameter_scaling=p.parameter_scaling, seed=derive_seed(p.seed, wc.family, wc.model),
           out_dir=Path(snakemake.output[0]), resume_path=Path(p.resume),
           tokenizer_file=Path(snakemake.input.tokenizer), log_name=f"pretrain {wc.family}/{wc.model}-{wc.tokens}tok",
           micro_batch_size=p.micro_batch_size, segment_seconds=snakemake.resources.get("segment_seconds"))
