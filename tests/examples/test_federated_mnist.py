"""The demo's whole flow end to end (devnode + local store, and devnode + real IPFS daemon), one
round of it against the Rust runtime by URL, and the creator's notebook executed as a user would
run it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from decentralml.chain.runtime_node import RuntimeNode
from decentralml.chain.substrate_node import dev_node
from decentralml.cli.demo import load_demo
from tests.fixtures.chains import node_binary, require_node_tier

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "federated_mnist"

# 4 rounds of 3 contributor processes: well over pytest's default 600 s on a loaded 2-core box
pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.timeout(1800)]


def _demo() -> ModuleType:
    module = load_demo()
    assert module is not None, f"no demo in {EXAMPLE}"
    return module


def _check(report) -> None:  # type: ignore[no-untyped-def]
    last = report.rounds[-1]
    assert all(r["accepted"] == 3 and r["rejected"] == 0 for r in report.rounds)
    assert report.rewards_paid == sum(r["paid"] for r in report.rounds) == \
        len(report.rounds) * 3 * 10 * 10**12
    assert report.escrow_refunded == 0  # every slot was filled and paid
    assert report.balances_ok, "balances do not reconcile to the unit"
    assert report.federated_accuracy >= 0.9
    assert report.federated_accuracy >= report.central_accuracy - 0.05
    assert last["accuracy"] is not None
    split = report.time_split
    assert all(seconds >= 0 for seconds in split.values())
    assert set(split) == {"training", "task host", "chain", "storage", "validation",
                          "aggregation", "waiting", "other"}
    assert split["training"] > 0 and split["chain"] > 0 and split["storage"] > 0
    assert [int(b["round"]) for b in report.breakdown] == [r["round"] for r in report.rounds]
    for b in report.breakdown:  # each round's parts add up to its wall time
        assert sum(v for k, v in b.items() if k not in ("round", "seconds")) >= \
            b["seconds"] * 0.99
    # the parts add up to the federated job's wall time (waiting and the creator's rest clamp
    # at zero, so the sum can only exceed it by clock noise)
    assert sum(split.values()) >= report.steps["federated job"] * 0.99
    assert report.rounds[0]["policy"].startswith("AutoAccept")
    assert all(r["policy"].startswith("holdout min-accuracy") for r in report.rounds[1:])
    assert report.evaluation_examples + report.holdout_examples == 450


def test_demo_with_local_store(tmp_path: Path) -> None:
    report = _demo().run_demo(tmp_path, rounds=4, log=lambda *_: None)
    assert report.storage == "local"
    assert report.data_source == "digits"  # no mnist.npz here: the offline fallback
    _check(report)


@pytest.mark.ipfs
def test_demo_with_ipfs(tmp_path: Path, ipfs_api: str) -> None:
    report = _demo().run_demo(tmp_path, rounds=4, storage=f"ipfs:{ipfs_api}",
                              log=lambda *_: None)
    assert report.storage == "ipfs"
    _check(report)


def test_one_round_against_the_runtime(tmp_path: Path, fresh_runtime_node: RuntimeNode) -> None:
    """The same roles and CLI code, unchanged, pointed at the FRAME runtime by URL: the creator
    publishes through the roles, three contributor CLI processes work the task, AutoAccept pays
    them on chain, the creator federates; every balance reconciles with the runtime's fees."""
    report = _demo().run_demo(tmp_path, rounds=1, node_url=fresh_runtime_node.url,
                              log=lambda *_: None)
    assert [(r["accepted"], r["rejected"]) for r in report.rounds] == [(3, 0)]
    assert report.rewards_paid == report.rounds[0]["paid"] == 3 * 10 * 10**12
    assert report.escrow_refunded == 0
    assert report.fees_paid > 0  # the runtime's own fees, read from TransactionFeePaid
    assert report.balances_ok, "balances do not reconcile to the unit on the runtime"
    assert report.federated_accuracy > 0.2  # well above chance (0.1) after one round


def test_one_round_against_the_node(tmp_path: Path) -> None:
    """The same round against `decentralml-node --dev` (Aura blocks every second, GRANDPA): the
    roles and contributor CLI processes by URL, balances reconciled with the node's fees. Part
    of the node tier (tests/fixtures/chains.py)."""
    require_node_tier()
    with dev_node(tmp_path / "node", binary=node_binary()) as node:
        report = _demo().run_demo(tmp_path / "demo", rounds=1, node_url=node.url,
                                  log=lambda *_: None)
    assert [(r["accepted"], r["rejected"]) for r in report.rounds] == [(3, 0)]
    assert report.rewards_paid == report.rounds[0]["paid"] == 3 * 10 * 10**12
    assert report.escrow_refunded == 0
    assert report.fees_paid > 0
    assert report.balances_ok, "balances do not reconcile to the unit on the node"
    assert report.federated_accuracy > 0.2


def test_contributor_nodes_are_checked_before_anything_runs(tmp_path: Path) -> None:
    """One node URL per contributor, and the creator's own node with them: refused up front,
    naming the option, before data is loaded or a node is touched."""
    from decentralml.errors import InvalidInput

    demo = _demo()
    with pytest.raises(InvalidInput, match=r"contributor_nodes: 2 URLs given .*per contributor"):
        demo.run_demo(tmp_path, node_url="ws://127.0.0.1:9", contributor_nodes=["ws://a", "ws://b"])
    with pytest.raises(InvalidInput, match="contributor_nodes: given without node_url"):
        demo.run_demo(tmp_path, contributor_nodes=["ws://a", "ws://b", "ws://c"])
    with pytest.raises(SystemExit) as usage:
        demo.main(["--contributor-nodes", "ws://a", "ws://b", "ws://c"])
    assert usage.value.code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_creator_notebook_executes(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLE / "creator.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLE)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "federated accuracy after one round" in outputs
    assert "refund 0" in outputs
