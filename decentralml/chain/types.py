"""Typed mirror of docs/protocol.md: enums, bounds, call arguments and storage records.

Every bound the pallet enforces is enforced here too, so a bad argument fails in Python with an
:class:`~decentralml.errors.InvalidInput` naming the field and the limit, before anything is
signed or sent. The chain stays the authority: the length and count bounds are its pallet
constants, which a connected client reads from the metadata (:class:`ProtocolLimits`, passed to
:func:`build`); the values below are docs/protocol.md's, used only when there is no chain to ask.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from decentralml.errors import InvalidInput

PALLET = "DecentralML"
PALLET_ID = b"decentml"
# Offline defaults of the pallet's bounds (docs/protocol.md); a chain may configure others.
MAX_ASSIGNMENTS = 64
MAX_QUESTION_LENGTH = 2048
MAX_CID_LENGTH = 128
MAX_RESULT_LENGTH = 2048
MAX_SCORE = 1_000_000
MAX_PEERS = 64
MAX_PEER_ROUNDS = 10_000
U32_MAX = 2**32 - 1
U128_MAX = 2**128 - 1


class ProtocolLimits(BaseModel):
    """The bounds a runtime configures for the pallet, as its metadata constants declare them.

    A runtime chooses these in its ``Config`` (docs/protocol.md gives the reference values), so
    checking input against fixed numbers would refuse what the chain accepts, or let through what
    it refuses; :meth:`decentralml.chain.client.Client.limits` reads them from the chain. The
    defaults serve only where no chain is at hand (a dry run before connecting).
    """

    model_config = ConfigDict(frozen=True)

    #: field -> the pallet constant it mirrors
    CONSTANTS: ClassVar[dict[str, str]] = {
        "max_assignments": "MaxAssignments",
        "max_question_length": "MaxQuestionLength",
        "max_cid_length": "MaxCidLength",
        "max_result_length": "MaxResultLength",
        "max_score": "MaxScore",
        "max_peers": "MaxPeers",
        "max_peer_rounds": "MaxPeerRounds",
    }

    max_assignments: int = Field(default=MAX_ASSIGNMENTS, ge=1, le=U32_MAX)
    max_question_length: int = Field(default=MAX_QUESTION_LENGTH, ge=1, le=U32_MAX)
    max_cid_length: int = Field(default=MAX_CID_LENGTH, ge=1, le=U32_MAX)
    max_result_length: int = Field(default=MAX_RESULT_LENGTH, ge=1, le=U32_MAX)
    max_score: int = Field(default=MAX_SCORE, ge=1, le=U32_MAX)
    max_peers: int = Field(default=MAX_PEERS, ge=1, le=U32_MAX)
    max_peer_rounds: int = Field(default=MAX_PEER_ROUNDS, ge=1, le=U32_MAX)


#: The reference values, for validation without a chain.
DEFAULT_LIMITS = ProtocolLimits()


def _limits(info: ValidationInfo) -> ProtocolLimits:
    """The limits :func:`build` was given (the chain's), else the offline defaults."""
    context = info.context
    if isinstance(context, dict):
        given = context.get("limits")
        if isinstance(given, ProtocolLimits):
            return given
    return DEFAULT_LIMITS


class TaskType(str, Enum):
    DataAnnotator = "DataAnnotator"
    ModelContributor = "ModelContributor"
    ModelEngineer = "ModelEngineer"


class ValidationStrategy(str, Enum):
    AutoAccept = "AutoAccept"
    ManualAccept = "ManualAccept"
    CustomAccept = "CustomAccept"


class StorageType(str, Enum):
    Ipfs = "Ipfs"
    Local = "Local"
    Http = "Http"


class TaskStatus(str, Enum):
    Open = "Open"
    Closed = "Closed"


class SubmissionStatus(str, Enum):
    Assigned = "Assigned"
    PendingValidation = "PendingValidation"
    Accepted = "Accepted"
    Rejected = "Rejected"
    Abandoned = "Abandoned"


class PayoutMode(str, Enum):
    """How a task's accepted results are paid: ``Flat`` (``reward`` each, on validation) or
    ``ByContribution`` (a pool split by score, with ``settle_contributions``)."""

    Flat = "Flat"
    ByContribution = "ByContribution"


def _invalid(field: str, message: str) -> InvalidInput:
    """For rules a model checks across fields: the error names the field it is about (e.g.
    ``terms.shards``); pydantic carries it out of the validator and :func:`build` (or
    :class:`_Checked`) raises it as it is."""
    return InvalidInput(field, message)


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def _bounded_bytes(field: str, value: str | bytes, *, minimum: int, maximum: int) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) < minimum:
        raise ValueError(f"must not be empty (limit: {minimum}..={maximum} bytes)")
    if len(raw) > maximum:
        raise ValueError(f"is {len(raw)} bytes (limit: {maximum} bytes)")
    return raw


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def _invalid_input(exc: ValidationError, default_field: str, prefix: str = "") -> InvalidInput:
    first = exc.errors()[0]
    nested = (first.get("ctx") or {}).get("error")
    if isinstance(nested, InvalidInput):  # a cross-field rule, or a _Checked model inside
        return nested                     # another: already named
    field = ".".join(str(p) for p in first["loc"]) or default_field
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(prefix + field, message)


