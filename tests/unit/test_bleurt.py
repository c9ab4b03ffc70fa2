"""BLEURT (ftscale.evaluate.bleurt) on tiny BLEURT-shaped checkpoints built here in bleurt-pytorch's
layout (config.json of model_type bleurt, `bleurt.*` weights, spm.model): the loader scores as
bleurt-pytorch's model computes (its forward written out below), the evaluate job's scores equal a
direct call of the loader and reach metrics.csv with the checkpoint's id, and offline a checkpoint
not in the cache stops in one line giving the download command."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from ftscale import cli
from ftscale.analysis import aggregate, procedure
from ftscale.config import schema_default
from ftscale.data import sources, tokens
from ftscale.evaluate import bleurt, decode, metrics
from ftscale.evaluate import samples as samples_file
from ftscale.figures import generation
from ftscale.plan import hub
from ftscale.runtime import integrity
from ftscale.train import fetch
from ftscale.train.model import new_model
from tests.tiny_bleurt import build_bleurt, sentences


def reference_score(state: dict, config: dict, ids: list[int], segments: list[int]) -> float:
    """bleurt-pytorch's forward for one unpadded pair, written out: BERT embeddings (word + segment
    + position, LayerNorm), the embedding projection where embedding_size is set, post-LN encoder
    layers (GELU), tanh pooler on [CLS], linear regression head."""

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"], config["layer_norm_eps"])

    def linear(x, name):
        return F.linear(x, state[name + ".weight"], state[name + ".bias"])

    e = "bleurt.embeddings."
    x = (
        state[e + "word_embeddings.weight"][torch.tensor(ids)]
        + state[e + "token_type_embeddings.weight"][torch.tensor(segments)]
        + state[e + "position_embeddings.weight"][torch.arange(len(ids))]
    )
    x = norm(x, e + "LayerNorm")
    if config["embedding_size"]:
        x = linear(x, "bleurt.encoder.embedding_projection")
    heads = config["num_attention_heads"]
    size = config["hidden_size"] // heads
    for layer in range(config["num_hidden_layers"]):
        p = f"bleurt.encoder.layer.{layer}."
        q, k, v = (
            linear(x, p + f"attention.self.{n}").view(len(ids), heads, size).transpose(0, 1)
            for n in ("query", "key", "value")
        )
        context = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(size), -1) @ v).transpose(0, 1)
        x = norm(
            linear(context.reshape(len(ids), -1), p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        x = norm(linear(F.gelu(linear(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    return float(linear(torch.tanh(linear(x[0], "bleurt.pooler.dense")), "classifier")[0])


@pytest.mark.parametrize(
    "embedding_size, weights",
    [(8, "pytorch_model.bin"), (None, "model.safetensors")],
    ids=["rembert-style", "bert-style"],
)
def test_loader_scores_as_bleurt_pytorch_computes(tmp_path, embedding_size, weights):
    directory, config, state, pieces = build_bleurt(tmp_path / "bleurt", embedding_size, weights)
    references, candidates = sentences(7, 2), sentences(7, 3)
    candidates[0] = references[0]
    scorer = bleurt.load(directory)
    scores = scorer.score(references, candidates, batch_size=3)  # batches of unequal lengths: padded
    cls, sep = pieces.piece_to_id("[CLS]"), pieces.piece_to_id("[SEP]")
    expected = []
    for reference, candidate in zip(references, candidates):
        ref, cand = pieces.encode(reference), pieces.encode(candidate)
        ids = [cls, *ref, sep, *cand, sep]
        expected.append(reference_score(state, config, ids, [0] * (len(ref) + 2) + [1] * (len(cand) + 1)))
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert len(set(np.round(scores, 4))) > 3  # the random weights tell the pairs apart
    # reference first, candidate second, as BLEURT: swapped, the segments differ and so do the scores
    assert not np.allclose(scorer.score(candidates, references, batch_size=3)[1:], scores[1:])


def test_truncation_is_bleurts_longest_first():
    assert bleurt.truncate_pair([1, 2, 3, 4, 5], [6, 7], 4) == ([1, 2], [6, 7])
    assert bleurt.truncate_pair([1, 2], [3, 4], 3) == ([1, 2], [3])  # a tie drops from the candidate
    assert bleurt.truncate_pair([1], [2], 5) == ([1], [2])


def test_weights_that_do_not_fit_are_an_error(tmp_path):
    directory, _, state, _ = build_bleurt(tmp_path / "bleurt", 8)
    del state["bleurt.encoder.embedding_projection.weight"]
    torch.save(state, directory / "pytorch_model.bin")
    with pytest.raises(bleurt.BleurtError, match="missing.*embedding_hidden_mapping_in"):
        bleurt.load(directory)


@pytest.fixture(scope="module")
def finetuned_run(tmp_path_factory):
    """A tiny saved LM (the 'finetuned' FMT checkpoint) and an En-De test split of 6 examples."""
    root = tmp_path_factory.mktemp("run")
    rows = [{"source": s, "target": t} for s, t in zip(sentences(6, 4), sentences(6, 5))]
    tokenizer = tokens.train_tokenizer([r["source"] for r in rows] + [r["target"] for r in rows], 300)
    tokenizer.save(str(root / "tokenizer.json"))
    tokens.write_task_split(tokenizer, rows, root / "test")
    sources.write_jsonl(rows, root / "test.jsonl")
    size = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
    new_model(size, 300, 256, seed=0).save_pretrained(str(root / "base"))
    integrity.seal(root / "base")
    summary = {"status": "ok", "dev_loss": 3.0, "steps": 4, "train_seconds": 1.0, "stop_reason": "max_steps"}
    (root / "train.json").write_text(json.dumps(summary | {"best_step": 4, "trainable_params": 10}))
    return root


def evaluate_job(run, out, metrics_listed, scorers=None):
    return decode.run_job(
        base=run / "base",
        checkpoint=run / "base",
        summary=run / "train.json",
        test=run / "test",
        references=run / "test.jsonl",
        tokenizer=run / "tokenizer.json",
        out=out / "eval.json",
        samples=out / "samples.jsonl",
        task_type="translation",
        method="fmt",
        max_source=32,
        max_target=32,
        max_new_tokens=6,
        batch_size=4,
        threads=1,
        target_lang="de",
        metrics=metrics_listed,
        scorers=scorers,
        bleurt_batch_size=schema_default("evaluate", "bleurt", "batch_size"),  # as `ftscale score`
    )


def test_evaluate_job_scores_bleurt_as_the_loader_and_metrics_csv_has_it(finetuned_run, tmp_path):
    directory, *_ = build_bleurt(tmp_path / "bleurt", 8)
    pointer = tmp_path / "scorers" / "bleurt"
    fetch.fetch_scorer(metric="bleurt", out_dir=pointer, **hub.scorer_source({"checkpoint": str(directory)}))
    out = tmp_path / "run"
    out.mkdir()
    evaluate_job(finetuned_run, out, ["bleu", "chrf", "bleurt"], {"bleurt": pointer})
    result = json.loads((out / "eval.json").read_text())
    hypotheses, references, _ = samples_file.read(out)
    direct = bleurt.load(directory).score(references, hypotheses, schema_default("evaluate", "bleurt", "batch_size"))
    assert result["bleurt"] == pytest.approx(float(np.mean(direct)), abs=1e-6)
    assert result["bleurt_checkpoint"] == f"{directory}@sha256:{fetch.directory_sha256(directory)}"
    assert {"bleu", "chrf"} <= set(result) and "rougeL" not in result
    rescored = tmp_path / "rescored.json"  # `ftscale score` re-scores the run to its eval.json
    assert cli.main(["score", "--samples", str(out), "--bleurt", str(pointer), "--json", str(rescored)]) == 0
    again = json.loads(rescored.read_text())
    assert (again["bleurt"], again["bleurt_checkpoint"]) == (result["bleurt"], result["bleurt_checkpoint"])

    run = {"task": "t", "family": "f", "model": "m", "pretrain_tokens": 10, "method": "fmt", "pet_size": None}
    run |= {"finetune_examples": 6, "seed": 0, "axes": ["model"]}
    pretrain = pd.DataFrame([{"family": "f", "model": "m", "pretrain_tokens": 10, "params": 1000}])
    table = aggregate.metrics_table([run], [str(finetuned_run / "train.json")], [str(out / "eval.json")], pretrain)
    table.to_csv(tmp_path / "metrics.csv", index=False)
    row = pd.read_csv(tmp_path / "metrics.csv").iloc[0]
    assert row["bleurt"] == pytest.approx(result["bleurt"]) and row["bleurt_checkpoint"] == result["bleurt_checkpoint"]
    columns = list(table.columns)
    assert columns.index("bleurt") == columns.index("rougeL") + 1
    assert aggregate.mean_over_seeds(table)["bleurt"].iloc[0] == pytest.approx(result["bleurt"])


def test_evaluate_job_keeps_only_the_listed_metrics(finetuned_run, tmp_path):
    result = evaluate_job(finetuned_run, tmp_path, ["chrf"])
    assert "chrf" in result and "bleu" not in result and "bleu_signature" not in result and "bleurt" not in result
    assert metrics.learned_metrics(["bleu", "bleurt", "rougeL"], "translation") == ["bleurt"]
    assert metrics.learned_metrics(["bleu", "bleurt", "rougeL"], "summarization") == []
    assert schema_default("evaluate", "metrics") == ["bleu", "chrf", "rougeL"]  # today's outputs by default


def test_offline_and_not_cached_bleurt_stops_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    spec = {key: schema_default("evaluate", "bleurt", key) for key in ("checkpoint", "revision")}
    with pytest.raises(fetch.FetchError) as error:
        fetch.fetch_scorer(metric="bleurt", out_dir=tmp_path / "scorers" / "bleurt", **hub.scorer_source(spec))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("lucadiliello/BLEURT-20@main is not in the Hugging Face cache")
    assert "hf download lucadiliello/BLEURT-20 --revision main" in message
    assert not (tmp_path / "scorers" / "bleurt").exists()


def test_correlation_table_and_figures_use_bleurt_when_present():
    means = pd.DataFrame(
        {
            "x": [1.0, 2.0, 4.0],
            "test_loss": [3.0, 2.5, 2.0],
            "bleu": [10.0, 12.0, 15.0],
            "chrf": [30.0, 33.0, 31.0],
            "bleurt": [0.3, 0.4, 0.6],
        }
    )
    rows = procedure._correlations("t", "fmt", {"model": means})
    assert [r["metric"] for r in rows] == ["bleurt", "bleu", "chrf"]
    assert rows[0]["r"] == pytest.approx(np.corrcoef(means["test_loss"], means["bleurt"])[0, 1])
    with_task = means.assign(task="t")
    assert generation.panel_rows(with_task) == [("t", "bleurt")]
    assert generation.panel_rows(with_task.drop(columns="bleurt")) == [("t", "bleu"), ("t", "chrf")]
    assert generation.METRIC_LABELS["bleurt"] == "BLEURT"
