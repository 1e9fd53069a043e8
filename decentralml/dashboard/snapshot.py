"""Everything the dashboard shows, read in one go: tasks, submissions, earnings and jobs.

The chain is read through the client's queries only (nothing is signed); federated jobs come from
the job store (:mod:`decentralml.roles.job_store`), since accuracy is the creator's measurement
and never goes on chain.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from decentralml.amounts import Token
from decentralml.chain.types import Submission, SubmissionStatus, TaskInfo, TaskStatus
from decentralml.roles.peer_job import PeerJobStatus

if TYPE_CHECKING:
    from decentralml.chain.client import Client

#: Peer jobs the dashboard shows (the newest), and rounds of each (the latest).
PEER_JOBS_SHOWN = 10
PEER_ROUNDS_SHOWN = 20


class Earning(BaseModel):
    account: str
    name: str
    earned: int
    accepted: int
    pending: int
    spent: int  # rewards this account paid out as a creator


class JobCurve(BaseModel):
    name: str
    status: str
    rounds: int
    target_accuracy: float | None
    #: (round, federated accuracy); round 0 is the initial model
    federated: list[tuple[int, float]]
    #: per contributor name: (round, the update's accuracy)
    contributors: dict[str, list[tuple[int, float]]]
    paid: int


class ContributionRow(BaseModel):
    """One result of a task paid by contribution: its score and what it was paid."""

    submission_id: int
    account: str
    name: str
    status: str
    #: parts per million, as settled on chain (None until settled)
    score: int | None
    payout: int


class ContributionRound(BaseModel):
    """A task paid by contribution (a round of a job, or a task of its own)."""

    task_id: int
    question: str
    reward: int
    floor: int
    slots: int
    rows: list[ContributionRow]

    @property
    def paid(self) -> int:
        return sum(r.payout for r in self.rows)


class Snapshot(BaseModel):
    taken_at: float
    block: int
    symbol: str
    decimals: int
    open_tasks: list[TaskInfo]
    closed_tasks: list[TaskInfo]
    submissions: list[Submission]
    earnings: list[Earning]
    jobs: list[JobCurve]
    names: dict[str, str]
    #: every task paid by contribution, newest first, with each contributor's score and pay
    contributions: list[ContributionRound] = []
    #: the newest peer jobs, each with its latest rounds' agreement
    peer_jobs: list[PeerJobStatus] = []

    def name(self, address: str) -> str:
        return self.names.get(address, address[:6] + "…" + address[-4:])

    def units(self, planck: int) -> str:
        return Token(symbol=self.symbol, decimals=self.decimals).format(planck)


def known_names(client: Client, home: Path | None) -> dict[str, str]:
    """Address -> a name people know: the local account store, and dev accounts on dev chains."""
    names: dict[str, str] = {}
    if client.chain_type in ("Development", "Local"):
        from decentralml.accounts import DEV_ACCOUNTS

        for dev in DEV_ACCOUNTS:
            names[client.resolve_address(f"//{dev}")] = dev
    try:
        from decentralml.accounts import Accounts

        for account in Accounts(home).list():
            names[account.address] = account.name
    except Exception:  # an unreadable index only costs the names
        pass
    return names


def take_snapshot(client: Client, *, jobs_root: Path | None = None,
                  names: dict[str, str] | None = None) -> Snapshot:
    """Read the chain (and the jobs under ``jobs_root``) now."""
    tasks = client.tasks()
    subs: list[Submission] = []
    for task in tasks:
        subs.extend(client.task_submissions(task.task_id))
    subs.sort(key=lambda s: s.submission_id, reverse=True)
    by_id = {t.task_id: t for t in tasks}
    names = dict(names or {})
    rounds = _contribution_rounds(client, tasks, subs, names)
    payouts = {r.submission_id: r.payout for c in rounds for r in c.rows}
    earned: dict[str, int] = defaultdict(int)
    accepted: dict[str, int] = defaultdict(int)
    pending: dict[str, int] = defaultdict(int)
    spent: dict[str, int] = defaultdict(int)
    for sub in subs:
        reward = payouts.get(sub.submission_id, by_id[sub.task_id].reward
                             if sub.task_id in by_id else 0)
        if sub.status is SubmissionStatus.Accepted:
            earned[sub.worker] += reward
            accepted[sub.worker] += 1
            spent[by_id[sub.task_id].creator] += reward
        elif sub.status is SubmissionStatus.PendingValidation:
            pending[sub.worker] += 1
    accounts = set(earned) | set(pending) | set(spent)
    earnings = sorted((Earning(account=a, name=names.get(a, a[:6] + "…" + a[-4:]),
                               earned=earned[a], accepted=accepted[a], pending=pending[a],
                               spent=spent[a]) for a in accounts),
                      key=lambda e: (-e.earned, e.name))
    return Snapshot(
        taken_at=time.time(), block=client.block_number(), symbol=client.token_symbol,
        decimals=client.token_decimals,
        open_tasks=[t for t in tasks if t.status is TaskStatus.Open],
        closed_tasks=[t for t in tasks if t.status is TaskStatus.Closed],
        submissions=subs, earnings=earnings, jobs=_jobs(jobs_root, names, client.genesis_hash),
        names=names, contributions=rounds, peer_jobs=_peer_jobs(client))


def _label(names: dict[str, str], address: str) -> str:
    return names.get(address, address[:6] + "…" + address[-4:])


def _contribution_rounds(client: Client, tasks: list[TaskInfo], subs: list[Submission],
                         names: dict[str, str]) -> list[ContributionRound]:
    """The tasks paid by contribution, each result's score and payout read from the chain."""
    from decentralml.chain.types import PayoutMode
    from decentralml.roles.contribution import settled_contributions

    out = []
    for task in sorted(tasks, key=lambda t: t.task_id, reverse=True):
        terms = client.task_terms(task.task_id)
        if terms.payout is not PayoutMode.ByContribution:
            continue
        mine = [s for s in subs if s.task_id == task.task_id]
        rows = [ContributionRow(submission_id=c.submission_id, account=c.worker,
                                name=_label(names, c.worker), status=c.status, score=c.score,
                                payout=c.payout)
                for c in settled_contributions(client, task.task_id, mine)]
        out.append(ContributionRound(task_id=task.task_id, question=task.question,
                                     reward=task.reward, floor=terms.floor,
                                     slots=task.max_assignments, rows=rows))
    return out


