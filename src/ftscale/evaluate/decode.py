"""Evaluation of a finetuned model: test token-level loss, greedy generation, BLEU/chrF/BLEURT or
ROUGE-L, as evaluate.metrics lists them (ftscale.evaluate.metrics, ftscale.evaluate.bleurt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ftscale.data.tokens import OWN_FORMAT, PromptFormat, TaskSplit
from ftscale.evaluate import samples as samples_file
from ftscale.evaluate.metrics import listed_only, task_metrics
from ftscale.train.batches import causal_lm_of, soft_prompt, soft_prompt_length, split_loss
from ftscale.train.model import autocast, device, model_device


def source_prompt(source: np.ndarray, fmt: PromptFormat) -> list[int]:
    """An example's prompt `<s> source <sep>`, in the tokenizer's format."""
    return [*fmt.bos, *source.tolist(), *fmt.sep]


def greedy_decode(
    model, split: TaskSplit, max_source: int, max_new_tokens: int, batch_size: int, fmt: PromptFormat = OWN_FORMAT
) -> list[list[int]]:
    """Greedy continuations of each example's `<s> source <sep>` (see decode_prompts)."""
    prompts = [source_prompt(split.example(i, max_source, 0)[0], fmt) for i in range(len(split))]
    return decode_prompts(model, prompts, max_new_tokens, batch_size, fmt)


@torch.inference_mode()
def decode_prompts(
    model, prompts: list[list[int]], max_new_tokens: int, batch_size: int, fmt: PromptFormat = OWN_FORMAT
) -> list[list[int]]:
    """Batched greedy decoding, prompts sorted by length and left-padded (the attention mask gives
    each row its own positions, so a batch decodes as each prompt alone); each output stops before
    </s> or at max_new_tokens.

    Prompt tuning: peft's generate prepends the soft prompt before the padding and ignores position
    ids, so a padded row would decode differently from the prompt alone. Here the soft prompt goes
    after the padding, right before the text, and the base model generates from these embeddings:
    each row sees `soft prompt, text` at positions 0.. as peft does for one unpadded prompt."""
    model.eval()
    prefix = soft_prompt_length(model)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[list[int]] = [[] for _ in prompts]
    device = model_device(model)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        length = prefix + max(len(prompts[i]) for i in rows)
        input_ids = torch.full((len(rows), length), fmt.pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for r, i in enumerate(rows):
            input_ids[r, length - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention_mask[r, length - len(prompts[i]) - prefix :] = 1
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        options = {
            "attention_mask": attention_mask,
            "do_sample": False,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": fmt.eos,
            "pad_token_id": fmt.pad,
        }
        with autocast(model):
            if prefix:
                causal_lm = causal_lm_of(model)
                embeds = causal_lm.get_input_embeddings()(input_ids)
                soft = soft_prompt(model)
                for r, i in enumerate(rows):
                    at = length - len(prompts[i]) - prefix
                    embeds[r, at : at + prefix] = soft
                generated = causal_lm.generate(inputs_embeds=embeds, **options)  # new tokens only
            else:
                generated = model.generate(input_ids=input_ids, **options)[:, length:]
        generated = generated.tolist()  # one copy to the host per batch
        for r, i in enumerate(rows):
            new = generated[r]
            outputs[i] = new[: new.index(fmt.eos)] if fmt.eos in new else new
    return outputs


def evaluate(
    model,
    tokenizer,
    test: TaskSplit,
    references: list[str],
    task_type: str,
    *,
    max_source: int,
    max_target: int,
    max_new_tokens: int,
    batch_size: int,
    target_lang: str | None,
    reference_langs: list[str] | None,
    fmt: PromptFormat = OWN_FORMAT,
) -> dict:
    """Test loss and the task's generation metrics: BLEU/chrF in target_lang for translation,
    ROUGE-L (overall and per reference language) for summarization. `hypotheses`: every generation,
    in test-set order (run_job keeps them in samples.jsonl, not in eval.json)."""
    test_loss = split_loss(model, test, np.arange(len(test)), batch_size, max_source, max_target, fmt)
    generated = greedy_decode(model, test, max_source, max_new_tokens, batch_size, fmt)
    hypotheses = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    return {
        "test_loss": test_loss,
        **task_metrics(task_type, hypotheses, references, target_lang, reference_langs),
        "samples": [{"hypothesis": h, "reference": r} for h, r in list(zip(hypotheses, references))[:5]],
        "hypotheses": hypotheses,
    }


def run_job(
    *,
    base: Path,
    checkpoint: Path,
    summary: Path,
    test: Path,
    references: Path,
    tokenizer: Path,
    out: Path,
    samples: Path,
    task_type: str,
    method: str,
    max_source: int,
    max_target: int,
    max_new_tokens: int,
    batch_size: int,
    threads: int,
    target_lang: str | None,
    weights_dtype: str | None = None,
    metrics: list[str] | None = None,
    scorers: dict[str, Path] | None = None,
    bleurt_batch_size: int = 16,
) -> dict:
    """The evaluate rule: eval.json, and every generation in `samples` (ftscale.evaluate.samples),
    written first. A diverged run is recorded as such, with no metrics and no samples. target_lang:
    a translation task's; summarization takes each reference's own `lang` from its record.
    weights_dtype: the config's evaluate.weights_dtype (None: the schema's default).
    metrics: evaluate.metrics (None: every lexical one of the task); scorers: the fetched
    checkpoint of each learned metric to compute ({"bleurt": pointer directory}), scored after the
    finetuned model is released."""
    from ftscale.config import schema_default
    from ftscale.data import common, tokens
    from ftscale.train.finetune import load_finetuned
    from ftscale.train.model import base_format

    torch.set_num_threads(threads)
    status = json.loads(Path(summary).read_text())["status"]
    result = {"status": status}
    hypotheses, targets, langs = [], [], []  # what samples.jsonl keeps: none for a diverged run
    if status == "ok":
        dtype = weights_dtype or schema_default("evaluate", "weights_dtype")
        model = load_finetuned(Path(base), Path(checkpoint), method, dtype).to(device())
        records = common.read_jsonl(Path(references))
        targets = [r["target"] for r in records]
        reference_langs = [r.get("lang", "") for r in records]
        result |= evaluate(
            model,
            tokens.load_tokenizer(tokenizer),
            tokens.TaskSplit(test),
            targets,
            task_type,
            max_source=max_source,
            max_target=max_target,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            target_lang=target_lang,
            reference_langs=reference_langs,
            fmt=base_format(base),
        )
        hypotheses = result.pop("hypotheses")
        langs = [target_lang] * len(targets) if task_type == "translation" else reference_langs
        if scorers and "bleurt" in scorers:
            from ftscale.evaluate.bleurt import bleurt_metrics

            del model  # the generations are made: BLEURT-20 (32 layers) gets the memory
            result |= bleurt_metrics(hypotheses, targets, scorers["bleurt"], bleurt_batch_size, device())
        result = listed_only(result, metrics)
        print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    else:
        print(f"training {status}: no evaluation")
    samples_file.write(samples, hypotheses, targets, langs)  # before eval.json: it marks the run evaluated
    Path(out).write_text(json.dumps(result, indent=1))
    return result
