"""The Gymnasium environment ``qmec/Offload-v0`` and its vectorised variant.

Both step qmec's simulator in Rust, one call per step however many
environments; this module only adds the spaces, seeding and episode ends.
"""

from typing import Any, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _qmec

ENV_ID = "qmec/Offload-v0"

#: Steps per episode under ``gymnasium.make``: the system has no terminal
#: state (Lyapunov control keeps it running), so episodes are cut (truncated).
MAX_EPISODE_STEPS = 1000

# Seeds drawn for the Rust simulator when reset() is given none.
_SEED_BOUND = 2**63


def _as_scenario(scenario: Union[str, "_qmec.Scenario"]) -> "_qmec.Scenario":
    if isinstance(scenario, _qmec.Scenario):
        return scenario
    if not isinstance(scenario, str):
        raise TypeError(f"scenario: expected a name or a qmec.Scenario, got {type(scenario).__name__}")
    return _qmec.Scenario(scenario)


def _spaces(scenario: "_qmec.Scenario", action: str, core_action_shape) -> tuple:
    m, s = scenario.devices, scenario.servers
    observation = spaces.Box(0.0, np.inf, shape=(m, 2 + s), dtype=np.float32)
    if action == "scores":
        action_space = spaces.Box(-1.0, 1.0, shape=core_action_shape, dtype=np.float32)
    else:
        action_space = spaces.Box(0.0, 1.0, shape=core_action_shape, dtype=np.float32)
    return observation, action_space


