"""The chain client: the DecentralML pallet's calls, queries and events as typed Python.

``Client`` is a facade over the pieces in this package: :mod:`.connection` (one locked,
self-healing websocket), :mod:`.submit` (nonces, sending, inclusion by hash), :mod:`.events`
(typed events and watching), :mod:`.policies` (validation decisions), :mod:`.results` (receipts)
and :mod:`.errors` (node errors -> exception classes). It runs on unmodified substrate-interface
against the devnode or any node whose runtime has the pallet, looking everything up by name in the
metadata.

One synchronous API, safe to share between threads::

    with Client("ws://127.0.0.1:9944", signer="//Alice") as alice:
        task = alice.create_task(TaskType.DataAnnotator, "cat or dog?", reward=10**12,
                                 max_assignments=3, assets_cid="bafy...")
        bob = alice.with_signer("//Bob")
        sub = bob.accept_task(task.task_id)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict
from scalecodec.types import GenericCall
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.utils.ss58 import is_valid_ss58_address, ss58_encode

from decentralml.amounts import Token
from decentralml.chain.connection import Connection
from decentralml.chain.events import (
    ChainEvent,
    ContributionsSettledEvent,
    EventFilter,
    EventSubscription,
    MarketEvent,
    PeerJobCreatedEvent,
    PeerJoinedEvent,
    PeerLeftEvent,
    ResultAcceptedEvent,
    RoundAgreedEvent,
    ShardAssignedEvent,
    SubmissionAbandonedEvent,
    TaskAcceptedEvent,
    TaskClosedEvent,
    TaskCreatedEvent,
    UpdatePostedEvent,
    parse_market_event,
    watch_events,
)
from decentralml.chain.policies import AutoAccept, Decision, ValidationPolicy, Verdict, as_policy
from decentralml.chain.results import (
    AbandonTaskResult,
    AcceptTaskResult,
    CloseTaskResult,
    CreatePeerJobResult,
    CreateTaskResult,
    ExtrinsicResult,
    PeerJobCallResult,
    PostAggregateResult,
    SendResultResult,
    SettleContributionsResult,
    ValidationReport,
)
from decentralml.chain.submit import Inclusion, Location, Submitter, retraction_error
from decentralml.chain.types import (
    PALLET,
    AbandonTaskArgs,
    AcceptTaskArgs,
    CloseTaskArgs,
    CreatePeerJobArgs,
    CreateTaskArgs,
    PeerJob,
    PeerJobArgs,
    PostCidArgs,
    ProtocolLimits,
    SendTaskResultArgs,
    SettleContributionsArgs,
    StorageType,
    Submission,
    SubmissionStatus,
    TaskInfo,
    TaskStatus,
    TaskTerms,
    TaskType,
    ValidateTaskResultArgs,
    ValidationStrategy,
    _text,
    build,
    escrow_account_id,
)
from decentralml.config import ENV_ACCOUNT, load_settings
from decentralml.errors import (
    ChainError,
    ChainTimeout,
    InvalidInput,
    MissingConfiguration,
    PalletError,
    pallet_error_class,
)

if TYPE_CHECKING:
    from decentralml.accounts import Accounts

T = TypeVar("T")

#: A signer: a Keypair, a dev URI (``//Alice``, dev chains only) or the name of a stored account.
Signer: TypeAlias = "Keypair | str"

#: Default lifetime of a task when neither ``expiration_block`` nor ``expires_in`` is given
#: (one day of 6-second blocks).
DEFAULT_EXPIRES_IN = 14_400


class AccountBalance(BaseModel):
    """``System.Account``'s balance data."""

    model_config = ConfigDict(frozen=True)

    address: str
    free: int
    reserved: int
    frozen: int
    nonce: int


class Escrow(BaseModel):
    """A task's escrow account, what it holds and what the protocol says it must hold.

    ``expected`` is the unpaid rewards (0 once closed). While the task is open the escrow may
    hold more than that: anyone can transfer into it, and ``close_task`` refunds the surplus to
    the creator (docs/protocol.md, "Third-party deposits"); it may never hold less.
    """

    model_config = ConfigDict(frozen=True)

    task_id: int
    account: str
    balance: int
    expected: int

    @property
    def surplus(self) -> int:
        """Third-party deposits held on top of the unpaid rewards (refunded on close)."""
        return max(0, self.balance - self.expected)

    @property
    def consistent(self) -> bool:
        return self.balance >= self.expected


