"""Zero-shot and few-shot evaluation: what finetuning does beyond its own task.

Zero-shot translation (the paper's Fig 6): a model finetuned on one direction (En->De) translates
from source languages it was never finetuned on (toy: fr, zh, hi, tr, pl; paper: Flores-200) into
the same target language, prompted exactly as in finetuning (`<s> source <sep>`). BLEU and chrF per
direction, and their mean over directions, as the paper averages them.

Few-shot: k demonstrations `<s> source <sep> target </s>` from the task's dev split precede each
test prompt; finetuned models and, as the baseline, the base models they started from. Translation
is scored with BLEU and chrF (the paper: 1- and 5-shot), summarization with ROUGE-L (the paper's
MLSum 1-shot: one article and its summary, then the test article; each source already carries the
"Summarize the following document in {language}:" prefix, ftscale.data.common), by
ftscale.evaluate.metrics.task_metrics, as the evaluate rule scores the task itself. Each k's flat
score is `few_shot_<k>_<metric>`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ftscale.data.tokens import OWN_FORMAT, PromptFormat, TaskSplit
from ftscale.evaluate.decode import decode_prompts, source_prompt
from ftscale.evaluate.metrics import lexical_metrics, task_metrics

# per task type, the key of a score's signature (how it was computed), saved once per job
SIGNATURE = {"translation": "bleu_signature", "summarization": "rouge_tokenizer"}


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
    task_type: str,
    target_lang: str | None,
    reference_langs: list[str] | None,
    max_new_tokens: int,
    batch_size: int,
    fmt: PromptFormat = OWN_FORMAT,
) -> dict:
    """The task's lexical metrics (ftscale.evaluate.metrics.task_metrics: BLEU and chrF tokenized for
    target_lang, with signatures; or ROUGE-L, overall and per reference language) of the greedy
    continuations of `prompts` against the first len(prompts) references, and the first hypothesis
    as a sample."""
    outputs = decode_prompts(model, prompts, max_new_tokens, batch_size, fmt)
    hypotheses = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]
    n = len(prompts)
    langs = reference_langs[:n] if reference_langs else None
    metrics = task_metrics(task_type, hypotheses, references[:n], target_lang, langs)
    return {**metrics, "sample": hypotheses[0] if hypotheses else ""}


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
    task_type: str,
    target_lang: str | None,
    out: Path,
    threads: int,
    weights_dtype: str | None = None,
) -> dict:
    """The transfer rule, for a finetuned run (checkpoint, method) or a base model (checkpoint None).
    A translation task's directions all translate into its target_lang, which picks the BLEU
    tokenizer; a summarization task (target_lang None) is scored per reference language. The
    signature is saved with each score and once (SIGNATURE: `bleu_signature`, `rouge_tokenizer`).

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

    def references_of(path) -> tuple[list[str], list[str]]:
        """The targets of a raw split, and each one's language."""
        records = common.read_jsonl(Path(path))
        return [r["target"] for r in records], [r.get("lang", "") for r in records]

    if zero_shot:
        per_language = {
            lang: scores(
                model,
                tok,
                source_prompts(TaskSplit(split), max_source, fmt=fmt),
                references_of(raw)[0],
                task_type="translation",  # ftscale.config: zero-shot sets are translation's alone
                reference_langs=None,
                **options,
            )
            for lang, (split, raw) in zero_shot.items()
        }
        result["zero_shot"] = per_language
        result["zero_shot_bleu"] = float(np.mean([s["bleu"] for s in per_language.values()]))
        result["zero_shot_chrf"] = float(np.mean([s["chrf"] for s in per_language.values()]))
    test_split, demo_split = TaskSplit(test), TaskSplit(demos)
    test_references, test_langs = references_of(references)
    for k in shots:
        prompts = few_shot_prompts(test_split, demo_split, k, few_shot_examples, max_source, max_target, seed, fmt)
        k_shot = scores(
            model, tok, prompts, test_references, task_type=task_type, reference_langs=test_langs, **options
        )
        result[f"few_shot_{k}"] = k_shot
        result |= {f"few_shot_{k}_{metric}": k_shot[metric] for metric in lexical_metrics(task_type)}
    scored = [*result.get("zero_shot", {}).values(), *(result[f"few_shot_{k}"] for k in shots)]
    if scored:
        signature = SIGNATURE[task_type]
        result[signature] = scored[0][signature]  # one target language (or tokenizer): one signature
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}))
    Path(out).write_text(json.dumps(result, indent=1))
    return result
