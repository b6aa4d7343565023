"""Scenarios, whole runs against the `qmec` command, policies on states, and
bad input raising clear Python exceptions."""

import json
import math
import os
import subprocess
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import qmec

ROOT = Path(__file__).resolve().parents[2]

# Figures that depend on the machine's clock, not on the run.
TIMINGS = {"decision_mean_s", "decision_max_s"}


def qmec_binary() -> Path:
    """The CLI the workspace built (test.sh builds it before this phase)."""
    path = Path(os.environ.get("QMEC_BIN", ROOT / "target" / "debug" / "qmec"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it with `cargo build -p qmec-cli` or set QMEC_BIN")
    return path


def without_timings(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMINGS}


@pytest.mark.parametrize("policy", ["dpp-greedy", "qnn"])
def test_simulate_matches_the_cli(tmp_path, policy):
    out = tmp_path / "run"
    subprocess.run(
        [qmec_binary(), "simulate", "--scenario", "paper-small", "--policy", policy, "--slots", "300", "--seed", "4", "--out", out],
        check=True,
        capture_output=True,
    )
    cli = json.loads((out / "summary.json").read_text())
    summary = qmec.simulate("paper-small", policy=policy, slots=300, seed=4)
    assert without_timings(summary) == without_timings(cli)
    assert summary["slots"] == 300 and summary["tasks"]["arrived"] > 0


def test_scenario_from_toml_round_trips(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(qmec.Scenario("paper-small").to_toml())
    scenario = qmec.Scenario.from_toml(str(path))
    assert (scenario.name, scenario.devices, scenario.servers) == ("paper-small", 3, 2)
    env = gymnasium.make("qmec/Offload-v0", scenario=scenario)
    assert env.observation_space.shape == (3, 4)


def test_every_builtin_policy_decides_a_state():
    scenario = qmec.Scenario("paper")
    env = qmec.OffloadEnv(scenario)
    env.reset(seed=1)
    for _ in range(10):
        env.step(env.action_space.sample())
    state = env.state()
    names = qmec.policy_names()
    assert {"local", "greedy", "dpp-greedy", "lyapunov", "qnn"} <= set(names)
    for name in names:
        if name == "dl":
            continue  # trained, ships no model: needs model=FILE
        try:
            mu = qmec.policy(name, scenario, seed=1).decide(state)
        except ValueError as error:
            assert "scenario" in str(error) or "model" in str(error), (name, error)
            continue
        assert mu.shape == (10, 3), name
        assert (mu >= 0).all() and (mu.sum(axis=1) <= 1 + 1e-9).all() and (mu.sum(axis=0) <= 1 + 1e-9).all(), name


def test_a_state_built_from_arrays():
    scenario = qmec.Scenario("paper-small")
    state = qmec.State(scenario, np.array([2e6, 0.0, 1e6]), np.zeros(3), np.zeros((3, 2)), np.full((3, 2), 1e-7))
    mu = qmec.policy("lyapunov", scenario).decide(state)
    assert mu[1].sum() == 0.0 and mu[0].sum() > 0.0


def test_unknown_scenario_name():
    with pytest.raises(ValueError, match="scenario: unknown built-in scenario"):
        qmec.Scenario("papr")
    with pytest.raises(ValueError, match="scenario"):
        gymnasium.make("qmec/Offload-v0", scenario="nope")


def test_bad_toml_path_and_bad_toml(tmp_path):
    with pytest.raises(OSError, match="scenario file .*missing.toml"):
        qmec.Scenario.from_toml(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text(qmec.Scenario("paper").to_toml().replace("devices = 10", "devices = 0"))
    with pytest.raises(ValueError, match="devices"):
        qmec.Scenario.from_toml(str(bad))


def test_wrong_action_shape_and_nan_action():
    env = gymnasium.make("qmec/Offload-v0", scenario="paper", disable_env_checker=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: expected shape \[10, 4\], got \[10, 3\]"):
        env.step(np.zeros((10, 3)))
    action = np.zeros((10, 4))
    action[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"action\[2, 1\] is NaN"):
        env.step(action)
    shares = qmec.OffloadEnv("paper", action="shares")
    shares.reset(seed=0)
    with pytest.raises(ValueError, match="action: infeasible decision: device 0 transmits"):
        shares.step(np.full((10, 3), 0.5))


def test_bad_policy_and_simulate_arguments():
    with pytest.raises(ValueError, match="policy: unknown policy `lyapunv`"):
        qmec.policy("lyapunv")
    with pytest.raises(ValueError, match="state: 3 devices × 2 servers"):
        qmec.policy("lyapunov", "paper").decide(qmec.OffloadEnv("paper-small").state())
    with pytest.raises(ValueError, match="queue_bits: expected 3 entries"):
        qmec.State(qmec.Scenario("paper-small"), np.zeros(2), np.zeros(3), np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"gains\[0\] is NaN"):
        qmec.State(qmec.Scenario("paper-small"), np.zeros(3), np.zeros(3), np.zeros((3, 2)), np.full((3, 2), math.nan))
    with pytest.raises(ValueError, match="policy"):
        qmec.simulate("paper-small", policy="nope", slots=10)
    with pytest.raises(ValueError, match="action: unknown kind `mu`"):
        qmec.OffloadEnv("paper", action="mu")
