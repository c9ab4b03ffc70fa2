"""Training to convergence and in time-limited segments.

Early stopping stops exactly where the dev-loss history says it should and keeps the best step.
A job given segment_seconds saves its state and raises SegmentEnd when the time is up; calling it
again continues, and the chained segments end exactly where one uninterrupted run ends (bitwise on
CPU), the patience counter and pretraining's running loss included."""

import pytest

from ftscale.runtime import jobs
from ftscale.runtime.jobs import SegmentEnd
from ftscale.train import finetune, pretrain
from tests.tiny_base import finetune_args, pretrain_args

TIMING = ("train_seconds", "loop_seconds", "first_step_at", "target_tokens")  # of the last process only
TINY_SEGMENT = 1e-9  # every segment ends after its first step


def finetune_run(base, out, method="fmt", pet=None, lr=3e-2, **kwargs):  # noqa: F811
    settings = finetune_args(base, out, method=method, pet_size=pet, learning_rate=lr, max_steps=20, seed=5)
    return finetune.finetune(**settings | kwargs)


def pretrain_run(base, out, **kwargs):  # noqa: F811
    return pretrain.pretrain(
        **pretrain_args(base / "stream" / "tokens.npy", out, log_name="test", log_every=3) | kwargs
    )


def in_segments(run, resume):
    """Call run() until it completes; the steps at which its segments ended."""
    ends = []
    while True:
        try:
            return run(), ends
        except SegmentEnd as end:
            assert resume.exists() and str(end) == f"saved at step {end.step}; resubmit to continue"
            ends.append(end.step)


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING}


def test_patience_stops_where_the_history_says(base, tmp_path):  # noqa: F811
    full = finetune_run(base, tmp_path / "full")
    assert full["stop_reason"] == "max_steps" and full["steps"] == 20
    losses = [h["dev_loss"] for h in full["history"]]
    for patience in (1, 2):
        # Where early stopping must stop: the first evaluation `patience` evaluations after the best so far.
        stop, best, since = None, 0, 0
        for i, loss in enumerate(losses):
            if loss < losses[best] or i == 0:
                best, since = i, 0
            else:
                since += 1
            if since == patience:
                stop = i
                break
        assert stop is not None and stop < 19, f"the history never stalls for {patience} evaluations: {losses}"
        early = finetune_run(base, tmp_path / f"patience{patience}", patience=patience)
        assert early["stop_reason"] == "patience" and early["steps"] == stop + 1
        assert early["history"] == full["history"][: stop + 1]
        assert early["best_step"] == best + 1 and early["dev_loss"] == losses[best]
    capped = finetune_run(base, tmp_path / "epochs", max_epochs=2)  # 16 examples, 4 per batch
    assert capped["stop_reason"] == "max_epochs" and capped["steps"] == 8
    with pytest.raises(ValueError, match="patience must be a positive number of evaluations, got 0"):
        finetune_run(base, tmp_path / "bad", patience=0)


@pytest.mark.parametrize("method, pet, lr", [("fmt", None, 3e-2), ("lora", 2, 1e-1), ("prompt", 4, 3e-1)])
def test_finetuning_segments_chain_to_the_uninterrupted_result(base, tmp_path, method, pet, lr):  # noqa: F811
    straight = finetune_run(
        base, tmp_path / "straight", method, pet, lr, patience=2, resume_path=tmp_path / "straight.pt"
    )
    resume = tmp_path / "segments.pt"
    chained, ends = in_segments(
        lambda: finetune_run(
            base, tmp_path / "segments", method, pet, lr, patience=2, resume_path=resume, segment_seconds=TINY_SEGMENT
        ),
        resume,
    )
    assert ends == list(range(1, straight["steps"]))  # one step per segment
    assert without_timing(chained) == without_timing(straight)
    weights = "model.safetensors" if method == "fmt" else "adapter_model.safetensors"
    assert (tmp_path / "straight" / "checkpoint" / weights).read_bytes() == (
        tmp_path / "segments" / "checkpoint" / weights
    ).read_bytes()
    assert not resume.exists()


def test_pretraining_segments_chain_to_the_uninterrupted_result(base, tmp_path):  # noqa: F811
    straight = pretrain_run(base, tmp_path / "straight")
    resume = tmp_path / "segments.pt"
    chained, ends = in_segments(
        lambda: pretrain_run(base, tmp_path / "segments", resume_path=resume, segment_seconds=TINY_SEGMENT), resume
    )
    assert ends == list(range(1, 16))
    assert without_timing(chained) == without_timing(straight)
    assert (tmp_path / "straight" / "model.safetensors").read_bytes() == (
        tmp_path / "segments" / "model.safetensors"
    ).read_bytes()


def test_a_segment_needs_a_resume_path(base, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="segment_seconds=1e-09 needs a positive limit and a resume_path"):
        pretrain_run(base, tmp_path / "out", segment_seconds=TINY_SEGMENT)


LONG_SEGMENT = 1e9  # a segment no step reaches by time: only the deadline or the signal ends it


def test_slurms_warning_signal_ends_the_segment_at_that_step_and_the_job_resumes_to_the_same_result(
    base, tmp_path, monkeypatch
):  # noqa: F811
    straight = pretrain_run(base, tmp_path / "straight")
    resume = tmp_path / "segments.pt"
    monkeypatch.setenv("FTSCALE_FAULT", "usr1:4")  # SIGUSR1 to this process after step 4, as --signal=USR1@margin
    with pytest.raises(SegmentEnd) as end:
        pretrain_run(base, tmp_path / "segments", resume_path=resume, segment_seconds=LONG_SEGMENT)
    assert end.value.step == 4 and resume.exists()
    monkeypatch.delenv("FTSCALE_FAULT")
    resumed = pretrain_run(base, tmp_path / "segments", resume_path=resume, segment_seconds=LONG_SEGMENT)
    assert without_timing(resumed) == without_timing(straight)


def test_a_start_slower_than_the_jobs_margin_ends_the_segment_after_one_step(base, tmp_path, monkeypatch):  # noqa: F811
    """The deadline is the job's SLURM end time less the planner's margin, not the loop's start plus
    segment_seconds: a job whose start used up its time (loading, a slow filesystem) saves at once."""
    environ = {"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "1000"}  # long past: the start took it all
    jobs.set_limits({"runtime": 60, "segment_seconds": str(LONG_SEGMENT)}, environ)
    monkeypatch.setenv(jobs.DEADLINE, environ[jobs.DEADLINE])
    resume = tmp_path / "resume.pt"
    with pytest.raises(SegmentEnd) as end:
        finetune_run(base, tmp_path / "out", resume_path=resume, segment_seconds=LONG_SEGMENT)
    assert end.value.step == 1 and resume.exists()