def _peer_jobs(client: Client) -> list[PeerJobStatus]:
    """The newest peer jobs' agreement per round, from the chain."""
    from decentralml.roles.peer_job import peer_job_status

    ids = sorted((job.job_id for job in client.peer_jobs()), reverse=True)[:PEER_JOBS_SHOWN]
    return [peer_job_status(client, i, last_rounds=PEER_ROUNDS_SHOWN) for i in ids]


def _jobs(root: Path | None, names: dict[str, str], genesis: str) -> list[JobCurve]:
    if root is None:
        return []
    from decentralml.roles.job_store import JobStore

    out = []
    for state in JobStore(root).list():
        if state.spec.genesis_hash and state.spec.genesis_hash != genesis:
            continue  # a job of another chain
        fed: list[tuple[int, float]] = []
        if state.initial_accuracy is not None:
            fed.append((0, state.initial_accuracy))
        contributors: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in state.rounds:
            if r.phase == "closed" and r.accuracy is not None:
                fed.append((r.round, r.accuracy))
            for c in r.contributors:
                if c.accuracy is not None:
                    label = names.get(c.worker, c.worker[:8])
                    contributors[label].append((r.round, c.accuracy))
        out.append(JobCurve(name=state.spec.name, status=state.status, rounds=state.spec.rounds,
                            target_accuracy=state.spec.target_accuracy, federated=fed,
                            contributors=dict(contributors), paid=state.total_paid))
    return out


def chart_svg(job: JobCurve, *, width: int = 420, height: int = 220) -> dict[str, Any]:
    """Coordinates for the job's accuracy chart (the template draws the SVG from these)."""
    pad_l, pad_r, pad_t, pad_b = 40, 12, 12, 28
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    span = max(job.rounds, 1)

    def x(r: float) -> float:
        return round(pad_l + w * r / span, 1)

    def y(a: float) -> float:
        return round(pad_t + h * (1 - a), 1)

    palette = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    return {
        "width": width, "height": height,
        "line": " ".join(f"{x(r)},{y(a)}" for r, a in job.federated),
        "points": [{"x": x(r), "y": y(a), "label": f"round {r}: {a:.3f}"}
                   for r, a in job.federated],
        "contributors": [{"name": name, "color": palette[i % len(palette)],
                          "points": [{"x": x(r), "y": y(a), "label": f"{name} round {r}: {a:.3f}"}
                                     for r, a in pts]}
                         for i, (name, pts) in enumerate(sorted(job.contributors.items()))],
        "yticks": [{"y": y(v), "label": f"{v:g}"} for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        "xticks": [{"x": x(r), "label": str(r)} for r in range(0, span + 1)],
        "target": None if job.target_accuracy is None else y(job.target_accuracy),
        "left": pad_l, "right": width - pad_r, "top": pad_t, "bottom": height - pad_b,
    }
