#!/usr/bin/env python3
"""Trains the example service's learned scorer (``learned_policy.Scorer``)
against the ``qmec`` Gymnasium environment, by imitation of the exact LP
(``qmec.policy("lyapunov")``) with DAgger: the first round's states come
from the expert's own trajectories, later rounds' from the learner's (the
states it will meet), each labelled with the expert's decision; the scorer
is refitted on everything gathered so far.

The label for a device is the split of its slot the LP chose, as the
scorer's softmax over [local, servers] should give it: where the LP's row is
capped by the queue (it sends all the device holds), the direction only
(the projection's own queue cap restores the size), else the shares with
the rest of the slot on local. The loss is their cross-entropy.

The environment steps with ``action="shares"`` and the μ that
``learned_policy.project`` makes, the same function the service answers
with. After each round it prints the held-out episodes' mean LP share
(reward over the LP optimum on the same state); at the end it compares the
learner with the max-weight heuristic, random scores and the LP itself.

    ~/.cache/qmec/venv-python/bin/python python/examples/train_agent.py --out runs/agent.json

(the venv ``python/check.sh`` makes, with qmec installed; numpy and
gymnasium only besides). Seeded: the same arguments give the same weights.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import qmec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learned_policy import Constants, Observed, Scorer, dpp_weights, max_weight, offload_probabilities, pair_features, project  # noqa: E402

# Held-out episodes start from these seeds on, far from the training ones.
HELD_OUT_SEED = 1_000_000


@dataclass
class Dataset:
    """Features, Ψ and expert labels of the states gathered so far."""

    features: list = field(default_factory=list)  # M×S×F each
    psi: list = field(default_factory=list)  # M×S each
    targets: list = field(default_factory=list)  # M×(S+1) each

    def add(self, features, psi, target):
        self.features.append(features)
        self.psi.append(psi)
        self.targets.append(target)

    def arrays(self):
        return np.stack(self.features), np.stack(self.psi), np.stack(self.targets)


def observe(env: "qmec.OffloadEnv", constants: Constants) -> Observed:
    state = env.state()
    q, h, r = state.queue_bits, state.virtual_bits, state.rates_bps
    return Observed(queue_bits=q, virtual_bits=h, rates_bps=r, dpp_weights=dpp_weights(constants, q, h, r))


def expert_label(mu: np.ndarray, observed: Observed, slot_seconds: float) -> np.ndarray:
    """The M×(S+1) split over [local, servers] the expert's μ stands for."""
    mu = np.where(observed.dpp_weights > 0.0, np.maximum(mu, 0.0), 0.0)
    offloaded = mu.sum(axis=1)
    load = (mu * slot_seconds * observed.rates_bps).sum(axis=1)
    queue_bound = (offloaded > 0.0) & (load >= observed.queue_bits * (1.0 - 1e-6))
    scale = np.where(queue_bound, 1.0 / np.where(offloaded > 0.0, offloaded, 1.0), 1.0)
    servers = mu * scale[:, None]
    local = np.maximum(1.0 - servers.sum(axis=1), 0.0)
    label = np.concatenate([local[:, None], servers], axis=1)
    return label / label.sum(axis=1, keepdims=True)


def gather(dataset: Dataset, scenario, constants, expert, scorer, expert_mix: float, steps: int, episode_steps: int, rng):
    """Runs episodes with the expert's decision (probability ``expert_mix``)
    or the learner's, labelling every state with the expert's."""
    env = qmec.OffloadEnv(scenario, action="shares", lp=False)
    for start in range(0, steps, episode_steps):
        env.reset(seed=int(rng.integers(HELD_OUT_SEED)))
        for _ in range(min(episode_steps, steps - start)):
            observed = observe(env, constants)
            mu_expert = expert.decide(env.state())
            dataset.add(pair_features(constants, observed), observed.dpp_weights, expert_label(mu_expert, observed, constants.slot_seconds))
            use_expert = scorer is None or rng.random() < expert_mix
            env.step(mu_expert if use_expert else scorer.decide(constants, observed))


class Adam:
    """Adam over a list of arrays, in place."""

    def __init__(self, params, rate: float):
        self.rate, self.step = rate, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def update(self, params, grads):
        self.step += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.rate * (m / (1 - 0.9**self.step)) / (np.sqrt(v / (1 - 0.999**self.step)) + 1e-8)


def loss_and_gradients(scorer: Scorer, features, psi, targets):
    """Mean cross-entropy per device of the softmax over [local, servers]
    against the labels, and its gradients in (w1, b1, w2, b2)."""
    hidden = scorer.hidden(features)
    logits = hidden @ scorer.w2 + scorer.b2
    p = offload_probabilities(logits.reshape(-1, logits.shape[-1]), psi.reshape(-1, psi.shape[-1])).reshape(targets.shape)
    rows = targets.shape[0] * targets.shape[1]
    loss = -float((targets * np.log(np.maximum(p, 1e-12))).sum()) / rows
    d_logits = (p - targets)[..., 1:] / rows  # closed pairs: p = 0 = target
    d_pre = (d_logits[..., None] * scorer.w2) * (1.0 - hidden**2)
    flat_features = features.reshape(-1, features.shape[-1])
    grads = [flat_features.T @ d_pre.reshape(-1, d_pre.shape[-1]), d_pre.sum(axis=(0, 1, 2)),
             hidden.reshape(-1, hidden.shape[-1]).T @ d_logits.ravel(), np.array(d_logits.sum())]
    return loss, grads


