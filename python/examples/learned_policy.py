"""The policies the example service serves, in numpy only (no grpc, no qmec):
the max-weight heuristic and a small learned scorer, both deciding μ from
what a policy request carries (Q, H, r, Ψ and the scenario's constants).

It is its own module so that the trainer (``train_agent.py``, against the
``qmec`` Gymnasium environment), the service (``policy_service.py``) and the
tests use one copy of the features, the scorer and the projection: the
decision the trainer scores is the decision the service answers.

The projection is the one the learned policies use (``qnn/src/projection.rs``,
and the environment's ``action="scores"``): links with Ψ ≤ 0 closed, a
softmax per device over staying local and its open servers, each server's
channel scaled to at most 1, each device's load capped by its queue. The
trainer steps the environment with ``action="shares"`` and this μ, so no
projection in Rust is needed where the service runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Version tag of the weights file; a file without it is refused.
WEIGHTS_FORMAT = "qmec-example-scorer-v1"

#: Per-pair features the scorer reads (see :func:`pair_features`).
FEATURES = ["asinh_psi", "psi_vs_device_best", "psi_vs_server_best", "rank_on_server", "rank_on_device",
            "queue_slots", "channel_claimed_by_better", "log_queue", "log_virtual", "bias"]


class WeightsError(ValueError):
    """A weights file that cannot be used, naming the file and the field."""


@dataclass(frozen=True)
class Constants:
    """What the scenario fixes that the policies weigh with."""

    slot_seconds: float
    queue_unit_bits: float
    v: float
    omega: float
    tx_power_w: float

    @staticmethod
    def from_toml(text: str) -> "Constants":
        """From a scenario's TOML (``qmec.Scenario.to_toml()``; Python ≥ 3.11,
        which only the trainer needs: the service reads the request's sizes)."""
        import tomllib

        table = tomllib.loads(text)
        return Constants(slot_seconds=table["slot_seconds"], queue_unit_bits=table["control"]["queue_unit_bits"],
                         v=table["control"]["v"], omega=table["control"]["omega"], tx_power_w=table["device"]["tx_power_w"])

    @staticmethod
    def from_sizes(sizes) -> "Constants":
        """From a policy request's ``Sizes`` message."""
        return Constants(slot_seconds=sizes.slot_seconds, queue_unit_bits=sizes.queue_unit_bits,
                         v=sizes.v, omega=sizes.omega, tx_power_w=sizes.tx_power_w)


@dataclass(frozen=True)
class Observed:
    """A slot's state as the policies read it (bits, bit/s)."""

    queue_bits: np.ndarray  # Q_m, M
    virtual_bits: np.ndarray  # H_m, M
    rates_bps: np.ndarray  # r_ms, M×S
    dpp_weights: np.ndarray  # Ψ_ms, M×S


def dpp_weights(constants: Constants, queue_bits, virtual_bits, rates_bps) -> np.ndarray:
    """Ψ_ms = ((Q_m + H_m)/u + Vω) τ r_ms / u − V P τ, as the controller
    sends it (the trainer computes it from the environment's state)."""
    c = constants
    backlog = (np.asarray(queue_bits) + np.asarray(virtual_bits)) / c.queue_unit_bits + c.v * c.omega
    return backlog[:, None] * c.slot_seconds * np.asarray(rates_bps) / c.queue_unit_bits - c.v * c.tx_power_w * c.slot_seconds


def _share_of_best(psi: np.ndarray, axis: int) -> np.ndarray:
    """Ψ over the best positive Ψ along ``axis`` (1 for the best pair, ≤ 0 for closed ones)."""
    best = np.max(psi, axis=axis, keepdims=True)
    return np.where(best > 0.0, psi / np.where(best > 0.0, best, 1.0), 0.0)


def _rank(psi: np.ndarray, axis: int) -> np.ndarray:
    """0 for the largest Ψ along ``axis``, 1 for the smallest."""
    order = np.argsort(np.argsort(-psi, axis=axis), axis=axis)
    return order / max(psi.shape[axis] - 1, 1)


def _claimed_by_better(psi: np.ndarray, queue_slots: np.ndarray) -> np.ndarray:
    """Per pair, how much of the server's channel the devices with a larger
    positive Ψ on it could fill from their queues (capped at 1): what a
    greedy assignment would leave this pair, which a scorer of one pair
    alone cannot see."""
    demand = np.where(psi > 0.0, np.minimum(queue_slots, 1.0), 0.0)  # M×S
    better = psi[None, :, :] > psi[:, None, :]  # [m, m', s]: m' beats m on s
    return np.minimum((better * demand[None, :, :]).sum(axis=1), 1.0)


def pair_features(constants: Constants, observed: Observed) -> np.ndarray:
    """M×S×F features, each of order 1 whatever the scenario's units: Ψ in
    units of the slot's power penalty V P τ, each pair's Ψ against the best
    of its device and of its server (the LP gives a channel to few devices),
    how many slots of the link the queue fills, how much of the channel
    better devices claim, and the queues in units u."""
    c = constants
    psi = observed.dpp_weights
    devices, servers = psi.shape
    penalty = max(c.v * c.tx_power_w * c.slot_seconds, 1e-12)
    slot_bits = c.slot_seconds * observed.rates_bps
    queue = np.maximum(observed.queue_bits, 0.0)[:, None]
    queue_slots = np.minimum(np.divide(queue, slot_bits, out=np.full_like(slot_bits, 2.0), where=slot_bits > 0), 2.0)
    per_device = lambda values: np.broadcast_to(values[:, None], (devices, servers))  # noqa: E731
    columns = [
        np.arcsinh(psi / penalty),
        _share_of_best(psi, axis=1),
        _share_of_best(psi, axis=0),
        _rank(psi, axis=0),
        _rank(psi, axis=1),
        queue_slots,
        _claimed_by_better(psi, queue_slots),
        per_device(np.log1p(np.maximum(observed.queue_bits, 0.0) / c.queue_unit_bits)),
        per_device(np.log1p(np.maximum(observed.virtual_bits, 0.0) / c.queue_unit_bits)),
        np.ones((devices, servers)),
    ]
    return np.stack(columns, axis=-1)


