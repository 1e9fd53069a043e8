"""The DecentralML pallet, exactly as docs/protocol.md specifies it.

Tasks escrow ``reward * max_assignments`` in a per-task account derived from the pallet id
(``modl ++ decentml ++ u32``), workers take slots, submit results, and the creator (or AutoAccept)
pays each accepted result out of escrow; closing refunds what is left. Every check below is in
the order the protocol lists, so the first failing rule names the error a client sees.

Protocol 2 adds task terms (data shards assigned per slot, pay by contribution settled in one
call) and peer jobs (rounds of updates and majority-agreed aggregates, no coordinator).
"""

from __future__ import annotations

from typing import Any

from decentralml.chain.types import (
    MAX_ASSIGNMENTS,
    MAX_CID_LENGTH,
    MAX_PEER_ROUNDS,
    MAX_PEERS,
    MAX_QUESTION_LENGTH,
    MAX_RESULT_LENGTH,
    MAX_SCORE,
    PALLET_ID,
    U32_MAX,
    U128_MAX,
    contribution_payouts,
    escrow_account_id,
)
from decentralml.devnode.pallet import (
    ConstantDef,
    DispatchFailure,
    ErrorDef,
    EventDef,
    Origin,
    Pallet,
    PostInfo,
    Storage,
    call,
)
from decentralml.devnode.pallets.balances import EXISTENTIAL_DEPOSIT
from decentralml.devnode.pallets.decentralml_weights import WEIGHTS
from decentralml.devnode.primitives import ACCOUNT_ID, Weight
from decentralml.devnode.scale import (
    BOOL,
    BYTES,
    U32,
    U128,
    UNIT,
    ByteArray,
    Field,
    Option,
    Struct,
    Tuple,
    Vec,
    simple_enum,
)

MIN_REWARD = EXISTENTIAL_DEPOSIT

TASK_TYPE = simple_enum("pallet_decentralml::types::TaskType",
                        ["DataAnnotator", "ModelContributor", "ModelEngineer"])
VALIDATION_STRATEGY = simple_enum("pallet_decentralml::types::ValidationStrategy",
                                  ["AutoAccept", "ManualAccept", "CustomAccept"])
STORAGE_TYPE = simple_enum("pallet_decentralml::types::StorageType", ["Ipfs", "Local", "Http"])
TASK_STATUS = simple_enum("pallet_decentralml::types::TaskStatus", ["Open", "Closed"])
SUBMISSION_STATUS = simple_enum("pallet_decentralml::types::SubmissionStatus", [
    "Assigned", "PendingValidation", "Accepted", "Rejected", "Abandoned"])
PAYOUT_MODE = simple_enum("pallet_decentralml::types::PayoutMode", ["Flat", "ByContribution"])


def _bounded(bound: str) -> Struct:
    return Struct("bounded_collections::bounded_vec::BoundedVec",
                  [Field(None, BYTES, "Vec<T>")], params=[("T", None), ("S", None)],
                  docs=[f"BoundedVec<u8, {bound}>"])



#: The runtime's ``DbWeight`` (RocksDbWeight): one read 25 us, one write 100 us, as ref_time.
DB_READ = 25_000_000
DB_WRITE = 100_000_000


def benchmarked(call: str, **components: int) -> Weight:
    """The runtime's benchmarked weight of ``call`` (the generated table) at these component
    values: the same formula as weights.rs, so the devnode's fees are the runtime's."""
    ref_time, proof_size, reads, writes, per = WEIGHTS[call]
    for name, value in components.items():
        d_ref, d_proof, d_reads, d_writes = per.get(name, (0, 0, 0, 0))
        ref_time += d_ref * value
        proof_size += d_proof * value
        reads += d_reads * value
        writes += d_writes * value
    return Weight(ref_time + DB_READ * reads + DB_WRITE * writes, proof_size)


def _clamp(value: Any, bound: int) -> int:
    return min(len(value), bound) if value is not None else 0

QUESTION = _bounded("MaxQuestionLength")
CID = _bounded("MaxCidLength")
RESULT = _bounded("MaxResultLength")

TASK_INFO = Struct("pallet_decentralml::types::TaskInfo", [
    Field("creator", ACCOUNT_ID, "AccountId"),
    Field("task_type", TASK_TYPE, "TaskType"),
    Field("question", QUESTION, "BoundedVec<u8, MaxQuestionLength>"),
    Field("reward", U128, "Balance"),
    Field("max_assignments", U32, "u32"),
    Field("active_assignments", U32, "u32"),
    Field("accepted_results", U32, "u32"),
    Field("validation_strategy", VALIDATION_STRATEGY, "ValidationStrategy"),
    Field("assets_cid", CID, "BoundedVec<u8, MaxCidLength>"),
    Field("assets_storage", STORAGE_TYPE, "StorageType"),
    Field("created_block", U32, "BlockNumber"),
    Field("expiration_block", U32, "BlockNumber"),
    Field("status", TASK_STATUS, "TaskStatus"),
])

SUBMISSION = Struct("pallet_decentralml::types::Submission", [
    Field("task_id", U32, "TaskId"),
    Field("worker", ACCOUNT_ID, "AccountId"),
    Field("status", SUBMISSION_STATUS, "SubmissionStatus"),
    Field("result", RESULT, "BoundedVec<u8, MaxResultLength>"),
    Field("result_cid", Option(CID), "Option<BoundedVec<u8, MaxCidLength>>"),
    Field("result_storage", Option(STORAGE_TYPE), "Option<StorageType>"),
    Field("assigned_block", U32, "BlockNumber"),
    Field("submitted_block", Option(U32), "Option<BlockNumber>"),
    Field("validated_block", Option(U32), "Option<BlockNumber>"),
])

