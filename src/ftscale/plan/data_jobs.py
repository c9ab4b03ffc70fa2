"""What each data job (rules/data.smk) asks of a cluster: host memory, runtime, CPUs, from the config.

A stage's input size in bytes comes from the config: a pretraining corpus is data.pretrain_lines
lines per language of its family (and the validation share of it) at PRETRAIN_LINE_BYTES[source]; a
tokenizer reads its training split, or its first data.tokenizer_sample_lines lines; a task's records
are its examples at their longest (max_source_tokens + max_target_tokens) at BYTES_PER_TOKEN, an
upper bound like every token count of ftscale.plan.sizing. Then

    memory  = stream_peak_bytes()                               (stages that stream: STREAMED)
            = BASELINE_BYTES + held_per_byte x input bytes      (the others hold their input)
    minutes = max(min_runtime_minutes, safety_factor x input bytes / speed(threads) / 60)
    speed(threads) = min(threads x bytes_per_second, SERIAL_BYTES_PER_SECOND)   (THREADED stages)
                   = bytes_per_second                                          (the others: one thread)

A THREADED stage encodes with the tokenizers library's batch encoder, whose thread pool
(RAYON_NUM_THREADS: the rule's `threads:`, the plan's cpus) encodes the lines of a chunk side by side
while one Python thread reads the next chunk and writes the last one's ids (tokens.encoded_ahead):
that Python work, measured apart from the encoder, is SERIAL_BYTES_PER_SECOND, the ceiling however
many threads. The plan asks for the fewest threads, up to cluster.data_cpus, that finish within
max_runtime_minutes. The encoder's scaling across threads is assumed linear up to that ceiling (the
lines of a chunk are encoded independently); it was not measured here: 2 CPUs, shared with other work.

(the floor covers the start: a data job imports in about a second, against the training jobs' 10 minutes).
A streamed stage holds one chunk of common.STREAM_CHUNK characters and its tokens:

    stream_peak_bytes() = BASELINE_BYTES + STREAM_BYTES_PER_TOKEN x common.STREAM_CHUNK

at one token per character at most (CJK-like text; Latin text has about 4 characters a token).
pretrain_corpus streams from hf and local sources; the synthetic generator shuffles its lines, so
it holds them. The tokenizer holds the BPE trainer's counts of distinct words, bounded by its sample.

Every constant was measured (bench/bench_data_stages.py and bench/bench_tokenize.py print them
beside these) on the scripts' own code paths, on MEASURED_ON: the memory at two sizes, 7.2 and 28.8
MB of pretraining text, 3.8 and 15.2 MB of task records (the slope between them is the per-byte
figure); the tokenizing speeds in MB per CPU-second of one encoder thread (bench_tokenize.py, which
also gives the peak RSS at 1 and 4 GB), so that the machine's other users do not count. An hf
source's download speed is not measured (no network here): pretrain_corpus from hf is planned at
the local reader's speed (READ_BYTES_PER_SECOND: reading, interleaving and writing the lines), so a
slow mirror needs cluster.runtime_minutes or a staged HF cache. A job that does not fit
cluster.node_memory_gb or max_runtime_minutes is asked at the limit and named in DataPlan.over
(`ftscale grid` prints it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ftscale.data import common
from ftscale.plan import grid, hub

MB = 1e6
BASELINE_BYTES = 32 * MB  # a data job's Python and libraries before any data (measured: 30-37 MB)
BYTES_PER_TOKEN = 4.0  # text bytes per BPE token: assumed for a 32K BPE on news/web text (toy's 1K BPE: 3.3)
PRETRAIN_LINE_BYTES = {"synthetic": 150.0}  # measured: 28.8 MB / 192,000 lines
DOCUMENT_BYTES = 430 * BYTES_PER_TOKEN  # hf and local: a C4 document of ~430 tokens (configs/paper.yaml)
# a streamed stage's RSS per token of its chunk above the baseline: bench/bench_tokenize.py, flat 269 -> 282 MiB
# at 8 -> 32 MiB of text, 0.35 tokens a character (1.46M tokens a 4M-character chunk): (282 MiB - 32 MB) / 1.46M;
# 278 and 279 MiB at 1 and 4 GB with the encoder one chunk ahead (tokens.encoded_ahead)
STREAM_BYTES_PER_TOKEN = 180.0

MEASURED_ON = "a shared 2-CPU VM (x86-64, load 2-9), 2026-12-02/03"
# per stage: (peak RSS bytes per input byte, input bytes per second on one CPU), bench/bench_data_stages.py
# (the larger slope of its runs, the slower speed) and, for the tokenizing stages, bench/bench_tokenize.py
STAGES = {
    "pretrain_corpus": (4.0, 3.0 * MB),  # synthetic: the lines as a Python list: 61 -> 147 MB RSS at 7.2 -> 28.8 MB
    "tokenizer": (2.3, 3.3 * MB),  # held the text: 54 -> 104 MB; streamed, the trainer alone still grows 2.04
    "tokenize_pretrain": (0.0, 1.3 * MB),  # streamed; per CPU-second of one thread: 1.24-1.38 at 32 MiB, 1.36 at 1 GB
    "task_data": (2.5, 3.9 * MB),  # records as dicts: 43 -> 71 MB at 3.8 -> 15.2 MB
    "tokenize_task": (0.0, 1.8 * MB),  # streamed (it held 29.9 bytes a byte as Python lists); 1.86 at 32 MiB
}
STAGES |= {"zero_shot_data": STAGES["task_data"], "tokenize_zero_shot": STAGES["tokenize_task"]}
STREAMED = {"tokenize_pretrain", "tokenize_task", "tokenize_zero_shot"}  # and pretrain_corpus but from synthetic
THREADED = STREAMED  # the batch encoder's threads: the rule's `threads:`
# the Python work of a threaded stage beside its encoder (reading, ids into numpy, writing): 20.6 MB/s
# (pretraining text) and 19.8 (task records) in CPU time outside the encoder, 32 MiB each
SERIAL_BYTES_PER_SECOND = 19.8 * MB
# pretrain_corpus from local files (and hf, whose download is not measured): reading, interleaving
# and writing the lines, sha256 of what was written (bench/bench_data_stages.py, pretrain_corpus_local:
# 14.8 MB/s of wall time at load 9; 66 MB per CPU-second). It made 12,866 min of the paper's 1.2 TB
# a family at the synthetic generator's 3 MB/s.
READ_BYTES_PER_SECOND = 14.8 * MB


def stream_peak_bytes() -> float:
    """A streamed stage's peak RSS: its chunk's tokens at one a character, at most."""
    return BASELINE_BYTES + STREAM_BYTES_PER_TOKEN * common.STREAM_CHUNK


@dataclass(frozen=True)
class DataPlan:
    rule: str
    label: str  # the job's wildcards, e.g. "ende" or "translation_ende de"
    input_bytes: float
    host_memory_bytes: float
    runtime_minutes: int
    cpus: int  # the rule's threads: the encoder's (THREADED stages, planned_threads), else one
    over: str | None  # what the job would need beyond the cluster's limits; None: it fits

    @property
    def host_memory_mb(self) -> int:
        return math.ceil(self.host_memory_bytes / MB)


def corpus_bytes(config: dict, family: str, splits: tuple[str, ...] = ("train", "val")) -> float:
    """A family's pretraining text in `splits`: each split's lines per language
    (common.pretrain_split_offsets) x the family's languages x a line's bytes."""
    data = config["data"]
    line = PRETRAIN_LINE_BYTES.get(data["source"], DOCUMENT_BYTES)
    offsets = common.pretrain_split_offsets(data["pretrain_lines"], data["pretrain_val_share"])
    lines = sum(offsets[split][1] for split in splits)
    return lines * len(config["families"][family]["languages"]) * line


def sample_bytes(config: dict) -> float:
    """The tokenizer's sample: data.tokenizer_sample_lines lines (infinite: none set)."""
    data = config["data"]
    lines = data.get("tokenizer_sample_lines")
    return math.inf if lines is None else lines * PRETRAIN_LINE_BYTES.get(data["source"], DOCUMENT_BYTES)


