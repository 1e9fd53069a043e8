"""The FedProx / client-side DP options of a task's config.json, as both ends read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decentralml.errors import InvalidInput
from decentralml.fl import ClientDP, TaskOptions, read_task_options, write_task_options


def test_absent_means_off(tmp_path: Path) -> None:
    assert read_task_options(None) == TaskOptions()
    assert read_task_options(tmp_path / "config.json") == TaskOptions()
    assert read_task_options({"epochs": 2}) == TaskOptions(proximal_mu=0.0, dp=None)


def test_round_trip_keeps_the_bundles_own_keys(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 2, "proximal_mu": 0.5}))
    opts = TaskOptions(proximal_mu=0.01, dp=ClientDP(clipping_norm=1.0, noise_multiplier=1.2))
    path = write_task_options(tmp_path, opts)
    config = json.loads(path.read_text())
    assert config == {"epochs": 2, "proximal_mu": 0.01,
                      "dp": {"clipping_norm": 1.0, "noise_multiplier": 1.2}}
    assert read_task_options(path) == opts
    write_task_options(tmp_path, TaskOptions())  # off again: no stale keys left behind
    assert json.loads(path.read_text()) == {"epochs": 2}


@pytest.mark.parametrize(("config", "field"), [
    ({"proximal_mu": -1}, "proximal_mu"),
    ({"proximal_mu": float("nan")}, "proximal_mu"),
    ({"proximal_mu": "a lot"}, "proximal_mu"),
    ({"dp": {"clipping_norm": 0, "noise_multiplier": 1}}, "dp.clipping_norm"),
    ({"dp": {"clipping_norm": 1, "noise_multiplier": -2}}, "dp.noise_multiplier"),
    ({"dp": {"clipping_norm": 1}}, "dp.noise_multiplier"),
    ({"dp": {"clipping_norm": 1, "noise_multiplier": 1, "epsilon": 3}}, "dp.epsilon"),
])
def test_bad_values_name_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        read_task_options(config)
    assert err.value.field == field


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="config"):
        read_task_options(tmp_path / "config.json")
    with pytest.raises(InvalidInput, match="config"):
        read_task_options([1, 2])  # type: ignore[arg-type]
