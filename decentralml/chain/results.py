"""What the client's calls return: typed receipts instead of raw substrate-interface objects.

Every receipt carries where the extrinsic landed (block hash and number, index), its hash, the
fee actually paid (``TransactionPayment.TransactionFeePaid``'s ``actual_fee`` plus tip, so balances
can be reconciled to the unit) and the decoded events, plus the ids the call created.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from decentralml.chain.events import (
    ChainEvent,
    MarketEvent,
    ResultAcceptedEvent,
    ResultRejectedEvent,
)
from decentralml.chain.policies import Decision

E = TypeVar("E", bound=MarketEvent)


class ExtrinsicResult(BaseModel):
    """An included, successfully dispatched extrinsic."""

    model_config = ConfigDict(frozen=True)

    extrinsic_hash: str
    block_hash: str
    block_number: int
    extrinsic_index: int
    signer: str
    nonce: int
    fee: int
    events: tuple[ChainEvent, ...] = ()
    market_events: tuple[MarketEvent, ...] = ()

    def market(self, kind: type[E]) -> list[E]:
        """This extrinsic's marketplace events of one kind (e.g. ``ResultAcceptedEvent``)."""
        return [e for e in self.market_events if isinstance(e, kind)]


class CreateTaskResult(ExtrinsicResult):
    task_id: int
    escrow: int
    escrow_account: str


class AcceptTaskResult(ExtrinsicResult):
    task_id: int
    submission_id: int
    #: the data shard this slot was assigned, on a task with shards (protocol 2)
    shard: int | None = None


class SendResultResult(ExtrinsicResult):
    task_id: int
    submission_id: int
    #: True when the task is AutoAccept and the result was accepted and paid in the same call
    auto_accepted: bool
    reward_paid: int


class CloseTaskResult(ExtrinsicResult):
    task_id: int
    refund: int
    abandoned: int


class AbandonTaskResult(ExtrinsicResult):
    task_id: int
    submission_id: int


class SettleContributionsResult(ExtrinsicResult):
    """What ``settle_contributions`` paid, from the chain's events: ``payouts`` by submission id
    (each ``ResultAccepted``), and the ``ContributionsSettled`` totals (``results`` settled,
    ``pool = reward * results``, ``paid``, and the ``dust`` left in the escrow)."""

    task_id: int
    results: int
    pool: int
    paid: int
    dust: int
    payouts: dict[int, int]


class CreatePeerJobResult(ExtrinsicResult):
    job_id: int
    start_block: int


class PeerJobCallResult(ExtrinsicResult):
    """``join_peer_job``, ``leave_peer_job`` and ``post_update``: the job and the round the
    chain recorded (for a join, the round the peer joined in)."""

    job_id: int
    round: int


class PostAggregateResult(PeerJobCallResult):
    #: the round's agreed model, when this vote made the majority (else None)
    agreed_cid: str | None = None


class ValidationReport(BaseModel):
    """What ``validate_task_result`` decided and what the chain did about it.

    ``accepted`` / ``rejected`` are the submission ids sent with that decision (and confirmed by
    ``ResultAccepted`` / ``ResultRejected`` events), ``skipped`` those the policy left alone or that
    were not pending, ``paid`` the sum of rewards paid out. ``extrinsic`` is None when there was
    nothing to send.
    """

    model_config = ConfigDict(frozen=True)

    task_id: int | None
    accepted: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    paid: int = 0
    decisions: dict[int, Decision] = Field(default_factory=dict)
    extrinsic: ExtrinsicResult | None = None

    @property
    def fee(self) -> int:
        return 0 if self.extrinsic is None else self.extrinsic.fee

    @classmethod
    def confirmed(cls, task_id: int | None, decisions: dict[int, Decision],
                  skipped: list[int], extrinsic: ExtrinsicResult | None) -> ValidationReport:
        """Build the report from the chain's events, not from what was asked."""
        accepted: list[int] = []
        rejected: list[int] = []
        paid = 0
        if extrinsic is not None:
            for event in extrinsic.market_events:
                if isinstance(event, ResultAcceptedEvent):
                    accepted.append(event.submission_id)
                    paid += event.reward
                elif isinstance(event, ResultRejectedEvent):
                    rejected.append(event.submission_id)
        return cls(task_id=task_id, accepted=tuple(accepted), rejected=tuple(rejected),
                   skipped=tuple(skipped), paid=paid, decisions=decisions, extrinsic=extrinsic)