TASK_TERMS = Struct("pallet_decentralml::types::TaskTerms", [
    Field("shards", U32, "u32"),
    Field("payout", PAYOUT_MODE, "PayoutMode"),
    Field("floor", U128, "Balance"),
    Field("holdout_commitment", Option(ByteArray(32)), "Option<[u8; 32]>"),
    Field("scoring_commitment", Option(ByteArray(32)), "Option<[u8; 32]>"),
])

#: What a task created with ``create_task`` (no ``Terms`` entry) is held to.
DEFAULT_TERMS: dict[str, Any] = {"shards": 0, "payout": "Flat", "floor": 0,
                                 "holdout_commitment": None, "scoring_commitment": None}

PEER_JOB = Struct("pallet_decentralml::types::PeerJob", [
    Field("creator", ACCOUNT_ID, "AccountId"),
    Field("assets_cid", CID, "BoundedVec<u8, MaxCidLength>"),
    Field("assets_storage", STORAGE_TYPE, "StorageType"),
    Field("start_block", U32, "BlockNumber"),
    Field("rounds", U32, "u32"),
    Field("update_blocks", U32, "u32"),
    Field("aggregate_blocks", U32, "u32"),
    Field("max_peers", U32, "u32"),
    Field("peers", U32, "u32"),
])

#: A peer job's round as a storage key: ``(PeerJobId, round)``.
ROUND_KEY = Tuple(U32, U32)

_TASK_ID = Field("task_id", U32, "TaskId")
_SUBMISSION_ID = Field("submission_id", U32, "SubmissionId")
_WORKER = Field("worker", ACCOUNT_ID, "T::AccountId")
_JOB_ID = Field("job_id", U32, "PeerJobId")
_PEER = Field("peer", ACCOUNT_ID, "T::AccountId")
_ROUND = Field("round", U32, "u32")
_B2 = "Blake2_128Concat"


#: The arguments ``create_task`` and ``create_task_with_terms`` share, in call order.
_CREATE_TASK_FIELDS = (
    Field("task_type", TASK_TYPE, "TaskType"),
    Field("question", BYTES, "Vec<u8>"),
    Field("reward", U128, "BalanceOf<T>"),
    Field("max_assignments", U32, "u32"),
    Field("validation_strategy", VALIDATION_STRATEGY, "ValidationStrategy"),
    Field("assets_cid", BYTES, "Vec<u8>"),
    Field("assets_storage", STORAGE_TYPE, "StorageType"),
    Field("expiration_block", U32, "BlockNumberFor<T>"),
)