def records_bytes(config: dict, task_name: str, examples: int) -> float:
    task = config["tasks"][task_name]
    return examples * (task["max_source_tokens"] + task["max_target_tokens"]) * BYTES_PER_TOKEN


def stage_speed(rule: str, threads: int, source: str = "synthetic") -> float:
    """Input bytes per second of a data stage on `threads` CPUs (the module docstring)."""
    if rule == "pretrain_corpus" and source != "synthetic":
        return READ_BYTES_PER_SECOND
    one = STAGES[rule][1]
    return min(threads * one, SERIAL_BYTES_PER_SECOND) if rule in THREADED else one


def planned_threads(config: dict, rule: str, input_bytes: float) -> int:
    """The fewest threads, up to cluster.data_cpus and to where the serial part caps the speed, that
    finish within max_runtime_minutes; one for a stage that is not THREADED."""
    cluster = config["cluster"]
    if rule not in THREADED:
        return 1
    one_thread = cluster["safety_factor"] * input_bytes / stage_speed(rule, 1) / 60
    useful = math.ceil(SERIAL_BYTES_PER_SECOND / STAGES[rule][1])
    return max(1, min(math.ceil(one_thread / cluster["max_runtime_minutes"]), cluster["data_cpus"], useful))


def plan_data_job(config: dict, rule: str, label: str, input_bytes: float) -> DataPlan:
    cluster, held, source = config["cluster"], STAGES[rule][0], config["data"]["source"]
    streamed = rule in STREAMED or rule == "pretrain_corpus" and source != "synthetic"
    need = stream_peak_bytes() if streamed else BASELINE_BYTES + held * input_bytes
    threads = planned_threads(config, rule, input_bytes)
    minutes = math.ceil(cluster["safety_factor"] * input_bytes / stage_speed(rule, threads, source) / 60)
    minutes = max(cluster["min_runtime_minutes"], minutes)
    node, limit = cluster["node_memory_gb"] * 1e9, cluster["max_runtime_minutes"]
    over = (
        ", ".join(
            ([f"{need / 1e9:,.0f} GB > node_memory_gb {cluster['node_memory_gb']}"] if need > node else [])
            + ([f"{minutes:,} min > max_runtime_minutes {limit}"] if minutes > limit else [])
        )
        or None
    )
    return DataPlan(rule, label, input_bytes, min(need, node), min(minutes, limit), threads, over)


