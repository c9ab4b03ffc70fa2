"""Zero-shot and few-shot translation: what finetuning does beyond its own task.

Zero-shot (the paper's Fig 6): a model finetuned on one direction (En->De) translates from source
languages it was never finetuned on (toy: fr, zh, hi, tr, pl; paper: Flores-200) into the same
target language, prompted exactly as in finetuning (`<s> source <sep>`). BLEU and chrF per
direction, and their mean over directions, as the paper averages them.

Few-shot: k demonstrations `<s> source <sep> target </s>` from the task's dev split precede each
test prompt; finetuned models and, as the baseline, the base models they started from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ftscale.data.tokens import OWN_FORMAT, PromptFormat, TaskSplit
from ftscale.evaluate.decode import decode_prompts, source_prompt
from ftscale.evaluate.metrics import translation_metrics


def source_prompts(
    split: TaskSplit, max_source: int, count: int | None = None, fmt: PromptFormat = OWN_FORMAT
) -> list[list[int]]:
    """`<s> source <sep>` of the first `count` examples (all by default)."""
    n = len(split) if count is None else min(count, len(split))
    return [source_prompt(split.example(i, max_source, 0)[0], fmt) for i in range(n)]


def few_shot_prompts(
    test: TaskSplit,
    demos: TaskSplit,
    shots: int,
    count: int,
    max_source: int,
    max_target: int,
    seed: int,
    fmt: PromptFormat = OWN_FORMAT,
) -> list[list[int]]:
    """Each test source after `shots` demonstrations drawn from `demos` (distinct within a prompt,
    seeded, so every model of a study sees the same prompts)."""
    rng = np.random.default_rng(seed)
    prompts = []
    for prompt in source_prompts(test, max_source, count, fmt):
        context = []
        for d in rng.choice(len(demos), size=shots, replace=False):
            source, target = demos.example(int(d), max_source, max_target)
            context += [*source_prompt(source, fmt), *target.tolist(), fmt.eos]
        prompts.append(context + prompt)
    return prompts


def scores(
    model,
    tokenizer,
    prompts: list[list[int]],
    references: list[str],
    *,
    target_lang: str,
    max_new_tokens: int,
    batch_size: int,
    fmt: PromptFormat = OWN_FORMAT,
) -> dict:
    """BLEU and chrF of the greedy continuations of `prompts` (ftscale.evaluate.metrics: BLEU tokenized for
    target_lang, with its signature), and the first hypothesis as a sample."""
    outputs = decode_prompts(model, prompts, max_new_tokens, batch_size, fmt)
    hypotheses = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]
    metrics = translation_metrics(hypotheses, references[: len(prompts)], target_lang)
    return {
        "bleu": metrics["bleu"],
        "chrf": metrics["chrf"],
        "bleu_signature": metrics["bleu_signature"],
        "sample": hypotheses[0] if hypotheses else "",
    }


def run_job(
    *,
    base: Path,
    checkpoint: Path | None,
    method: str,
    summary: Path | None,
    tokenizer: Path,
    zero_shot: dict[str, tuple[str, str]],
    test: Path,
    references: Path,
    demos: Path,
    shots: list[int],
    few_shot_examples: int,
    max_source: int,
    max_target: int,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    target_lang: str,
    out: Path,
    threads: int,
    weights_dtype: str | None = None,
) -> dict:
    """The transfer rule, for a finetuned run (checkpoint, method) or a base model (checkpoint None).
    Every direction translates into the task's target_lang, which picks the BLEU tokenizer; the
    signature is saved with each score and once as `bleu_signature`.

    zero_shot: {source language: (tokenized split dir, raw jsonl with the references)}; empty for
    base models, which have not learnt the `<sep>` format a zero-shot prompt relies on."""
    import torch

    from ftscale.data import common, tokens
    from ftscale.train.finetune import load_finetuned
    from ftscale.train.model import base_format, device, load_model

    torch.set_num_threads(threads)
    status = json.loads(Path(summary).read_text())["status"] if summary else "ok"
    result: dict = {"status": status}
    if status != "ok":
        print(f"training {status}: no transfer evaluation")
        Path(out).write_text(json.dumps(result, indent=1))
        return result
    from ftscale.config import schema_default

    dtype = weights_dtype or schema_default("evaluate", "weights_dtype")  # evaluate.weights_dtype
    model = (
        load_model(base, dtype) if checkpoint is None else load_finetuned(Path(base), Path(checkpoint), method, dtype)
    )
    model = model.to(device())
    tok = tokens.load_tokenizer(tokenizer)
    fmt = base_format(base)
    options = {"target_lang": target_lang, "max_new_tokens": max_new_tokens, "batch_size": batch_size, "fmt": fmt}

    def references_of(path) -> list[str]:
        return [r["target"] for r in common.read_jsonl(Path(path))]

    if zero_shot:
        per_language = {
            lang: scores(
                model, tok, source_prompts(TaskSplit(split), max_source, fmt=fmt), references_of(raw), **options
            )
            for lang, (split, raw) in zero_shot.items()
        }
        result["zero_shot"] = per_language
        result["zero_shot_bleu"] = float(np.mean([s["bleu"] for s in per_language.values()]))
        result["zero_shot_chrf"] = float(np.mean([s["chrf"] for s in per_language.values()]))
    test_split, demo_split, test_references = TaskSplit(test), TaskSplit(demos), references_of(references)
    for k in shots:
        prompts = few_shot_prompts(test_split, demo_split, k, few_shot_examples, max_source, max_target, seed, fmt)
        result[f"few_shot_{k}"] = scores(model, tok, prompts, test_references, **options)
        result[f"few_shot_{k}_bleu"] = result[f"few_shot_{k}"]["bleu"]
        result[f"few_shot_{k}_chrf"] = result[f"few_shot_{k}"]["chrf"]
    scored = [*result.get("zero_shot", {}).values(), *(result[f"few_shot_{k}"] for k in shots)]
    if scored:
        result["bleu_signature"] = scored[0]["bleu_signature"]  # one target language: one signature
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}))
    Path(out).write_text(json.dumps(result, indent=1))
    return result
