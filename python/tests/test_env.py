"""The Gymnasium environment: Gymnasium's own checker, the reward against an
independent computation, the LP share, seeding, and the vectorised variant."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import qmec


def dpp_weights(scenario: qmec.Scenario, state: qmec.State) -> np.ndarray:
    """Ψ_ms from the state, written here from the README's formula
    (paper scenario: V = 1000, ω = 0, not two-tier)."""
    unit, tau, v, tx_power = scenario.queue_unit_bits, scenario.slot_seconds, 1000.0, 0.1
    pressure = (state.queue_bits + state.virtual_bits) / unit
    return pressure[:, None] * tau * state.rates_bps / unit - v * tx_power * tau


def test_check_env_passes():
    env = gymnasium.make("qmec/Offload-v0", scenario="paper")
    check_env(env.unwrapped, skip_render_check=True)
    check_env(env, skip_render_check=True)


def test_check_env_passes_with_shares():
    # Random shares in [0, 1] break Σ μ ≤ 1 (refused by design): the
    # checker's samples are scaled into the feasible set.
    env = gymnasium.make("qmec/Offload-v0", scenario="paper", action="shares")
    scaled = gymnasium.wrappers.TransformAction(env, lambda a: a / a.shape[0], env.action_space)
    check_env(scaled, skip_render_check=True)


def test_reward_is_the_dpp_objective_computed_independently():
    scenario = qmec.Scenario("paper")
    env = qmec.OffloadEnv(scenario, action="shares")
    expert = qmec.policy("lyapunov", scenario)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for step in range(200):
        state = env.state()
        mu = expert.decide(state) * rng.uniform(0.5, 1.0)
        _, reward, terminated, truncated, info = env.step(mu)
        expected = float((dpp_weights(scenario, state) * mu).sum())
        assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9), step
        assert info["dpp_objective"] == reward
        assert not terminated and not truncated


def test_expert_reaches_the_optimum_and_no_action_beats_it():
    env = gymnasium.make("qmec/Offload-v0", scenario="paper")
    expert_env = qmec.OffloadEnv("paper", action="shares")
    expert = qmec.policy("lyapunov")
    env.reset(seed=5)
    expert_env.reset(seed=5)
    shares, expert_shares = [], []
    for _ in range(300):
        _, reward, _, _, info = env.step(env.action_space.sample())
        assert reward <= info["lp_objective"] + 1e-9 * max(1.0, abs(info["lp_objective"]))
        if info["lp_objective"] > 0:
            shares.append(info["lp_share"])
        _, _, _, _, expert_info = expert_env.step(expert.decide(expert_env.state()))
        if expert_info["lp_objective"] > 0:
            expert_shares.append(expert_info["lp_share"])
    assert shares and expert_shares
    assert max(shares) <= 1.0 + 1e-9
    assert min(expert_shares) == pytest.approx(1.0, abs=1e-6)


def test_seeded_reset_is_reproducible():
    def episode(seed):
        env = gymnasium.make("qmec/Offload-v0", scenario="paper")
        observation, _ = env.reset(seed=seed)
        env.action_space.seed(0)
        trace = [observation]
        for _ in range(50):
            observation, reward, *_ = env.step(env.action_space.sample())
            trace.extend([observation, np.array([reward])])
        return np.concatenate([t.ravel() for t in trace])

    assert np.array_equal(episode(11), episode(11))
    assert not np.array_equal(episode(11), episode(12))


def test_observation_is_normalised_as_documented():
    scenario = qmec.Scenario("paper")
    env = qmec.OffloadEnv(scenario)
    observation, _ = env.reset(seed=2)
    for _ in range(20):
        observation, *_ = env.step(np.zeros(env.action_space.shape))
    state = env.state()
    assert observation.shape == (10, 5) and observation.dtype == np.float32
    np.testing.assert_allclose(observation[:, 0], state.queue_bits / 1e6, rtol=1e-6)
    np.testing.assert_allclose(observation[:, 1], state.virtual_bits / 1e6, rtol=1e-6)
    np.testing.assert_allclose(observation[:, 2:], state.rates_bps / 20e6, rtol=1e-6)


def test_episodes_are_truncated():
    env = gymnasium.make("qmec/Offload-v0", scenario="paper-small", max_episode_steps=5)
    env.reset(seed=0)
    ends = [env.step(env.action_space.sample())[3] for _ in range(5)]
    assert ends == [False] * 4 + [True]


def test_vector_env_matches_single_environments():
    num_envs = 4
    vector = gymnasium.make_vec("qmec/Offload-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", scenario="paper-small")
    singles = [qmec.OffloadEnv("paper-small") for _ in range(num_envs)]
    observations, _ = vector.reset(seed=7)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(observations[i], env.reset(seed=7 + i)[0])
    rng = np.random.default_rng(1)
    for _ in range(30):
        actions = rng.uniform(-1, 1, size=vector.action_space.shape)
        observations, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            observation, reward, _, _, single_info = env.step(actions[i])
            np.testing.assert_array_equal(observations[i], observation)
            assert rewards[i] == reward
            assert info["lp_objective"][i] == single_info["lp_objective"]
        assert not terminated.any() and not truncated.any()


def test_vector_env_resets_a_truncated_environment_on_the_next_step():
    vector = qmec.OffloadVectorEnv(2, "paper-small", max_episode_steps=3)
    vector.reset(seed=0)
    zeros = np.zeros(vector.action_space.shape)
    truncations = [vector.step(zeros)[3].tolist() for _ in range(3)]
    assert truncations == [[False, False], [False, False], [True, True]]
    _, rewards, _, truncated, info = vector.step(zeros)
    assert rewards.tolist() == [0.0, 0.0] and not truncated.any()
    assert not info["_lp_objective"].any()
    _, _, _, truncated, info = vector.step(zeros)
    assert info["_lp_objective"].all() and not truncated.any()
