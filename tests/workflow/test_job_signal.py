"""SLURM's warning (--signal=USR1@margin) reaches every process of a one-node job's step: the job's
Snakemake (the jobstep plugin's `srun -n1` runs it in remote mode), its script, torchrun and the
ranks. A job's Snakemake ignores it (rules/common.smk) and what it starts inherits that, so only a
training loop, which catches it, acts on it (tests/distributed/test_sharded.py: the ranks' side)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.workflow.conftest import ROOT, SNAKEMAKE, TINY

USR1_BIT = 1 << (signal.SIGUSR1 - 1)  # in /proc/<pid>/status SigIgn


def ignored(pid: int) -> int:
    """The signal mask a process ignores (/proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)


def session_processes(session: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == session:
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found


def test_a_jobs_snakemake_and_its_scripts_ignore_slurms_warning(tmp_path):
    target = "results/tiny/data/tokens/translation_ende/train"
    job = subprocess.Popen(
        [str(SNAKEMAKE), target, "--mode", "remote", "--cores", "1", "-s", str(ROOT / "Snakefile")]
        + ["-d", str(tmp_path), "--configfile", str(TINY)],
        env={**os.environ, "FTSCALE_FAULT": "hold:tokenize"},  # the job's script stops there, asleep
        stdout=open(tmp_path / "snakemake.out", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log = tmp_path / "results/tiny/logs/data/tokenize_task_translation_ende.log"  # the script's stdout
    try:
        while not (log.exists() and "held at tokenize" in log.read_text()):
            assert job.poll() is None, (tmp_path / "snakemake.out").read_text()[-3000:]
            time.sleep(1)
        processes = [pid for pid in session_processes(job.pid) if pid != job.pid]
        scripts = [pid for pid in processes if b"tokenize_task.py" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert scripts, processes
        for pid in [job.pid, *scripts]:  # Snakemake, and the script it started
            assert ignored(pid) & USR1_BIT, pid
        os.killpg(job.pid, signal.SIGUSR1)  # as SLURM does: neither dies of it
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert job.returncode == -signal.SIGKILL  # it lived until killed