class Client:
    """A connection to a node with the DecentralML pallet, and (optionally) a signing account.

    ``url`` defaults to the configured node, ``signer`` to the configured account
    (:func:`decentralml.config.load_settings`: env vars, then the config file). Dev URIs like
    ``//Alice`` are refused unless the chain's ``system_chainType`` is Development or Local, or
    ``allow_dev_accounts``.
    ``account`` is the same as a string ``signer`` (a stored account's name, from the account
    store under ``home``, or ``accounts`` when given). A stored account's secret is read only
    when the client first signs, so a read-only use never needs the keystore's password.
    ``timeout`` bounds every wait (inclusion, conditions); ``request_timeout`` every RPC.
    With ``finality``, a transaction is done only once its block is finalized: a receipt never
    names a block that a fork retracted (see :meth:`wait_finalized`, docs/network.md).
    """

    def __init__(self, url: str | None = None, signer: Signer | None = None, *,
                 account: str | None = None, home: str | Path | None = None,
                 accounts: Accounts | None = None,
                 timeout: float = 60.0, request_timeout: float = 30.0,
                 allow_dev_accounts: bool = False, poll_interval: float = 0.05,
                 finality: bool = False, _shared: Client | None = None) -> None:
        if signer is not None and account is not None:
            raise InvalidInput("account", "give signer or account, not both")
        signer = signer if signer is not None else account
        self.home: str | Path | None = home if _shared is None else _shared.home
        self._accounts: Accounts | None = accounts if _shared is None else _shared._accounts
        self._stored: tuple[str, str] | None = None  # (name, address) until first signing
        self._signer_lock = threading.Lock()
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.allow_dev_accounts = allow_dev_accounts
        # (runtime spec version, the limits it declares), shared with views (with_signer)
        self._limits: list[tuple[int, ProtocolLimits]] = [] if _shared is None \
            else _shared._limits
        self._conn: Connection
        self._submitter: Submitter
        if _shared is not None:
            self._conn = _shared._conn
            self._submitter = _shared._submitter
            self._owner = False
        else:
            settings = load_settings(home, node_url=url)
            node_url = settings.require("node_url")
            if signer is None and settings.account:
                signer = settings.account
            self._conn = Connection(node_url, timeout=request_timeout,
                                    reconnect_timeout=max(request_timeout, 10.0))
            self._submitter = Submitter(self._conn, poll_interval=poll_interval,
                                        finality=finality)
            self._owner = True
        try:
            self._keypair = None if signer is None else self._resolve_signer(signer)
        except BaseException:
            if self._owner:
                self._conn.close()
            raise

    # -- lifecycle and identity ----------------------------------------------------------------

    def with_signer(self, signer: Signer) -> Client:
        """A client for another account sharing this one's connection and nonce bookkeeping."""
        return Client(signer=signer, timeout=self.timeout, poll_interval=self.poll_interval,
                      allow_dev_accounts=self.allow_dev_accounts, _shared=self)

    def close(self) -> None:
        """Close the connection (only the client that opened it does; views share it)."""
        if self._owner:
            self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self._conn.url!r}, signer={self.address!r})"

    @property
    def url(self) -> str:
        return self._conn.url

    @property
    def address(self) -> str | None:
        """The signer's SS58 address (None without a signer)."""
        if self._keypair is None:
            return None if self._stored is None else self._stored[1]
        return str(self._keypair.ss58_address)

    @property
    def reconnects(self) -> int:
        """How many times the websocket was re-established (for diagnostics)."""
        return self._conn.reconnects

    def _account_store(self) -> Accounts:
        if self._accounts is None:
            from decentralml.accounts import Accounts
            self._accounts = Accounts(self.home)
        return self._accounts

    def _resolve_signer(self, signer: Signer) -> Keypair | None:
        """The keypair now, or None for a stored account (its secret is read on first use)."""
        if isinstance(signer, Keypair):
            return signer
        if signer.startswith("//"):
            from decentralml.accounts import dev_keypair
            return dev_keypair(signer, chain_type=self._conn.chain_type,
                               force=self.allow_dev_accounts, ss58_format=self._ss58_format())
        self._stored = (signer, self._account_store().get(signer).address)
        return None

    def resolve_address(self, who: str) -> str:
        """An SS58 address, a dev URI (``//Bob``) or a stored account's name, as an address."""
        if is_valid_ss58_address(who):
            return who
        if who.startswith("//"):
            return str(Keypair.create_from_uri(who, ss58_format=self._ss58_format()).ss58_address)
        return self._account_store().get(who).address

    def _signer(self) -> Keypair:
        if self._keypair is None and self._stored is not None:
            with self._signer_lock:
                if self._keypair is None:
                    self._keypair = self._account_store().keypair(self._stored[0])
        if self._keypair is None:
            raise MissingConfiguration("signing account", env_var=ENV_ACCOUNT,
                                       option="signer= (or Client.with_signer)")
        return self._keypair

    def _ss58_format(self) -> int:
        return int(self._conn.run(lambda si: si.ss58_format) or 42)

    def _account(self, account: str | None) -> str:
        address = account if account is not None else self.address
        if address is None:
            raise InvalidInput("account", "no account given and the client has no signer")
        if not is_valid_ss58_address(address):
            raise InvalidInput("account", f"{address!r} is not an SS58 address")
        return address

    # -- chain facts -----------------------------------------------------------------------------

    @property
    def chain_type(self) -> str:
        return self._conn.chain_type

    @property
    def genesis_hash(self) -> str:
        return self._conn.genesis_hash

    @property
    def token_symbol(self) -> str:
        return str(self._conn.run(lambda si: si.token_symbol) or "UNIT")

    @property
    def token_decimals(self) -> int:
        return int(self._conn.run(lambda si: si.token_decimals) or 0)

    @property
    def token(self) -> Token:
        """The chain's token as its ``system_properties`` declare it: how amounts are typed and
        shown (``Token.parse``, ``Token.format``)."""
        return Token(symbol=self.token_symbol, decimals=self.token_decimals)

    def block_number(self) -> int:
        """The best block's number."""
        return self._conn.head_number()

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on this chain (None past the head). With the genesis hash
        it names a point in one chain's history: after a restart from the same genesis, the same
        number has another hash."""
        return self._conn.block_hash(number)

    def constant(self, name: str, pallet: str = PALLET) -> Any:
        """A runtime constant by name (e.g. ``MinReward``, ``MaxAssignments``)."""
        def get(si: SubstrateInterface) -> Any:
            value = si.get_constant(pallet, name)
            if value is None:
                raise ChainError(f"the runtime has no constant {pallet}.{name}")
            return value.value
        return self._conn.run(get)

    @property
    def min_reward(self) -> int:
        return int(self.constant("MinReward"))

    @property
    def limits(self) -> ProtocolLimits:
        """The pallet's bounds as this chain's metadata declares them (its constants), read once
        per runtime version: what every argument is checked against before it is sent."""
        version = int(self._conn.run(lambda si: si.runtime_version) or 0)
        cached = self._limits[0] if self._limits else None
        if cached is not None and cached[0] == version:
            return cached[1]
        limits = ProtocolLimits(**{field: int(self.constant(name))
                                   for field, name in ProtocolLimits.CONSTANTS.items()})
        self._limits[:] = [(version, limits)]
        return limits

    def escrow_address(self, task_id: int) -> str:
        """Task ``task_id``'s escrow account as an SS58 address (docs/protocol.md)."""
        return str(ss58_encode(escrow_account_id(task_id), ss58_format=self._ss58_format()))

    # -- sending ----------------------------------------------------------------------------------

    def _send(self, pallet: str, function: str, params: dict[str, Any],
              timeout: float | None) -> Inclusion:
        keypair = self._signer()

        def compose(si: SubstrateInterface) -> GenericCall:
            return si.compose_call(call_module=pallet, call_function=function,
                                   call_params=params)

        inclusion = self._submitter.submit(compose, keypair,
                                           timeout=self.timeout if timeout is None else timeout)
        if inclusion.error is not None:
            raise inclusion.error
        return inclusion

    def _send_batch(self, calls: list[tuple[str, str, dict[str, Any]]],
                    timeout: float | None) -> Inclusion:
        keypair = self._signer()

        def compose(si: SubstrateInterface) -> GenericCall:
            inner = [si.compose_call(call_module=p, call_function=f, call_params=a).value
                     for p, f, a in calls]
            return si.compose_call(call_module="Utility", call_function="batch_all",
                                   call_params={"calls": inner})

        inclusion = self._submitter.submit(compose, keypair,
                                           timeout=self.timeout if timeout is None else timeout)
        if inclusion.error is not None:
            raise inclusion.error
        return inclusion

    @staticmethod
    def _receipt(inc: Inclusion) -> dict[str, Any]:
        market = [parse_market_event(r, inc.location.block_number, inc.location.block_hash)
                  for r in inc.records]
        return {
            "extrinsic_hash": inc.extrinsic_hash,
            "block_hash": inc.location.block_hash,
            "block_number": inc.location.block_number,
            "extrinsic_index": inc.location.index,
            "signer": inc.signer,
            "nonce": inc.nonce,
            "fee": inc.fee,
            "events": tuple(ChainEvent.from_record(r) for r in inc.records),
            "market_events": tuple(e for e in market if e is not None),
        }

    @staticmethod
    def _one(inc: Inclusion, kind: type[MarketEvent]) -> Any:
        for record in inc.records:
            event = parse_market_event(record, inc.location.block_number, inc.location.block_hash)
            if isinstance(event, kind):
                return event
        raise ChainError(f"extrinsic {inc.extrinsic_hash} succeeded without a {kind.kind} event; "
                         f"does the runtime follow docs/protocol.md?")

    def submit_call(self, pallet: str, function: str, params: dict[str, Any] | None = None, *,
                    timeout: float | None = None) -> ExtrinsicResult:
        """Send any call as is, without the protocol models' checks (an escape hatch, and how
        tests reach the pallet's own validation)."""
        inc = self._send(pallet, function, params or {}, timeout)
        return ExtrinsicResult(**self._receipt(inc))

    def transfer(self, dest: str, amount: int, *, keep_alive: bool = True,
                 timeout: float | None = None) -> ExtrinsicResult:
        """``Balances.transfer_keep_alive`` (or ``transfer_allow_death``) to ``dest``."""
        dest = self._account(dest)
        if not isinstance(amount, int) or amount <= 0:
            raise InvalidInput("amount", f"{amount!r}", "a positive integer of planck")
        function = "transfer_keep_alive" if keep_alive else "transfer_allow_death"
        return self.submit_call("Balances", function, {"dest": dest, "value": amount},
                                timeout=timeout)

    def create_task(self, task_type: TaskType | str, question: str, reward: int,
                    max_assignments: int, assets_cid: str, *,
                    assets_storage: StorageType | str = StorageType.Ipfs,
                    validation_strategy: ValidationStrategy | str = ValidationStrategy.ManualAccept,
                    expiration_block: int | None = None, expires_in: int | None = None,
                    terms: TaskTerms | None = None,
                    timeout: float | None = None) -> CreateTaskResult:
        """Create a task and fund its escrow with ``reward * max_assignments``.

        The expiry is ``expiration_block``, or ``expires_in`` blocks from now (default
        :data:`DEFAULT_EXPIRES_IN`). With ``terms`` (protocol 2: data shards, pay by
        contribution) the task is created with ``create_task_with_terms``. Raises
        :class:`InvalidInput` before signing when an argument breaks a protocol bound, including
        the chain-dependent ones (expiry in the past, reward below ``MinReward``).
        """
        args = self.create_task_args(task_type, question, reward, max_assignments, assets_cid,
                                     assets_storage=assets_storage,
                                     validation_strategy=validation_strategy,
                                     expiration_block=expiration_block, expires_in=expires_in,
                                     terms=terms)
        inc = self._send(PALLET, args.call_name, args.call_params(), timeout)
        event = self._one(inc, TaskCreatedEvent)
        return CreateTaskResult(**self._receipt(inc), task_id=event.task_id, escrow=event.escrow,
                                escrow_account=self.escrow_address(event.task_id))

    def create_task_args(self, task_type: TaskType | str, question: str, reward: int,
                         max_assignments: int, assets_cid: str, *,
                         assets_storage: StorageType | str = StorageType.Ipfs,
                         validation_strategy: ValidationStrategy | str =
                         ValidationStrategy.ManualAccept,
                         expiration_block: int | None = None,
                         expires_in: int | None = None,
                         terms: TaskTerms | None = None) -> CreateTaskArgs:
        """Validate ``create_task``'s arguments against the protocol and the chain's state."""
        if expiration_block is not None and expires_in is not None:
            raise InvalidInput("expires_in", "give expiration_block or expires_in, not both")
        current = self.block_number()
        if expiration_block is None:
            lifetime = DEFAULT_EXPIRES_IN if expires_in is None else expires_in
            if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime < 1:
                raise InvalidInput("expires_in", f"{lifetime!r}", ">= 1 block")
            expiration_block = current + lifetime
        args = build(CreateTaskArgs, limits=self.limits, task_type=task_type,
                     question=question, reward=reward, max_assignments=max_assignments,
                     validation_strategy=validation_strategy, assets_cid=assets_cid,
                     assets_storage=assets_storage, expiration_block=expiration_block,
                     terms=terms)
        args.check_against(current, self.min_reward)
        return args

    def accept_task(self, task_id: int, *, timeout: float | None = None) -> AcceptTaskResult:
        """Take a slot of an open task; returns the new submission id."""
        args = build(AcceptTaskArgs, task_id=task_id)
        inc = self._send(PALLET, "accept_task", args.call_params(), timeout)
        event = self._one(inc, TaskAcceptedEvent)
        receipt = self._receipt(inc)
        shard = next((e.shard for e in receipt["market_events"]
                      if isinstance(e, ShardAssignedEvent)), None)
        return AcceptTaskResult(**receipt, task_id=event.task_id,
                                submission_id=event.submission_id, shard=shard)

    def send_task_result(self, submission_id: int, result: dict[str, Any] | str | bytes, *,
                         result_cid: str | None = None,
                         result_storage: StorageType | str | None = None,
                         timeout: float | None = None) -> SendResultResult:
        """Submit the result of an assigned submission (a JSON dict, text or bytes, plus an
        optional CID of a larger artifact). On an AutoAccept task it is paid in the same call."""
        args = build(SendTaskResultArgs, limits=self.limits, submission_id=submission_id,
                     result=result, result_cid=result_cid, result_storage=result_storage)
        inc = self._send(PALLET, "send_task_result", args.call_params(), timeout)
        receipt = self._receipt(inc)
        accepted = [e for e in receipt["market_events"] if isinstance(e, ResultAcceptedEvent)]
        task_id = next((e.task_id for e in receipt["market_events"]), None)
        if task_id is None:
            raise ChainError(f"extrinsic {inc.extrinsic_hash} succeeded without a "
                             f"ResultSubmitted event; does the runtime follow docs/protocol.md?")
        return SendResultResult(**receipt, task_id=task_id, submission_id=submission_id,
                                auto_accepted=bool(accepted),
                                reward_paid=sum(e.reward for e in accepted))

    def validate_task_result(self, task_id: int | None = None, *,
                             submissions: Iterable[Submission | int] | None = None,
                             policy: ValidationPolicy | Callable[[Submission], Verdict]
                             | None = None,
                             timeout: float | None = None) -> ValidationReport:
        """Decide about pending results with ``policy`` and send every decision at once.

        Give a ``task_id`` (all its ``PendingValidation`` submissions) or explicit
        ``submissions`` (objects or ids). Submissions that are not pending are skipped, as are
        those the policy returns ``accept=None`` for. All decisions go into one
        ``Utility.batch_all``: either all land or none does.
        """
        chosen = AutoAccept() if policy is None else as_policy(policy)
        if task_id is not None:
            build(AcceptTaskArgs, task_id=task_id)
        if submissions is None:
            if task_id is None:
                raise InvalidInput("task_id", "give a task id or explicit submissions")
            self.task(task_id)  # TaskNotFound early, before any decision is made
            candidates = self.submissions(task_id)
        else:
            candidates = [s if isinstance(s, Submission) else self.submission(s)
                          for s in submissions]
        decisions: dict[int, Decision] = {}
        skipped: list[int] = []
        for sub in candidates:
            if task_id is not None and sub.task_id != task_id:
                raise InvalidInput("submissions", f"submission {sub.submission_id} belongs to "
                                   f"task {sub.task_id}, not {task_id}")
            if sub.status is not SubmissionStatus.PendingValidation:
                if submissions is not None:
                    decisions[sub.submission_id] = Decision(
                        accept=None, reason=f"status is {sub.status.value}")
                    skipped.append(sub.submission_id)
                continue
            decision = chosen.decide(sub)
            decisions[sub.submission_id] = decision
            if decision.accept is None:
                skipped.append(sub.submission_id)
        calls = [(PALLET, "validate_task_result",
                  build(ValidateTaskResultArgs, submission_id=sid, accept=d.accept).call_params())
                 for sid, d in decisions.items() if d.accept is not None]
        if not calls:
            return ValidationReport.confirmed(task_id, decisions, skipped, None)
        inc = self._send_batch(calls, timeout)
        extrinsic = ExtrinsicResult(**self._receipt(inc))
        return ValidationReport.confirmed(task_id, decisions, skipped, extrinsic)

    def close_task(self, task_id: int, *, timeout: float | None = None) -> CloseTaskResult:
        """Close a task: abandon assigned submissions and refund the unspent escrow."""
        args = build(CloseTaskArgs, task_id=task_id)
        inc = self._send(PALLET, "close_task", args.call_params(), timeout)
        event = self._one(inc, TaskClosedEvent)
        return CloseTaskResult(**self._receipt(inc), task_id=task_id, refund=event.refund,
                               abandoned=event.abandoned)

    def abandon_task(self, submission_id: int, *, timeout: float | None = None
                     ) -> AbandonTaskResult:
        """Give an ``Assigned`` slot back (a run that failed): the slot reopens for others and
        the worker may accept the task again later. Only the submission's worker can do this."""
        args = build(AbandonTaskArgs, submission_id=submission_id)
        inc = self._send(PALLET, "abandon_task", args.call_params(), timeout)
        event = self._one(inc, SubmissionAbandonedEvent)
        return AbandonTaskResult(**self._receipt(inc), task_id=event.task_id,
                                 submission_id=submission_id)

    # -- protocol 2: pay by contribution ----------------------------------------------------------

    def settle_contributions(self, task_id: int, scores: Mapping[int, int], *,
                             timeout: float | None = None) -> SettleContributionsResult:
        """Accept pending results of a ``ByContribution`` task and pay its pool by their scores
        (parts per million, ``{submission_id: score}``; at most ``MaxScore`` each), in one
        call. The payouts come from the chain's ``ResultAccepted`` events."""
        args = build(SettleContributionsArgs, limits=self.limits, task_id=task_id,
                     scores=dict(scores))
        inc = self._send(PALLET, "settle_contributions", args.call_params(), timeout)
        receipt = self._receipt(inc)
        settled = self._one(inc, ContributionsSettledEvent)
        payouts = {e.submission_id: e.reward for e in receipt["market_events"]
                   if isinstance(e, ResultAcceptedEvent)}
        return SettleContributionsResult(**receipt, task_id=task_id, results=settled.results,
                                         pool=settled.pool, paid=settled.paid,
                                         dust=settled.dust, payouts=payouts)

    # -- protocol 2: peer jobs --------------------------------------------------------------------

    def create_peer_job(self, args: CreatePeerJobArgs | None = None, /, *,
                        timeout: float | None = None, **kwargs: Any) -> CreatePeerJobResult:
        """Create a peer job (``CreatePeerJobArgs``, or its fields as keywords): round 0 starts
        at the block the call lands in. The creator is not a peer until it joins."""
        if args is None:
            args = build(CreatePeerJobArgs, limits=self.limits, **kwargs)
        elif kwargs:
            raise InvalidInput("args", "give CreatePeerJobArgs or keywords, not both")
        else:
            args = build(CreatePeerJobArgs, limits=self.limits, **args.model_dump())
        inc = self._send(PALLET, "create_peer_job", args.call_params(), timeout)
        event = self._one(inc, PeerJobCreatedEvent)
        return CreatePeerJobResult(**self._receipt(inc), job_id=event.job_id,
                                   start_block=inc.location.block_number)

    def join_peer_job(self, job_id: int, *, timeout: float | None = None) -> PeerJobCallResult:
        """Become a peer of a job from its current round on (``round``: the round joined in)."""
        args = build(PeerJobArgs, job_id=job_id)
        inc = self._send(PALLET, "join_peer_job", args.call_params(), timeout)
        event = self._one(inc, PeerJoinedEvent)
        return PeerJobCallResult(**self._receipt(inc), job_id=job_id, round=event.round)

    def leave_peer_job(self, job_id: int, *, timeout: float | None = None) -> PeerJobCallResult:
        """Stop being a peer of a job (what was posted stays); it may join again later."""
        args = build(PeerJobArgs, job_id=job_id)
        inc = self._send(PALLET, "leave_peer_job", args.call_params(), timeout)
        event = self._one(inc, PeerLeftEvent)
        return PeerJobCallResult(**self._receipt(inc), job_id=job_id, round=event.round)

    def post_update(self, job_id: int, round: int, cid: str, *,
                    timeout: float | None = None) -> PeerJobCallResult:
        """Publish the CID of this peer's update for ``round`` (the current round, in its update
        phase)."""
        args = build(PostCidArgs, limits=self.limits, job_id=job_id, round=round, cid=cid)
        inc = self._send(PALLET, "post_update", args.call_params("update_cid"), timeout)
        event = self._one(inc, UpdatePostedEvent)
        return PeerJobCallResult(**self._receipt(inc), job_id=job_id, round=event.round)

    def post_aggregate(self, job_id: int, round: int, cid: str, *,
                       timeout: float | None = None) -> PostAggregateResult:
        """Vote for the aggregate this participant computed for ``round`` (the current round, in
        its aggregate phase); ``agreed_cid`` is set when this vote made the majority."""
        args = build(PostCidArgs, limits=self.limits, job_id=job_id, round=round, cid=cid)
        inc = self._send(PALLET, "post_aggregate", args.call_params("aggregate_cid"), timeout)
        receipt = self._receipt(inc)
        agreed = next((e.model_cid for e in receipt["market_events"]
                       if isinstance(e, RoundAgreedEvent)), None)
        return PostAggregateResult(**receipt, job_id=job_id, round=round, agreed_cid=agreed)

    # -- fee estimates ----------------------------------------------------------------------------

    def estimate_fee(self, call: str, **params: Any) -> int:
        """The fee (planck) the chain would charge the signer for a call, without sending it.

        ``call`` is a DecentralML call name with the same keyword arguments as the method
        (``estimate_fee("accept_task", task_id=3)``), ``"validate_task_result"`` with
        ``decisions={id: bool, ...}`` for the batch, or ``"Pallet.call"`` with raw ``params=``.
        """
        if call == "create_task":
            created = self.create_task_args(**params)
            pallet, function = PALLET, created.call_name
            args: dict[str, Any] = created.call_params()
            return self._payment(lambda si: si.compose_call(pallet, function, args))
        if call in ("post_update", "post_aggregate"):
            pallet, function = PALLET, call
            args = build(PostCidArgs, limits=self.limits, **params).call_params(
                "update_cid" if call == "post_update" else "aggregate_cid")
            return self._payment(lambda si: si.compose_call(pallet, function, args))
        simple: dict[str, type[BaseModel]] = {
            "accept_task": AcceptTaskArgs, "close_task": CloseTaskArgs,
            "abandon_task": AbandonTaskArgs,
            "send_task_result": SendTaskResultArgs,
            "settle_contributions": SettleContributionsArgs,
            "create_peer_job": CreatePeerJobArgs,
            "join_peer_job": PeerJobArgs, "leave_peer_job": PeerJobArgs}
        if call in simple:
            pallet, function = PALLET, call
            args = build(simple[call], limits=self.limits,
                         **params).call_params()  # type: ignore[attr-defined]
            return self._payment(lambda si: si.compose_call(pallet, function, args))
        if call == "validate_task_result":
            decisions = params.pop("decisions", None)
            if decisions is None:
                decisions = {params.pop("submission_id"): params.pop("accept")}
            inner = [build(ValidateTaskResultArgs, submission_id=sid, accept=ok).call_params()
                     for sid, ok in decisions.items()]
            return self._payment(lambda si: si.compose_call("Utility", "batch_all", {"calls": [
                si.compose_call(PALLET, "validate_task_result", a).value for a in inner]}))
        if "." in call:
            pallet, function = call.split(".", 1)
            raw = params.get("params", {})
            return self._payment(lambda si: si.compose_call(pallet, function, raw))
        raise InvalidInput("call", f"unknown call {call!r}",
                           "a DecentralML call (create_task, accept_task, ..., post_aggregate) "
                           "or 'Pallet.call'")

    def _payment(self, compose: Callable[[SubstrateInterface], GenericCall]) -> int:
        keypair = self._signer()

        def query(si: SubstrateInterface) -> int:
            info = si.get_payment_info(compose(si), keypair)
            return int(info["partial_fee"] if "partial_fee" in info else info["partialFee"])
        return self._conn.run(query)

    # -- queries ----------------------------------------------------------------------------------

    def _query(self, storage: str, params: list[Any], block_hash: str | None = None,
               pallet: str = PALLET) -> Any:
        def get(si: SubstrateInterface) -> Any:
            obj = si.query(pallet, storage, params, block_hash=block_hash)
            return None if obj is None else obj.value
        return self._conn.run(get)

    def _query_map(self, storage: str, params: list[Any], page_size: int
                   ) -> Iterator[tuple[Any, Any]]:
        """Page through a map with ``state_getKeysPaged`` at one pinned block, releasing the
        connection between pages so other threads are not starved by a long listing."""
        if not 1 <= page_size <= 1000:
            raise InvalidInput("page_size", f"{page_size}", "1..=1000")
        block_hash = self._conn.rpc("chain_getBlockHash", [])
        cursor: str | None = None
        while True:
            start = cursor

            def page(si: SubstrateInterface, start: str | None = start) -> tuple[list[Any],
                                                                                   str | None]:
                result = si.query_map(PALLET, storage, params, block_hash=block_hash,
                                      page_size=page_size, max_results=page_size,
                                      start_key=start, ignore_decoding_errors=False)
                return [(k.value, v.value) for k, v in result.records], result.last_key
            records, cursor = self._conn.run(page)
            yield from records
            if len(records) < page_size or cursor is None:
                return

    def _missing(self, name: str, what: str) -> PalletError:
        return pallet_error_class(PALLET, name)(what)

    def task(self, task_id: int) -> TaskInfo:
        """A task by id; raises ``TaskNotFound`` if there is none."""
        build(AcceptTaskArgs, task_id=task_id)
        value = self._query("Tasks", [task_id])
        if value is None:
            raise self._missing("TaskNotFound", f"no task {task_id}")
        return TaskInfo.from_chain(task_id, value)

    def tasks(self, *, status: TaskStatus | str | None = None,
              task_type: TaskType | str | None = None, creator: str | None = None,
              open_slots: bool | None = None, min_open_slots: int = 0,
              page_size: int = 100) -> list[TaskInfo]:
        """Every task matching all given filters, by id. ``open_slots=True`` keeps tasks that are
        open, not expired and have a free slot (what a worker can accept now; False: the others);
        ``min_open_slots`` keeps tasks with at least that many free slots."""
        want_status = None if status is None else TaskStatus(status)
        want_type = None if task_type is None else TaskType(task_type)
        creator = None if creator is None else self._account(creator)
        current = self.block_number() if open_slots is not None else 0
        found = []
        for key, value in self._query_map("Tasks", [], page_size):
            task = TaskInfo.from_chain(int(key), value)
            if want_status is not None and task.status is not want_status:
                continue
            if want_type is not None and task.task_type is not want_type:
                continue
            if creator is not None and task.creator != creator:
                continue
            if task.open_slots < min_open_slots:
                continue
            if open_slots is not None:
                available = (task.status is TaskStatus.Open and task.open_slots > 0
                             and current < task.expiration_block)
                if available is not open_slots:
                    continue
            found.append(task)
        return sorted(found, key=lambda t: t.task_id)

    def submission(self, submission_id: int) -> Submission:
        """A submission by id; raises ``SubmissionNotFound`` if there is none."""
        build(AcceptTaskArgs, task_id=submission_id)
        value = self._query("Submissions", [submission_id])
        if value is None:
            raise self._missing("SubmissionNotFound", f"no submission {submission_id}")
        return Submission.from_chain(submission_id, value)

    def task_terms(self, task_id: int) -> TaskTerms:
        """A task's terms (protocol 2); the default terms for a task created without them.
        Raises ``TaskNotFound`` if there is no such task."""
        build(AcceptTaskArgs, task_id=task_id)
        value = self._query("Terms", [task_id])
        if value is None:
            self.task(task_id)
        return TaskTerms.from_chain(value)

    def submission_shard(self, submission_id: int) -> int | None:
        """The data shard a submission was assigned (None on a task without shards)."""
        build(AbandonTaskArgs, submission_id=submission_id)
        value = self._query("SubmissionShards", [submission_id])
        return None if value is None else int(value)

    def submission_score(self, submission_id: int) -> int | None:
        """The score a result was settled with (None: not settled by contribution)."""
        build(AbandonTaskArgs, submission_id=submission_id)
        value = self._query("Scores", [submission_id])
        return None if value is None else int(value)

    def shard_holders(self, task_id: int, *, page_size: int = 100) -> dict[int, int]:
        """``shard -> submission id`` for the shards a live submission of the task holds."""
        build(AcceptTaskArgs, task_id=task_id)
        return {int(k): int(v) for k, v in self._query_map("ShardHolders", [task_id], page_size)}

    def peer_job(self, job_id: int) -> PeerJob:
        """A peer job by id; raises ``PeerJobNotFound`` if there is none."""
        build(PeerJobArgs, job_id=job_id)
        value = self._query("PeerJobs", [job_id])
        if value is None:
            raise self._missing("PeerJobNotFound", f"no peer job {job_id}")
        return PeerJob.from_chain(job_id, value)

    def peer_jobs(self, *, page_size: int = 100) -> list[PeerJob]:
        """Every peer job, by id."""
        jobs = [PeerJob.from_chain(int(k), v) for k, v in self._query_map("PeerJobs", [],
                                                                           page_size)]
        return sorted(jobs, key=lambda j: j.job_id)

    def next_peer_job_id(self) -> int:
        return int(self._query("NextPeerJobId", []) or 0)

    def peers(self, job_id: int, *, page_size: int = 100) -> dict[str, int]:
        """The job's current peers: address -> the round each joined in."""
        build(PeerJobArgs, job_id=job_id)
        return {str(k): int(v) for k, v in self._query_map("Peers", [job_id], page_size)}

    def _round_map(self, storage: str, job_id: int, round: int, page_size: int
                   ) -> dict[str, str]:
        build(PostCidArgs, job_id=job_id, round=round, cid="-")
        return {str(k): _text(v)
                for k, v in self._query_map(storage, [(job_id, round)], page_size)}

    def round_updates(self, job_id: int, round: int, *, page_size: int = 100
                      ) -> dict[str, str]:
        """The updates posted in a round: peer address -> update CID."""
        return self._round_map("RoundUpdates", job_id, round, page_size)

    def round_aggregates(self, job_id: int, round: int, *, page_size: int = 100
                         ) -> dict[str, str]:
        """The aggregates posted in a round: participant address -> aggregate CID. A participant
        whose CID differs from :meth:`agreed_model` is the visible minority."""
        return self._round_map("RoundAggregates", job_id, round, page_size)

    def agreed_model(self, job_id: int, round: int) -> str | None:
        """The CID a majority of the round's participants posted (None: no majority yet, or
        none by the round's end)."""
        build(PostCidArgs, job_id=job_id, round=round, cid="-")
        value = self._query("AgreedModels", [(job_id, round)])
        return None if value is None else _text(value)

    def _submissions_by_id(self, ids: list[int]) -> list[Submission]:
        if not ids:
            return []

        def fetch(si: SubstrateInterface) -> list[Submission]:
            keys = [si.create_storage_key(PALLET, "Submissions", [i]) for i in ids]
            out = []
            for key, obj in si.query_multi(keys):
                if obj is not None and obj.value is not None:
                    out.append(Submission.from_chain(int(key.params[0]), obj.value))
            return out
        return sorted(self._conn.run(fetch), key=lambda s: s.submission_id)

    def submissions(self, task_id: int, *, status: SubmissionStatus | str | None = None,
                    page_size: int = 100) -> list[Submission]:
        """The submissions of a task (through the ``TaskSubmissions`` index), by id."""
        build(AcceptTaskArgs, task_id=task_id)
        ids = [int(key) for key, _ in self._query_map("TaskSubmissions", [task_id], page_size)]
        subs = self._submissions_by_id(ids)
        return subs if status is None else [s for s in subs
                                            if s.status is SubmissionStatus(status)]

    def task_submissions(self, task_id: int, *, status: SubmissionStatus | str | None = None
                         ) -> list[Submission]:
        """Alias of :meth:`submissions`."""
        return self.submissions(task_id, status=status)

    def pending(self, task_id: int) -> list[Submission]:
        """The task's submissions waiting for validation."""
        return self.submissions(task_id, status=SubmissionStatus.PendingValidation)

    def worker_submissions(self, account: str | None = None, *,
                           status: SubmissionStatus | str | None = None,
                           page_size: int = 100) -> list[Submission]:
        """A worker's submissions over all tasks (default: the signer's)."""
        address = self._account(account)
        ids = [int(key) for key, _ in self._query_map("WorkerSubmissions", [address], page_size)]
        subs = self._submissions_by_id(ids)
        return subs if status is None else [s for s in subs
                                            if s.status is SubmissionStatus(status)]

    def next_task_id(self) -> int:
        return int(self._query("NextTaskId", []) or 0)

    def next_submission_id(self) -> int:
        return int(self._query("NextSubmissionId", []) or 0)

    def balance(self, account: str | None = None) -> int:
        """The free balance (planck) of an account (default: the signer)."""
        return self.account_balance(account).free

    def fees_paid(self, accounts: Iterable[str], *, from_block: int = 0,
                  to_block: int | None = None) -> dict[str, int]:
        """Transaction fees (``TransactionFeePaid``: actual fee + tip) each of ``accounts`` paid
        in blocks ``from_block..=to_block`` (default: up to the head), keyed as given.

        Reads every block's events in the range: meant for reconciling balances on a dev chain
        or over a short window, not for scanning a live chain's history.
        """
        from decentralml.chain.events import block_events

        wanted = {self.resolve_address(a): a for a in accounts}
        totals = dict.fromkeys(wanted.values(), 0)
        last = self.block_number() if to_block is None else to_block
        for number in range(from_block, last + 1):
            found = block_events(self._conn, number)
            if found is None:
                break
            for record in found[1]:
                if (record.get("module_id"), record.get("event_id")) != \
                        ("TransactionPayment", "TransactionFeePaid"):
                    continue
                attrs = record.get("attributes") or {}
                who = wanted.get(str(attrs.get("who")))
                if who is not None:
                    totals[who] += int(attrs.get("actual_fee", 0)) + int(attrs.get("tip", 0))
        return totals

    def account_balance(self, account: str | None = None) -> AccountBalance:
        """``System.Account`` of an account (default: the signer): free, reserved, frozen, nonce."""
        address = self._account(account)
        value = self._query("Account", [address], pallet="System") or {}
        data = value.get("data", {})
        frozen = data.get("frozen", data.get("misc_frozen", 0))
        return AccountBalance(address=address, free=int(data.get("free", 0)),
                              reserved=int(data.get("reserved", 0)), frozen=int(frozen or 0),
                              nonce=int(value.get("nonce", 0)))

    def escrow(self, task_id: int) -> Escrow:
        """A task's escrow account and balance next to what the escrow invariant requires."""
        task = self.task(task_id)
        address = self.escrow_address(task_id)
        return Escrow(task_id=task_id, account=address, balance=self.balance(address),
                      expected=task.unpaid_escrow)

    def escrow_balance(self, task_id: int) -> int:
        """What task ``task_id``'s escrow account holds (planck)."""
        return self.balance(self.escrow_address(task_id))

    # -- watching ------------------------------------------------------------------------------

    def watch(self, *, kinds: str | type[MarketEvent] | list[str | type[MarketEvent]] | None = None,
              task_id: int | None = None, account: str | None = None,
              from_block: int | None = None, timeout: float | None = None,
              job_id: int | None = None) -> Iterator[MarketEvent]:
        """Marketplace events as blocks arrive, filtered by kind, task (or peer job) and involved
        account.

        Starts at the next block (or ``from_block``) and ends after ``timeout`` seconds (None:
        never; break out of the loop to stop). The connection's reconnects are transparent.
        """
        flt = EventFilter.build(kinds, task_id, account, job_id)
        start = self.block_number() + 1 if from_block is None else from_block  # now, not lazily
        return watch_events(self._conn, flt, from_block=start, timeout=timeout,
                            poll_interval=self.poll_interval)

    def on_event(self, callback: Callable[[MarketEvent], Any], *,
                 kinds: str | type[MarketEvent] | list[str | type[MarketEvent]] | None = None,
                 task_id: int | None = None, account: str | None = None,
                 from_block: int | None = None, job_id: int | None = None
                 ) -> EventSubscription:
        """Call ``callback`` from a background thread for each matching event until ``.stop()``
        (which re-raises whatever stopped delivery early)."""
        flt = EventFilter.build(kinds, task_id, account, job_id)
        return EventSubscription(self._conn, flt, callback, from_block=from_block,
                                 poll_interval=self.poll_interval)

    def wait_for(self, condition: Callable[[Client], T], *, timeout: float | None = None,
                 description: str | None = None) -> T:
        """Re-evaluate ``condition(client)`` at every new block until it returns something truthy,
        and return that; :class:`ChainTimeout` after ``timeout`` seconds."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_block = -1
        while True:
            head = self.block_number()
            if head != last_block:
                last_block = head
                value = condition(self)
                if value:
                    return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = description or getattr(condition, "__name__", "condition")
                raise ChainTimeout(f"{what} not met within {limit:g}s (at block {head})")
            time.sleep(min(self.poll_interval, remaining))

    def wait_for_block(self, number: int, *, timeout: float | None = None) -> int:
        """Wait until the best block is at least ``number``; returns the head."""
        return self.wait_for(lambda c: (h := c.block_number()) >= number and h,
                             timeout=timeout, description=f"block {number}")

    def finalized_number(self) -> int:
        """The number of the last finalized block (GRANDPA's, on a node with a finality gadget)."""
        return self._conn.finalized_number()

    def wait_finalized(self, receipt: ExtrinsicResult, *, timeout: float | None = None
                       ) -> ExtrinsicResult:
        """Wait until the block of ``receipt`` is finalized and return it.

        Raises :class:`BlockRetracted` when the finalized chain has another block at that height
        (the extrinsic's block lost a fork: what it did does not count), and
        :class:`FinalityStalled` when finality has not reached the block within ``timeout``
        while blocks kept coming (a finality stall: too few validators voting). A client made
        with ``finality=True`` does this before it returns any receipt.
        """
        limit = self.timeout if timeout is None else timeout
        location = Location(receipt.block_hash, receipt.block_number, receipt.extrinsic_index)
        if self._submitter.finalized(location, time.monotonic() + limit, receipt.extrinsic_hash):
            return receipt
        raise retraction_error(receipt.extrinsic_hash, location, self._conn)

    def wait_for_pending(self, task_id: int, count: int, *, timeout: float | None = None
                         ) -> list[Submission]:
        """Wait until at least ``count`` results of the task are pending validation."""
        def enough(c: Client) -> list[Submission]:
            pending = c.pending(task_id)
            return pending if len(pending) >= count else []
        return self.wait_for(enough, timeout=timeout,
                             description=f"{count} pending results on task {task_id}")

    def wait_for_event(self, kinds: str | type[MarketEvent] | list[str | type[MarketEvent]], *,
                       task_id: int | None = None, account: str | None = None,
                       from_block: int | None = None, timeout: float | None = None,
                       job_id: int | None = None) -> MarketEvent:
        """The first matching event at or after ``from_block`` (default: the next block)."""
        limit = self.timeout if timeout is None else timeout
        for event in self.watch(kinds=kinds, task_id=task_id, account=account,
                                from_block=from_block, timeout=limit, job_id=job_id):
            return event
        raise ChainTimeout(f"no {kinds} event (task {task_id}, account {account}) within "
                           f"{limit:g}s")
