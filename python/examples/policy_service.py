#!/usr/bin/env python3
"""An example external policy for the qmec testbed, in Python (grpcio, numpy).

The controller, run with ``--policy external=http://HOST:PORT``, sends this
service each slot's state (``qmec.policy.v1.PolicyService/Decide``, see
``proto/proto/qmec_policy.proto``) and applies the offloading shares it
answers; an answer that is late, fails or is infeasible is replaced by the
controller's fallback built-in and counted in the run's records.

The policy served here is by default a max-weight heuristic on the
drift-plus-penalty weights Ψ the request carries: device-server pairs in
decreasing order of Ψ > 0, each given as much of the slot as the device's
radio, the server's channel and the device's queue leave (the queue cap: a
device never gets more slot than it has bits to send). With ``--weights
FILE`` it is instead the learned scorer ``train_agent.py`` wrote, projected
to μ by the same function it was trained with (``learned_policy.py``). The
CPU split is left to the controller's default (empty ``cpu_hz``).

The stubs are generated from the proto at start-up (grpcio-tools) into a
cache directory keyed by the proto's hash, not committed: they always match
the proto in this checkout, and a changed proto gets fresh ones.

    python/examples/setup.sh
    ~/.cache/qmec/venv-policy-service/bin/python python/examples/policy_service.py --listen 127.0.0.1:50070

It prints ``qmec-policy-listening HOST:PORT`` once it serves (``--listen``
with port 0 picks a free port), a line every ``--every`` answered slots, and
on SIGTERM or Ctrl-C the count of requests it answered.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learned_policy import Constants, Observed, Scorer, WeightsError, max_weight  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROTO = REPO / "proto" / "proto" / "qmec_policy.proto"
LISTENING = "qmec-policy-listening"


def load_stubs(proto: Path, cache: Path):
    """The generated modules for ``proto``, generated once per proto text."""
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:16]
    target = cache / digest
    if not (target / "qmec_policy_pb2_grpc.py").exists():
        from grpc_tools import protoc

        cache.mkdir(parents=True, exist_ok=True)
        # Generated beside the cache and renamed into place, so two services
        # starting at once never import a half-written module.
        scratch = Path(tempfile.mkdtemp(dir=cache))
        status = protoc.main(["grpc_tools.protoc", f"-I{proto.parent}", f"--python_out={scratch}",
                              f"--grpc_python_out={scratch}", proto.name])
        if status != 0:
            sys.exit(f"policy_service: generating stubs from {proto} failed (protoc exit {status})")
        try:
            scratch.rename(target)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)  # another service won the race
    sys.path.insert(0, str(target))
    return importlib.import_module("qmec_policy_pb2"), importlib.import_module("qmec_policy_pb2_grpc")


class Service:
    """The Decide handler: the policy over each request, and the counts."""

    def __init__(self, pb2, answer: str, every: int, scorer: Scorer | None):
        self.pb2 = pb2
        self.answer = answer
        self.scorer = scorer
        self.every = every
        self.answered = 0
        self.lock = threading.Lock()

    def Decide(self, request, context):  # noqa: N802 (the gRPC method's name)
        sizes, state = request.sizes, request.state
        shape = (sizes.devices, sizes.servers)
        try:
            weights = np.asarray(state.dpp_weights, dtype=float).reshape(shape)
            rates = np.asarray(state.rates_bps, dtype=float).reshape(shape)
            queues = np.asarray(state.queue_bits, dtype=float).reshape(sizes.devices)
            virtual = np.asarray(state.virtual_bits, dtype=float).reshape(sizes.devices)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"state does not fit {shape}: {error}")
        if self.scorer is None:
            shares = max_weight(weights, rates, queues, sizes.slot_seconds)
        else:
            observed = Observed(queue_bits=queues, virtual_bits=virtual, rates_bps=rates, dpp_weights=weights)
            shares = self.scorer.decide(Constants.from_sizes(sizes), observed)
        if self.answer == "infeasible":
            # Every pair at a full slot: breaks one radio per device and one
            # channel per server, for testing the controller's fallback.
            shares = np.ones(shape)
        with self.lock:
            self.answered += 1
            answered = self.answered
        if self.every and answered % self.every == 0:
            value = float((weights * shares).sum())
            print(f"slot {request.slot}: {int((shares > 0).sum())} pairs offload, Σμ = {shares.sum():.3f}, "
                  f"ΣΨμ = {value:.4g} ({answered} answered)", flush=True)
        return self.pb2.PolicyDecision(slot=request.slot, offload=shares.ravel().tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:50070", help="HOST:PORT to serve on; port 0 picks a free one")
    parser.add_argument("--answer", choices=["max-weight", "infeasible"], default="max-weight",
                        help="what to answer: the max-weight policy, or (for testing the fallback) shares that break the constraints")
    parser.add_argument("--every", type=int, default=100, help="print a line every this many answered slots (0: never)")
    parser.add_argument("--proto", type=Path, default=PROTO, help="the qmec_policy.proto to generate the stubs from")
    parser.add_argument("--stubs", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qmec" / "policy-stubs",
                        help="where generated stubs are cached")
    parser.add_argument("--weights", type=Path, help="serve the learned scorer in this file (from train_agent.py) instead of max-weight")
    args = parser.parse_args()

    try:
        scorer = Scorer.load(args.weights) if args.weights else None
    except WeightsError as error:
        sys.exit(f"policy_service: --weights {error}")
    pb2, pb2_grpc = load_stubs(args.proto, args.stubs)
    service = Service(pb2, args.answer, args.every, scorer)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_PolicyServiceServicer_to_server(service, server)
    port = server.add_insecure_port(args.listen)
    if port == 0:
        sys.exit(f"policy_service: cannot listen on {args.listen}")
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(f"{LISTENING} {host}:{port}", flush=True)
    policy = f"the learned scorer in {args.weights}" if scorer and args.answer == "max-weight" else args.answer
    print(f"serving {policy} decisions to qmec (--policy external=http://{host}:{port})", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait()
    print(f"answered {service.answered} requests", flush=True)


if __name__ == "__main__":
    main()
