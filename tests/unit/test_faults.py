"""FTSCALE_FAULT=hold:<point> (ftscale.runtime.faults): the process stops at the point, says so on
stdout, and stays there until it is killed (tests/slurm cancels a job there: at a known step)."""

import os
import subprocess
import sys

CALL = "from ftscale.runtime import faults; faults.point('resume:3'); print('went on', flush=True)"


def test_a_held_point_stops_the_process_there_until_it_is_killed():
    env = {**os.environ, "FTSCALE_FAULT": "hold:resume:3"}
    held = subprocess.Popen([sys.executable, "-c", CALL], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert held.stdout.readline() == "held at resume:3\n"
        assert held.poll() is None
    finally:
        held.kill()
        rest = held.communicate()[0]
    assert "went on" not in rest


def test_another_point_or_none_goes_on():
    for fault in ("hold:resume:4", ""):
        done = subprocess.run(
            [sys.executable, "-c", CALL],
            capture_output=True,
            text=True,
            env={**os.environ, "FTSCALE_FAULT": fault},
            timeout=60,
        )
        assert done.stdout == "went on\n"
