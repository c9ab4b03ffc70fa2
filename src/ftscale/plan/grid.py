"""The study grid: one source of truth for which runs exist.

`expand_conditions(config)` turns the config into finetuning conditions, one per distinct
(task, model, pretraining budget, method, PET size, finetuning-data size). A condition shared by
two axes (the base model on the full corpus at the default PET size) appears once, with both axes
recorded. Pure Python: the Snakefile imports it, so it must stay cheap. It reads a validated config
(ftscale.config.validate), whose optional keys carry the schema's defaults.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass

from ftscale.plan import hub

AXES = ("model", "pretrain", "pet")
METHODS = ("fmt", "prompt", "lora")
PET_METHODS = ("prompt", "lora")


def method_order(methods) -> list[str]:
    """Methods in the paper's order (FMT, prompt, LoRA), unknown ones after them by name."""
    return sorted(methods, key=lambda m: (METHODS.index(m) if m in METHODS else len(METHODS), m))


# A condition's id, the path of its runs: Condition.id fills this template, and the rules' `condition`
# wildcard pattern (CONDITION_PATTERN) is this template with a regex in each field.
CONDITION_ID = "{task}/{model}-{pretrain_tokens}tok/{method_id}/df{finetune_examples}"
PET_METHOD_ID = "{method}-{pet_size}"  # a PET method's id: prompt-8, lora-4; FMT's is its name
MODEL_NAME = r"[A-Za-z0-9_.]+"  # the rules' `model` wildcard, too


@dataclass(frozen=True)
class Condition:
    task: str
    family: str
    model: str
    pretrain_tokens: int
    method: str
    pet_size: int | None  # prompt length or LoRA rank; None for full finetuning
    finetune_examples: int
    axes: frozenset[str]

    @property
    def pretrain_id(self) -> str:
        return pretrain_id(self.family, self.model, self.pretrain_tokens)

    @property
    def method_id(self) -> str:
        return (
            self.method if self.pet_size is None else PET_METHOD_ID.format(method=self.method, pet_size=self.pet_size)
        )

    @functools.cached_property  # the rules ask for it per job and resource
    def id(self) -> str:
        """Path-like name: task/model-budget/method[-size]/df<N>."""
        return CONDITION_ID.format(
            task=self.task,
            model=self.model,
            pretrain_tokens=self.pretrain_tokens,
            method_id=self.method_id,
            finetune_examples=self.finetune_examples,
        )


def _pattern(template: str, fields: dict[str, str]) -> str:
    """The regex of a format template: its literal text escaped, each field replaced by fields[name]."""
    return "".join(
        re.escape(text) + (fields[name] if name is not None else "")
        for text, name, _, _ in string.Formatter().parse(template)
    )


CONDITION_PATTERN = _pattern(
    CONDITION_ID,
    {
        "task": r"[A-Za-z0-9_]+",
        "model": MODEL_NAME,
        "pretrain_tokens": r"\d+",
        "finetune_examples": r"\d+",
        "method_id": "("
        + "|".join(
            _pattern(PET_METHOD_ID, {"method": re.escape(m), "pet_size": r"\d+"}) if m in PET_METHODS else re.escape(m)
            for m in METHODS
        )
        + ")",
    },
)


def pretrain_id(family: str, model: str, tokens: int) -> str:
    return f"{family}/{model}-{tokens}tok"


def budgets(config: dict, family: str) -> list[int]:
    """A family's pretraining budgets, ascending: pretrain.budgets, or for a hub family the tokens
    seen by its checkpoints and by its models (ftscale.plan.hub)."""
    if hub.is_hub_family(config, family):
        return sorted(hub.sources(config, family))
    return sorted(config["pretrain"]["budgets"][family])


def full_budget(config: dict, family: str) -> int:
    """The full pretraining corpus of a family: its largest budget (used by the model-size axis)."""
    return budgets(config, family)[-1]


def models_of(config: dict, family: str) -> list[str]:
    """The model sizes of a family: the config's size table, or a hub family's models."""
    if hub.is_hub_family(config, family):
        return list(config["families"][family]["hub"]["models"])
    return list(config["models"])


def base_model_of(config: dict, family: str) -> str:
    """The size on a family's pretraining-data and PET axes."""
    if hub.is_hub_family(config, family):
        return config["families"][family]["hub"]["base_model"]
    return config["pretrain"]["base_model"]