def fit(scorer: Scorer, dataset: Dataset, epochs: int, batch: int, rate: float, rng) -> float:
    features, psi, targets = dataset.arrays()
    b2 = np.array([scorer.b2])
    params = [scorer.w1, scorer.b1, scorer.w2, b2]
    adam = Adam(params, rate)
    loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(features))
        losses = []
        for begin in range(0, len(order), batch):
            chosen = order[begin:begin + batch]
            loss, grads = loss_and_gradients(scorer, features[chosen], psi[chosen], targets[chosen])
            adam.update(params, grads)
            scorer.b2 = float(b2[0])
            losses.append(loss)
        loss = float(np.mean(losses))
    return loss


@dataclass
class Score:
    """A policy's held-out figures: mean LP share over the states with a
    positive optimum, Σ reward over Σ optimum, and per-slot means."""

    lp_share: float
    objective_ratio: float
    throughput_mbit: float
    backlog_mbit: float


def evaluate(decide, scenario, constants, episodes: int, steps: int, action: str = "shares") -> Score:
    """Runs ``decide(env, observed)`` on the held-out episodes (with the LP
    measured on every state)."""
    env = qmec.OffloadEnv(scenario, action=action, lp=True)
    shares, reward, optimum, throughput, backlog = [], 0.0, 0.0, [], []
    for episode in range(episodes):
        env.reset(seed=HELD_OUT_SEED + episode)
        for _ in range(steps):
            _, r, _, _, info = env.step(decide(env, observe(env, constants)))
            reward += r
            optimum += info["lp_objective"]
            if "lp_share" in info:
                shares.append(info["lp_share"])
            throughput.append(info["throughput_bits"] / 1e6)
            backlog.append(info["queue_bits"] / 1e6)
    return Score(float(np.mean(shares)) if shares else float("nan"), reward / optimum if optimum > 0 else float("nan"),
                 float(np.mean(throughput)), float(np.mean(backlog)))


def baselines(scenario, constants, expert, episodes, steps, rng):
    """The held-out figures of the LP itself, max-weight and random scores."""
    tau = constants.slot_seconds
    return {
        "lyapunov (the LP)": evaluate(lambda env, o: expert.decide(env.state()), scenario, constants, episodes, steps),
        "max-weight (the service's default)": evaluate(lambda env, o: max_weight(o.dpp_weights, o.rates_bps, o.queue_bits, tau),
                                                       scenario, constants, episodes, steps),
        "random scores": evaluate(lambda env, o: project(offload_probabilities(rng.uniform(-10.0, 10.0, o.dpp_weights.shape), o.dpp_weights), o, tau),
                                  scenario, constants, episodes, steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="paper", help="a built-in scenario name or a TOML file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the weights (JSON)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6, help="DAgger rounds (the first on the expert's own trajectories)")
    parser.add_argument("--steps", type=int, default=3000, help="states gathered per round")
    parser.add_argument("--episode-steps", type=int, default=500, help="slots per gathering episode")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the gathered states per round")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--rate", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--eval-steps", type=int, default=300)
    args = parser.parse_args()
    for name in ("rounds", "steps", "episode_steps", "epochs", "hidden", "batch", "eval_episodes", "eval_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")

    path = Path(args.scenario)
    try:
        scenario = qmec.Scenario.from_toml(str(path)) if path.suffix == ".toml" else qmec.Scenario(args.scenario)
    except (ValueError, OSError) as error:
        parser.error(f"--scenario: {error}")
    constants = Constants.from_toml(scenario.to_toml())
    expert = qmec.policy("lyapunov", scenario)
    rng = np.random.default_rng(args.seed)
    scorer = Scorer.initial(args.hidden, rng)
    dataset = Dataset()
    started = time.process_time()
    score = None
    for round_ in range(args.rounds):
        mix = 1.0 if round_ == 0 else 0.5**round_
        gather(dataset, scenario, constants, expert, None if round_ == 0 else scorer, mix, args.steps, args.episode_steps, rng)
        loss = fit(scorer, dataset, args.epochs, args.batch, args.rate, rng)
        score = evaluate(lambda env, o: scorer.decide(constants, o), scenario, constants, args.eval_episodes, args.eval_steps)
        print(f"round {round_ + 1}/{args.rounds}: {len(dataset.features)} states (expert's share of the slots {mix:.2f}), "
              f"{args.epochs} epochs, loss {loss:.4f}, held-out mean LP share {score.lp_share:.3f} "
              f"(Σ reward / Σ optimum {score.objective_ratio:.3f}), {time.process_time() - started:.0f} s CPU", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    scorer.save(args.out, {"scenario": scenario.name, "seed": args.seed, "rounds": args.rounds, "states": len(dataset.features),
                           "held_out_lp_share": score.lp_share})
    print(f"weights written to {args.out}")
    print(f"\nheld-out episodes ({args.eval_episodes} × {args.eval_steps} slots from seed {HELD_OUT_SEED}):")
    print(f"{'policy':38} {'mean LP share':>13} {'Σr/Σopt':>8} {'Mbit/slot':>9} {'backlog Mbit':>12}")
    table = {"learned scorer (this run)": score, **baselines(scenario, constants, expert, args.eval_episodes, args.eval_steps, rng)}
    for name, s in table.items():
        print(f"{name:38} {s.lp_share:13.3f} {s.objective_ratio:8.3f} {s.throughput_mbit:9.3f} {s.backlog_mbit:12.2f}")


if __name__ == "__main__":
    main()
