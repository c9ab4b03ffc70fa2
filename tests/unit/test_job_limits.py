"""A training job's limits from SLURM and the planner (ftscale.runtime.jobs.set_limits): the segment's
deadline from the job's own end time, and the ranks' process group timeout from its runtime."""

from datetime import datetime, timedelta

from ftscale.runtime import jobs

PLANNED = {"runtime": 60, "segment_seconds": 3300}  # minutes per segment; the loop's 55 min: a 5 min margin


def test_the_deadline_is_the_jobs_end_time_less_the_planners_margin():
    environ = {"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "2000000000"}
    jobs.set_limits(PLANNED, environ)
    assert float(environ[jobs.DEADLINE]) == 2000000000 - 300
    assert jobs.process_group_timeout(environ) == timedelta(minutes=60)


def test_without_slurm_job_end_time_squeue_says_it(tmp_path, monkeypatch):
    end = datetime(2033, 5, 18, 3, 33, 20)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f'#!/bin/sh\n[ "$*" = "-h -j 7 -o %e" ] && echo {end.isoformat()}\n')
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    environ = {"SLURM_JOB_ID": "7"}
    jobs.set_limits(PLANNED, environ)
    assert float(environ[jobs.DEADLINE]) == end.timestamp() - 300


def test_outside_slurm_or_without_segments_there_is_no_deadline():
    local = {}
    jobs.set_limits(PLANNED, local)
    assert jobs.DEADLINE not in local and jobs.process_group_timeout(local) == timedelta(minutes=60)
    unsegmented = {"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "2000000000"}
    jobs.set_limits({"runtime": 60}, unsegmented)
    assert jobs.DEADLINE not in unsegmented
    assert jobs.process_group_timeout({}) is None  # no planner: torch's default