def expand_conditions(config: dict) -> dict[str, Condition]:
    """All finetuning conditions of the study, keyed by Condition.id, in a stable order."""
    methods = config["finetune"]["methods"]
    axes_of: dict[tuple, set[str]] = {}

    for task_name, task in config["tasks"].items():
        family = task["family"]
        models, base_model = models_of(config, family), base_model_of(config, family)
        family_budgets = budgets(config, family)
        full = family_budgets[-1]
        task_axes = task["axes"]
        for method, method_cfg in methods.items():
            default_pet = method_cfg.get("default_size")
            # (model, budget, pet_size, axis) points of each axis; finetuning data crosses all.
            points = []
            if "model" in task_axes:
                points += [(m, full, default_pet, "model") for m in models]
            if "pretrain" in task_axes:
                points += [(base_model, b, default_pet, "pretrain") for b in family_budgets]
            if "pet" in task_axes and method in PET_METHODS:
                points += [(base_model, full, s, "pet") for s in method_cfg["sizes"]]
            for df in task["finetune_examples"][method]:
                for model, budget, pet, axis in points:
                    key = (task_name, family, model, budget, method, pet, df)
                    axes_of.setdefault(key, set()).add(axis)

    conditions = {}
    for key, axes in axes_of.items():
        condition = Condition(*key, axes=frozenset(axes))
        conditions[condition.id] = condition
    return conditions


def pretrain_runs(config: dict, conditions: dict[str, Condition]) -> dict[str, tuple[str, str, int]]:
    """Base checkpoints to train: those the conditions need, plus every model size on the full
    corpus of each family (the pretraining-scaling figure). Keyed by pretrain_id."""
    runs = {c.pretrain_id: (c.family, c.model, c.pretrain_tokens) for c in conditions.values()}
    for family in config["families"]:
        if hub.is_hub_family(config, family) or family in config["pretrain"]["budgets"]:
            for model in models_of(config, family):
                tokens = full_budget(config, family)
                runs.setdefault(pretrain_id(family, model, tokens), (family, model, tokens))
    return dict(sorted(runs.items()))