class OffloadEnv(gym.Env):
    """One MEC system (``scenario``: a built-in name or a ``qmec.Scenario``),
    one slot per step, under the simulator's own dynamics: Poisson task
    arrivals, Rayleigh fading, device queues Q, virtual queues H, server
    backlogs.

    **Observation** (float32, devices × (2 + servers)): row m is
    ``[Q_m / u, H_m / u, r_m1 / W, ..., r_mS / W]`` — the queue and virtual
    queue in queue units u (``scenario.queue_unit_bits``, 1 Mbit in the
    paper scenario) and each uplink's Shannon rate as spectral efficiency,
    over the bandwidth W of a server channel (bit/s/Hz, about 0.5–3 in the
    paper scenario).

    **Action**: with ``action="scores"`` (the default), devices × (1 +
    servers) scores in [-1, 1] (column 0: stay local; values outside the box
    are accepted too), multiplied by ``qmec.SCORE_SCALE`` and projected onto
    the feasible set by the learned policies' own projection (links with
    Ψ ≤ 0 closed, a softmax per device, each server channel's sum scaled to
    at most 1, each device's load capped by its queue), so every finite
    action is a valid decision. With ``action="shares"``, the shares μ
    (devices × servers) themselves, such as ``qmec.policy("lyapunov")``
    decides: Σ_s μ ≤ 1 per device and Σ_m μ ≤ 1 per server or ValueError; a
    device's row that would send more than its queue holds is scaled down to it.

    **Reward**: the slot's drift-plus-penalty objective Σ Ψ_ms μ_ms, with
    Ψ_ms = ((Q_m + H_m)/u + Vω) τ r_ms / u − V P τ — what the exact LP
    (policy ``lyapunov``) maximises every slot.

    **info**: ``dpp_objective`` (the reward), ``throughput_bits``,
    ``tx_power_w``, ``compute_power_w``, ``queue_bits``, ``virtual_bits``,
    ``server_bits`` (totals after the slot), and with ``lp=True`` (the
    default) ``lp_objective``, the exact LP's optimum on the same state, and
    ``lp_share`` = reward / optimum (left out where the optimum is 0: nothing
    was worth offloading). ``lp=False`` skips the LP (both left out).

    ``reset(seed=k)`` starts the episode ``qmec simulate --seed k`` runs (the
    same arrivals and channels); without a seed one is drawn from the env's
    ``np_random``. Episodes never terminate; ``gymnasium.make`` truncates
    them after ``MAX_EPISODE_STEPS``.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: Union[str, "_qmec.Scenario"] = "paper", action: str = "scores", lp: bool = True, render_mode: Optional[str] = None):
        if render_mode is not None:
            raise ValueError(f"render_mode: {render_mode!r} is not supported (none is)")
        self.scenario = _as_scenario(scenario)
        self._core = _qmec.Env(self.scenario, action, lp)
        self.observation_space, self.action_space = _spaces(self.scenario, action, self._core.action_shape)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        core_seed = seed if seed is not None else int(self.np_random.integers(_SEED_BOUND))
        return self._core.reset(core_seed), {}

    def step(self, action):
        observation, reward, info = self._core.step(np.ascontiguousarray(action, dtype=np.float64))
        return observation, reward, False, False, info

    def state(self) -> "_qmec.State":
        """The state the next action decides, for ``qmec.Policy.decide``."""
        return self._core.state()


class OffloadVectorEnv(VectorEnv):
    """``num_envs`` :class:`OffloadEnv` s stepped in one Rust call
    (``gymnasium.make_vec("qmec/Offload-v0", num_envs=N,
    vectorization_mode="vector_entry_point", scenario=...)`` or built
    directly). Same observation, action, reward and info as the single
    environment, batched along the first axis (``info`` holds arrays and
    their ``_name`` masks; an entry a single environment would leave out is
    NaN and masked out).

    ``reset(seed=k)`` seeds environment i with k + i. Episodes are truncated
    after ``max_episode_steps`` and reset on the next step (Gymnasium's
    next-step autoreset: that step ignores the environment's action and
    returns its first observation with reward 0).
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, scenario: Union[str, "_qmec.Scenario"] = "paper", action: str = "scores", lp: bool = True, max_episode_steps: int = MAX_EPISODE_STEPS):
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps: must be at least 1, got {max_episode_steps}")
        self.scenario = _as_scenario(scenario)
        self._core = _qmec.VecEnv(self.scenario, num_envs, action, lp)
        probe = _qmec.Env(self.scenario, action, False)
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space, self.single_action_space = _spaces(self.scenario, action, probe.action_shape)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: Optional[Union[int, Sequence[int]]] = None, options: Optional[dict] = None):
        first = seed if seed is None or isinstance(seed, int) else None
        super().reset(seed=first)
        if seed is None:
            seeds = [int(k) for k in self.np_random.integers(_SEED_BOUND, size=self.num_envs)]
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = [int(k) for k in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: {len(seeds)} seeds for {self.num_envs} environments")
        self._core.reset_some(list(range(self.num_envs)), seeds)
        self._steps[:] = 0
        self._autoreset[:] = False
        return self._core.observations(), {}

    def step(self, actions):
        if self._autoreset.any():
            ended = np.flatnonzero(self._autoreset)
            seeds = [int(k) for k in self.np_random.integers(_SEED_BOUND, size=len(ended))]
            self._core.reset_some(ended.tolist(), seeds)
            self._steps[ended] = 0
        observations, rewards, info = self._core.step(np.ascontiguousarray(actions, dtype=np.float64), self._autoreset)
        stepped = ~self._autoreset
        self._steps[stepped] += 1
        truncated = stepped & (self._steps >= self.max_episode_steps)
        info.update({f"_{name}": stepped & ~np.isnan(values) for name, values in list(info.items())})
        self._autoreset = truncated.copy()
        return observations, rewards, np.zeros(self.num_envs, dtype=bool), truncated, info

    def state(self, index: int) -> "_qmec.State":
        """Environment ``index``'s current state, for ``qmec.Policy.decide``."""
        return self._core.state(index)


def register() -> None:
    """Registers ``qmec/Offload-v0`` (done by ``import qmec``)."""
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point="qmec.env:OffloadEnv",
            vector_entry_point="qmec.env:OffloadVectorEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
        )