def data_job(config: dict, rule: str, family: str | None = None, task: str | None = None) -> DataPlan:
    """The plan of one data job, by its wildcards (family for the pretraining stages, else task)."""
    if rule == "tokenizer":  # the training split alone, or its first tokenizer_sample_lines lines
        return plan_data_job(config, rule, family, min(corpus_bytes(config, family, ("train",)), sample_bytes(config)))
    if family is not None:
        return plan_data_job(config, rule, family, corpus_bytes(config, family))
    t = config["tasks"][task]
    if rule in ("zero_shot_data", "tokenize_zero_shot"):
        examples = grid.transfer_options(config)["zero_shot_examples"]
    else:
        examples = t["train_examples"] + t["dev_examples"] + t["test_examples"]
    return plan_data_job(config, rule, task, records_bytes(config, task, examples))


def data_plans(config: dict, tasks: list[str]) -> list[DataPlan]:
    """Every data job of the grid: the pretraining stages per pretraining family, the task stages
    per task (`tasks`: those with conditions), the zero-shot stages per translation task with them."""
    plans = [
        data_job(config, rule, family=family)
        for family in hub.pretraining_families(config)
        for rule in ("pretrain_corpus", "tokenizer", "tokenize_pretrain")
    ]
    plans += [data_job(config, rule, task=task) for task in tasks for rule in ("task_data", "tokenize_task")]
    plans += [
        data_job(config, rule, task=task)
        for task in tasks
        if grid.zero_shot_languages(config, task)
        for rule in ("zero_shot_data", "tokenize_zero_shot")
    ]
    return plans
