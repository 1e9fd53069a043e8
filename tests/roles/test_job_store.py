"""The job history on disk (pure, no chain): names, atomic state, strategy state and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput
from decentralml.roles.job_plot import plot_job
from decentralml.roles.job_store import (
    ContributorRecord,
    JobSpec,
    JobState,
    JobStore,
    RoundRecord,
    check_job_name,
)


def _spec(name: str = "digits") -> JobSpec:
    return JobSpec(name=name, question="q", rounds=3, slots=2, reward=10**12)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 65, "spa ce"])
def test_job_names_are_plain(bad: str) -> None:
    with pytest.raises(InvalidInput, match="name"):
        check_job_name(bad)


def test_create_refuses_an_existing_job_and_state_round_trips(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job = store.create(_spec())
    with pytest.raises(InvalidInput, match="already exists"):
        store.create(_spec())
    state = job.load()
    state.rounds.append(RoundRecord(round=1, phase="closed", task_id=4, accuracy=0.5, paid=2))
    job.save(state)
    again = store.job("digits").load()
    assert again.rounds[0].task_id == 4 and again.total_paid == 2
    assert again.final_accuracy == 0.5
    assert [s.spec.name for s in store.list()] == ["digits"]
    assert not list(tmp_path.glob("digits/.job.json-*"))  # no temp file left behind


def test_strategy_state_round_trips_and_is_never_unpickled(tmp_path: Path) -> None:
    job = JobStore(tmp_path).create(_spec())
    assert job.load_strategy_state(1) is None
    state = {"step": np.asarray(3), "m.0": np.arange(6, dtype=np.float32).reshape(2, 3)}
    job.save_strategy_state(1, state)  # what a server optimizer's get_state() returns
    loaded = job.load_strategy_state(1)
    assert loaded is not None and set(loaded) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == value.dtype
    np.save(tmp_path / "digits" / "strategy" / "round-2.npz", np.array([object()]),
            allow_pickle=True)  # a hostile file where a state should be
    (tmp_path / "digits" / "strategy" / "round-2.npz.npy").rename(
        tmp_path / "digits" / "strategy" / "round-2.npz")
    with pytest.raises(ValueError):
        job.load_strategy_state(2)


def test_plot_is_a_png_with_every_round(tmp_path: Path) -> None:
    state = JobState(spec=_spec(), initial_accuracy=0.1, rounds=[
        RoundRecord(round=r, phase="closed", task_id=r, accuracy=0.2 * r, contributors=[
            ContributorRecord(submission_id=2 * r + k, worker=w, status="Accepted",
                              accuracy=0.2 * r - 0.01 * k, reward=10**12)
            for k, w in enumerate(("5Alice", "5Bob"))]) for r in (1, 2, 3)])
    path = plot_job(state, tmp_path / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_job_list_shows_amounts_in_the_token_the_job_recorded(tmp_path: Path) -> None:
    """No node configured: the amounts come out exact in the job's own chain's token (recorded
    at its start), and in planck for a job recorded without one, never a guessed 12 decimals."""
    from decentralml.amounts import Token
    from tests.roles.conftest import cli

    home = tmp_path / "home"
    store = JobStore(home / "jobs")
    paid = [RoundRecord(round=1, phase="closed", paid=15_000_000_001)]
    dot = JobSpec(name="dot", question="q", rounds=1, slots=1, reward=10**10,
                  token=Token(symbol="DOT", decimals=10))
    store.create(dot).save(JobState(spec=dot, rounds=paid))
    old = JobSpec(name="old", question="q", rounds=1, slots=1, reward=10**10)
    store.create(old).save(JobState(spec=old, rounds=paid))
    assert store.job("dot").load().spec.token == Token(symbol="DOT", decimals=10)
    env = {"DECENTRALML_NODE_URL": ""}
    listed = cli(["job", "list"], home=home, env=env).stdout
    assert "1.5000000001 DOT" in listed and "15000000001 planck" in listed