class _Checked(BaseModel):
    """A model users construct themselves (``TaskTerms(...)``, ``CreatePeerJobArgs(...)``): a
    bad value raises :class:`InvalidInput` naming the field, as the client's calls do, instead
    of pydantic's own error."""

    #: prefix of the field names in errors (how the value is passed to the client)
    _FIELD_PREFIX: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _invalid_input(exc, type(self).__name__, self._FIELD_PREFIX) from None


def _commitment(value: Any) -> bytes | None:
    """A 32-byte commitment given as bytes or hex text (``0x`` optional)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ValueError("is not hex (limit: 32 bytes, a SHA-256 digest)") from None
    if not isinstance(value, bytes | bytearray):
        raise ValueError("must be 32 bytes or their hex (a SHA-256 digest)")
    if len(value) != 32:
        raise ValueError(f"is {len(value)} bytes (limit: exactly 32, a SHA-256 digest)")
    return bytes(value)


class TaskTerms(_Checked):
    """The terms of a task (protocol 2), fixed at creation: data shards shipped one per slot, and
    pay by contribution with the creator's commitments to its holdout set and scoring method.

    The defaults are what a task created without terms is held to. Rules that involve the task
    (``shards`` equal to ``max_assignments``, a floor within the reward, no ``ByContribution``
    with ``AutoAccept``) are checked by :class:`CreateTaskArgs`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    _FIELD_PREFIX: ClassVar[str] = "terms."

    shards: int = Field(default=0, strict=True, ge=0, le=U32_MAX)
    payout: PayoutMode = PayoutMode.Flat
    floor: int = Field(default=0, strict=True, ge=0, le=U128_MAX)
    holdout_commitment: bytes | None = None
    scoring_commitment: bytes | None = None

    @field_validator("holdout_commitment", "scoring_commitment", mode="before")
    @classmethod
    def _commitments(cls, v: Any) -> bytes | None:
        return _commitment(v)

    def call_params(self) -> dict[str, Any]:
        return {"shards": self.shards, "payout": self.payout.value, "floor": self.floor,
                "holdout_commitment": self.holdout_commitment,
                "scoring_commitment": self.scoring_commitment}

    @classmethod
    def from_chain(cls, value: dict[str, Any] | None) -> TaskTerms:
        """The stored ``Terms`` entry, or the default terms when there is none."""
        if value is None:
            return cls()

        def digest(v: Any) -> bytes | None:
            if v is None:
                return None
            return bytes.fromhex(v[2:]) if isinstance(v, str) else bytes(v)
        return cls(shards=int(value["shards"]), payout=PayoutMode(_variant(value["payout"])),
                   floor=int(value["floor"]),
                   holdout_commitment=digest(value.get("holdout_commitment")),
                   scoring_commitment=digest(value.get("scoring_commitment")))


