"""The training loop pretraining and finetuning share (training.run_loop), on a plain linear model:
the job's hooks see every step, a stop reason ends the loop at its step, the resume state is saved
where the job asks, and a run cut into segments ends where one uninterrupted run ends."""

import pytest
import torch

from ftscale.runtime.jobs import SegmentEnd
from ftscale.train import training

INPUTS = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))


class Job:
    """A tiny job: a linear model fitted to zero, its losses as the resumable state."""

    def __init__(self, total=6, stop_at=None, save_every=2):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.losses, self.seen, self.stop_at = [], [], stop_at
        self.steps = training.Steps(
            total=total,
            lr=lambda step: 0.1 / (step + 1),
            backward=self.backward,
            after=self.after,
            save_due=lambda step: step % save_every == 0,
            state=lambda: {"losses": self.losses},
            restore=lambda state: self.losses.extend(state["losses"]),
        )

    def backward(self, step):
        loss = self.model(INPUTS[step : step + 1]).pow(2).sum()
        loss.backward()
        self.losses.append(loss.item())

    def after(self, step, lr):
        self.seen.append((step, lr))
        return "diverged" if step == self.stop_at else None

    def run(self, resume_path=None, segment_seconds=None):
        return training.run_loop(
            self.steps,
            self.model,
            self.optimizer,
            training.World(),
            resume_path,
            segment_seconds,
            training.Log("test", quiet=True),
        )


def record_saves(monkeypatch) -> list:
    """The steps at which the loop saves its resume state (nothing written)."""
    saved = []
    monkeypatch.setattr(
        training, "save_resume_state", lambda path, model, opt, state, world: saved.append(state["step"])
    )
    return saved


def test_every_step_reaches_the_hooks_at_its_learning_rate():
    job = Job()
    assert job.run() == (6, None)
    assert job.seen == [(s + 1, 0.1 / (s + 1)) for s in range(6)]


def test_a_stop_reason_ends_the_loop_at_its_step_with_no_state_after_it(tmp_path, monkeypatch):
    saved = record_saves(monkeypatch)
    job = Job(stop_at=3, save_every=1)
    assert job.run(resume_path=tmp_path / "state.pt") == (3, "diverged")
    assert saved == [1, 2] and len(job.losses) == 3


def test_segments_end_where_one_run_ends(tmp_path):
    whole = Job()
    whole.run()
    resume = tmp_path / "state.pt"
    segments = 0
    while True:
        job = Job()
        try:
            step, stop = job.run(resume_path=resume, segment_seconds=1e-9)  # every step ends a segment
            break
        except SegmentEnd:
            segments += 1
    assert (step, stop, segments) == (6, None, 5)
    assert job.losses == whole.losses
    assert torch.equal(job.model.weight, whole.model.weight) and torch.equal(job.model.bias, whole.model.bias)


@pytest.mark.parametrize("save_every", [2, 3])
def test_the_state_is_saved_where_the_job_asks(tmp_path, monkeypatch, save_every):
    saved = record_saves(monkeypatch)
    Job(total=7, save_every=save_every).run(resume_path=tmp_path / "state.pt")
    assert saved == [s for s in range(1, 7) if s % save_every == 0]  # never after the last step
