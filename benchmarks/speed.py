"""Speed benchmark: simulated requests per wall-second.

Measures, in the same process and interleaved run by run (so that the noise of a shared
machine hits all of them alike):

* ``baseline``      the whole baseline scenario (routed and direct children, NIC and NVMe);
* ``routed-only``   one routed child on the NVMe drive: the full routed path, five stations
                    (child vCPU → parent vCPU → device → parent vCPU → child vCPU);
* ``direct-only``   the same child on a VF;
* ``simpy-tandem``  a minimal SimPy tandem of five stations written the usual way (a process
                    per request, a ``Resource`` per station, ``random.expovariate``), from
                    ``simpy_tandem.py``;
* ``heap-tandem``   the same tandem on a hand-written ``heapq`` event loop: the ceiling of
                    pure Python for these events (not a target: the model has many more
                    events per request than five stations).

Each figure is the median of ``--repeat`` runs; the ratios are of medians measured in this
same run. The model runs compiled when the install compiled it (``HVSIM_PURE=1``: the
interpreted model; the first line says which). The wall time covers ``env.run`` only (no
table building) for every model.

    python benchmarks/speed.py              # 5 repeats
    python benchmarks/speed.py --repeat 9 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from simpy_tandem import run_heap_tandem, run_tandem  # noqa: E402

import sim  # noqa: E402
import sim.model  # noqa: E402
from sim.model.host import simulate  # noqa: E402
from sim.scenario import Scenario, from_dict  # noqa: E402

BASELINE = HERE.parent / "scenarios" / "baseline.yaml"


def _single(base: Scenario, io_path: str) -> Scenario:
    raw = base.to_dict()
    child = next(c for c in raw["children"] if c["device"] == "nvme0")
    child = {**child, "name": f"db-{io_path}", "io_path": io_path}
    raw["children"] = [child]
    raw["name"] = f"{io_path}-only"
    return from_dict(raw, source=f"{io_path}-only")


def _model_rate(scn: Scenario, seed: int) -> float:
    data = simulate(scn, 0, seed)
    n = sum(len(s.done) + len(s.in_flight) for s in data.streams)
    return n / data.wall_s


def main() -> None:
    """Run the benchmark and print its table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--duration", default="1s", help="simulated time per model run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    base = sim.load(BASELINE, {"run.duration": args.duration, "run.warmup": "0us"})
    models = {
        "baseline": base,
        "routed-only": _single(base, "routed"),
        "direct-only": _single(base, "direct"),
    }
    tandem_requests = 50_000
    rates: dict[str, list[float]] = {k: [] for k in [*models, "simpy-tandem", "heap-tandem"]}
    for i in range(args.repeat):
        for name, scn in models.items():
            rates[name].append(_model_rate(scn, seed=1 + i))
        t = run_tandem(5, tandem_requests, utilization=0.5, seed=1 + i)
        rates["simpy-tandem"].append(t["requests_per_s"])
        h = run_heap_tandem(5, tandem_requests, utilization=0.5, seed=1 + i)
        rates["heap-tandem"].append(h["requests_per_s"])

    med = {k: statistics.median(v) for k, v in rates.items()}
    out: dict[str, Any] = {
        "repeat": args.repeat,
        "requests_per_wall_s": {
            k: {"median": med[k], "min": min(v), "max": max(v)} for k, v in rates.items()
        },
        "ratio_routed_to_tandem": med["routed-only"] / med["simpy-tandem"],
        "ratio_direct_to_tandem": med["direct-only"] / med["simpy-tandem"],
        "ratio_heap_to_tandem": med["heap-tandem"] / med["simpy-tandem"],
        "python": sys.version.split()[0],
        "model": "compiled" if sim.model.COMPILED else "interpreted",
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"simulated requests per wall-second (median of {args.repeat} runs; min .. max; "
          f"model {out['model']})")  # fmt: skip
    for k, v in rates.items():
        print(f"  {k:14} {med[k]:>10,.0f}   ({min(v):,.0f} .. {max(v):,.0f})")
    print(f"routed path / 5-station SimPy tandem: {out['ratio_routed_to_tandem']:.2f}")
    print(f"direct path / 5-station SimPy tandem: {out['ratio_direct_to_tandem']:.2f}")
    print(f"heap-loop tandem / SimPy tandem:      {out['ratio_heap_to_tandem']:.2f}")


if __name__ == "__main__":
    main()
