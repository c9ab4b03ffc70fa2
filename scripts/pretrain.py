"""Pretrain one base model (family, size, token budget) and save it with save_pretrained."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale import pretrain, training  # noqa: E402
from ftscale.data.tokens import save_hf_tokenizer  # noqa: E402

p, wc = snakemake.params, snakemake.wildcards
training.set_threads(snakemake.threads)
out_dir = Path(snakemake.output[0])
pretrain.pretrain(size=p.size, vocab_size=p.vocab_size, train_tokens=Path(snakemake.input.train) / "tokens.npy",
                  val_tokens=Path(snakemake.input.val) / "tokens.npy", tokens=int(wc.tokens), seq_len=p.seq_len,
                  batch_size=p.batch_size, lr_max=p.lr_max, lr_min=p.lr_min, warmup_steps=p.warmup_steps, parameter_scaling=p.parameter_scaling,
                  seed=training.derive_seed(p.seed, wc.family, wc.model), out_dir=out_dir,
                  resume_path=Path(p.resume), log=training.Log(f"pretrain {wc.family}/{wc.model}-{wc.tokens}tok"))
save_hf_tokenizer(snakemake.input.tokenizer, out_dir)
