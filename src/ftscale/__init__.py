"""ftscale: scaling laws of LLM finetuning (Zhang et al., ICLR 2024), as a Snakemake workflow."""
