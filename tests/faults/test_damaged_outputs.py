"""A truncated token array or checkpoint (a disk that filled up, a power loss) is never read as
valid: a job reading it stops with one line naming the file, and `ftscale run` rebuilds it."""

import os

import pytest
import torch

from ftscale.data import tokens
from ftscale.runtime import integrity
from ftscale.train.model import load_model, new_model
from tests.faults.test_crash_recovery import LORA_RUN, RESULTS, assert_same_metrics, ftscale_run
from tests.workflow.conftest import snakemake

pytestmark = pytest.mark.faults
SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}


def truncate(path, keep=0.5):
    os.truncate(path, int(path.stat().st_size * keep))


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text
    return text


@pytest.fixture
def task_split(tmp_path):
    tokenizer = tokens.train_tokenizer(["hello world", "hallo welt", "bonjour monde"] * 20, 300)
    records = [{"source": f"hello {i}", "target": f"hallo {i}", "lang": "en"} for i in range(40)]
    tokens.write_task_split(tokenizer, records, tmp_path / "split")
    return tmp_path / "split"


def test_a_sealed_token_array_loads(task_split):
    assert len(tokens.TaskSplit(task_split)) == 40


def test_a_truncated_token_array_stops_with_one_line_naming_it(task_split):
    truncate(task_split / "target.npy")
    with pytest.raises(integrity.IntegrityError) as error:
        tokens.TaskSplit(task_split)
    assert f"{task_split / 'target.npy'}: " in one_line(error.value) and "truncated" in str(error.value)


def test_a_token_array_changed_in_place_is_found_by_verify(task_split):
    data = bytearray((task_split / "source.npy").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (task_split / "source.npy").write_bytes(data)
    with pytest.raises(integrity.IntegrityError, match="source.npy: sha256 differs"):
        integrity.verify(task_split)


def test_readers_check_sizes_and_do_not_hash(task_split, tmp_path, monkeypatch):
    """Hashed once, by the job that wrote the directory: every rank of a 64-GPU job hashing the
    pretraining stream (566 GB) or a base model would spend its start (and the process group's
    timeout) on it."""
    new_model(SIZE, 300, 64, 0).save_pretrained(str(tmp_path / "model"))
    integrity.seal(tmp_path / "model")

    def hashed(path):
        raise AssertionError(f"a reader hashed {path}")

    monkeypatch.setattr(integrity, "sha256", hashed)
    assert len(tokens.TaskSplit(task_split)) == 40 and load_model(tmp_path / "model") is not None


def test_an_unsealed_directory_is_not_read(task_split):
    (task_split / integrity.MANIFEST).unlink()  # its job was killed before sealing
    with pytest.raises(integrity.IntegrityError, match=f"no {integrity.MANIFEST}"):
        tokens.TaskSplit(task_split)


def test_a_truncated_model_checkpoint_stops_with_one_line_naming_it(tmp_path):
    saved = new_model(SIZE, 300, 64, 0)
    saved.save_pretrained(str(tmp_path))
    integrity.seal(tmp_path)
    loaded = load_model(tmp_path).state_dict()  # sealed and whole: the weights saved
    assert sorted(loaded) == sorted(saved.state_dict())
    assert all(torch.equal(loaded[name], weight) for name, weight in saved.state_dict().items())
    truncate(tmp_path / "model.safetensors", keep=0.9)
    with pytest.raises(integrity.IntegrityError) as error:
        load_model(tmp_path)
    assert str(tmp_path / "model.safetensors") in one_line(error.value)


def test_damaged_scan_checks_sizes_of_every_sealed_directory(task_split, tmp_path):
    assert integrity.damaged(tmp_path) == []
    truncate(task_split / "lang.npy")
    [(directory, reason)] = integrity.damaged(tmp_path)
    assert directory == task_split and "lang.npy" in reason


def lora_run(workdir):
    return workdir / RESULTS / LORA_RUN


def test_a_job_reading_a_truncated_checkpoint_stops_with_one_line(tiny_copy):
    run = lora_run(tiny_copy)
    truncate(run / "checkpoint" / "adapter_model.safetensors")
    # plain Snakemake (no ftscale run to repair it first), forced to evaluate that run again
    failed = snakemake(
        tiny_copy, "--cores", "1", "--forcerun", str((run / "eval.json").relative_to(tiny_copy)), check=False
    )
    assert failed.returncode != 0
    log = (tiny_copy / RESULTS / "logs" / "evaluate" / run.relative_to(tiny_copy / RESULTS / "finetune")).with_suffix(
        ".log"
    )
    assert "adapter_model.safetensors: " in log.read_text()
    assert "IntegrityError: Damaged output" in failed.stderr + log.read_text()


def test_ftscale_run_rebuilds_a_truncated_checkpoint(tiny_run, tiny_copy):
    run = lora_run(tiny_copy)
    truncate(run / "checkpoint" / "adapter_model.safetensors")
    repaired = ftscale_run(tiny_copy)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert f"removing {run / 'checkpoint'} to rebuild it" in repaired.stderr
    integrity.check(run / "checkpoint")
    assert_same_metrics(tiny_run, tiny_copy)