class DecentralML(Pallet):
    """The ML task marketplace: tasks with escrowed rewards, submissions, validation."""

    NAME = "DecentralML"
    INDEX = 8
    MODULE = "pallet_decentralml"

    CONSTANTS = (
        ConstantDef("PalletId", Struct("frame_support::PalletId",
                                       [Field(None, ByteArray(8), "[u8; 8]")]), PALLET_ID,
                    "Seed of every task's escrow account."),
        ConstantDef("MaxAssignments", U32, MAX_ASSIGNMENTS, "Upper bound of `max_assignments`."),
        ConstantDef("MaxQuestionLength", U32, MAX_QUESTION_LENGTH, "Bytes of `question`."),
        ConstantDef("MaxCidLength", U32, MAX_CID_LENGTH,
                    "Bytes of `assets_cid` and `result_cid`."),
        ConstantDef("MaxResultLength", U32, MAX_RESULT_LENGTH, "Bytes of the inline `result`."),
        ConstantDef("MinReward", U128, MIN_REWARD,
                    "Lowest `reward`: the Balances existential deposit."),
        ConstantDef("MaxScore", U32, MAX_SCORE,
                    "Highest contribution score (parts per million)."),
        ConstantDef("MaxPeers", U32, MAX_PEERS, "Upper bound of a peer job's `max_peers`."),
        ConstantDef("MaxPeerRounds", U32, MAX_PEER_ROUNDS,
                    "Upper bound of a peer job's `rounds`."),
    )
    EVENTS = (
        EventDef("TaskCreated", (_TASK_ID, Field("creator", ACCOUNT_ID, "T::AccountId"),
                                 Field("task_type", TASK_TYPE, "TaskType"),
                                 Field("reward", U128, "BalanceOf<T>"),
                                 Field("max_assignments", U32, "u32"),
                                 Field("escrow", U128, "BalanceOf<T>"),
                                 Field("expiration_block", U32, "BlockNumberFor<T>")),
                 "A task was created and its escrow funded."),
        EventDef("TaskAccepted", (_TASK_ID, _SUBMISSION_ID, _WORKER),
                 "A worker took a slot of a task."),
        EventDef("ResultSubmitted", (_TASK_ID, _SUBMISSION_ID, _WORKER),
                 "A worker submitted a result."),
        EventDef("ResultAccepted", (_TASK_ID, _SUBMISSION_ID, _WORKER,
                                    Field("reward", U128, "BalanceOf<T>")),
                 "A result was accepted and its reward paid."),
        EventDef("ResultRejected", (_TASK_ID, _SUBMISSION_ID, _WORKER),
                 "A result was rejected; the slot is open again."),
        EventDef("TaskClosed", (_TASK_ID, Field("refund", U128, "BalanceOf<T>"),
                                Field("abandoned", U32, "u32")),
                 "A task was closed and its escrow's whole balance refunded."),
        EventDef("SubmissionAbandoned", (_TASK_ID, _SUBMISSION_ID, _WORKER),
                 "A worker gave its slot back; the slot is open again."),
        EventDef("ShardAssigned", (_TASK_ID, _SUBMISSION_ID, Field("shard", U32, "u32")),
                 "A submission was assigned a data shard of its task."),
        EventDef("ContributionsSettled", (_TASK_ID, Field("results", U32, "u32"),
                                          Field("pool", U128, "BalanceOf<T>"),
                                          Field("paid", U128, "BalanceOf<T>"),
                                          Field("dust", U128, "BalanceOf<T>")),
                 "Results were accepted and paid from the pool by their scores."),
        EventDef("PeerJobCreated", (_JOB_ID, Field("creator", ACCOUNT_ID, "T::AccountId"),
                                    Field("rounds", U32, "u32"),
                                    Field("update_blocks", U32, "u32"),
                                    Field("aggregate_blocks", U32, "u32"),
                                    Field("max_peers", U32, "u32")),
                 "A peer job was created."),
        EventDef("PeerJoined", (_JOB_ID, _PEER, _ROUND), "An account joined a peer job."),
        EventDef("PeerLeft", (_JOB_ID, _PEER, _ROUND), "A peer left a peer job."),
        EventDef("UpdatePosted", (_JOB_ID, _ROUND, _PEER),
                 "A peer posted its update for a round."),
        EventDef("AggregatePosted", (_JOB_ID, _ROUND, _PEER),
                 "A participant posted its aggregate for a round."),
        EventDef("RoundAgreed", (_JOB_ID, _ROUND,
                                 Field("model_cid", CID, "BoundedVec<u8, T::MaxCidLength>")),
                 "A majority of a round's participants posted the same aggregate."),
    )
    ERRORS = (
        ErrorDef("TaskNotFound", "No task with that id."),
        ErrorDef("SubmissionNotFound", "No submission with that id."),
        ErrorDef("TaskClosed", "The task is closed."),
        ErrorDef("TaskExpired", "The task's expiration block has been reached."),
        ErrorDef("NoSlotsLeft", "Every slot of the task is taken or accepted."),
        ErrorDef("AlreadyAccepted", "The worker already holds a submission for this task."),
        ErrorDef("CreatorCannotAccept", "A creator cannot work on its own task."),
        ErrorDef("NotTaskCreator", "Only the task's creator may do this."),
        ErrorDef("NotSubmissionWorker", "Only the submission's worker may do this."),
        ErrorDef("InvalidStatus", "The submission is not in the status this call needs."),
        ErrorDef("PendingValidations", "Results are still waiting for validation."),
        ErrorDef("ZeroReward", "The reward is zero."),
        ErrorDef("RewardTooLow", "The reward is below `MinReward`."),
        ErrorDef("InvalidQuestion", "The question is empty or longer than `MaxQuestionLength`."),
        ErrorDef("InvalidMaxAssignments", "`max_assignments` is 0 or above `MaxAssignments`."),
        ErrorDef("ExpirationInPast", "The expiration block is not after the current block."),
        ErrorDef("EmptyAssets", "The assets CID is empty."),
        ErrorDef("AssetsCidTooLong", "The assets CID is longer than `MaxCidLength`."),
        ErrorDef("EmptyResult", "The inline result is empty."),
        ErrorDef("ResultTooLong", "The inline result is longer than `MaxResultLength`."),
        ErrorDef("InvalidResultCid", "The result CID is empty or longer than `MaxCidLength`."),
        ErrorDef("MissingStorageType", "`result_cid` and `result_storage` must be given together."),
        ErrorDef("Overflow", "An arithmetic or id counter overflow."),
        ErrorDef("InsufficientBalance", "The creator cannot fund the escrow and stay above the "
                 "existential deposit."),
        ErrorDef("InvalidShards", "`shards` must be 0 or equal to `max_assignments`."),
        ErrorDef("InvalidTerms", "`ByContribution` with `AutoAccept`, a floor above the reward, "
                 "or a floor under `Flat`."),
        ErrorDef("PaidByContribution", "The task pays by contribution: accept its results with "
                 "`settle_contributions`."),
        ErrorDef("NotPaidByContribution", "The task pays a flat reward: accept its results with "
                 "`validate_task_result`."),
        ErrorDef("NoScores", "`settle_contributions` needs at least one score."),
        ErrorDef("TooManyScores", "More scores than `MaxAssignments`."),
        ErrorDef("ScoreTooHigh", "A score is above `MaxScore`."),
        ErrorDef("DuplicateScore", "A submission is scored twice."),
        ErrorDef("NotPendingOnTask", "A scored submission is not pending validation on this "
                 "task."),
        ErrorDef("InvalidPeerJob", "A peer job's rounds, phase lengths or `max_peers` are out of "
                 "bounds."),
        ErrorDef("PeerJobNotFound", "No peer job with that id."),
        ErrorDef("PeerJobEnded", "The peer job's last round is over."),
        ErrorDef("AlreadyJoined", "The account is already a peer of this job."),
        ErrorDef("PeerJobFull", "The peer job has `max_peers` peers."),
        ErrorDef("NotAPeer", "The account is not a peer of this job."),
        ErrorDef("WrongRound", "The round is not the job's current round."),
        ErrorDef("WrongPhase", "The current round is not in the phase this call needs."),
        ErrorDef("AlreadyPosted", "The peer already posted this for this round."),
        ErrorDef("NoUpdateThisRound", "Only a peer that posted an update in the round may post "
                 "an aggregate."),
    )

    Tasks = Storage(TASK_INFO, (_B2, U32), docs="Every task by id.")
    NextTaskId = Storage(U32, default=0, docs="The id the next task gets.")
    Submissions = Storage(SUBMISSION, (_B2, U32), docs="Every submission by id.")
    NextSubmissionId = Storage(U32, default=0, docs="The id the next submission gets.")
    TaskSubmissions = Storage(UNIT, (_B2, U32), (_B2, U32),
                              docs="Index: the submissions of a task.")
    WorkerSubmissions = Storage(UNIT, (_B2, ACCOUNT_ID), (_B2, U32),
                                docs="Index: the submissions of a worker.")
    TaskWorkers = Storage(U32, (_B2, U32), (_B2, ACCOUNT_ID),
                          docs="A worker's current submission for a task (Assigned, "
                               "PendingValidation or Accepted).")
    OpenTasks = Storage(UNIT, (_B2, U32), docs="Exactly the tasks whose status is Open.")
    Terms = Storage(TASK_TERMS, (_B2, U32),
                    docs="The terms of a task created with terms (none: the default terms).")
    ShardHolders = Storage(U32, (_B2, U32), (_B2, U32),
                           docs="Which live submission holds each shard of a task.")
    SubmissionShards = Storage(U32, (_B2, U32), docs="The shard each submission was assigned.")
    Scores = Storage(U32, (_B2, U32), docs="The score each result was settled with (ppm).")
    PeerJobs = Storage(PEER_JOB, (_B2, U32), docs="Every peer job by id.")
    NextPeerJobId = Storage(U32, default=0, docs="The id the next peer job gets.")
    Peers = Storage(U32, (_B2, U32), (_B2, ACCOUNT_ID),
                    docs="The peers of a job, with the round each joined in.")
    RoundUpdates = Storage(CID, (_B2, ROUND_KEY), (_B2, ACCOUNT_ID),
                           docs="Each peer's update CID of a round.")
    RoundUpdateCount = Storage(U32, (_B2, ROUND_KEY), default=0,
                               docs="How many peers posted an update in a round.")
    RoundAggregates = Storage(CID, (_B2, ROUND_KEY), (_B2, ACCOUNT_ID),
                              docs="Each participant's aggregate CID of a round.")
    AggregateVotes = Storage(U32, (_B2, ROUND_KEY), (_B2, CID), default=0,
                             docs="How many participants of a round posted each aggregate CID.")
    AgreedModels = Storage(CID, (_B2, ROUND_KEY),
                           docs="The aggregate CID a majority of a round's participants posted.")

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _now(self) -> int:
        return self.rt.block_number

    def _task(self, task_id: int) -> dict[str, Any]:
        task: dict[str, Any] | None = self.Tasks.get(self.state, task_id)
        if task is None:
            raise self.error("TaskNotFound")
        return task

    def _submission(self, submission_id: int) -> dict[str, Any]:
        sub: dict[str, Any] | None = self.Submissions.get(self.state, submission_id)
        if sub is None:
            raise self.error("SubmissionNotFound")
        return sub

    def _own_assigned(self, origin: Origin, submission_id: int
                      ) -> tuple[bytes, dict[str, Any], int, dict[str, Any]]:
        """The signer's ``Assigned`` submission and its task, checked in the protocol's order
        (shared by ``send_task_result`` and ``abandon_task``)."""
        who = origin.ensure_signed()
        sub = self._submission(submission_id)
        if sub["worker"] != who:
            raise self.error("NotSubmissionWorker")
        if sub["status"] != "Assigned":
            raise self.error("InvalidStatus")
        task_id: int = sub["task_id"]
        return who, sub, task_id, self._task(task_id)

    def _terms(self, task_id: int) -> dict[str, Any]:
        terms: dict[str, Any] | None = self.Terms.get(self.state, task_id)
        return dict(DEFAULT_TERMS) if terms is None else terms

    def _release_shard(self, task_id: int, submission_id: int) -> None:
        """A submission that became Rejected or Abandoned gives its shard to the next worker."""
        shard = self.SubmissionShards.get(self.state, submission_id)
        if shard is not None and self.ShardHolders.get(self.state, task_id, shard) == submission_id:
            self.ShardHolders.remove(self.state, task_id, shard)

    def _job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] | None = self.PeerJobs.get(self.state, job_id)
        if job is None:
            raise self.error("PeerJobNotFound")
        return job

    def _round_now(self, job: dict[str, Any]) -> tuple[int | None, bool]:
        """(current round, whether it is in its update phase); round None once the job ended."""
        length = job["update_blocks"] + job["aggregate_blocks"]
        elapsed = self._now - job["start_block"]
        if elapsed >= job["rounds"] * length:
            return None, False
        return elapsed // length, elapsed % length < job["update_blocks"]

    def _peer_post(self, origin: Origin, job_id: int, round_: int, update_phase: bool
                   ) -> tuple[bytes, dict[str, Any]]:
        """The checks ``post_update`` and ``post_aggregate`` share, in the protocol's order
        (``post_aggregate`` checks ``NoUpdateThisRound`` itself, before the CID)."""
        who = origin.ensure_signed()
        job = self._job(job_id)
        current, updating = self._round_now(job)
        if current is None:
            raise self.error("PeerJobEnded")
        if not self.Peers.contains(self.state, job_id, who):
            raise self.error("NotAPeer")
        if round_ != current:
            raise self.error("WrongRound")
        if updating != update_phase:
            raise self.error("WrongPhase")
        return who, job

    def _accept(self, task_id: int, task: dict[str, Any], submission_id: int,
                sub: dict[str, Any]) -> None:
        """Pay ``reward`` from escrow to the worker and mark the submission Accepted."""
        self.rt.balances.transfer(escrow_account_id(task_id), sub["worker"], task["reward"],
                                  keep_alive=False)
        sub["status"] = "Accepted"
        sub["validated_block"] = self._now
        task["active_assignments"] -= 1
        task["accepted_results"] += 1
        self.Submissions.set(self.state, submission_id, sub)
        self.Tasks.set(self.state, task_id, task)
        self.deposit_event("ResultAccepted", task_id=task_id, submission_id=submission_id,
                           worker=sub["worker"], reward=task["reward"])

    # -- calls -----------------------------------------------------------------------------

    @call(0, *_CREATE_TASK_FIELDS,
          weight=lambda rt, a: benchmarked(
              "create_task", q=_clamp(a["question"], MAX_QUESTION_LENGTH),
              c=_clamp(a["assets_cid"], MAX_CID_LENGTH)))
    def create_task(self, origin: Origin, task_type: str, question: bytes, reward: int,
                    max_assignments: int, validation_strategy: str, assets_cid: bytes,
                    assets_storage: str, expiration_block: int) -> None:
        """Create a task and move `reward * max_assignments` into its escrow account."""
        self._create(origin, task_type, question, reward, max_assignments, validation_strategy,
                     assets_cid, assets_storage, expiration_block, None)

    def _create(self, origin: Origin, task_type: str, question: bytes, reward: int,
                max_assignments: int, validation_strategy: str, assets_cid: bytes,
                assets_storage: str, expiration_block: int,
                terms: dict[str, Any] | None) -> None:
        """``create_task`` and ``create_task_with_terms``: the terms are checked after the task's
        own rules and before the overflow and balance checks, as the protocol orders them."""
        creator = origin.ensure_signed()
        if not 1 <= len(question) <= MAX_QUESTION_LENGTH:
            raise self.error("InvalidQuestion")
        if reward == 0:
            raise self.error("ZeroReward")
        if reward < MIN_REWARD:
            raise self.error("RewardTooLow")
        if not 1 <= max_assignments <= MAX_ASSIGNMENTS:
            raise self.error("InvalidMaxAssignments")
        if not assets_cid:
            raise self.error("EmptyAssets")
        if len(assets_cid) > MAX_CID_LENGTH:
            raise self.error("AssetsCidTooLong")
        if expiration_block <= self._now:
            raise self.error("ExpirationInPast")
        if terms is not None:
            if terms["shards"] not in (0, max_assignments):
                raise self.error("InvalidShards")
            if terms["payout"] == "ByContribution":
                if validation_strategy == "AutoAccept" or terms["floor"] > reward:
                    raise self.error("InvalidTerms")
            elif terms["floor"] != 0:
                raise self.error("InvalidTerms")
        escrow = reward * max_assignments
        task_id: int = self.NextTaskId.get(self.state)
        if escrow > U128_MAX or task_id >= U32_MAX:
            raise self.error("Overflow")
        if not self.rt.balances.can_withdraw_preserving(creator, escrow):
            raise self.error("InsufficientBalance")
        self.rt.balances.transfer(creator, escrow_account_id(task_id), escrow, keep_alive=True)
        self.Tasks.set(self.state, task_id, {
            "creator": creator, "task_type": task_type, "question": question,
            "reward": reward, "max_assignments": max_assignments, "active_assignments": 0,
            "accepted_results": 0, "validation_strategy": validation_strategy,
            "assets_cid": assets_cid, "assets_storage": assets_storage,
            "created_block": self._now, "expiration_block": expiration_block, "status": "Open",
        })
        if terms is not None:
            self.Terms.set(self.state, task_id, terms)
        self.OpenTasks.set(self.state, task_id, ())
        self.NextTaskId.set(self.state, task_id + 1)
        self.deposit_event("TaskCreated", task_id=task_id, creator=creator, task_type=task_type,
                           reward=reward, max_assignments=max_assignments, escrow=escrow,
                           expiration_block=expiration_block)

    # charged for visiting MaxAssignments shards, refunded down to the shards visited
    @call(1, _TASK_ID, weight=lambda rt, a: benchmarked("accept_task", s=MAX_ASSIGNMENTS))
    def accept_task(self, origin: Origin, task_id: int) -> PostInfo:
        """Take a slot of an open task: creates a submission in `Assigned` (and, on a task with
        shards, assigns it the lowest free shard)."""
        worker = origin.ensure_signed()
        task = self._task(task_id)
        if task["status"] == "Closed":
            raise self.error("TaskClosed")
        if self._now >= task["expiration_block"]:
            raise self.error("TaskExpired")
        if task["creator"] == worker:
            raise self.error("CreatorCannotAccept")
        if self.TaskWorkers.contains(self.state, task_id, worker):
            raise self.error("AlreadyAccepted")
        if task["active_assignments"] + task["accepted_results"] >= task["max_assignments"]:
            raise self.error("NoSlotsLeft")
        submission_id: int = self.NextSubmissionId.get(self.state)
        if submission_id >= U32_MAX or task["active_assignments"] >= U32_MAX:
            raise self.error("Overflow")
        self.Submissions.set(self.state, submission_id, {
            "task_id": task_id, "worker": worker, "status": "Assigned", "result": b"",
            "result_cid": None, "result_storage": None, "assigned_block": self._now,
            "submitted_block": None, "validated_block": None,
        })
        self.TaskSubmissions.set(self.state, task_id, submission_id, ())
        self.WorkerSubmissions.set(self.state, worker, submission_id, ())
        self.TaskWorkers.set(self.state, task_id, worker, submission_id)
        task["active_assignments"] += 1
        self.Tasks.set(self.state, task_id, task)
        self.NextSubmissionId.set(self.state, submission_id + 1)
        self.deposit_event("TaskAccepted", task_id=task_id, submission_id=submission_id,
                           worker=worker)
        shards = self._terms(task_id)["shards"]
        if not shards:
            return PostInfo(actual_weight=benchmarked("accept_task", s=0))
        # a free slot always has a free shard: shards == max_assignments, one per live slot
        shard = next(i for i in range(shards)
                     if not self.ShardHolders.contains(self.state, task_id, i))
        self.ShardHolders.set(self.state, task_id, shard, submission_id)
        self.SubmissionShards.set(self.state, submission_id, shard)
        self.deposit_event("ShardAssigned", task_id=task_id, submission_id=submission_id,
                           shard=shard)
        return PostInfo(actual_weight=benchmarked("accept_task", s=shard + 1))

    @call(2, _SUBMISSION_ID,
          Field("result", BYTES, "Vec<u8>"),
          Field("result_cid", Option(BYTES), "Option<Vec<u8>>"),
          Field("result_storage", Option(STORAGE_TYPE), "Option<StorageType>"),
          weight=lambda rt, a: benchmarked(
              "send_task_result", r=_clamp(a["result"], MAX_RESULT_LENGTH),
              c=_clamp(a["result_cid"], MAX_CID_LENGTH)))
    def send_task_result(self, origin: Origin, submission_id: int, result: bytes,
                         result_cid: bytes | None, result_storage: str | None) -> None:
        """Submit the result of an assigned submission (paid at once on AutoAccept tasks)."""
        who, sub, task_id, task = self._own_assigned(origin, submission_id)
        if task["status"] == "Closed":
            raise self.error("TaskClosed")
        if self._now >= task["expiration_block"]:
            raise self.error("TaskExpired")
        if not result:
            raise self.error("EmptyResult")
        if len(result) > MAX_RESULT_LENGTH:
            raise self.error("ResultTooLong")
        if result_cid is not None and not 1 <= len(result_cid) <= MAX_CID_LENGTH:
            raise self.error("InvalidResultCid")
        if (result_cid is None) != (result_storage is None):
            raise self.error("MissingStorageType")
        sub.update(status="PendingValidation", result=result, result_cid=result_cid,
                   result_storage=result_storage, submitted_block=self._now)
        self.Submissions.set(self.state, submission_id, sub)
        self.deposit_event("ResultSubmitted", task_id=task_id, submission_id=submission_id,
                           worker=who)
        if task["validation_strategy"] == "AutoAccept":
            self._accept(task_id, task, submission_id, sub)

    @call(3, _SUBMISSION_ID, Field("accept", BOOL, "bool"),
          weight=lambda rt, a: benchmarked("validate_task_result"))
    def validate_task_result(self, origin: Origin, submission_id: int, accept: bool) -> None:
        """Accept (pay) or reject (reopen the slot) a pending result; creator only.
        Results of a task paid by contribution are accepted only by `settle_contributions`."""
        who = origin.ensure_signed()
        sub = self._submission(submission_id)
        task_id = sub["task_id"]
        task = self._task(task_id)
        if task["creator"] != who:
            raise self.error("NotTaskCreator")
        if sub["status"] != "PendingValidation":
            raise self.error("InvalidStatus")
        if accept:
            if self._terms(task_id)["payout"] == "ByContribution":
                raise self.error("PaidByContribution")
            self._accept(task_id, task, submission_id, sub)
            return
        sub["status"] = "Rejected"
        sub["validated_block"] = self._now
        task["active_assignments"] -= 1
        self.Submissions.set(self.state, submission_id, sub)
        self.Tasks.set(self.state, task_id, task)
        self.TaskWorkers.remove(self.state, task_id, sub["worker"])
        self._release_shard(task_id, submission_id)
        self.deposit_event("ResultRejected", task_id=task_id, submission_id=submission_id,
                           worker=sub["worker"])

    @call(4, _TASK_ID, weight=lambda rt, a: benchmarked("close_task", n=MAX_ASSIGNMENTS))
    def close_task(self, origin: Origin, task_id: int) -> PostInfo:
        """Close a task: abandon assigned submissions, refund the escrow's balance."""
        who = origin.ensure_signed()
        task = self._task(task_id)
        if task["creator"] != who:
            raise self.error("NotTaskCreator")
        if task["status"] == "Closed":
            raise self.error("TaskClosed")
        subs = [(keys[1], self.Submissions.get(self.state, keys[1]))
                for keys, _ in self.TaskSubmissions.iter_prefix(self.state, task_id)]
        if any(s["status"] == "PendingValidation" for _, s in subs):
            raise self.error("PendingValidations")
        # what the runtime visits: the task's TaskWorkers entries
        visited = sum(1 for _ in self.TaskWorkers.iter_prefix(self.state, task_id))
        abandoned = 0
        for sid, sub in subs:
            if sub["status"] == "Assigned":
                sub["status"] = "Abandoned"
                self.Submissions.set(self.state, sid, sub)
                self.TaskWorkers.remove(self.state, task_id, sub["worker"])
                self._release_shard(task_id, sid)
                abandoned += 1
        # The whole free balance, not just the unspent rewards: a third party's transfer into
        # the escrow while the task was open belongs to the creator (docs/protocol.md).
        escrow = escrow_account_id(task_id)
        refund = self.rt.balances.free(escrow)
        if refund:
            self.rt.balances.transfer(escrow, who, refund, keep_alive=False)
        task["active_assignments"] = 0
        task["status"] = "Closed"
        self.Tasks.set(self.state, task_id, task)
        self.OpenTasks.remove(self.state, task_id)
        self.deposit_event("TaskClosed", task_id=task_id, refund=refund, abandoned=abandoned)
        # charged for MaxAssignments entries up front, refunded down to the ones visited
        return PostInfo(actual_weight=benchmarked("close_task", n=visited))

    @call(5, _SUBMISSION_ID, weight=lambda rt, a: benchmarked("abandon_task"))
    def abandon_task(self, origin: Origin, submission_id: int) -> None:
        """Give an assigned slot back (the worker only); the slot reopens at once."""
        who, sub, task_id, task = self._own_assigned(origin, submission_id)
        sub["status"] = "Abandoned"
        task["active_assignments"] -= 1
        self.Submissions.set(self.state, submission_id, sub)
        self.Tasks.set(self.state, task_id, task)
        self.TaskWorkers.remove(self.state, task_id, who)
        self._release_shard(task_id, submission_id)
        self.deposit_event("SubmissionAbandoned", task_id=task_id, submission_id=submission_id,
                           worker=who)

    # -- protocol 2: task terms and pay by contribution ------------------------------------------

    @call(6, *_CREATE_TASK_FIELDS,
          Field("terms", TASK_TERMS, "TaskTermsOf<T>"),
          weight=lambda rt, a: benchmarked(
              "create_task_with_terms", q=_clamp(a["question"], MAX_QUESTION_LENGTH),
              c=_clamp(a["assets_cid"], MAX_CID_LENGTH)))
    def create_task_with_terms(self, origin: Origin, task_type: str, question: bytes,
                               reward: int, max_assignments: int, validation_strategy: str,
                               assets_cid: bytes, assets_storage: str, expiration_block: int,
                               terms: dict[str, Any]) -> None:
        """`create_task` with terms: data shards shipped by the creator (one per slot) and pay by
        contribution, with commitments to the holdout set and the scoring method."""
        self._create(origin, task_type, question, reward, max_assignments, validation_strategy,
                     assets_cid, assets_storage, expiration_block, terms)

    @call(7, _TASK_ID,
          Field("scores", Vec(Tuple(U32, U32)), "Vec<(SubmissionId, u32)>"),
          weight=lambda rt, a: benchmarked("settle_contributions",
                                           n=_clamp(a["scores"], MAX_ASSIGNMENTS)))
    def settle_contributions(self, origin: Origin, task_id: int,
                             scores: list[tuple[int, int]]) -> None:
        """Accept pending results of a task paid by contribution and pay each from the pool by
        its score; the creator only. The whole pool `reward * k` is spent on the `k` listed
        results; the rounding dust stays in the escrow."""
        who = origin.ensure_signed()
        task = self._task(task_id)
        if task["creator"] != who:
            raise self.error("NotTaskCreator")
        if task["status"] == "Closed":
            raise self.error("TaskClosed")
        terms = self._terms(task_id)
        if terms["payout"] != "ByContribution":
            raise self.error("NotPaidByContribution")
        if not scores:
            raise self.error("NoScores")
        if len(scores) > MAX_ASSIGNMENTS:
            raise self.error("TooManyScores")
        if any(score > MAX_SCORE for _, score in scores):
            raise self.error("ScoreTooHigh")
        if len({sid for sid, _ in scores}) != len(scores):
            raise self.error("DuplicateScore")
        subs = [self._submission(sid) for sid, _ in scores]  # SubmissionNotFound: any first
        if any(sub["task_id"] != task_id or sub["status"] != "PendingValidation" for sub in subs):
            raise self.error("NotPendingOnTask")
        k = len(scores)
        if task["accepted_results"] + k > U32_MAX:
            raise self.error("Overflow")
        payouts = contribution_payouts(task["reward"], terms["floor"], [s for _, s in scores])
        pool = task["reward"] * k
        paid = sum(payouts)
        escrow = escrow_account_id(task_id)
        balances = self.rt.balances
        left = balances.free(escrow) - paid
        if 0 < left < EXISTENTIAL_DEPOSIT:
            # the escrow would be reaped with the dust in it: the creator gets it now instead
            balances.transfer(escrow, task["creator"], left, keep_alive=False)
        # list order, but the largest (the first among equals) last: it is at least the
        # existential deposit, so the escrow is never reaped with payouts still in it
        largest = payouts.index(max(payouts))
        for i in [*(i for i in range(k) if i != largest), largest]:
            if not payouts[i]:
                continue
            if payouts[i] < EXISTENTIAL_DEPOSIT and not balances.free(subs[i]["worker"]):
                # fungible::Mutate::transfer to an account that does not exist
                raise DispatchFailure(("Token", "BelowMinimum"), "Token.BelowMinimum")
            balances.transfer(escrow, subs[i]["worker"], payouts[i], keep_alive=False)
        for (sid, score), sub, payout in zip(scores, subs, payouts, strict=True):
            sub["status"] = "Accepted"
            sub["validated_block"] = self._now
            self.Submissions.set(self.state, sid, sub)
            self.Scores.set(self.state, sid, score)
            self.deposit_event("ResultAccepted", task_id=task_id, submission_id=sid,
                               worker=sub["worker"], reward=payout)
        task["active_assignments"] -= k
        task["accepted_results"] += k
        self.Tasks.set(self.state, task_id, task)
        self.deposit_event("ContributionsSettled", task_id=task_id, results=k, pool=pool,
                           paid=paid, dust=pool - paid)

    # -- protocol 2: peer jobs ------------------------------------------------------------------

    @call(8,
          Field("assets_cid", BYTES, "Vec<u8>"),
          Field("assets_storage", STORAGE_TYPE, "StorageType"),
          Field("rounds", U32, "u32"),
          Field("update_blocks", U32, "u32"),
          Field("aggregate_blocks", U32, "u32"),
          Field("max_peers", U32, "u32"),
          weight=lambda rt, a: benchmarked("create_peer_job",
                                           c=_clamp(a["assets_cid"], MAX_CID_LENGTH)))
    def create_peer_job(self, origin: Origin, assets_cid: bytes, assets_storage: str,
                        rounds: int, update_blocks: int, aggregate_blocks: int,
                        max_peers: int) -> None:
        """Create a peer job starting at the current block; no balance moves."""
        who = origin.ensure_signed()
        if not assets_cid:
            raise self.error("EmptyAssets")
        if len(assets_cid) > MAX_CID_LENGTH:
            raise self.error("AssetsCidTooLong")
        if not (1 <= rounds <= MAX_PEER_ROUNDS and update_blocks >= 1 and aggregate_blocks >= 1
                and 1 <= max_peers <= MAX_PEERS):
            raise self.error("InvalidPeerJob")
        job_id: int = self.NextPeerJobId.get(self.state)
        if rounds * (update_blocks + aggregate_blocks) > U32_MAX or job_id >= U32_MAX:
            raise self.error("Overflow")
        self.PeerJobs.set(self.state, job_id, {
            "creator": who, "assets_cid": assets_cid, "assets_storage": assets_storage,
            "start_block": self._now, "rounds": rounds, "update_blocks": update_blocks,
            "aggregate_blocks": aggregate_blocks, "max_peers": max_peers, "peers": 0,
        })
        self.NextPeerJobId.set(self.state, job_id + 1)
        self.deposit_event("PeerJobCreated", job_id=job_id, creator=who, rounds=rounds,
                           update_blocks=update_blocks, aggregate_blocks=aggregate_blocks,
                           max_peers=max_peers)

    @call(9, _JOB_ID, weight=lambda rt, a: benchmarked("join_peer_job"))
    def join_peer_job(self, origin: Origin, job_id: int) -> None:
        """Become a peer of a job from its current round on."""
        who = origin.ensure_signed()
        job = self._job(job_id)
        current, _ = self._round_now(job)
        if current is None:
            raise self.error("PeerJobEnded")
        if self.Peers.contains(self.state, job_id, who):
            raise self.error("AlreadyJoined")
        if job["peers"] >= job["max_peers"]:
            raise self.error("PeerJobFull")
        self.Peers.set(self.state, job_id, who, current)
        job["peers"] += 1
        self.PeerJobs.set(self.state, job_id, job)
        self.deposit_event("PeerJoined", job_id=job_id, peer=who, round=current)

    @call(10, _JOB_ID, weight=lambda rt, a: benchmarked("leave_peer_job"))
    def leave_peer_job(self, origin: Origin, job_id: int) -> None:
        """Stop being a peer of a job; what was posted stays."""
        who = origin.ensure_signed()
        job = self._job(job_id)
        if not self.Peers.contains(self.state, job_id, who):
            raise self.error("NotAPeer")
        current, _ = self._round_now(job)
        self.Peers.remove(self.state, job_id, who)
        job["peers"] -= 1
        self.PeerJobs.set(self.state, job_id, job)
        self.deposit_event("PeerLeft", job_id=job_id, peer=who,
                           round=job["rounds"] if current is None else current)

    @call(11, _JOB_ID, _ROUND, Field("update_cid", BYTES, "Vec<u8>"),
          weight=lambda rt, a: benchmarked("post_update",
                                           c=_clamp(a["update_cid"], MAX_CID_LENGTH)))
    def post_update(self, origin: Origin, job_id: int, round: int, update_cid: bytes) -> None:
        """Publish the CID of this peer's update for the current round, in its update phase."""
        who, _ = self._peer_post(origin, job_id, round, update_phase=True)
        if not 1 <= len(update_cid) <= MAX_CID_LENGTH:
            raise self.error("InvalidResultCid")
        key = (job_id, round)
        if self.RoundUpdates.contains(self.state, key, who):
            raise self.error("AlreadyPosted")
        self.RoundUpdates.set(self.state, key, who, update_cid)
        self.RoundUpdateCount.set(self.state, key, self.RoundUpdateCount.get(self.state, key) + 1)
        self.deposit_event("UpdatePosted", job_id=job_id, round=round, peer=who)

    @call(12, _JOB_ID, _ROUND, Field("aggregate_cid", BYTES, "Vec<u8>"),
          weight=lambda rt, a: benchmarked("post_aggregate",
                                           c=_clamp(a["aggregate_cid"], MAX_CID_LENGTH)))
    def post_aggregate(self, origin: Origin, job_id: int, round: int,
                       aggregate_cid: bytes) -> None:
        """Publish the CID of the aggregate this participant computed for the current round, in
        its aggregate phase; the CID a majority of the round's participants posts becomes the
        round's agreed model."""
        who, _ = self._peer_post(origin, job_id, round, update_phase=False)
        key = (job_id, round)
        if not self.RoundUpdates.contains(self.state, key, who):
            raise self.error("NoUpdateThisRound")
        if not 1 <= len(aggregate_cid) <= MAX_CID_LENGTH:
            raise self.error("InvalidResultCid")
        if self.RoundAggregates.contains(self.state, key, who):
            raise self.error("AlreadyPosted")
        self.RoundAggregates.set(self.state, key, who, aggregate_cid)
        votes = self.AggregateVotes.get(self.state, key, aggregate_cid) + 1
        self.AggregateVotes.set(self.state, key, aggregate_cid, votes)
        self.deposit_event("AggregatePosted", job_id=job_id, round=round, peer=who)
        participants = self.RoundUpdateCount.get(self.state, key)
        if 2 * votes > participants and not self.AgreedModels.contains(self.state, key):
            self.AgreedModels.set(self.state, key, aggregate_cid)
            self.deposit_event("RoundAgreed", job_id=job_id, round=round,
                               model_cid=aggregate_cid)

