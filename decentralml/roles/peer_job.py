"""Peer jobs: training with no coordinator (docs/concepts.md, "Peer jobs"; docs/protocol.md).

A creator publishes a bundle (the training code and the initial ``model.keras``) as a peer job
and has no special power afterwards. Every peer, each round while it is one:

1. starts from the last agreed model (the agreed aggregate of the latest round that has one, else
   the bundle's initial model; a newcomer does the same), written into a local copy of the bundle
   as ``model.keras``;
2. trains it on its own data in the sandbox, through the same runner and warm task hosts a
   contributor's round goes through (no other way to run untrusted code), uploads the update and
   posts its CID before the round's update deadline;
3. after the deadline fetches every update the round recorded on chain (each verified against its
   CID, bounded by the model's size), averages them itself in a fixed order (sorted by the peer's
   address) with a float64 accumulator, writes the result canonically (same updates, same bytes,
   same CID on every machine), uploads it and posts its CID;
4. once the round is over, reads the agreement: the aggregate a majority of the round's
   participants posted, and who posted something else.

Rounds end at deadline blocks, so a slow or vanished peer never holds up the others: a peer that
missed a round's update phase waits for the next round. The chain is the tracker and the store is
the transport; nothing here trusts another peer's word beyond what it can recompute.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from decentralml.chain.types import TaskType
from decentralml.errors import DecentralMLError, InvalidInput, PalletError

if TYPE_CHECKING:
    from decentralml.chain.client import Client
    from decentralml.chain.types import PeerJob
    from decentralml.fl.exchange import WeightSpec
    from decentralml.storage.base import Store
    from decentralml.storage.bundle import Bundle
    from decentralml.storage.runner import RunLimits
    from decentralml.storage.sandbox import SandboxMode
    from decentralml.storage.task_host import TaskHostPool

#: The model file inside a peer job's bundle (the contributor template's ``train.py`` loads it).
MODEL_FILE = "model.keras"
#: The initial model's weight layout (names, shapes, dtypes) as JSON, written into the bundle by
#: ``create_peer_job``: peers check updates against it without loading Keras, which would
#: otherwise take the aggregate phase's time on a busy machine.
LAYOUT_FILE = "peer_layout.json"
#: Largest layout file read, and most variables it may list.
MAX_LAYOUT_BYTES = 4 << 20
MAX_LAYOUT_ENTRIES = 100_000
#: Default seconds to fetch one update (see ``Peer.fetch_timeout``).
DEFAULT_FETCH_TIMEOUT = 30.0
#: Bytes an update or aggregate bundle may hold beyond its weights (sidecar, manifest, zip
#: headers): anything larger is refused before it is written out.
BUNDLE_OVERHEAD = 1 << 20
#: A stored update may hold at most this many times the model's weight bytes (float64 copies of
#: float32 weights are twice as large; more than that is not a model of this job).
MAX_UPDATE_FACTOR = 2

Progress = Callable[[str, dict[str, Any]], None]
Outcome = Literal["agreed", "disagreed", "no-majority", "missed", "vote-missed", "no-updates"]


class CreatedPeerJob(BaseModel):
    """A peer job on chain and the bundle behind it."""

    job_id: int
    assets_cid: str
    start_block: int
    rounds: int
    update_blocks: int
    aggregate_blocks: int
    max_peers: int
    block_number: int
    fee: int


class PeerRoundReport(BaseModel):
    """One round as this peer saw it. ``outcome``: ``agreed`` (my aggregate is the agreed one),
    ``disagreed`` (another was agreed), ``no-majority`` (nothing was agreed by the round's end),
    ``missed`` (the update phase was over before I could post), ``vote-missed`` (the round ended
    before my aggregate was posted) or ``no-updates`` (no update could be used)."""

    job_id: int
    round: int
    outcome: Outcome
    #: the agreed aggregate this round's training started from; None: the bundle's initial model
    started_from: str | None = None
    #: the round whose agreed model that was
    started_from_round: int | None = None
    update_cid: str | None = None
    #: my own aggregate's CID
    my_cid: str | None = None
    #: whether my aggregate was posted in time (a vote)
    voted: bool = False
    agreed_cid: str | None = None
    agree: bool | None = None
    #: peers that posted an update this round (sorted)
    participants: list[str] = []
    #: the update CIDs averaged, in the order they were averaged (sorted by peer address)
    aggregated: list[str] = []
    #: updates left out of the average, with the reason (identical for every honest peer)
    rejected: dict[str, str] = {}
    #: participants that voted for another aggregate than the agreed one
    minority: list[str] = []
    #: participants that posted no aggregate
    silent: list[str] = []
    num_examples: int | None = None
    metrics: dict[str, Any] = {}
    seconds: float = 0.0
    timings: dict[str, float] = {}


class PeerRunReport(BaseModel):
    """What ``Peer.run`` did: the rounds it went through and why it stopped."""

    job_id: int
    address: str
    joined: bool
    rounds: list[PeerRoundReport]
    stopped_because: str


class JoinReport(BaseModel):
    job_id: int
    address: str
    #: False when the account already was a peer (nothing sent)
    sent: bool
    #: the round the chain recorded the peer as joined in
    joined_round: int
    block_number: int | None = None


class LeaveReport(BaseModel):
    job_id: int
    address: str
    block_number: int


class RoundStatus(BaseModel):
    """One round as the chain records it."""

    round: int
    #: address -> update CID
    updates: dict[str, str]
    #: address -> aggregate CID
    aggregates: dict[str, str]
    agreed_cid: str | None
    #: participants that voted for another aggregate than the agreed one (sorted)
    minority: list[str]
    #: participants that posted an update but no aggregate by the round's end (sorted)
    silent: list[str] = []
    #: votes per aggregate CID
    votes: dict[str, int]
    phase: Literal["update", "aggregate", "over", "future"]


class PeerJobStatus(BaseModel):
    """A peer job's record and agreement per round, read from the chain alone."""

    job_id: int
    creator: str
    assets_cid: str
    start_block: int
    rounds: int
    update_blocks: int
    aggregate_blocks: int
    max_peers: int
    #: address -> the round it joined in
    peers: dict[str, int]
    head: int
    current_round: int | None
    phase: str
    end_block: int
    history: list[RoundStatus]


# --- creating -----------------------------------------------------------------------------------


def create_peer_job(client: Client, store: Store, bundle_dir: Path, *, model: Path | None,
                    rounds: int, update_blocks: int, aggregate_blocks: int, max_peers: int,
                    workdir: Path) -> CreatedPeerJob:
    """Pack ``bundle_dir`` (with ``model`` as its ``model.keras``, as the creator's ``publish``
    ships a round's model), store and pin it, then ``create_peer_job`` with its CID.

    Everything is checked before anything is packed or sent: the chain's bounds, a bundle that
    would not run, a model that is not a ``.keras`` file.
    """
    from decentralml.chain.types import CreatePeerJobArgs, build
    from decentralml.roles.creator import _check_keras_file
    from decentralml.storage.bundle import pack_bundle
    from decentralml.storage.preflight import check_bundle_runs, declared_entry

    if not bundle_dir.is_dir():
        raise InvalidInput("bundle_dir", f"{bundle_dir} is not a directory")
    build(CreatePeerJobArgs, limits=client.limits, assets_cid="x",
          assets_storage=store.storage_type, rounds=rounds, update_blocks=update_blocks,
          aggregate_blocks=aggregate_blocks, max_peers=max_peers)
    if model is not None:
        _check_keras_file(model)
    elif not (bundle_dir / MODEL_FILE).is_file():
        raise InvalidInput("model", f"{bundle_dir} has no {MODEL_FILE}",
                           "the initial model every peer starts from (--model FILE.keras)")
    meta = _template_meta(bundle_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="staging-") as tmp:
        staged = Path(tmp) / bundle_dir.name
        shutil.copytree(bundle_dir, staged, symlinks=True)
        if model is not None:
            shutil.copyfile(model, staged / MODEL_FILE)
        write_layout(staged / MODEL_FILE, staged / LAYOUT_FILE)
        check_bundle_runs(staged)
        entry, round_files = declared_entry(staged)
        packed = pack_bundle(staged, store, task_type=TaskType.ModelContributor,
                             requirements=tuple(meta.get("requirements", ())),
                             outputs=tuple(meta.get("outputs", ())),
                             metadata={"peer_job": True}, network=bool(meta.get("network")),
                             entry=entry, round_files=round_files)
    store.pin(packed.cid)
    created = client.create_peer_job(
        assets_cid=packed.cid, assets_storage=store.storage_type, rounds=rounds,
        update_blocks=update_blocks, aggregate_blocks=aggregate_blocks, max_peers=max_peers)
    job = client.peer_job(created.job_id)
    return CreatedPeerJob(job_id=created.job_id, assets_cid=packed.cid,
                          start_block=job.start_block, rounds=rounds,
                          update_blocks=update_blocks, aggregate_blocks=aggregate_blocks,
                          max_peers=max_peers, block_number=created.block_number,
                          fee=created.fee)


def write_layout(model_file: Path, dest: Path) -> None:
    """``dest``: the weight layout of the Keras model ``model_file`` (loaded with safe mode)."""
    from decentralml.fl import load_model
    from decentralml.fl.exchange import WeightSpec

    spec = WeightSpec.of(load_model(model_file))
    layout = {"names": list(spec.names), "shapes": [list(s) for s in spec.shapes],
              "dtypes": [d.str for d in spec.dtypes]}
    dest.write_text(json.dumps(layout, sort_keys=True), encoding="utf-8")


def read_layout(path: Path) -> WeightSpec:
    """The weight layout a bundle ships (:data:`LAYOUT_FILE`), bounded and checked."""
    import numpy as np

    from decentralml.fl.exchange import WeightSpec

    where = f"the bundle's {LAYOUT_FILE}"
    if path.stat().st_size > MAX_LAYOUT_BYTES:
        raise InvalidInput("bundle", f"{where} is larger than {MAX_LAYOUT_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names, shapes, dtypes = data["names"], data["shapes"], data["dtypes"]
        if not (isinstance(names, list) and isinstance(shapes, list)
                and isinstance(dtypes, list) and len(names) <= MAX_LAYOUT_ENTRIES):
            raise ValueError("names, shapes and dtypes must be lists")
        kinds = [np.dtype(str(d)) for d in dtypes]
        if any(k.kind not in "fiub" for k in kinds):
            raise ValueError("only numeric dtypes")
        dims = [tuple(int(d) for d in shape) for shape in shapes]
        if any(d < 0 for shape in dims for d in shape):
            raise ValueError("negative dimension")
        return WeightSpec(tuple(str(n) for n in names), tuple(dims), tuple(kinds))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput("bundle", f"{where} is not a weight layout: {exc}") from None


def template_bundle(template: str, dest: Path) -> Path:
    """``asset_templates/<template>`` copied to ``dest`` (kept for editing; an existing ``dest``
    is used as it is, so edits survive), as ``task create --template`` does."""
    from decentralml.assets import templates_dir

    source = templates_dir() / template
    if not (source / "start_task.sh").is_file():
        known = sorted(p.name for p in templates_dir().iterdir()
                       if (p / "start_task.sh").is_file())
        raise InvalidInput("template", f"unknown template {template!r}", f"one of {known}")
    if not dest.exists():
        shutil.copytree(source, dest)
    return dest


def _template_meta(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's ``template.json`` (requirements, outputs, network), or nothing."""
    described = bundle_dir / "template.json"
    if not described.is_file():
        return {}
    try:
        meta = json.loads(described.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("bundle_dir", f"{described} is not valid JSON: {exc}") from None
    return meta if isinstance(meta, dict) else {}


# --- reading the chain ----------------------------------------------------------------------------


def round_status(client: Client, job: PeerJob, r: int, head: int) -> RoundStatus:
    """Round ``r`` of ``job`` as the chain records it at ``head``."""
    updates = dict(client.round_updates(job.job_id, r))
    aggregates = dict(client.round_aggregates(job.job_id, r))
    agreed = client.agreed_model(job.job_id, r)
    votes: dict[str, int] = {}
    for cid in aggregates.values():
        votes[cid] = votes.get(cid, 0) + 1
    if head < job.start_block + r * job.round_length:
        phase: Literal["update", "aggregate", "over", "future"] = "future"
    elif head < job.update_deadline(r):
        phase = "update"
    elif head < job.round_end(r):
        phase = "aggregate"
    else:
        phase = "over"
    # a vote against the agreed model; with no agreed model there is no minority, only a split
    minority = sorted(a for a, cid in aggregates.items() if agreed is not None and cid != agreed)
    silent = sorted(a for a in updates if a not in aggregates) if phase == "over" else []
    return RoundStatus(round=r, updates=updates, aggregates=aggregates, agreed_cid=agreed,
                       minority=minority, silent=silent, votes=dict(sorted(votes.items())),
                       phase=phase)


def peer_job_status(client: Client, job_id: int, *, last_rounds: int | None = None
                    ) -> PeerJobStatus:
    """``job_id``'s peers and every started round's participants, votes and agreed model (only
    the latest ``last_rounds`` of them when given: a job may have thousands)."""
    if last_rounds is not None and last_rounds < 1:
        raise InvalidInput("last_rounds", f"is {last_rounds}", ">= 1")
    job = client.peer_job(job_id)
    head = client.block_number()
    current = job.round_at(head)
    last = job.rounds - 1 if current is None else current
    first = 0 if last_rounds is None else max(0, last - last_rounds + 1)
    history = [round_status(client, job, r, head) for r in range(first, last + 1)]
    return PeerJobStatus(job_id=job.job_id, creator=job.creator, assets_cid=job.assets_cid,
                         start_block=job.start_block, rounds=job.rounds,
                         update_blocks=job.update_blocks, aggregate_blocks=job.aggregate_blocks,
                         max_peers=job.max_peers, peers=dict(client.peers(job_id)), head=head,
                         current_round=current, phase=job.phase_at(head),
                         end_block=job.end_block, history=history)


def last_agreed(client: Client, job_id: int, before: int) -> tuple[int, str] | None:
    """The latest round before ``before`` that has an agreed model, and its CID."""
    for r in range(before - 1, -1, -1):
        cid = client.agreed_model(job_id, r)
        if cid is not None:
            return r, cid
    return None


# --- the peer -------------------------------------------------------------------------------------


class Peer:
    """One participant of peer jobs: joins, trains, aggregates and votes, round after round."""

    def __init__(self, client: Client, store: Store, *, home: Path, data_dir: Path | None = None,
                 timeout: float = 3600.0, sandbox: SandboxMode = "auto",
                 allow_network: bool = False, max_output_bytes: int | None = None,
                 max_processes: int | None = None,
                 fetch_timeout: float = DEFAULT_FETCH_TIMEOUT) -> None:
        if timeout <= 0:
            raise InvalidInput("timeout", f"is {timeout}", "> 0 seconds")
        if fetch_timeout <= 0:
            raise InvalidInput("fetch_timeout", f"is {fetch_timeout}", "> 0 seconds")
        if data_dir is not None and not data_dir.is_dir():
            raise InvalidInput("data_dir", f"{data_dir} is not a directory")
        self.client = client
        self.store = store
        self.home = home
        self.data_dir = data_dir
        self.timeout = timeout
        self.sandbox: SandboxMode = sandbox
        self.allow_network = allow_network
        self.max_output_bytes = max_output_bytes
        self.max_processes = max_processes
        #: seconds one update or agreed model may take to fetch: an update nobody can fetch
        #: (posted by a peer that never stored it) is given up on, by every honest peer alike,
        #: instead of holding this one past the vote
        self.fetch_timeout = fetch_timeout
        #: weight layouts of the jobs' initial models, by bundle CID
        self._specs: dict[str, WeightSpec] = {}
        #: the jobs' models, loaded once (importing Keras takes seconds), by bundle CID
        self._models: dict[str, Any] = {}

    @property
    def address(self) -> str:
        address = self.client.address
        if address is None:
            raise InvalidInput("client", "a peer's client needs a signing account")
        return address

    @property
    def limits(self) -> RunLimits:
        from decentralml.storage.runner import (
            DEFAULT_MAX_OUTPUT_BYTES,
            DEFAULT_MAX_PROCESSES,
            RunLimits,
        )

        return RunLimits(timeout=self.timeout,
                         max_output_bytes=self.max_output_bytes or DEFAULT_MAX_OUTPUT_BYTES,
                         max_processes=self.max_processes or DEFAULT_MAX_PROCESSES)

    def job_dir(self, job_id: int) -> Path:
        """Where this account keeps a job's bundle and rounds, per chain."""
        chain = self.client.genesis_hash.removeprefix("0x")[:16]
        return self.home / "peer" / chain / self.address / f"job-{job_id}"

    # --- membership ----------------------------------------------------------------------------

    def join(self, job_id: int) -> JoinReport:
        """Join ``job_id`` (nothing is sent when this account already is a peer)."""
        peers = self.client.peers(job_id)
        if self.address in peers:
            return JoinReport(job_id=job_id, address=self.address, sent=False,
                              joined_round=peers[self.address])
        job = self.client.peer_job(job_id)  # PeerJobNotFound before anything is sent
        result = self.client.join_peer_job(job_id)
        joined = self.client.peers(job_id).get(self.address)
        if joined is None:  # pragma: no cover - the chain accepted the join
            joined = job.round_at(result.block_number) or 0
        return JoinReport(job_id=job_id, address=self.address, sent=True, joined_round=joined,
                          block_number=result.block_number)

    def leave(self, job_id: int) -> LeaveReport:
        """Stop being a peer of ``job_id`` (what was posted stays); best between rounds."""
        if self.address not in self.client.peers(job_id):
            self.client.peer_job(job_id)  # PeerJobNotFound first, as the chain orders them
            raise InvalidInput("job_id", f"{self.address} is not a peer of peer job {job_id}")
        result = self.client.leave_peer_job(job_id)
        return LeaveReport(job_id=job_id, address=self.address, block_number=result.block_number)

    # --- rounds --------------------------------------------------------------------------------

    def run(self, job_id: int, *, rounds: int | None = None,
            on_progress: Progress | None = None, on_log: Callable[[str], None] | None = None
            ) -> PeerRunReport:
        """Join if needed, then take part in rounds until the job ends or ``rounds`` of its
        rounds have gone by (counted from the first round this peer can take part in: the
        current one, or the next when its update phase is over)."""
        from decentralml.storage.task_host import TaskHostPool

        if rounds is not None and rounds < 1:
            raise InvalidInput("rounds", f"is {rounds}", ">= 1")
        if self.data_dir is None:
            raise InvalidInput("data_dir", "a peer trains on its own data: give its directory")
        progress = on_progress or (lambda event, data: None)
        from decentralml.storage.sandbox import resolve

        resolve(self.sandbox)  # no sandbox here: refuse before joining
        job = self.client.peer_job(job_id)
        head = self.client.block_number()
        first = job.round_at(head)
        if first is None:
            raise InvalidInput("job_id", f"peer job {job_id} has ended (block {job.end_block})")
        joined = self.join(job_id)
        progress("joined", joined.model_dump(mode="json"))
        start = max(first, joined.joined_round)
        head = self.client.block_number()
        if job.round_at(head) == start and job.phase_at(head) == "aggregate" \
                and self.address not in self.client.round_updates(job_id, start):
            # joined during an aggregate phase: the protocol counts us from the next round
            progress("round-skipped", {"round": start, "reason": "its update phase was over "
                                       "when this peer started"})
            start += 1
        last = job.rounds - 1 if rounds is None else min(job.rounds - 1, start + rounds - 1)
        reports: list[PeerRoundReport] = []
        if start > last:
            return PeerRunReport(job_id=job_id, address=self.address, joined=joined.sent,
                                 rounds=[], stopped_because="no round left to take part in")
        bundle = self._job_bundle(job)
        with TaskHostPool(self.job_dir(job_id) / "hosts") as hosts:
            for r in range(start, last + 1):
                report = self.run_round(job, r, bundle, hosts=hosts, on_progress=progress,
                                        on_log=on_log, next_round=r < last)
                reports.append(report)
                progress("round-done", report.model_dump(mode="json"))
        stopped = (f"the job ended after round {job.rounds - 1}" if last == job.rounds - 1
                   else f"ran {last - start + 1} round(s) as asked")
        return PeerRunReport(job_id=job_id, address=self.address, joined=joined.sent,
                             rounds=reports, stopped_because=stopped)

    def run_round(self, job: PeerJob, r: int, bundle: Bundle, *, hosts: TaskHostPool | None,
                  on_progress: Progress | None = None,
                  on_log: Callable[[str], None] | None = None,
                  next_round: bool = False) -> PeerRoundReport:
        """Round ``r``: train and post an update (unless already posted), aggregate and vote
        (unless already voted), then read the agreement once the round is over. With
        ``next_round`` the model for the next round is loaded while this one ends, so the next
        update phase is left to training."""
        progress = on_progress or (lambda event, data: None)
        started = time.monotonic()
        timings: dict[str, float] = {}
        job_id = job.job_id
        me = self.address
        self._wait_block(job.start_block + r * job.round_length)
        report = PeerRoundReport(job_id=job_id, round=r, outcome="missed")
        agreed_before = last_agreed(self.client, job_id, r)
        if agreed_before is not None:
            report.started_from_round, report.started_from = agreed_before
        update_cid = self.client.round_updates(job_id, r).get(me)
        if update_cid is None:
            if self._too_late(job.update_deadline(r)):
                return self._skip(job, r, report, started, progress)
            progress("round-training", {"round": r, "started_from": report.started_from})
            mark = time.monotonic()
            out_dir, num_examples, metrics = self._train(job, r, bundle, report.started_from,
                                                         hosts, on_log)
            timings["train"] = time.monotonic() - mark
            mark = time.monotonic()
            update_cid = self._upload(out_dir, job_id, r, "update", num_examples, metrics)
            if self._too_late(job.update_deadline(r)):
                return self._skip(job, r, report, started, progress)
            try:
                self.client.post_update(job_id, r, update_cid)
            except PalletError:  # WrongPhase/WrongRound: the deadline passed meanwhile
                return self._skip(job, r, report, started, progress)
            timings["upload"] = time.monotonic() - mark
            report.num_examples, report.metrics = num_examples, metrics
            progress("round-update-posted", {"round": r, "update_cid": update_cid})
        report.update_cid = update_cid
        self._spec(bundle)  # read before the deadline: the aggregate phase is for averaging
        self._wait_block(job.update_deadline(r))
        mark = time.monotonic()
        my_cid = self.client.round_aggregates(job_id, r).get(me)
        report.voted = my_cid is not None
        updates = self.client.round_updates(job_id, r)
        report.participants = sorted(updates)
        if my_cid is None:
            my_cid = self._aggregate(job, r, bundle, updates, report)
            timings["aggregate"] = time.monotonic() - mark
            if my_cid is not None:
                report.voted = self._vote(job, r, my_cid, progress)
        report.my_cid = my_cid
        if next_round:
            self._initial_model(bundle)
        self._wait_block(job.round_end(r))
        status = round_status(self.client, job, r, self.client.block_number())
        report.agreed_cid = status.agreed_cid
        report.minority = status.minority
        report.silent = status.silent
        report.participants = sorted(status.updates)
        report.agree = None if my_cid is None or status.agreed_cid is None \
            else status.agreed_cid == my_cid
        report.outcome = ("no-updates" if my_cid is None
                          else "vote-missed" if not report.voted
                          else "no-majority" if status.agreed_cid is None
                          else "agreed" if report.agree else "disagreed")
        report.seconds = time.monotonic() - started
        report.timings = timings
        return report

    def _vote(self, job: PeerJob, r: int, cid: str, progress: Progress) -> bool:
        """Post ``cid`` as my aggregate of round ``r`` unless the round is over; whether the
        vote counted."""
        if self._too_late(job.round_end(r)):
            progress("round-vote-missed", {"round": r, "reason": "the aggregate phase ended "
                     f"(block {self.client.block_number()}, round end {job.round_end(r)})"})
            return False
        try:
            self.client.post_aggregate(job.job_id, r, cid)
        except PalletError as exc:  # WrongRound: the round ended meanwhile
            progress("round-vote-missed", {"round": r, "reason": f"{type(exc).__name__}: {exc}"})
            return False
        progress("round-aggregate-posted", {"round": r, "my_cid": cid})
        return True

    def _skip(self, job: PeerJob, r: int, report: PeerRoundReport, started: float,
              progress: Progress) -> PeerRoundReport:
        """The update phase is over without my update: wait for the round to end."""
        progress("round-missed", {"round": r, "block": self.client.block_number(),
                                   "deadline": job.update_deadline(r)})
        self._wait_block(job.round_end(r))
        report.outcome = "missed"
        report.seconds = time.monotonic() - started
        return report

    def _too_late(self, deadline: int) -> bool:
        """A transaction sent now lands in the next block at the earliest: is that past
        ``deadline`` (the first block of the next phase)?"""
        return self.client.block_number() + 1 >= deadline

    def _wait_block(self, number: int) -> None:
        """Until the best block is ``number``; a round's deadline, not a timeout, bounds it."""
        if self.client.block_number() < number:
            self.client.wait_for_block(number, timeout=float("inf"))

    # --- the bundle and the model ---------------------------------------------------------------

    def _job_bundle(self, job: PeerJob) -> Bundle:
        """The job's bundle, fetched and verified against its CID once (re-verified from disk
        on later runs)."""
        from decentralml.storage.bundle import fetch_bundle, load_bundle

        dest = self.job_dir(job.job_id) / "bundle"
        if dest.is_dir():
            try:
                bundle = load_bundle(dest, cid=job.assets_cid)
            except DecentralMLError:
                shutil.rmtree(dest)
            else:
                return bundle
        bundle = fetch_bundle(self.store, job.assets_cid, dest)
        if not (bundle.path / MODEL_FILE).is_file() or bundle.manifest.kind != "task":
            raise InvalidInput("job_id", f"peer job {job.job_id}'s bundle has no {MODEL_FILE} "
                               "to start from")
        return bundle

    def _initial_model(self, bundle: Bundle) -> Any:
        """The job's Keras model, loaded once (safe mode); its weights are each round's to set."""
        model = self._models.get(bundle.cid)
        if model is None:
            from decentralml.fl import load_model

            model = self._models[bundle.cid] = load_model(bundle.path / MODEL_FILE)
        return model

    def _spec(self, bundle: Bundle) -> WeightSpec:
        from decentralml.fl.exchange import WeightSpec

        spec = self._specs.get(bundle.cid)
        if spec is None:
            layout = bundle.path / LAYOUT_FILE
            spec = (read_layout(layout) if layout.is_file()
                    else WeightSpec.of(self._initial_model(bundle)))
            self._specs[bundle.cid] = spec
        return spec

    def _round_bundle(self, job: PeerJob, r: int, bundle: Bundle,
                      start_cid: str | None) -> Bundle:
        """The job's bundle with the round's starting model as ``model.keras``: the bundle
        itself for the initial model, else a local copy (re-hashed into its own manifest)."""
        if start_cid is None:
            return bundle
        from decentralml.fl import save_model, set_weights
        from decentralml.fl.exchange import WeightSpec, load_update
        from decentralml.storage.bundle import MANIFEST_NAME, build_manifest, load_bundle

        model = self._initial_model(bundle)
        spec = self._spec(bundle)
        if WeightSpec.of(model) != spec:
            raise InvalidInput("job_id", f"peer job {job.job_id}'s {LAYOUT_FILE} does not "
                               f"describe its {MODEL_FILE}")
        agreed = self._fetch(start_cid, self.job_dir(job.job_id) / "agreed", spec)
        set_weights(model, load_update(agreed.path, like=model).weights)
        dest = self.job_dir(job.job_id) / f"round-{r}" / "bundle"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(bundle.path, dest)
        (dest / MANIFEST_NAME).unlink()
        save_model(model, dest / MODEL_FILE)
        m = bundle.manifest
        manifest = build_manifest(dest, task_type=m.task_type, entrypoint=m.entrypoint,
                                  requirements=m.requirements, outputs=m.outputs,
                                  metadata=m.metadata, network=m.network, entry=m.python_entry,
                                  round_files=m.round_files)
        (dest / MANIFEST_NAME).write_bytes(manifest.to_json())
        return load_bundle(dest, cid=f"{job.assets_cid}+{start_cid}")

    def _fetch(self, cid: str, root: Path, spec: WeightSpec) -> Bundle:
        """An update or aggregate bundle, verified against ``cid`` and bounded by the model's
        size (fetched once per CID: content-addressed bytes never change)."""
        from decentralml.fl.federate import _CID_RE
        from decentralml.storage.bundle import fetch_bundle, load_bundle

        if not _CID_RE.match(cid):
            raise InvalidInput("cid", f"{cid[:80]!r} is not a plain base32/base58 CID")
        dest = root / cid
        if dest.is_dir():
            try:
                return load_bundle(dest, cid=cid)
            except DecentralMLError:
                shutil.rmtree(dest)
        weights = sum(int(_prod(s)) * d.itemsize for s, d in zip(spec.shapes, spec.dtypes,
                                                                   strict=True))
        bound = MAX_UPDATE_FACTOR * weights + BUNDLE_OVERHEAD
        return fetch_bundle(self.store, cid, dest, max_total_size=bound, max_file_size=bound,
                            timeout=self.fetch_timeout)

    # --- the phases -----------------------------------------------------------------------------

    def _train(self, job: PeerJob, r: int, bundle: Bundle, start_cid: str | None,
               hosts: TaskHostPool | None, on_log: Callable[[str], None] | None
               ) -> tuple[Path, int | None, dict[str, Any]]:
        """One sandboxed training run from the round's starting model, as a contributor's run
        goes (a warm task host for a bundle with a Python entry point, else a cold run)."""
        from decentralml.storage._fs import remove_tree
        from decentralml.storage.runner import run_bundle

        round_bundle = self._round_bundle(job, r, bundle, start_cid)
        run_dir = self.job_dir(job.job_id) / f"round-{r}" / "run"
        if run_dir.exists():
            remove_tree(run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        task_id, submission_id = f"peer-job-{job.job_id}", f"round-{r}"
        if hosts is not None and round_bundle.manifest.python_entry is not None:
            chain = self.client.genesis_hash.removeprefix("0x")[:16]
            result = hosts.run(round_bundle, creator=job.creator,
                               job=f"peer-job:{chain}:{job.job_id}", data_dir=self.data_dir,
                               workdir=run_dir, limits=self.limits, sandbox=self.sandbox,
                               allow_network=self.allow_network, on_log=on_log,
                               task_id=task_id, submission_id=submission_id)
        else:
            result = run_bundle(round_bundle, data_dir=self.data_dir, workdir=run_dir,
                                limits=self.limits, on_log=on_log, sandbox=self.sandbox,
                                allow_network=self.allow_network, task_id=task_id,
                                submission_id=submission_id)
        return Path(result.output_dir), result.num_examples, dict(result.metrics or {})

    def _upload(self, directory: Path, job_id: int, r: int, kind: str,
                num_examples: int | None, metrics: dict[str, Any],
                extra: dict[str, Any] | None = None) -> str:
        from decentralml.storage.bundle import pack_bundle

        packed = pack_bundle(directory, self.store, task_type=TaskType.ModelContributor,
                             entrypoint=None, kind="result", num_examples=num_examples,
                             metrics=metrics, exclude=(),
                             metadata={"peer_job": job_id, "round": r, "kind": kind,
                                       **(extra or {})})
        self.store.pin(packed.cid)
        return packed.cid

    def _aggregate(self, job: PeerJob, r: int, bundle: Bundle, updates: dict[str, str],
                   report: PeerRoundReport) -> str | None:
        """Fetch the round's updates, average them in address order, store the canonical
        result; its CID (None when no update could be used)."""
        from decentralml.fl.exchange import load_update

        spec = self._spec(bundle)
        root = self.job_dir(job.job_id) / "fetched"
        loaded = []
        used: list[str] = []
        seen: dict[str, str] = {}
        for address in sorted(updates):
            cid = updates[address]
            if cid in seen:  # the same bytes twice count once, for the first poster in order
                report.rejected[cid] = f"also posted by {seen[cid]}; counted once"
                continue
            seen[cid] = address
            try:
                fetched = self._fetch_retrying(cid, root, spec)
                # keyed by the poster's address: FedAvg sums in key order, as every peer does
                loaded.append(load_update(fetched.path, like=spec, lazy=True, source=cid,
                                          key=address))
            except DecentralMLError as exc:
                report.rejected[cid] = f"{type(exc).__name__}: {exc}"
                continue
            used.append(cid)
        report.aggregated = used
        if not loaded:
            return None
        out = self.job_dir(job.job_id) / f"round-{r}" / "aggregate"
        if out.exists():
            shutil.rmtree(out)
        total = _write_aggregate(loaded, spec, out)
        return self._upload(out, job.job_id, r, "aggregate", total, {},
                            extra={"updates": used})

    def _fetch_retrying(self, cid: str, root: Path, spec: WeightSpec) -> Bundle:
        """A transient store failure must not make this peer's average differ from the others':
        retried a few times; bad content is refused at once."""
        from decentralml.errors import IntegrityError, StorageError

        for attempt in range(2):
            try:
                return self._fetch(cid, root, spec)
            except StorageError as exc:
                if isinstance(exc, IntegrityError) or attempt == 1:
                    raise
                time.sleep(1.0)
        raise AssertionError("unreachable")  # pragma: no cover


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _write_aggregate(updates: list[Any], spec: WeightSpec, out: Path) -> int:
    """Average ``updates`` (FedAvg by claimed examples, a float64 accumulator, summed in the
    order of their keys) and write the result in the update format, byte-reproducibly, into
    ``out``; returns the examples it stands for."""
    from decentralml.fl.exchange import save_update
    from decentralml.fl.fedavg import FedAvg

    weights = FedAvg(accumulator="float64").aggregate(updates)  # bit-identical on any machine
    total = sum(int(u.num_examples) for u in updates)
    save_update(weights, out, num_examples=total, names=list(spec.names))
    return total
