"""Substrate's JSON-RPC methods over the :class:`Chain`, independent of the transport.

Each method gets validated positional params and a :class:`Session` (the connection: where
subscription notifications go). Results use the exact JSON shapes of a Substrate node (hex
numbers in headers, ``{"inBlock": hash}`` statuses, 1010 errors with a ``data`` text...), since
substrate-interface parses them without any tolerance.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from substrateinterface.utils.ss58 import ss58_decode

from decentralml.devnode.chain import Block, Chain
from decentralml.devnode.extrinsics import (
    EXHAUSTS,
    TransactionInvalid,
    check_length,
    decode_extrinsic,
    extensions_weight,
)
from decentralml.devnode.pallets.system import SS58_PREFIX
from decentralml.devnode.pallets.transaction_payment import fee_parts
from decentralml.devnode.runtime import (
    MAX_EXTRINSIC_LENGTH,
    RUNTIME_APIS,
    SPEC_NAME,
    SPEC_VERSION,
    TRANSACTION_VERSION,
)
from decentralml.devnode.runtime_api import UnknownRuntimeApi
from decentralml.devnode.scale import DecodeError

CHAIN_NAME = "decentralml-devnode"
NODE_NAME = "decentralml-devnode"
NODE_VERSION = "0.1.0"
MAX_KEYS_PAGE = 1000

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: jsonrpsee's code for a connection over its subscription limit.
TOO_MANY_SUBSCRIPTIONS = -32006


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(message)

    def as_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid_params(detail: str) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid params", detail)


class Session(Protocol):
    """One client connection, as the RPC methods see it."""

    subscriptions: dict[str, Callable[[], None]]

    def notify(self, method: str, subscription: str, result: Any) -> None: ...

    def after_response(self, action: Callable[[], None]) -> None: ...


# -- param helpers -------------------------------------------------------------------------


def _hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise invalid_params(f"{name}: expected a 0x-prefixed hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise invalid_params(f"{name}: invalid hex") from None


def _opt_hash(value: Any, name: str = "hash") -> bytes | None:
    if value is None:
        return None
    raw = _hex(value, name)
    if len(raw) != 32:
        raise invalid_params(f"{name}: expected 32 bytes")
    return raw


def _account(value: Any) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        raw = _hex(value, "account")
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(ss58_decode(value))
        except (ValueError, TypeError, IndexError) as exc:
            raise invalid_params(f"account: {exc}") from None
    else:
        raise invalid_params("account: expected an SS58 address or hex")
    if len(raw) != 32:
        raise invalid_params("account: expected 32 bytes")
    return raw


def _number(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid_params("block number: expected a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        try:
            n = int(value, 16) if value.startswith("0x") else int(value)
        except ValueError:
            raise invalid_params("block number: not a number") from None
    else:
        raise invalid_params("block number: expected a number")
    if not 0 <= n <= 2**32 - 1:
        raise invalid_params("block number: out of range")
    return n


def _params(raw: Any, min_n: int, max_n: int) -> list[Any]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_params("params must be an array")
    if not min_n <= len(raw) <= max_n:
        raise invalid_params(f"expected {min_n}..{max_n} params, got {len(raw)}")
    return raw + [None] * (max_n - len(raw))


def _h(b: bytes) -> str:
    return "0x" + b.hex()


def _extrinsic(value: Any) -> bytes:
    """An extrinsic param, refused by its hex length before even unhexing it."""
    if isinstance(value, str) and len(value) > 2 + 2 * MAX_EXTRINSIC_LENGTH:
        raise _invalid_tx(TransactionInvalid(EXHAUSTS))
    data = _hex(value, "extrinsic")
    try:
        check_length(data)
    except TransactionInvalid as exc:
        raise _invalid_tx(exc) from None
    return data


def _invalid_tx(exc: TransactionInvalid) -> RpcError:
    return RpcError(exc.code, exc.message, exc.data)


class RpcApi:
    """The method table; :meth:`handle` turns one request object into one response object."""

    def __init__(self, chain: Chain, max_subscriptions_per_connection: int = 1024) -> None:
        self.chain = chain
        self.max_subscriptions = max_subscriptions_per_connection
        start = secrets.randbits(40)
        self._ids: Iterator[int] = itertools.count(start)
        # heads subscriptions and storage subscriptions are fed by one block listener
        self._block_subs: dict[str, Callable[[Block, Any], None]] = {}
        #: finalized heads subscriptions, fed when blocks become final (durable)
        self._final_subs: dict[str, Callable[[Block], None]] = {}
        self._all_changes_cache: tuple[bytes, dict[str, Any]] | None = None
        chain.listeners.append(self._on_block)
        chain.finality_listeners.append(self._on_final)
        self.table: dict[str, Callable[[Session, Any], Any]] = {
            "rpc_methods": self.rpc_methods,
            "system_chain": lambda s, p: _noargs(p, CHAIN_NAME),
            "system_name": lambda s, p: _noargs(p, NODE_NAME),
            "system_version": lambda s, p: _noargs(p, NODE_VERSION),
            "system_chainType": lambda s, p: _noargs(p, "Development"),
            "system_properties": lambda s, p: _noargs(p, {
                "ss58Format": SS58_PREFIX, "tokenDecimals": 12, "tokenSymbol": "UNIT"}),
            "system_health": lambda s, p: _noargs(p, {
                "peers": 0, "isSyncing": False, "shouldHavePeers": False}),
            "system_peers": lambda s, p: _noargs(p, []),
            "system_nodeRoles": lambda s, p: _noargs(p, ["Authority"]),
            "system_localPeerId": lambda s, p: _noargs(p, "12D3KooWDevnodeDevnodeDevnode"),
            "system_localListenAddresses": lambda s, p: _noargs(p, []),
            "system_syncState": self.system_sync_state,
            "system_accountNextIndex": self.account_next_index,
            "chain_getHeader": self.get_header,
            "chain_getBlock": self.get_block,
            "chain_getBlockHash": self.get_block_hash,
            "chain_getHead": self.get_block_hash,
            "chain_getFinalizedHead": self.get_finalized_head,
            "chain_getFinalisedHead": self.get_finalized_head,
            "chain_subscribeNewHeads": self._heads("chain_newHead"),
            "chain_subscribeNewHead": self._heads("chain_newHead"),
            "subscribe_newHead": self._heads("chain_newHead"),
            "chain_subscribeFinalizedHeads": self._final_heads,
            "chain_subscribeFinalisedHeads": self._final_heads,
            "chain_subscribeAllHeads": self._heads("chain_allHead"),
            "state_getMetadata": self.get_metadata,
            "state_getRuntimeVersion": self.get_runtime_version,
            "chain_getRuntimeVersion": self.get_runtime_version,
            "state_subscribeRuntimeVersion": self.subscribe_runtime_version,
            "chain_subscribeRuntimeVersion": self.subscribe_runtime_version,
            "state_getStorage": self.get_storage,
            "state_getStorageAt": self.get_storage,
            "state_getStorageHash": self.get_storage_hash,
            "state_getStorageHashAt": self.get_storage_hash,
            "state_getStorageSize": self.get_storage_size,
            "state_getStorageSizeAt": self.get_storage_size,
            "state_getKeys": self.get_keys,
            "state_getKeysPaged": self.get_keys_paged,
            "state_getKeysPagedAt": self.get_keys_paged,
            "state_queryStorageAt": self.query_storage_at,
            "state_call": self.state_call,
            "state_callAt": self.state_call,
            "state_subscribeStorage": self.subscribe_storage,
            "author_submitExtrinsic": self.submit_extrinsic,
            "author_submitAndWatchExtrinsic": self.submit_and_watch,
            "author_pendingExtrinsics": self.pending_extrinsics,
            "payment_queryInfo": self.payment_query_info,
            "payment_queryFeeDetails": self.payment_query_fee_details,
            "dev_newBlock": self.dev_new_block,
        }
        for name in ("chain_unsubscribeNewHeads", "chain_unsubscribeNewHead",
                     "unsubscribe_newHead", "chain_unsubscribeFinalizedHeads",
                     "chain_unsubscribeFinalisedHeads", "chain_unsubscribeAllHeads",
                     "state_unsubscribeStorage", "state_unsubscribeRuntimeVersion",
                     "chain_unsubscribeRuntimeVersion", "author_unwatchExtrinsic"):
            self.table[name] = self.unsubscribe

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, session: Session, request: Any) -> dict[str, Any] | None:
        """One JSON-RPC request object -> its response (None for a notification)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" \
                or not isinstance(request.get("method"), str):
            return {"jsonrpc": "2.0", "id": None if not isinstance(request, dict)
                    else _safe_id(request.get("id")),
                    "error": {"code": INVALID_REQUEST, "message": "Invalid request"}}
        req_id = _safe_id(request.get("id"))
        method = self.table.get(request["method"])
        try:
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
            result = method(session, request.get("params"))
        except RpcError as err:
            return {"jsonrpc": "2.0", "id": req_id, "error": err.as_json()}
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    def new_id(self) -> str:
        return f"{next(self._ids):016x}"

    def live_subscriptions(self) -> int:
        """Head and storage subscriptions currently fed by new blocks (all connections)."""
        return len(self._block_subs) + len(self._final_subs)

    def _room_for_subscription(self, s: Session) -> None:
        """Refuse a new subscription on a connection that holds the maximum (before any work)."""
        if len(s.subscriptions) >= self.max_subscriptions:
            raise RpcError(TOO_MANY_SUBSCRIPTIONS, "Too many subscriptions on the connection",
                           f"Exceeded max limit of {self.max_subscriptions}")

    # -- system -----------------------------------------------------------------------------

    def rpc_methods(self, s: Session, p: Any) -> Any:
        _params(p, 0, 0)
        return {"version": 1, "methods": sorted(self.table)}

    def system_sync_state(self, s: Session, p: Any) -> Any:
        _params(p, 0, 0)
        n = self.chain.best.number
        return {"startingBlock": 0, "currentBlock": n, "highestBlock": n}

    def account_next_index(self, s: Session, p: Any) -> Any:
        (who,) = _params(p, 1, 1)
        return self.chain.next_nonce(_account(who))

    # -- chain ------------------------------------------------------------------------------

    def _block_or_best(self, value: Any) -> Block | None:
        h = _opt_hash(value)
        return self.chain.best if h is None else self.chain.block(h)

    def get_header(self, s: Session, p: Any) -> Any:
        (h,) = _params(p, 0, 1)
        block = self._block_or_best(h)
        return None if block is None else block.header_json()

    def get_block(self, s: Session, p: Any) -> Any:
        (h,) = _params(p, 0, 1)
        block = self._block_or_best(h)
        if block is None:
            return None
        return {"block": {"header": block.header_json(),
                          "extrinsics": [_h(x) for x in block.extrinsics]},
                "justifications": None}

    def get_block_hash(self, s: Session, p: Any) -> Any:
        (n,) = _params(p, 0, 1)
        if n is None:
            return _h(self.chain.best.hash)
        if isinstance(n, list):
            if len(n) > MAX_KEYS_PAGE:
                raise invalid_params("too many block numbers")
            return [self._hash_of(x) for x in n]
        return self._hash_of(n)

    def _hash_of(self, n: Any) -> str | None:
        h = self.chain.hash_of(_number(n))
        return None if h is None else _h(h)

    def get_finalized_head(self, s: Session, p: Any) -> Any:
        _params(p, 0, 0)
        return _h(self.chain.finalized.hash)

    def _heads(self, method: str) -> Callable[[Session, Any], Any]:
        def subscribe(s: Session, p: Any) -> Any:
            _params(p, 0, 0)
            self._room_for_subscription(s)
            sub = self.new_id()

            def on_block(block: Block, changes: Any) -> None:
                s.notify(method, sub, block.header_json())

            self._block_subs[sub] = on_block
            s.subscriptions[sub] = lambda: self._block_subs.pop(sub, None) and None
            best = self.chain.best
            s.after_response(lambda: s.notify(method, sub, best.header_json()))
            return sub
        return subscribe

    def _on_block(self, block: Block, changes: Any) -> None:
        for cb in list(self._block_subs.values()):
            cb(block, changes)

    def _all_changes(self, block: Block, changes: Any) -> dict[str, Any]:
        """A block's every change as ``state_storage`` reports it, built once per block."""
        cached = self._all_changes_cache
        if cached is None or cached[0] != block.hash:
            result = {"block": _h(block.hash), "changes": [
                [_h(k), None if v is None else _h(v)] for k, v in sorted(changes.items())]}
            cached = self._all_changes_cache = (block.hash, result)
        return cached[1]

    def _final_heads(self, s: Session, p: Any) -> Any:
        """``chain_subscribeFinalizedHeads``: a header once its block is durable (final)."""
        _params(p, 0, 0)
        self._room_for_subscription(s)
        sub = self.new_id()

        def on_final(block: Block) -> None:
            s.notify("chain_finalizedHead", sub, block.header_json())

        self._final_subs[sub] = on_final
        s.subscriptions[sub] = lambda: self._final_subs.pop(sub, None) and None
        final = self.chain.finalized
        s.after_response(lambda: s.notify("chain_finalizedHead", sub, final.header_json()))
        return sub

    def _on_final(self, block: Block) -> None:
        for cb in list(self._final_subs.values()):
            cb(block)

    def unsubscribe(self, s: Session, p: Any) -> Any:
        (sub,) = _params(p, 1, 1)
        if not isinstance(sub, str):
            raise invalid_params("subscription id must be a string")
        cleanup = s.subscriptions.pop(sub, None)
        if cleanup is None:
            return False
        cleanup()
        return True

    # -- state ------------------------------------------------------------------------------

    def _state(self, h: Any) -> Any:
        state = self.chain.state_at(_opt_hash(h))
        if state is None:
            raise RpcError(4003, "Client error: UnknownBlock: header not found in db")
        return state

    def get_metadata(self, s: Session, p: Any) -> Any:
        (h,) = _params(p, 0, 1)
        self._state(h)
        return _h(self.chain.metadata)

    def runtime_version_json(self) -> dict[str, Any]:
        from decentralml.devnode.hashing import blake2_64
        return {"specName": SPEC_NAME, "implName": SPEC_NAME, "authoringVersion": 1,
                "specVersion": SPEC_VERSION, "implVersion": 1,
                "apis": [[_h(blake2_64(n.encode())), v] for n, v in RUNTIME_APIS],
                "transactionVersion": TRANSACTION_VERSION, "stateVersion": 1}

    def get_runtime_version(self, s: Session, p: Any) -> Any:
        (h,) = _params(p, 0, 1)
        self._state(h)
        return self.runtime_version_json()

    def subscribe_runtime_version(self, s: Session, p: Any) -> Any:
        _params(p, 0, 0)
        self._room_for_subscription(s)
        sub = self.new_id()
        s.subscriptions[sub] = lambda: None
        version = self.runtime_version_json()
        s.after_response(lambda: s.notify("state_runtimeVersion", sub, version))
        return sub

    def get_storage(self, s: Session, p: Any) -> Any:
        key, h = _params(p, 1, 2)
        value = self._state(h).get(_hex(key, "key"))
        return None if value is None else _h(value)

    def get_storage_hash(self, s: Session, p: Any) -> Any:
        from decentralml.devnode.hashing import blake2_256
        key, h = _params(p, 1, 2)
        value = self._state(h).get(_hex(key, "key"))
        return None if value is None else _h(blake2_256(value))

    def get_storage_size(self, s: Session, p: Any) -> Any:
        key, h = _params(p, 1, 2)
        value = self._state(h).get(_hex(key, "key"))
        return None if value is None else len(value)

    def get_keys(self, s: Session, p: Any) -> Any:
        prefix, h = _params(p, 1, 2)
        keys = [_h(k) for k, _ in itertools.islice(
            self._state(h).iter_prefix(_hex(prefix, "prefix")), MAX_KEYS_PAGE * 10)]
        return keys

    def get_keys_paged(self, s: Session, p: Any) -> Any:
        prefix, count, start, h = _params(p, 2, 4)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise invalid_params("count must be a non-negative integer")
        if count > MAX_KEYS_PAGE:
            raise RpcError(4002, f"count exceeds maximum value. value: {count}, max: "
                                 f"{MAX_KEYS_PAGE}")
        pre = b"" if prefix is None else _hex(prefix, "prefix")
        after = None if start is None else _hex(start, "start_key")
        it = self._state(h).iter_prefix(pre, after)
        return [_h(k) for k, _ in itertools.islice(it, count)]

    def query_storage_at(self, s: Session, p: Any) -> Any:
        keys, h = _params(p, 1, 2)
        if not isinstance(keys, list) or len(keys) > MAX_KEYS_PAGE:
            raise invalid_params(f"keys must be an array of at most {MAX_KEYS_PAGE} keys")
        state = self._state(h)
        block = self.chain.best.hash if h is None else _opt_hash(h)
        changes = []
        for k in keys:
            value = state.get(_hex(k, "key"))
            changes.append([k, None if value is None else _h(value)])
        return [{"block": _h(block or b""), "changes": changes}]

    def state_call(self, s: Session, p: Any) -> Any:
        method, data, h = _params(p, 2, 3)
        if not isinstance(method, str):
            raise invalid_params("method must be a string")
        try:
            result = self.chain.call(method, _hex(data, "data"), _opt_hash(h))
        except UnknownRuntimeApi as exc:
            raise RpcError(4003, f"Client error: Execution failed: Other: {exc}") from None
        except (DecodeError, ValueError, IndexError, KeyError, TypeError,
                TransactionInvalid) as exc:
            raise RpcError(4003, "Client error: Execution failed: Runtime panicked: "
                                 f"Bad input data provided to {method}: {exc}") from None
        if result is None:
            raise RpcError(4003, "Client error: UnknownBlock: header not found in db")
        return _h(result)

    def subscribe_storage(self, s: Session, p: Any) -> Any:
        (keys,) = _params(p, 0, 1)
        if keys is not None and (not isinstance(keys, list) or len(keys) > MAX_KEYS_PAGE):
            raise invalid_params(f"keys must be an array of at most {MAX_KEYS_PAGE} keys")
        wanted = None if keys is None else {_hex(k, "key") for k in keys}
        self._room_for_subscription(s)
        sub = self.new_id()

        def on_block(block: Block, changes: Any) -> None:
            if wanted is None:  # every change: computed once per block for all such subscribers
                result = self._all_changes(block, changes)
                if result["changes"]:
                    s.notify("state_storage", sub, result)
                return
            hits = [(k, changes[k]) for k in wanted if k in changes]
            if hits:
                s.notify("state_storage", sub, {"block": _h(block.hash), "changes": [
                    [_h(k), None if v is None else _h(v)] for k, v in sorted(hits)]})

        self._block_subs[sub] = on_block
        s.subscriptions[sub] = lambda: self._block_subs.pop(sub, None) and None
        best = self.chain.best
        head = self.chain.head
        initial = {"block": _h(best.hash), "changes": [
            [_h(k), None if head.get(k) is None else _h(head.get(k) or b"")]
            for k in sorted(wanted or ())]}
        s.after_response(lambda: s.notify("state_storage", sub, initial))
        return sub

    # -- author -----------------------------------------------------------------------------

    def _submit(self, s: Session, p: Any, watcher: Callable[[Any], None] | None
                ) -> tuple[bytes, str]:
        (raw,) = _params(p, 1, 1)
        data = _extrinsic(raw)
        try:
            xt, status, promoted = self.chain.submit(data, watcher)
        except DecodeError as exc:
            raise RpcError(1001, f"Extrinsic has invalid format: {exc}") from None
        except TransactionInvalid as exc:
            raise _invalid_tx(exc) from None
        if promoted:
            s.after_response(lambda: self.chain.announce_ready(promoted))
        return xt.hash, status

    def submit_extrinsic(self, s: Session, p: Any) -> Any:
        tx_hash, _ = self._submit(s, p, None)
        s.after_response(self.chain.seal_if_instant)
        return _h(tx_hash)

    def submit_and_watch(self, s: Session, p: Any) -> Any:
        self._room_for_subscription(s)
        sub = self.new_id()

        def watcher(status: Any) -> None:
            s.notify("author_extrinsicUpdate", sub, status)
            if (isinstance(status, dict) and "finalized" in status) or status in (
                    "invalid", "dropped"):
                s.subscriptions.pop(sub, None)

        tx_hash, status = self._submit(s, p, watcher)
        s.subscriptions[sub] = lambda: self.chain.unwatch(tx_hash, watcher)

        def announce() -> None:
            s.notify("author_extrinsicUpdate", sub, status)
            self.chain.seal_if_instant()

        s.after_response(announce)
        return sub

    def pending_extrinsics(self, s: Session, p: Any) -> Any:
        _params(p, 0, 0)
        pool = self.chain.pool
        return [_h(t.xt.raw) for t in list(pool.ready.values()) + list(pool.future.values())]

    # -- payment ----------------------------------------------------------------------------

    def _fee_of(self, p: Any) -> tuple[Any, int, int, int, Any]:
        raw, h = _params(p, 1, 2)
        self._state(h)
        data = _extrinsic(raw)
        try:
            xt = decode_extrinsic(self.chain.runtime, data)
        except DecodeError as exc:
            raise RpcError(1001, f"Extrinsic has invalid format: {exc}") from None
        except TransactionInvalid as exc:
            raise _invalid_tx(exc) from None
        weight, dclass, _ = self.chain.runtime.call_info(xt.call)
        weight = weight + extensions_weight(xt)
        base, len_fee, weight_fee = fee_parts(weight, len(data))
        return weight, base, len_fee, weight_fee, (dclass, xt)

    def payment_query_info(self, s: Session, p: Any) -> Any:
        weight, base, len_fee, weight_fee, (dclass, xt) = self._fee_of(p)
        partial = base + len_fee + weight_fee if xt.signed else 0
        return {"weight": {"ref_time": weight.ref_time, "proof_size": weight.proof_size},
                "class": dclass.lower(), "partialFee": str(partial)}

    def payment_query_fee_details(self, s: Session, p: Any) -> Any:
        _, base, len_fee, weight_fee, (_, xt) = self._fee_of(p)
        inclusion = {"baseFee": hex(base), "lenFee": hex(len_fee),
                     "adjustedWeightFee": hex(weight_fee)} if xt.signed else None
        return {"inclusionFee": inclusion, "tip": hex(xt.tip)}

    # -- dev --------------------------------------------------------------------------------

    def dev_new_block(self, s: Session, p: Any) -> Any:
        """Seal blocks now (``[{"count": n}]``, default one); returns the last block's hash."""
        (opts,) = _params(p, 0, 1)
        count = 1
        if opts is not None:
            if not isinstance(opts, dict):
                raise invalid_params("expected an options object")
            count = opts.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
                raise invalid_params("count must be an integer in 1..=1000")
        block = self.chain.best
        for _ in range(count):
            block = self.chain.produce_block()
        return _h(block.hash)


def _noargs(p: Any, value: Any) -> Any:
    _params(p, 0, 0)
    return value


def _safe_id(value: Any) -> Any:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None
