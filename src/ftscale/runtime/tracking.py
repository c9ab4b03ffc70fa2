"""Training curves where researchers look: TensorBoard event files, and MLflow runs when asked.

Every training job (pretraining, finetuning) records its curves through one Curves object, opened
from a CurvesSpec (the config's `tracking` section and the run's name, made by `spec`) and fed by
the shared loop (training.run_loop: resume, step times, saves) and the job's own log points:
- TensorBoard (tracking.tensorboard, on by default): one run directory per job under
  results/<study>/tensorboard/ (pretrain/<family>/<model>-<tokens>tok, finetune/<condition>/seed<N>),
  so `tensorboard --logdir results/<study>/tensorboard` shows the whole study. A side directory, not
  a declared output: Snakemake neither clears nor reruns anything for it, and sealed outputs are as
  before. Written with tensorboard's own EventFileWriter (torch's SummaryWriter wraps the same one).
- MLflow (tracking.mlflow: a tracking URI, e.g. sqlite:///mlruns.db; off by default): the study is
  one experiment, each job one run (tag ftscale_run: its run name) with its condition's parameters,
  the same curves, and the evaluate job's final metrics (log_final).
Neither package is imported unless used. On sharded jobs only rank 0 writes (others: NO_CURVES).

A resumed segment continues its curves. TensorBoard: what a killed attempt wrote after the saved
step is purged (a SessionLog START at the step after it, as SummaryWriter(purge_step=) writes;
readers drop the earlier files' points at or past it). MLflow cannot purge: it gets the points only when the resume state is
saved (flush) and at the end, so a killed attempt's unsaved points never reach it. A fresh start
(step 0) clears the run's earlier curves in both.

tokens_per_second: tokens trained (count) over the seconds of the training steps (forward, backward,
update; evaluation and saving excluded) since the previous point. On a GPU a step's time is that of
queuing its kernels, so up to the few steps the queue holds shift to the next interval.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

TENSORBOARD_DIR = "tensorboard"  # under results/<study>/
RUN_TAG = "ftscale_run"  # an MLflow run's name in the study, e.g. finetune/<condition>/seed0
METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


@dataclass(frozen=True)
class CurvesSpec:
    """Where one run's curves go: a TensorBoard directory and/or an MLflow store (None: not there)."""

    run: str  # pretrain/<pretrain id> or finetune/<condition id>/seed<N>
    tensorboard: Path | None = None
    mlflow: str | None = None  # a tracking URI
    experiment: str = ""  # the study
    params: dict = field(default_factory=dict)  # the run's condition (MLflow parameters)


def pretrain_run(pretrain_id: str) -> str:
    """A pretraining job's run name (its directory under tensorboard/)."""
    return f"pretrain/{pretrain_id}"


def finetune_run(condition_id: str, seed) -> str:
    """A finetuning job's run name, as its results directory (finetune/<condition>/seed<N>)."""
    return f"finetune/{condition_id}/seed{seed}"


def spec(config: dict, run: str, params: dict | None = None) -> CurvesSpec:
    """The run's CurvesSpec from a validated config (its `tracking` section)."""
    tracking = config["tracking"]
    return CurvesSpec(
        run=run,
        tensorboard=Path(f"results/{config['study']}") / TENSORBOARD_DIR / run if tracking["tensorboard"] else None,
        mlflow=tracking["mlflow"],
        experiment=config["study"],
        params=params or {},
    )


class Curves:
    """One run's curves: the loop calls start, trained and flush; the job count, point and close."""

    def __init__(self, spec: CurvesSpec | None = None):
        self.spec, self.sinks, self.abandon = spec, [], None
        self.seconds, self.tokens = 0.0, 0  # of the training steps since the last point

    def start(self, step: int) -> None:
        """Training starts (step 0) or resumes at `step`: open the sinks."""
        if self.spec is None:
            return
        if self.spec.tensorboard:
            self.sinks.append(TensorBoardSink(self.spec.tensorboard, step))
        if self.spec.mlflow:
            self.sinks.append(MlflowSink(self.spec, fresh=step == 0))
        # a job that raises (or ends its segment) leaves the sinks unclosed: they are abandoned when
        # the Curves is collected or the process exits (files closed, MLflow's unsaved points dropped)
        self.abandon = weakref.finalize(self, abandon_all, list(self.sinks))

    def trained(self, seconds: float) -> None:
        """One training step's seconds."""
        if self.spec is not None:
            self.seconds += seconds

    def count(self, tokens) -> None:
        """Tokens one step trained on (an int or a tensor: read only at the next point)."""
        if self.spec is not None:
            self.tokens = self.tokens + tokens

    def point(self, step: int, scalars: dict[str, float], throughput: bool = True) -> None:
        """Scalars at `step`, with tokens_per_second since the previous point where throughput."""
        if throughput and self.seconds > 0:
            scalars = {**scalars, "tokens_per_second": float(self.tokens) / self.seconds}
            self.seconds, self.tokens = 0.0, 0
        for sink in self.sinks:
            sink.point(step, scalars)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        if self.abandon is not None:
            self.abandon.detach()
        for sink in self.sinks:
            sink.close()
        self.sinks = []


