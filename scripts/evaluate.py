"""Evaluate one finetuned run: test loss, greedy generation and its metric."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
import json  # noqa: E402

from ftscale import evaluate, training  # noqa: E402
from ftscale.data import sources, tokens  # noqa: E402
from ftscale.finetune import load_finetuned  # noqa: E402

p = snakemake.params
training.set_threads(snakemake.threads)
summary = json.loads(Path(snakemake.input.summary).read_text())
result = {"status": summary["status"]}
if summary["status"] == "ok":
    model = load_finetuned(Path(snakemake.input.base), Path(snakemake.input.checkpoint), p.method)
    references = [r["target"] for r in sources.read_jsonl(Path(snakemake.input.references))]
    result |= evaluate.evaluate(model, tokens.load_tokenizer(snakemake.input.tokenizer),
                                tokens.TaskSplit(snakemake.input.test), references, p.task_type,
                                max_source=p.max_source, max_target=p.max_target,
                                max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
else:
    print(f"training {summary['status']}: no evaluation")
Path(snakemake.output[0]).write_text(json.dumps(result, indent=1))
