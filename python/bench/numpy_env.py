"""The paper scenario's MEC model in pure Python (numpy), written only to
compare steps per second with qmec's Rust environment on equal work.

Per step, as ``qmec.OffloadEnv(lp=False)`` does: the same projection of
scores to shares (links with Ψ ≤ 0 closed, softmax per device over {local,
servers}, server channels normalised, queue cap), b_ms = ⌊μ τ r⌋ bits sent
(capped by the queue), servers computing their backlogs with the CPU split in
proportion to each device's backlog, local computing at f_loc, H updated,
Poisson arrivals of uniform task sizes, the next slot's Rayleigh channels,
the DPP reward Σ Ψ μ and the same observation. It counts bits, not
individual tasks (qmec also tracks every task and fragment for latencies),
so if anything it does less work than the Rust environment.
"""

import numpy as np

DEVICES, SERVERS = 10, 3
TAU = 0.1
ARRIVALS = 5.0
TASK_MIN, TASK_MAX = 50_000, 150_000
BANDWIDTH, NOISE, TX_POWER = 20e6, 1e-9, 0.1
G0, ALPHA, D_MIN, D_MAX = 1e-3, 2.5, 50.0, 150.0
F_LOCAL, CYCLES, F_SERVER = 1e9, 1000.0, 20e9
PROMISED = 4e6
V, OMEGA, UNIT = 1000.0, 0.0, 1e6
SCORE_SCALE = 10.0


class NumpyOffloadEnv:
    def __init__(self, seed: int = 0):
        self.reset(seed)

    def reset(self, seed: int):
        self.rng = np.random.default_rng(seed)
        distance = self.rng.uniform(D_MIN, D_MAX, size=(DEVICES, SERVERS))
        self.path_gain = G0 * distance ** -ALPHA
        self.queue = np.zeros(DEVICES)
        self.virtual = np.zeros(DEVICES)
        self.server = np.zeros((DEVICES, SERVERS))
        self._draw_channels()
        return self.observation()

    def _draw_channels(self):
        xi = self.rng.standard_normal((DEVICES, SERVERS, 2)) / np.sqrt(2.0)
        gains = self.path_gain * (xi ** 2).sum(axis=2)
        self.rates = BANDWIDTH * np.log2(1.0 + TX_POWER * gains / NOISE)

    def observation(self):
        obs = np.empty((DEVICES, 2 + SERVERS), dtype=np.float32)
        obs[:, 0] = self.queue / UNIT
        obs[:, 1] = self.virtual / UNIT
        obs[:, 2:] = self.rates / BANDWIDTH
        return obs

    def weights(self):
        pressure = (self.queue + self.virtual) / UNIT + V * OMEGA
        return pressure[:, None] * TAU * self.rates / UNIT - V * TX_POWER * TAU

    def project(self, scores, psi):
        slot_bits = TAU * self.rates
        z = scores * SCORE_SCALE
        open_ = np.concatenate([np.ones((DEVICES, 1), dtype=bool), psi > 0.0], axis=1)
        z = np.where(open_, z, -np.inf)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        a = p[:, 1:]
        b = a / np.maximum(1.0, a.sum(axis=0, keepdims=True))
        load = (b * slot_bits).sum(axis=1)
        cap = np.where(load > self.queue, self.queue / np.where(load > 0, load, 1.0), 1.0)
        return b * cap[:, None]

    def step(self, scores):
        psi = self.weights()
        mu = self.project(np.asarray(scores, dtype=np.float64), psi)
        reward = float((psi * mu).sum())
        # Servers compute their backlog, CPU in proportion to backlogs.
        total = self.server.sum(axis=0)
        share = np.divide(self.server, total, out=np.zeros_like(self.server), where=total > 0)
        self.server = np.maximum(self.server - share * TAU * F_SERVER / CYCLES, 0.0)
        # Devices offload, then compute what is left locally.
        sent = np.floor(mu * TAU * self.rates)
        over = sent.sum(axis=1) > self.queue
        sent[over] *= (self.queue[over] / sent[over].sum(axis=1))[:, None]
        sent = np.floor(sent)
        self.queue -= sent.sum(axis=1)
        local = np.minimum(self.queue, np.floor(TAU * F_LOCAL / CYCLES))
        self.queue -= local
        self.server += sent
        served = sent.sum(axis=1) + local
        self.virtual = np.maximum(self.virtual + PROMISED * TAU - served, 0.0)
        # Arrivals: Poisson tasks of uniform sizes.
        counts = self.rng.poisson(ARRIVALS, size=DEVICES)
        sizes = self.rng.integers(TASK_MIN, TASK_MAX + 1, size=counts.sum())
        self.queue += np.bincount(np.repeat(np.arange(DEVICES), counts), weights=sizes, minlength=DEVICES)
        self._draw_channels()
        info = {"throughput_bits": float(served.sum()), "queue_bits": float(self.queue.sum())}
        return self.observation(), reward, False, False, info