def offload_probabilities(logits: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """M×(S+1) softmax per device over [local, servers], pairs with Ψ ≤ 0 closed."""
    devices = psi.shape[0]
    scores = np.concatenate([np.zeros((devices, 1)), logits], axis=1)
    open_ = np.concatenate([np.ones((devices, 1), dtype=bool), psi > 0.0], axis=1)
    scores = np.where(open_, scores, -np.inf)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def project(probabilities: np.ndarray, observed: Observed, slot_seconds: float) -> np.ndarray:
    """μ (M×S) from per-device probabilities: each server's channel scaled
    to at most 1, then each device's load capped by its queue."""
    shares = probabilities[:, 1:]
    shares = shares / np.maximum(1.0, shares.sum(axis=0, keepdims=True))
    slot_bits = slot_seconds * observed.rates_bps
    queue = np.maximum(observed.queue_bits, 0.0)
    load = (shares * slot_bits).sum(axis=1)
    cap = np.where(load > queue, queue / np.where(load > 0.0, load, 1.0), 1.0)
    return shares * cap[:, None]


class Scorer:
    """A one-hidden-layer network scoring each (device, server) pair from its
    features; staying local scores 0. ``decide`` projects the scores to μ."""

    def __init__(self, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float):
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, float(b2)

    @staticmethod
    def initial(hidden: int, rng: np.random.Generator) -> "Scorer":
        features = len(FEATURES)
        return Scorer(rng.normal(0.0, 1.0 / np.sqrt(features), (features, hidden)), np.zeros(hidden),
                      rng.normal(0.0, 1.0 / np.sqrt(hidden), hidden), 0.0)

    def hidden(self, features: np.ndarray) -> np.ndarray:
        return np.tanh(features @ self.w1 + self.b1)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """M×S scores of offloading each pair (against 0 for local)."""
        return self.hidden(features) @ self.w2 + self.b2

    def decide(self, constants: Constants, observed: Observed) -> np.ndarray:
        logits = self.logits(pair_features(constants, observed))
        return project(offload_probabilities(logits, observed.dpp_weights), observed, constants.slot_seconds)

    def save(self, path: Path, meta: dict) -> None:
        body = {"format": WEIGHTS_FORMAT, "features": FEATURES, "w1": self.w1.tolist(), "b1": self.b1.tolist(),
                "w2": self.w2.tolist(), "b2": self.b2, "meta": meta}
        path.write_text(json.dumps(body, indent=1) + "\n")

    @staticmethod
    def load(path: Path) -> "Scorer":
        """The scorer in ``path``, or :class:`WeightsError` naming what is wrong."""
        try:
            body = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise WeightsError(f"{path}: cannot read the weights: {error}") from error
        if not isinstance(body, dict) or body.get("format") != WEIGHTS_FORMAT:
            raise WeightsError(f"{path}: format: expected {WEIGHTS_FORMAT!r}")
        if body.get("features") != FEATURES:
            raise WeightsError(f"{path}: features: expected {FEATURES}, got {body.get('features')}")
        try:
            w1, b1, w2 = (np.asarray(body[k], dtype=float) for k in ("w1", "b1", "w2"))
            b2 = float(body["b2"])
        except (KeyError, TypeError, ValueError) as error:
            raise WeightsError(f"{path}: missing or non-numeric field: {error}") from error
        hidden = b1.shape[0] if b1.ndim == 1 else -1
        if w1.shape != (len(FEATURES), hidden) or w2.shape != (hidden,):
            raise WeightsError(f"{path}: w1 {w1.shape}, b1 {b1.shape}, w2 {w2.shape} do not fit {len(FEATURES)} features")
        if not all(np.isfinite(a).all() for a in (w1, b1, w2)) or not np.isfinite(b2):
            raise WeightsError(f"{path}: weights must be finite")
        return Scorer(w1, b1, w2, b2)


def max_weight(weights: np.ndarray, rates: np.ndarray, queues: np.ndarray, tau: float) -> np.ndarray:
    """μ (M×S): pairs by decreasing Ψ > 0, each filled with what the radio,
    the channel and the queue leave."""
    devices, servers = weights.shape
    shares = np.zeros((devices, servers))
    radio = np.ones(devices)
    channel = np.ones(servers)
    queue_slot = np.zeros(devices)  # share of a slot each queue still fills, per pair's rate
    for flat in np.argsort(-weights, axis=None):
        m, s = divmod(int(flat), servers)
        if weights[m, s] <= 0.0:
            break
        bits_per_slot = tau * rates[m, s]
        if bits_per_slot <= 0.0:
            continue
        queue_left = queues[m] - queue_slot[m]
        share = min(radio[m], channel[s], max(queue_left, 0.0) / bits_per_slot)
        if share <= 0.0:
            continue
        shares[m, s] = share
        radio[m] -= share
        channel[s] -= share
        queue_slot[m] += share * bits_per_slot
    return shares