class CreateTaskArgs(_Args):
    """Arguments of ``DecentralML.create_task``, or of ``create_task_with_terms`` when
    ``terms`` is given.
"""

    task_type: TaskType
    question: str
    reward: int = Field(strict=True)
    max_assignments: int = Field(strict=True)
    validation_strategy: ValidationStrategy = ValidationStrategy.ManualAccept
    assets_cid: str
    assets_storage: StorageType
    expiration_block: int = Field(strict=True)
    terms: TaskTerms | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, v: str, info: ValidationInfo) -> str:
        _bounded_bytes("question", v, minimum=1, maximum=_limits(info).max_question_length)
        return v

    @field_validator("reward")
    @classmethod
    def _reward(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be greater than zero (limit: 1..=2^128-1)")
        if v > U128_MAX:
            raise ValueError("does not fit a u128 Balance (limit: 2^128-1)")
        return v

    @field_validator("max_assignments")
    @classmethod
    def _max_assignments(cls, v: int, info: ValidationInfo) -> int:
        maximum = _limits(info).max_assignments
        if not 1 <= v <= maximum:
            raise ValueError(f"is {v} (limit: 1..={maximum})")
        return v

    @field_validator("assets_cid")
    @classmethod
    def _assets_cid(cls, v: str, info: ValidationInfo) -> str:
        _bounded_bytes("assets_cid", v, minimum=1, maximum=_limits(info).max_cid_length)
        return v

    @field_validator("expiration_block")
    @classmethod
    def _expiration(cls, v: int) -> int:
        if not 0 < v <= U32_MAX:
            raise ValueError(f"is {v} (limit: 1..={U32_MAX}, a u32 block number)")
        return v

    @model_validator(mode="after")
    def _escrow_fits(self) -> CreateTaskArgs:
        if self.reward * self.max_assignments > U128_MAX:
            raise ValueError("reward * max_assignments overflows a u128 Balance")
        terms = self.terms
        if terms is None:
            return self
        if terms.shards not in (0, self.max_assignments):
            raise _invalid("terms.shards", f"is {terms.shards} (limit: 0, or max_assignments"
                           f" = {self.max_assignments}: one shard per slot)")
        if terms.payout is PayoutMode.ByContribution:
            if self.validation_strategy is ValidationStrategy.AutoAccept:
                raise _invalid("terms.payout", "ByContribution needs a reviewer to score "
                               "the results (limit: not with AutoAccept)")
            if terms.floor > self.reward:
                raise _invalid("terms.floor", f"is {terms.floor} (limit: <= reward = "
                               f"{self.reward})")
        elif terms.floor != 0:
            raise _invalid("terms.floor", f"is {terms.floor} (limit: 0 under Flat pay)")
        return self

    @property
    def call_name(self) -> str:
        """``create_task``, or ``create_task_with_terms`` for a task with terms."""
        return "create_task" if self.terms is None else "create_task_with_terms"

    @property
    def escrow(self) -> int:
        """What the creator pays into escrow: one reward per slot."""
        return self.reward * self.max_assignments

    def check_against(self, current_block: int, min_reward: int = 0) -> None:
        """The rules that need chain state: expiry after ``current_block``, reward >= MinReward."""
        if self.expiration_block <= current_block:
            raise InvalidInput("expiration_block",
                               f"block {self.expiration_block} is not after the current block",
                               f"> {current_block}")
        if self.reward < min_reward:
            raise InvalidInput("reward", f"{self.reward} is below the chain's MinReward",
                               f">= {min_reward}")

    def call_params(self) -> dict[str, Any]:
        return {
            "task_type": self.task_type.value,
            "question": self.question.encode("utf-8"),
            "reward": self.reward,
            "max_assignments": self.max_assignments,
            "validation_strategy": self.validation_strategy.value,
            "assets_cid": self.assets_cid.encode("utf-8"),
            "assets_storage": self.assets_storage.value,
            "expiration_block": self.expiration_block,
            **({} if self.terms is None else {"terms": self.terms.call_params()}),
        }


#: A u32 id (TaskId, SubmissionId); pydantic's own message names the bound.
U32 = Annotated[int, Field(strict=True, ge=0, le=U32_MAX)]


class AcceptTaskArgs(_Args):
    """Arguments of ``DecentralML.accept_task``."""

    task_id: U32

    def call_params(self) -> dict[str, Any]:
        return {"task_id": self.task_id}


class SendTaskResultArgs(_Args):
    """Arguments of ``DecentralML.send_task_result``.

    ``result`` may be given as a dict (encoded as compact JSON), a str (UTF-8) or bytes.
    """

    submission_id: U32
    result: bytes
    result_cid: str | None = None
    result_storage: StorageType | None = None

    @field_validator("result", mode="before")
    @classmethod
    def _encode_result(cls, v: Any, info: ValidationInfo) -> bytes:
        if isinstance(v, dict):
            v = json.dumps(v, separators=(",", ":"), sort_keys=True)
        if isinstance(v, str):
            v = v.encode("utf-8")
        if not isinstance(v, bytes | bytearray):
            raise ValueError("must be a dict, str or bytes")
        return _bounded_bytes("result", bytes(v), minimum=1,
                              maximum=_limits(info).max_result_length)

    @field_validator("result_cid")
    @classmethod
    def _cid(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _bounded_bytes("result_cid", v, minimum=1, maximum=_limits(info).max_cid_length)
        return v

    @model_validator(mode="after")
    def _paired(self) -> SendTaskResultArgs:
        if (self.result_cid is None) != (self.result_storage is None):
            raise ValueError("result_cid and result_storage must be given together")
        return self

    def call_params(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "result": self.result,
            "result_cid": None if self.result_cid is None else self.result_cid.encode("utf-8"),
            "result_storage": None if self.result_storage is None else self.result_storage.value,
        }


class ValidateTaskResultArgs(_Args):
    """Arguments of ``DecentralML.validate_task_result``."""

    submission_id: U32
    accept: bool = Field(strict=True)

    def call_params(self) -> dict[str, Any]:
        return {"submission_id": self.submission_id, "accept": self.accept}


class CloseTaskArgs(AcceptTaskArgs):
    """Arguments of ``DecentralML.close_task``."""


class AbandonTaskArgs(_Args):
    """Arguments of ``DecentralML.abandon_task``."""

    submission_id: U32

    def call_params(self) -> dict[str, Any]:
        return {"submission_id": self.submission_id}


class SettleContributionsArgs(_Args):
    """Arguments of ``DecentralML.settle_contributions``: a score (parts per million) for each
    pending submission to accept, sent in the mapping's order."""

    task_id: U32
    scores: dict[U32, Annotated[int, Field(strict=True, ge=0)]]

    @field_validator("scores")
    @classmethod
    def _scores(cls, v: dict[int, int], info: ValidationInfo) -> dict[int, int]:
        limits = _limits(info)
        if not v:
            raise ValueError("must score at least one submission (limit: 1..="
                             f"{limits.max_assignments} entries)")
        if len(v) > limits.max_assignments:
            raise ValueError(f"has {len(v)} entries (limit: {limits.max_assignments})")
        for sid, score in v.items():
            if score > limits.max_score:
                raise ValueError(f"submission {sid} scored {score} (limit: 0..="
                                 f"{limits.max_score} parts per million)")
        return v

    def call_params(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "scores": list(self.scores.items())}


class CreatePeerJobArgs(_Args, _Checked):
    """Arguments of ``DecentralML.create_peer_job``."""

    assets_cid: str
    assets_storage: StorageType = StorageType.Ipfs
    rounds: int = Field(strict=True)
    update_blocks: int = Field(strict=True)
    aggregate_blocks: int = Field(strict=True)
    max_peers: int = Field(strict=True)

    @field_validator("assets_cid")
    @classmethod
    def _assets_cid(cls, v: str, info: ValidationInfo) -> str:
        _bounded_bytes("assets_cid", v, minimum=1, maximum=_limits(info).max_cid_length)
        return v

    @field_validator("rounds")
    @classmethod
    def _rounds(cls, v: int, info: ValidationInfo) -> int:
        maximum = _limits(info).max_peer_rounds
        if not 1 <= v <= maximum:
            raise ValueError(f"is {v} (limit: 1..={maximum})")
        return v

    @field_validator("update_blocks", "aggregate_blocks")
    @classmethod
    def _phase(cls, v: int) -> int:
        if not 1 <= v <= U32_MAX:
            raise ValueError(f"is {v} (limit: 1..={U32_MAX} blocks)")
        return v

    @field_validator("max_peers")
    @classmethod
    def _max_peers(cls, v: int, info: ValidationInfo) -> int:
        maximum = _limits(info).max_peers
        if not 1 <= v <= maximum:
            raise ValueError(f"is {v} (limit: 1..={maximum})")
        return v

    @model_validator(mode="after")
    def _length_fits(self) -> CreatePeerJobArgs:
        if self.rounds * (self.update_blocks + self.aggregate_blocks) > U32_MAX:
            raise _invalid("rounds", "rounds * (update_blocks + aggregate_blocks) is "
                           f"{self.rounds * (self.update_blocks + self.aggregate_blocks)} "
                           f"(limit: {U32_MAX}, a u32 block count)")
        return self

    def call_params(self) -> dict[str, Any]:
        return {"assets_cid": self.assets_cid.encode("utf-8"),
                "assets_storage": self.assets_storage.value, "rounds": self.rounds,
                "update_blocks": self.update_blocks, "aggregate_blocks": self.aggregate_blocks,
                "max_peers": self.max_peers}


class PeerJobArgs(_Args):
    """Arguments of ``join_peer_job`` and ``leave_peer_job``."""

    job_id: U32

    def call_params(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class PostCidArgs(_Args):
    """Arguments of ``post_update`` and ``post_aggregate``: a round and a CID."""

    job_id: U32
    round: U32
    cid: str

    @field_validator("cid")
    @classmethod
    def _cid(cls, v: str, info: ValidationInfo) -> str:
        _bounded_bytes("cid", v, minimum=1, maximum=_limits(info).max_cid_length)
        return v

    def call_params(self, cid_field: str) -> dict[str, Any]:
        return {"job_id": self.job_id, "round": self.round, cid_field: self.cid.encode("utf-8")}


M = TypeVar("M", bound=BaseModel)


def build(model: type[M], *, limits: ProtocolLimits | None = None, **kwargs: Any) -> M:
    """Construct ``model`` and turn a pydantic error into :class:`InvalidInput` naming the field.

    One place for the conversion keeps every public call's errors alike: ``field: what (limit)``.
    ``limits`` are the chain's bounds (a connected client's :attr:`Client.limits`); without them
    the offline defaults apply.
    """
    try:
        return model.model_validate(kwargs, context={"limits": limits or DEFAULT_LIMITS})
    except ValidationError as exc:
        raise _invalid_input(exc, model.__name__) from None


def _text(value: Any) -> str:
    """Decode a chain byte string (hex ``0x..`` or raw) to text; bad bytes become U+FFFD."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:]).decode("utf-8", errors="replace")
        except ValueError:
            return value
    return str(value)


def _variant(value: Any) -> str:
    """scalecodec decodes a fieldless enum to its name, sometimes wrapped in a one-key dict."""
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return str(value)


class TaskInfo(BaseModel):
    """A task as stored in ``DecentralML.Tasks``."""

    model_config = ConfigDict(frozen=True)

    task_id: int
    creator: str
    task_type: TaskType
    question: str
    reward: int
    max_assignments: int
    active_assignments: int
    accepted_results: int
    validation_strategy: ValidationStrategy
    assets_cid: str
    assets_storage: StorageType
    created_block: int
    expiration_block: int
    status: TaskStatus

    @property
    def open_slots(self) -> int:
        return self.max_assignments - self.active_assignments - self.accepted_results

    @property
    def unpaid_escrow(self) -> int:
        """What the escrow account must hold: one reward per slot not yet paid (0 once closed)."""
        if self.status is TaskStatus.Closed:
            return 0
        return self.reward * (self.max_assignments - self.accepted_results)

    @classmethod
    def from_chain(cls, task_id: int, value: dict[str, Any]) -> TaskInfo:
        return cls(
            task_id=task_id,
            creator=str(value["creator"]),
            task_type=TaskType(_variant(value["task_type"])),
            question=_text(value["question"]),
            reward=int(value["reward"]),
            max_assignments=int(value["max_assignments"]),
            active_assignments=int(value["active_assignments"]),
            accepted_results=int(value["accepted_results"]),
            validation_strategy=ValidationStrategy(_variant(value["validation_strategy"])),
            assets_cid=_text(value["assets_cid"]),
            assets_storage=StorageType(_variant(value["assets_storage"])),
            created_block=int(value["created_block"]),
            expiration_block=int(value["expiration_block"]),
            status=TaskStatus(_variant(value["status"])),
        )


class Submission(BaseModel):
    """A submission as stored in ``DecentralML.Submissions``."""

    model_config = ConfigDict(frozen=True)

    submission_id: int
    task_id: int
    worker: str
    status: SubmissionStatus
    result: bytes
    result_cid: str | None
    result_storage: StorageType | None
    assigned_block: int
    submitted_block: int | None
    validated_block: int | None

    def result_json(self) -> dict[str, Any]:
        """The inline result parsed as JSON (empty dict when absent or not a JSON object)."""
        try:
            parsed = json.loads(self.result.decode("utf-8")) if self.result else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def num_examples(self) -> int | None:
        n = self.result_json().get("num_examples")
        return int(n) if isinstance(n, int | float) and n >= 0 else None

    @classmethod
    def from_chain(cls, submission_id: int, value: dict[str, Any]) -> Submission:
        raw = value["result"]
        if isinstance(raw, str):
            raw = bytes.fromhex(raw[2:]) if raw.startswith("0x") else raw.encode("utf-8")
        storage = value.get("result_storage")
        return cls(
            submission_id=submission_id,
            task_id=int(value["task_id"]),
            worker=str(value["worker"]),
            status=SubmissionStatus(_variant(value["status"])),
            result=bytes(raw),
            result_cid=None if value.get("result_cid") is None else _text(value["result_cid"]),
            result_storage=None if storage is None else StorageType(_variant(storage)),
            assigned_block=int(value["assigned_block"]),
            submitted_block=None if value.get("submitted_block") is None
            else int(value["submitted_block"]),
            validated_block=None if value.get("validated_block") is None
            else int(value["validated_block"]),
        )


PeerPhase = Literal["update", "aggregate", "ended"]


class PeerJob(BaseModel):
    """A peer job as stored in ``DecentralML.PeerJobs``, with its round clock.

    Round ``r`` spans the blocks ``[start_block + r*L, start_block + (r+1)*L)`` with
    ``L = update_blocks + aggregate_blocks``: updates are posted in its first ``update_blocks``,
    aggregates in the rest (docs/protocol.md). A block's phase is what a call included in that
    block sees.
    """

    model_config = ConfigDict(frozen=True)

    job_id: int
    creator: str
    assets_cid: str
    assets_storage: StorageType
    start_block: int
    rounds: int
    update_blocks: int
    aggregate_blocks: int
    max_peers: int
    peers: int

    @property
    def round_length(self) -> int:
        return self.update_blocks + self.aggregate_blocks

    @property
    def end_block(self) -> int:
        """The first block at which the job has ended."""
        return self.start_block + self.rounds * self.round_length

    def round_at(self, block: int) -> int | None:
        """The round current at ``block`` (None once the job has ended)."""
        if block >= self.end_block:
            return None
        return max(0, block - self.start_block) // self.round_length

    def phase_at(self, block: int) -> PeerPhase:
        if self.round_at(block) is None:
            return "ended"
        offset = max(0, block - self.start_block) % self.round_length
        return "update" if offset < self.update_blocks else "aggregate"

    def update_deadline(self, round: int) -> int:
        """The first block of ``round``'s aggregate phase (updates must land before it)."""
        return self.start_block + round * self.round_length + self.update_blocks

    def round_end(self, round: int) -> int:
        """The first block of the round after ``round``."""
        return self.start_block + (round + 1) * self.round_length

    @classmethod
    def from_chain(cls, job_id: int, value: dict[str, Any]) -> PeerJob:
        return cls(job_id=job_id, creator=str(value["creator"]),
                   assets_cid=_text(value["assets_cid"]),
                   assets_storage=StorageType(_variant(value["assets_storage"])),
                   start_block=int(value["start_block"]), rounds=int(value["rounds"]),
                   update_blocks=int(value["update_blocks"]),
                   aggregate_blocks=int(value["aggregate_blocks"]),
                   max_peers=int(value["max_peers"]), peers=int(value["peers"]))


def contribution_payouts(reward: int, floor: int, scores: list[int]) -> list[int]:
    """What ``settle_contributions`` pays each of ``k`` results with these scores, exactly as
    docs/protocol.md computes it: ``floor`` each, then ``(reward - floor) * k`` split by score
    with floor division (equal shares when every score is 0). The dust is
    ``reward * k - sum(payouts)``, less than ``k``."""
    k = len(scores)
    if k == 0:
        return []
    split = (reward - floor) * k
    total = sum(scores)
    if total == 0:
        return [floor + split // k] * k
    return [floor + split * score // total for score in scores]


def escrow_account_id(task_id: int) -> bytes:
    """Task ``task_id``'s escrow account, as FRAME's ``PalletId::into_sub_account_truncating``.

    ``b"modl" ++ pallet id ++ SCALE(u32 task_id)``, zero-padded to 32 bytes, so a real runtime
    with the same PalletId derives the same account.
    """
    if not 0 <= task_id <= U32_MAX:
        raise InvalidInput("task_id", f"is {task_id}", f"0..={U32_MAX}")
    raw = b"modl" + PALLET_ID + task_id.to_bytes(4, "little")
    return raw.ljust(32, b"\x00")
