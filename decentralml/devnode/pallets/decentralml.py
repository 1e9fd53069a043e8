"""The DecentralML pallet, exactly as docs/protocol.md specifies it.

Tasks escrow ``reward * max_assignments`` in a per-task account derived from the pallet id
(``modl ++ decentml ++ u32``), workers take slots, submit results, and the creator (or AutoAccept)
pays each accepted result out of escrow; closing refunds what is left. Every check below is in
the order the protocol lists, so the first failing rule names the error a client sees.
"""

from __future__ import annotations

from typing import Any

from decentralml.chain.types import (
    MAX_ASSIGNMENTS,
    MAX_CID_LENGTH,
    MAX_QUESTION_LENGTH,
    MAX_RESULT_LENGTH,
    PALLET_ID,
    U32_MAX,
    U128_MAX,
    escrow_account_id,
)
from decentralml.devnode.pallet import (
    ConstantDef,
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

_TASK_ID = Field("task_id", U32, "TaskId")
_SUBMISSION_ID = Field("submission_id", U32, "SubmissionId")
_WORKER = Field("worker", ACCOUNT_ID, "T::AccountId")
_B2 = "Blake2_128Concat"


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

    @call(0,
          Field("task_type", TASK_TYPE, "TaskType"),
          Field("question", BYTES, "Vec<u8>"),
          Field("reward", U128, "BalanceOf<T>"),
          Field("max_assignments", U32, "u32"),
          Field("validation_strategy", VALIDATION_STRATEGY, "ValidationStrategy"),
          Field("assets_cid", BYTES, "Vec<u8>"),
          Field("assets_storage", STORAGE_TYPE, "StorageType"),
          Field("expiration_block", U32, "BlockNumberFor<T>"),
          weight=lambda rt, a: benchmarked(
              "create_task", q=_clamp(a["question"], MAX_QUESTION_LENGTH),
              c=_clamp(a["assets_cid"], MAX_CID_LENGTH)))
    def create_task(self, origin: Origin, task_type: str, question: bytes, reward: int,
                    max_assignments: int, validation_strategy: str, assets_cid: bytes,
                    assets_storage: str, expiration_block: int) -> None:
        """Create a task and move `reward * max_assignments` into its escrow account."""
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
        self.OpenTasks.set(self.state, task_id, ())
        self.NextTaskId.set(self.state, task_id + 1)
        self.deposit_event("TaskCreated", task_id=task_id, creator=creator, task_type=task_type,
                           reward=reward, max_assignments=max_assignments, escrow=escrow,
                           expiration_block=expiration_block)

    @call(1, _TASK_ID, weight=lambda rt, a: benchmarked("accept_task"))
    def accept_task(self, origin: Origin, task_id: int) -> None:
        """Take a slot of an open task: creates a submission in `Assigned`."""
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
        """Accept (pay) or reject (reopen the slot) a pending result; creator only."""
        who = origin.ensure_signed()
        sub = self._submission(submission_id)
        task_id = sub["task_id"]
        task = self._task(task_id)
        if task["creator"] != who:
            raise self.error("NotTaskCreator")
        if sub["status"] != "PendingValidation":
            raise self.error("InvalidStatus")
        if accept:
            self._accept(task_id, task, submission_id, sub)
            return
        sub["status"] = "Rejected"
        sub["validated_block"] = self._now
        task["active_assignments"] -= 1
        self.Submissions.set(self.state, submission_id, sub)
        self.Tasks.set(self.state, task_id, task)
        self.TaskWorkers.remove(self.state, task_id, sub["worker"])
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
        self.deposit_event("SubmissionAbandoned", task_id=task_id, submission_id=submission_id,
                           worker=who)