NO_CURVES = Curves()  # no spec: every call does nothing


def open_curves(spec: CurvesSpec | None, main: bool = True) -> Curves:
    """The run's Curves; NO_CURVES without a spec or on a rank other than the first."""
    return Curves(spec) if spec is not None and main else NO_CURVES


def abandon_all(sinks: list) -> None:
    for sink in sinks:
        sink.abandon()


class TensorBoardSink:
    """Scalars into the run's event files."""

    def __init__(self, directory: Path, step: int):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if step == 0:  # a fresh start: an earlier attempt's curves are not this run's
            shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        after_earlier_files(directory)
        self.event_pb2, self.writer = event_pb2, EventFileWriter(str(directory))
        if step > 0:  # readers drop the points at or past purge_step: what a killed attempt wrote after `step`
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self.writer.add_event(event_pb2.Event(step=step + 1, wall_time=time.time(), session_log=start))

    def point(self, step: int, scalars: dict[str, float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=tag, simple_value=float(value)) for tag, value in scalars.items()]
        self.writer.add_event(self.event_pb2.Event(step=step, wall_time=time.time(), summary=Summary(value=values)))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    abandon = close  # a resumed attempt purges what it wrote after the saved step


def after_earlier_files(directory: Path) -> None:
    """Readers take a run's event files in name order, which begins with the second each was opened
    in: a file opened in the same second as the last one may sort before it (the names end in a
    counter), so wait for the next second (an attempt resumed within a second: tests only)."""
    opened = [int(path.name.split(".")[3]) for path in directory.glob("events.out.tfevents.*")]
    while opened and time.time() < max(opened) + 1:
        time.sleep(0.05)


class MlflowSink:
    """The run in the study's experiment; points buffered until flush (see the module's docstring)."""

    def __init__(self, spec: CurvesSpec, fresh: bool):
        self.client, self.run_id = mlflow_run(spec, fresh)
        self.buffer = []

    def point(self, step: int, scalars: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer += [Metric(key, float(value), now, step) for key, value in scalars.items()]

    def flush(self) -> None:
        for start in range(0, len(self.buffer), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=self.buffer[start : start + METRICS_PER_BATCH])
        self.buffer = []

    def close(self) -> None:
        self.flush()
        self.client.set_terminated(self.run_id)

    def abandon(self) -> None:
        self.buffer = []  # not saved with a resume state: a resumed attempt logs these steps again


def mlflow_run(spec: CurvesSpec, fresh: bool = False):
    """(client, run id) of the spec's run in the study's experiment: the one tagged with its name, or
    a new one with its parameters (fresh: always new, the old one deleted)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(spec.mlflow)
    with store_lock(spec.mlflow):  # two jobs starting at once must not both create the store or experiment
        experiment = client.get_experiment_by_name(spec.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(spec.experiment)
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{spec.run}'")
    for run in found if fresh else ():
        client.delete_run(run.info.run_id)
    if found and not fresh:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return client, found[0].info.run_id
    run = client.create_run(experiment_id, run_name=spec.run, tags={RUN_TAG: spec.run})
    from mlflow.entities import Param

    params = [Param(key, str(value)) for key, value in sorted(spec.params.items())]
    client.log_batch(run.info.run_id, params=params)
    return client, run.info.run_id


@contextlib.contextmanager
def store_lock(uri: str):
    """An exclusive lock beside a SQLite store (sqlite:///PATH); other stores: none needed."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def log_final(spec: CurvesSpec, metrics: dict) -> None:
    """The run's final metrics (the evaluate job's eval.json: its numeric fields), at step 0."""
    if not spec.mlflow:
        return
    from mlflow.entities import Metric

    client, run_id = mlflow_run(spec)
    now = int(time.time() * 1000)
    numbers = {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in sorted(numbers.items())])
    client.set_tag(run_id, "ftscale_status", str(metrics.get("status", "")))
    client.set_terminated(run_id)
