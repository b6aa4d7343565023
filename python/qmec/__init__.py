"""qmec from Python: scenarios, whole runs, a Gymnasium environment and every
built-in policy, over the same Rust model code as the ``qmec`` command.

>>> import gymnasium, qmec
>>> env = gymnasium.make("qmec/Offload-v0", scenario="paper")
>>> expert = qmec.policy("lyapunov", qmec.Scenario("paper"))

Importing the package registers ``qmec/Offload-v0`` (see ``qmec.env``).
"""

import json as _json
from typing import Optional as _Optional, Union as _Union

from ._qmec import SCORE_SCALE, Policy, Scenario, State, policy_names
from ._qmec import policy as _policy
from ._qmec import simulate_json as _simulate_json
from .env import OffloadEnv, OffloadVectorEnv, _as_scenario, register

__all__ = [
    "SCORE_SCALE",
    "OffloadEnv",
    "OffloadVectorEnv",
    "Policy",
    "Scenario",
    "State",
    "policy",
    "policy_names",
    "simulate",
]


def simulate(
    scenario: _Union[str, Scenario] = "paper",
    policy: str = "qnn",
    slots: int = 10_000,
    seed: int = 1,
    model: _Optional[str] = None,
    online: bool = True,
) -> dict:
    """Runs ``policy`` for ``slots`` slots and returns the run's summary, the
    ``summary.json`` that ``qmec simulate`` writes with the same arguments
    (the same defaults too: online learning for qnn and lydroo, seed 1)."""
    return _json.loads(_simulate_json(_as_scenario(scenario), policy, slots, seed, model, online))


def policy(name: str, scenario: _Union[str, Scenario] = "paper", seed: int = 0, model: _Optional[str] = None) -> Policy:
    """A built-in policy (``qmec.policy_names()``) for ``scenario``; its
    ``decide(state)`` returns the shares μ (devices × servers). A trained
    policy is frozen here (no online learning)."""
    return _policy(name, _as_scenario(scenario), seed, model)


register()