def data_axis(config: dict) -> str:
    """pretrain.data_axis; a study that pretrains nothing (Hub families only) has its pretraining-data
    axis in its base model's revisions, as `checkpoints`."""
    return config["pretrain"]["data_axis"] if "pretrain" in config else "checkpoints"


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run: (family, model) on `tokens`, saving `checkpoints` (smaller budgets, in
    tokens) on the way. Its outputs are the base checkpoints pretrain_id(family, model, t) for t in
    (tokens, *checkpoints)."""

    family: str
    model: str
    tokens: int
    checkpoints: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return pretrain_id(self.family, self.model, self.tokens)

    @property
    def rule(self) -> str:
        """The Snakemake rule that runs it: `pretrain` (wildcards), or one rule per family for the
        run with checkpoints (outputs cannot vary in number per job within one rule)."""
        return f"pretrain_{self.family}_checkpoints" if self.checkpoints else "pretrain"

    def base_checkpoints(self) -> list[str]:
        """pretrain_id of every base checkpoint it saves: the checkpoints, then the final one."""
        return [pretrain_id(self.family, self.model, t) for t in (*self.checkpoints, self.tokens)]


def pretrain_jobs(config: dict, conditions: dict[str, Condition]) -> dict[str, PretrainJob]:
    """The pretraining runs that produce every base checkpoint of pretrain_runs, keyed by their
    pretrain_id. With data_axis `checkpoints`, a run below its family's full corpus is a checkpoint
    of that model's full-corpus run (in practice: the base model's smaller budgets). Hub families
    are fetched, not pretrained (fetch_runs)."""
    runs = {
        run_id: run
        for run_id, run in pretrain_runs(config, conditions).items()
        if not hub.is_hub_family(config, run[0])
    }
    if data_axis(config) == "separate":
        return {run_id: PretrainJob(*run) for run_id, run in runs.items()}
    smaller: dict[tuple[str, str], list[int]] = {}
    for family, model, tokens in runs.values():
        if tokens < full_budget(config, family):
            smaller.setdefault((family, model), []).append(tokens)
    jobs = {}
    for family, model, tokens in runs.values():
        if tokens == full_budget(config, family):
            job = PretrainJob(family, model, tokens, tuple(sorted(smaller.get((family, model), []))))
            jobs[job.id] = job
    return jobs


def fetch_runs(config: dict, conditions: dict[str, Condition]) -> dict[str, hub.Source]:
    """The base checkpoints of hub families, keyed by pretrain_id: each fetched once (rules/fetch.smk)."""
    return {
        run_id: hub.source_of(config, *run)
        for run_id, run in pretrain_runs(config, conditions).items()
        if hub.is_hub_family(config, run[0])
    }


def max_steps(config: dict, task_name: str, method: str) -> int:
    """The step cap of a task's runs with `method`: tasks.<task>.max_steps.<method> where set
    (the paper: 300K for En-Zh FMT), else finetune.max_steps."""
    return config["tasks"][task_name]["max_steps"].get(method, config["finetune"]["max_steps"])


def seeds(config: dict) -> list[int]:
    return list(range(config["finetune"]["seeds"]))


def axis_counts(conditions: dict[str, Condition]) -> dict[tuple[str, str, str], int]:
    """Conditions per (task, method, axis): a shared condition counts on each of its axes."""
    counts: dict[tuple[str, str, str], int] = {}
    for c in conditions.values():
        for axis in c.axes:
            counts[(c.task, c.method, axis)] = counts.get((c.task, c.method, axis), 0) + 1
    return counts


# Zero- and few-shot translation, few-shot summarization (config evaluate.transfer): which runs and
# base models get it.
SHOTS_KEY = {"translation": "few_shot_shots", "summarization": "summarization_shots"}  # by task type


def transfer_options(config: dict) -> dict:
    return config["evaluate"]["transfer"]


def zero_shot_languages(config: dict, task_name: str) -> list[str]:
    return config["tasks"][task_name]["zero_shot_sources"]


def few_shot_shots(config: dict, task_name: str) -> list[int]:
    """The demonstration counts of a task's few-shot prompts: evaluate.transfer's key of its type
    (SHOTS_KEY: translation few_shot_shots, summarization summarization_shots)."""
    return transfer_options(config)[SHOTS_KEY[config["tasks"][task_name]["type"]]]


def has_transfer(config: dict, condition: Condition) -> bool:
    """Runs on the axes of evaluate.transfer whose task has a zero-shot set or few-shot prompts
    (zero-shot sets: translation only, ftscale.config checks)."""
    return bool(condition.axes & set(transfer_options(config)["axes"])) and bool(
        zero_shot_languages(config, condition.task) or few_shot_shots(config, condition.task)
    )


def base_transfer_runs(config: dict, conditions: dict[str, Condition]) -> list[tuple[str, str, int]]:
    """(task, model, pretraining tokens) of the base models behind the transfer runs with few-shot
    prompts: the few-shot baseline."""
    return sorted(
        {
            (c.task, c.model, c.pretrain_tokens)
            for c in conditions.values()
            if has_transfer(config, c) and few_shot_shots(config, c.task)
        }
    )


def jobs_per_rule(config: dict, conditions: dict[str, Condition]) -> dict[str, int]:
    """Jobs of each Snakemake rule for this grid, as Snakemake's job stats count them (rules with none
    left out). The rules expand over the same functions of this module; a test checks the counts
    against a real dry run."""
    families = sorted({family for family, _, _ in pretrain_runs(config, conditions).values()})
    pretraining = [f for f in families if not hub.is_hub_family(config, f)]
    tasks = sorted({c.task for c in conditions.values()})
    pretrain_rules: dict[str, int] = {}
    for job in pretrain_jobs(config, conditions).values():
        pretrain_rules[job.rule] = pretrain_rules.get(job.rule, 0) + 1
    runs = len(conditions) * len(seeds(config))
    transfer = [c for c in conditions.values() if has_transfer(config, c)]
    zero_shot = zero_shot_sets(config, conditions)
    jobs = {
        "pretrain_corpus": len(pretraining),
        "tokenizer": len(pretraining),
        "tokenize_pretrain": len(pretraining),
        "hub_tokenizer": len(families) - len(pretraining),
        "fetch_base": len(fetch_runs(config, conditions)),
        "task_data": len(tasks),
        "tokenize_task": len(tasks),
        "zero_shot_data": len(zero_shot),
        "tokenize_zero_shot": len(zero_shot),
        **pretrain_rules,
        "finetune": runs,
        "evaluate": runs,
        "transfer": len(transfer) * len(seeds(config)),
        "base_transfer": len(base_transfer_runs(config, conditions)),
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }
    return {rule: n for rule, n in jobs.items() if n}


def zero_shot_sets(config: dict, conditions: dict[str, Condition]) -> list[tuple[str, str]]:
    """(task, source language) of every zero-shot set the transfer runs need."""
    tasks = sorted({c.task for c in conditions.values() if has_transfer(config, c)})
    return [(task, lang) for task in tasks for lang in zero_shot_languages(config, task)]
