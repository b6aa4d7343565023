"""The worked example (python/examples/): the trainer runs on a tiny budget,
its weights load in the service's scorer and give feasible decisions, and
the scorer's Ψ and projection are the environment's."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qmec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
from learned_policy import Constants, Observed, Scorer, WeightsError, dpp_weights, offload_probabilities, project  # noqa: E402


def observed_of(env, constants):
    state = env.state()
    q, h, r = state.queue_bits, state.virtual_bits, state.rates_bps
    return Observed(queue_bits=q, virtual_bits=h, rates_bps=r, dpp_weights=dpp_weights(constants, q, h, r))


def train_tiny(out: Path) -> str:
    """Runs the trainer for a budget of seconds; returns what it printed."""
    run = subprocess.run(
        [sys.executable, EXAMPLES / "train_agent.py", "--scenario", "paper-small", "--out", out, "--rounds", "2", "--steps", "60",
         "--episode-steps", "30", "--epochs", "2", "--hidden", "4", "--eval-episodes", "1", "--eval-steps", "20"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent") / "agent.json"
    return out, train_tiny(out)


def test_the_same_seed_gives_the_same_weights(trained, tmp_path):
    again = tmp_path / "again.json"
    train_tiny(again)
    assert json.loads(again.read_text()) == json.loads(trained[0].read_text())


def test_trainer_reports_rounds_and_the_comparison(trained):
    _, stdout = trained
    assert "round 2/2: 120 states" in stdout, stdout
    for policy in ("learned scorer", "lyapunov", "max-weight", "random scores"):
        assert policy in stdout, stdout


def test_trained_weights_give_feasible_decisions_the_env_accepts(trained):
    scorer = Scorer.load(trained[0])
    scenario = qmec.Scenario("paper-small")
    constants = Constants.from_toml(scenario.to_toml())
    env = qmec.OffloadEnv(scenario, action="shares")
    env.reset(seed=5)
    offloaded = 0.0
    for _ in range(40):
        observed = observed_of(env, constants)
        mu = scorer.decide(constants, observed)
        assert mu.shape == (3, 2) and (mu >= 0).all()
        assert (mu.sum(axis=1) <= 1 + 1e-9).all() and (mu.sum(axis=0) <= 1 + 1e-9).all()
        assert ((mu * constants.slot_seconds * observed.rates_bps).sum(axis=1) <= observed.queue_bits * (1 + 1e-9)).all()
        assert (mu[observed.dpp_weights <= 0] == 0).all()
        _, reward, _, _, info = env.step(mu)  # raises on an infeasible μ
        assert reward == pytest.approx(float((observed.dpp_weights * mu).sum()), rel=1e-9, abs=1e-9)
        assert reward <= info["lp_objective"] + 1e-9
        offloaded += mu.sum()
    assert offloaded > 0


def test_projection_is_the_environments_score_projection():
    scenario = qmec.Scenario("paper-small")
    constants = Constants.from_toml(scenario.to_toml())
    rng = np.random.default_rng(3)
    env = qmec.OffloadEnv(scenario, action="scores", lp=False)
    env.reset(seed=2)
    for _ in range(30):
        observed = observed_of(env, constants)
        logits = rng.uniform(-8, 8, size=(3, 2))
        mu = project(offload_probabilities(logits, observed.dpp_weights), observed, constants.slot_seconds)
        scores = np.concatenate([np.zeros((3, 1)), logits], axis=1) / qmec.SCORE_SCALE
        _, reward, _, _, _ = env.step(scores)
        assert reward == pytest.approx(float((observed.dpp_weights * mu).sum()), rel=1e-9, abs=1e-9)


def test_bad_weights_files_are_refused_naming_the_field(tmp_path, trained):
    missing = tmp_path / "none.json"
    with pytest.raises(WeightsError, match="cannot read"):
        Scorer.load(missing)
    body = json.loads(trained[0].read_text())
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**body, "w2": body["w2"][:-1]}))
    with pytest.raises(WeightsError, match="do not fit"):
        Scorer.load(wrong)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**body, "format": "something else"}))
    with pytest.raises(WeightsError, match="format"):
        Scorer.load(other)
