"""Strategies by name: every registered name builds, and mistakes are clear InvalidInput errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from decentralml.errors import InvalidInput
from decentralml.fl import (
    DPFedAvg,
    FedAdam,
    FedAvg,
    Krum,
    Strategy,
    TrimmedMean,
    Update,
    strategy_from_name,
    strategy_name,
    strategy_names,
)
from decentralml.fl.registry import parse_strategy_spec, strategy_from_spec

NEEDS = {"dp-fedavg": {"clipping_norm": 1.0, "noise_multiplier": 0.5},
         "krum": {"f": 0}, "multi-krum": {"f": 0}}


def test_the_promised_names_are_there() -> None:
    assert {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "median", "trimmed-mean",
            "krum", "dp-fedavg"} <= set(strategy_names())


@pytest.mark.parametrize("name", strategy_names())
def test_every_name_builds_a_working_strategy(name: str, rng: np.random.Generator) -> None:
    strategy = strategy_from_name(name, **NEEDS.get(name, {}))
    assert isinstance(strategy, Strategy)
    x = [rng.normal(size=(4, 3)).astype(np.float32)]
    updates = [Update([x[0] + rng.normal(size=(4, 3)).astype(np.float32)], 5) for _ in range(3)]
    out = strategy.apply(x, updates)
    assert out[0].shape == (4, 3) and out[0].dtype == np.float32
    state = strategy.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    strategy_from_name(name, **NEEDS.get(name, {})).set_state(state)


@pytest.mark.parametrize("name", strategy_names())
def test_every_name_round_trips(name: str) -> None:
    """name -> build -> name: a strategy has one name, the registry's key and its class's
    ``name`` alike, so a job or report that records it rebuilds the same class."""
    strategy = strategy_from_name(name, **NEEDS.get(name, {}))
    assert strategy_name(strategy) == name
    assert type(strategy).name == name
    assert type(strategy_from_name(strategy_name(strategy) or "", **NEEDS.get(name, {}))) \
        is type(strategy)


def test_a_class_the_registry_does_not_build_has_no_name() -> None:
    class MyKrum(Krum):
        """Inherits Krum's name, but "krum" would rebuild Krum, not this."""

    assert strategy_name(MyKrum(f=0)) is None
    assert strategy_name(Krum(f=0)) == "krum"


def test_parameters_reach_the_constructor() -> None:
    s = strategy_from_name("FedAdam", eta=0.05, tau=1e-4)
    assert isinstance(s, FedAdam) and s.eta == 0.05 and s.tau == 1e-4
    assert isinstance(strategy_from_name("trimmed_mean", beta=0.2), TrimmedMean)
    assert isinstance(strategy_from_name("krum", f=2), Krum)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        strategy_from_name("fedsgd")
    assert err.value.field == "strategy"
    for name in strategy_names():
        assert name in str(err.value)


def test_unknown_or_missing_parameters() -> None:
    with pytest.raises(InvalidInput, match=r"has no parameter 'lr'.*eta"):
        strategy_from_name("fedadam", lr=0.1)
    with pytest.raises(InvalidInput, match="needs clipping_norm, noise_multiplier"):
        strategy_from_name("dp-fedavg")
    with pytest.raises(InvalidInput, match="eta"):
        strategy_from_name("fedadam", eta=-1.0)


def test_specs() -> None:
    assert parse_strategy_spec("fedavg") == ("fedavg", {})
    assert parse_strategy_spec("FedYogi:eta=0.02, tau=1e-3") == ("fedyogi",
                                                                  {"eta": 0.02, "tau": 0.001})
    dp = strategy_from_spec("dp-fedavg:clipping_norm=2,noise_multiplier=1.5,seed=3")
    assert isinstance(dp, DPFedAvg) and dp.clipping_norm == 2.0 and dp.seed == 3
    assert isinstance(strategy_from_spec("fedavg:max_share=none"), FedAvg)
    with pytest.raises(InvalidInput, match="key=value"):
        parse_strategy_spec("fedadam:eta")
    with pytest.raises(InvalidInput, match="unknown strategy"):
        parse_strategy_spec("nope:eta=1")


def test_listing_names_imports_no_strategy() -> None:
    code = ("import sys\nfrom decentralml.fl.registry import strategy_names\n"
            "strategy_names()\n"
            "print(sorted(m for m in sys.modules if m.startswith('decentralml.fl.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "['decentralml.fl.registry']"
