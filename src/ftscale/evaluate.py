"""Evaluation of a finetuned model: test token-level loss, greedy generation, BLEU/chrF or ROUGE-L."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID, SEP_ID, TaskSplit
from ftscale.finetune import split_loss
from ftscale.model import autocast, device, model_device


def greedy_decode(model, split: TaskSplit, max_source: int, max_new_tokens: int, batch_size: int,
                  exact_lengths: bool = False) -> list[list[int]]:
    """Greedy continuations of each example's `<s> source <sep>` (see decode_prompts)."""
    prompts = [[BOS_ID, *split.example(i, max_source, 0)[0].tolist(), SEP_ID] for i in range(len(split))]
    return decode_prompts(model, prompts, max_new_tokens, batch_size, exact_lengths)


@torch.inference_mode()
def decode_prompts(model, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
                   exact_lengths: bool = False) -> list[list[int]]:
    """Batched greedy decoding, prompts sorted by length and left-padded (the attention mask gives
    each row its own positions, so a batch decodes as each prompt alone); each output stops before
    </s> or at max_new_tokens.

    exact_lengths: batch only prompts of one length, no padding at all. Prompt tuning needs it:
    peft ignores position ids, so padding would shift the soft prompt's distance to the text."""
    model.eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    batches, current = [], []
    for i in order:
        if current and (len(current) == batch_size or (exact_lengths and len(prompts[i]) != len(prompts[current[0]]))):
            batches.append(current)
            current = []
        current.append(i)
    batches += [current] if current else []
    outputs: list[list[int]] = [[] for _ in prompts]
    for rows in batches:
        length = max(len(prompts[i]) for i in rows)
        input_ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for r, i in enumerate(rows):
            input_ids[r, length - len(prompts[i]):] = torch.tensor(prompts[i])
            attention_mask[r, length - len(prompts[i]):] = 1
        device = model_device(model)
        with autocast(model):
            generated = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                       do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=EOS_ID,
                                       pad_token_id=PAD_ID)
        generated = generated[:, length:].tolist()       # one copy to the host per batch
        for r, i in enumerate(rows):
            new = generated[r]
            outputs[i] = new[:new.index(EOS_ID)] if EOS_ID in new else new
    return outputs


def translation_metrics(hypotheses: list[str], references: list[str]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    return {"bleu": bleu.corpus_score(hypotheses, [references]).score,
            "chrf": chrf.corpus_score(hypotheses, [references]).score,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def summarization_metrics(hypotheses: list[str], references: list[str]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references)]
    return {"rougeL": 100 * float(np.mean(scores))}


def evaluate(model, tokenizer, test: TaskSplit, references: list[str], task_type: str, *,
             max_source: int, max_target: int, max_new_tokens: int, batch_size: int,
             exact_lengths: bool = False) -> dict:
    test_loss = split_loss(model, test, np.arange(len(test)), batch_size, max_source, max_target)
    generated = greedy_decode(model, test, max_source, max_new_tokens, batch_size, exact_lengths)
    hypotheses = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    metrics = (translation_metrics if task_type == "translation" else summarization_metrics)(hypotheses, references)
    return {"test_loss": test_loss, **metrics,
            "samples": [{"hypothesis": h, "reference": r} for h, r in list(zip(hypotheses, references))[:5]]}


def run_job(*, base: Path, checkpoint: Path, summary: Path, test: Path, references: Path, tokenizer: Path,
            out: Path, task_type: str, method: str, max_source: int, max_target: int,
            max_new_tokens: int, batch_size: int, threads: int) -> dict:
    """The evaluate rule: a diverged run is recorded as such, with no metrics."""
    from ftscale.data import sources, tokens
    from ftscale.finetune import load_finetuned

    torch.set_num_threads(threads)
    status = json.loads(Path(summary).read_text())["status"]
    result = {"status": status}
    if status == "ok":
        model = load_finetuned(Path(base), Path(checkpoint), method).to(device())
        reference_texts = [r["target"] for r in sources.read_jsonl(Path(references))]
        result |= evaluate(model, tokens.load_tokenizer(tokenizer), tokens.TaskSplit(test), reference_texts,
                           task_type, max_source=max_source, max_target=max_target,
                           max_new_tokens=max_new_tokens, batch_size=batch_size,
                           exact_lengths=method == "prompt")
        print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    else:
        print(f"training {status}: no evaluation")
    Path(out).write_text(json.dumps(result, indent=1))
    return result
