"""Environment steps per second at the paper size (10 devices, 3 servers),
qmec's Rust environment from Python beside a pure-Python (numpy) one of the
same model (bench/numpy_env.py). Medians of several runs of N steps, each
step with a fresh random action (drawn beforehand, outside the timing).

    python python/bench/steps.py [--steps N] [--runs K]

Wall-clock and process CPU time are both reported: on a loaded machine the
CPU time is the steadier figure.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np

import qmec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numpy_env import NumpyOffloadEnv  # noqa: E402


def timed(step, actions):
    wall, cpu = time.perf_counter(), time.process_time()
    for action in actions:
        step(action)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(name, make_step, actions, runs, env_steps_per_call=1):
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = timed(make_step(), actions)
        walls.append(wall)
        cpus.append(cpu)
    steps = len(actions) * env_steps_per_call
    wall_rate, cpu_rate = steps / statistics.median(walls), steps / statistics.median(cpus)
    print(f"{name:<44} {wall_rate:>12,.0f} {cpu_rate:>12,.0f}")
    return wall_rate, cpu_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--num-envs", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, size=(args.steps, 10, 4)).astype(np.float32)

    def rust(lp):
        env = qmec.OffloadEnv("paper", lp=lp)
        env.reset(seed=1)
        return env.step

    def rust_made():
        env = gymnasium.make("qmec/Offload-v0", scenario="paper", lp=False, max_episode_steps=10**9)
        env.reset(seed=1)
        return env.step

    def numpy_env():
        return NumpyOffloadEnv(seed=1).step

    batches = rng.uniform(-1.0, 1.0, size=(max(args.steps // args.num_envs, 1), args.num_envs, 10, 4))

    def rust_vector():
        env = qmec.OffloadVectorEnv(args.num_envs, "paper", lp=False, max_episode_steps=10**9)
        env.reset(seed=1)
        return env.step

    print(f"paper scenario, {args.steps} steps a run, median of {args.runs} runs")
    print(f"{'environment':<44} {'steps/s wall':>12} {'steps/s CPU':>12}")
    measure("qmec OffloadEnv (Rust), lp=False", lambda: rust(False), actions, args.runs)
    measure("qmec OffloadEnv (Rust), lp=True (exact LP)", lambda: rust(True), actions, args.runs)
    measure("qmec via gymnasium.make (wrappers), lp=False", rust_made, actions, args.runs)
    measure(f"qmec OffloadVectorEnv x{args.num_envs}, lp=False", rust_vector, batches, args.runs, args.num_envs)
    measure("pure-Python numpy env (same model)", numpy_env, actions, args.runs)


if __name__ == "__main__":
    main()
