"""Runs dwave-neal's SimulatedAnnealingSampler (100 reads) on every QUBO
that `qmec qubo --bench --export-dir DIR` exported and prints its time and
best energy next to qmec's SA and SB from DIR/qmec_results.json.

Usage: python neal_peer.py DIR
"""
import glob
import json
import os
import re
import sys
import time

import dimod
import neal


def load_bqm(path):
    with open(path) as f:
        d = json.load(f)
    linear = {int(k): v for k, v in d["linear"].items()}
    quadratic = {(int(i), int(j)): b for i, j, b in d["quadratic"]}
    return dimod.BinaryQuadraticModel(linear, quadratic, d["offset"], dimod.BINARY)


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "qmec_results.json")) as f:
        qmec = json.load(f)
    by_size = {}
    for r in qmec:
        by_size.setdefault((r["devices"], r["servers"]), {})[r["solver"]] = r
    sampler = neal.SimulatedAnnealingSampler()
    print(f"{'M×S':>7} {'vars':>6} {'optimum':>12} {'neal best':>12} {'neal s':>9} "
          f"{'qmec sa':>12} {'sa s':>9} {'qmec sb':>12} {'sb s':>9} {'sa/neal time':>13}")
    files = sorted(glob.glob(os.path.join(out, "M*_S*_seed*.json")),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", os.path.basename(p))])
    for path in files:
        m, s = (int(x) for x in re.findall(r"M(\d+)_S(\d+)", os.path.basename(path))[0])
        bqm = load_bqm(path)
        start = time.perf_counter()
        result = sampler.sample(bqm, num_reads=100, seed=1)
        seconds = time.perf_counter() - start
        best = result.first.energy
        rows = by_size.get((m, s), {})
        exact = rows.get("exact-onehot") or rows.get("exact")
        sa, sb = rows.get("sa"), rows.get("sb")
        fmt = lambda r, k: f"{r[k]:.6f}" if r else "–"
        ratio = f"{sa['seconds'] / seconds:.3f}" if sa else "–"
        print(f"{f'{m}×{s}':>7} {len(bqm.variables):>6} {fmt(exact, 'cost'):>12} {best:>12.6f} {seconds:>9.3f} "
              f"{fmt(sa, 'cost'):>12} {fmt(sa, 'seconds'):>9} {fmt(sb, 'cost'):>12} {fmt(sb, 'seconds'):>9} {ratio:>13}")


if __name__ == "__main__":
    main()
