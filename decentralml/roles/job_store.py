"""The history of a federated job on disk: what was asked, and what each round did.

A job lives in one directory (``$DECENTRALML_HOME/jobs/<name>`` by default, or under a workdir the
caller picks): ``job.json`` (the spec and one record per round, rewritten atomically after every
phase), ``models/`` (the initial and each round's global model), ``strategy/`` (each round's
server-optimizer state as ``.npz``, loaded with ``allow_pickle=False``), and ``report.json`` /
``report.png`` once there is something to show.

The chain stays the authority on money: a round records its task id as soon as the task exists,
and resuming asks the chain what happened since (see :mod:`decentralml.roles.federated_job`), so a
killed job never publishes a round twice nor pays a result twice.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from decentralml.amounts import Token
from decentralml.errors import InvalidInput

#: Job names become directory names and go into task questions: keep them plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Phase = Literal["publishing", "published", "validated", "federated", "closed"]


def check_job_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("name", f"{name!r} is not a job name",
                           "1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit")
    return name


class JobSpec(BaseModel):
    """What the creator asked for; fixed when the job starts (resuming reuses it)."""

    model_config = ConfigDict(frozen=True)

    name: str
    question: str
    rounds: int = Field(ge=1, le=1000)
    slots: int = Field(ge=1)  # at most the chain's MaxAssignments, checked against it
    reward: int = Field(gt=0)
    #: ``auto`` (AutoAccept on chain) or ``min-accuracy=X`` (a holdout policy, CustomAccept)
    validation: str = "auto"
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    round_timeout: float = Field(default=600.0, gt=0)
    strategy: str = "fedavg"
    bundle_dir: str = ""
    creator: str = ""
    genesis_hash: str = ""
    #: the chain's token when the job started, so its amounts read right without a node (None
    #: in jobs recorded before it was kept)
    token: Token | None = None
    #: every round ships the creator's data shards (the job's ``shards/`` copy): compute rental
    shards: bool = False
    #: ``contribution``: every round's pool is split by the updates' scores on the holdout
    #: (:mod:`decentralml.roles.contribution`), after ``floor`` planck to each; ``flat`` otherwise
    payout: Literal["flat", "contribution"] = "flat"
    floor: int = Field(default=0, ge=0)
    #: the scoring specification (``ScoringSpec`` as JSON) of a job paid by contribution
    scoring: dict[str, Any] | None = None

    def round_question(self, r: int) -> str:
        """The task question of round ``r``; it names the job, so a resumed job finds its task."""
        return f"{self.question} (job {self.name}, round {r}/{self.rounds})"


class ContributorRecord(BaseModel):
    """One contributor's result in a round."""

    submission_id: int
    worker: str
    #: a name people know the worker by (a dev account's, on a dev chain), for plots
    name: str | None = None
    status: str
    num_examples: int | None = None
    #: the update's accuracy on the creator's holdout set (None if it could not be loaded)
    accuracy: float | None = None
    #: what the result was paid (planck)
    reward: int = 0
    #: on a round paid by contribution: the score settled on chain (ppm), the holdout-loss
    #: improvement it came from, and the submission this update duplicates
    score: int | None = None
    value: float | None = None
    duplicate_of: int | None = None


class RoundRecord(BaseModel):
    round: int
    phase: Phase = "publishing"
    task_id: int | None = None
    published_at: float | None = None
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    paid: int = 0
    refund: int = 0
    #: the federated model's holdout accuracy after this round (the previous one's if nothing
    #: was accepted)
    accuracy: float | None = None
    contributors: list[ContributorRecord] = []
    seconds: float = 0.0
    timings: dict[str, float] = {}


class JobState(BaseModel):
    spec: JobSpec
    status: Literal["running", "done", "failed"] = "running"
    stopped_because: str = ""
    rounds: list[RoundRecord] = []
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    #: the federated accuracy before round 1 (the initial model)
    initial_accuracy: float | None = None

    @property
    def final_accuracy(self) -> float | None:
        done = [r.accuracy for r in self.rounds if r.phase == "closed" and r.accuracy is not None]
        return done[-1] if done else self.initial_accuracy

    @property
    def total_paid(self) -> int:
        return sum(r.paid for r in self.rounds)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JobDir:
    """One job's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def state_path(self) -> Path:
        return self.path / "job.json"

    @property
    def report_json(self) -> Path:
        return self.path / "report.json"

    @property
    def report_png(self) -> Path:
        return self.path / "report.png"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def load(self) -> JobState:
        if not self.exists():
            raise InvalidInput("name", f"no job {self.name!r} in {self.path.parent}")
        return JobState.model_validate_json(self.state_path.read_text(encoding="utf-8"))

    def save(self, state: JobState) -> None:
        """Write the state atomically: a kill leaves the previous or the new one, never half."""
        state.updated_at = time.time()
        _atomic_write(self.state_path, state.model_dump_json(indent=2).encode("utf-8"))

    def model_path(self, r: int) -> Path:
        """The global model after round ``r`` (0: the initial model)."""
        return self.path / "models" / ("initial.keras" if r == 0 else f"global-round-{r}.keras")

    def round_bundle(self, r: int) -> Path:
        return self.path / "rounds" / f"round-{r}"

    def save_strategy_state(self, r: int, state: dict[str, np.ndarray]) -> None:
        """The server optimizer's state after round ``r``, arrays only (no pickles)."""
        path = self.path / "strategy" / f"round-{r}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        try:
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in state.items()}
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_strategy_state(self, r: int) -> dict[str, np.ndarray] | None:
        path = self.path / "strategy" / f"round-{r}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def write_report(self, state: JobState) -> None:
        """``report.json``; the picture beside it (``report_png``) is
        :func:`decentralml.roles.job_plot.plot_job`'s, which reads this module's records."""
        _atomic_write(self.report_json, state.model_dump_json(indent=2).encode("utf-8"))


class JobStore:
    """The jobs under one root directory (``$DECENTRALML_HOME/jobs`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def job(self, name: str) -> JobDir:
        return JobDir(self.root / check_job_name(name))

    def list(self) -> list[JobState]:
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.iterdir()):
            job = JobDir(path)
            if job.exists():
                out.append(job.load())
        return sorted(out, key=lambda s: s.started_at)

    def create(self, spec: JobSpec) -> JobDir:
        job = self.job(spec.name)
        if job.exists():
            raise InvalidInput("name", f"job {spec.name!r} already exists in {self.root}",
                               "a new name, or `decentralml job resume` to continue it")
        job.save(JobState(spec=spec))
        return job


def jobs_root(home: Path, workdir: Path | None = None) -> Path:
    """Where jobs live: ``workdir`` when given, else ``home/jobs``."""
    return workdir if workdir is not None else home / "jobs"


def state_summary(state: JobState) -> dict[str, Any]:
    """The line ``job list`` shows for a job."""
    done = [r for r in state.rounds if r.phase == "closed"]
    return {"name": state.spec.name, "status": state.status, "rounds": f"{len(done)}/"
            f"{state.spec.rounds}", "accuracy": state.final_accuracy, "paid": state.total_paid,
            "stopped_because": state.stopped_because}
