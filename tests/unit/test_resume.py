"""A training job killed mid-run resumes from its checkpoint and ends exactly where an
uninterrupted run ends (bitwise on CPU)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftscale import pretrain
from ftscale.data import synthetic, tokens

SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
RUN = """
import sys
from pathlib import Path
from ftscale import finetune
finetune.finetune(base_dir=Path(sys.argv[1]), method=sys.argv[2], pet_size=int(sys.argv[3]) or None,
                  learning_rate=float(sys.argv[4]), batch_size=4, parameter_scaling=False, max_steps=30,
                  max_epochs=100, eval_every=5, train_dir=Path(sys.argv[5]) / "train", dev_dir=Path(sys.argv[5]) / "dev",
                  finetune_examples=32, max_source=32, max_target=32, seed=3, out_dir=Path(sys.argv[6]),
                  resume_path=Path(sys.argv[7]))
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    lines = synthetic.pretrain_text("en", 300, 0) + synthetic.pretrain_text("de", 300, 1)
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokens.write_pretrain_stream(tokenizer, lines, root / "stream")
    pairs = synthetic.translation_pairs("en", "de", 48, 2)
    tokens.write_task_split(tokenizer, pairs[:32], root / "task" / "train")
    tokens.write_task_split(tokenizer, pairs[32:], root / "task" / "dev")
    pretrain.pretrain(size=SIZE, vocab_size=300, train_tokens=root / "stream" / "tokens.npy",
                      val_tokens=root / "stream" / "tokens.npy", tokens=4096, seq_len=32, batch_size=8, lr_max=1e-2,
                      lr_min=1e-3, warmup_steps=2, parameter_scaling=False, seed=0, out_dir=root / "base")
    return root


def finetune_process(base, method, pet, lr, out, resume):
    return subprocess.Popen([sys.executable, "-c", RUN, str(base / "base"), method, str(pet), str(lr),
                             str(base / "task"), str(out), str(resume)], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("method, pet, lr", [("fmt", 0, 1e-3), ("lora", 2, 1e-2)])
def test_killed_run_resumes_to_identical_result(base, tmp_path, method, pet, lr):
    straight = finetune_process(base, method, pet, lr, tmp_path / "straight", tmp_path / "straight.pt")
    assert straight.wait() == 0
    resume = tmp_path / "killed.pt"
    killed = finetune_process(base, method, pet, lr, tmp_path / "killed", resume)
    deadline = time.monotonic() + 120
    while not resume.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resume.exists(), "no resumable state was written"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "train.json").exists()        # killed before the end
    again = finetune_process(base, method, pet, lr, tmp_path / "killed", resume)
    output = again.communicate()[0]
    assert again.returncode == 0
    assert "resumed from" in output
    first = json.loads((tmp_path / "straight" / "train.json").read_text())
    second = json.loads((tmp_path / "killed" / "train.json").read_text())
    assert second["steps"] == first["steps"] == 30
    assert second["dev_loss"] == first["dev_loss"] and second["history"] == first["history"]
    weights = "model.safetensors" if method == "fmt" else "adapter_model.safetensors"
    assert (tmp_path / "straight" / "checkpoint" / weights).read_bytes() == \
        (tmp_path / "killed" / "checkpoint" / weights).read_bytes()
    assert not resume.exists()                                       # removed once complete
