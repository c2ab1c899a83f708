"""Analytic estimate and replication speed: the analytic time for the baseline and for 1,
8 and 200 closed-loop children (medians), and a run's replications serially and on a
process pool (wall times, medians, and their ratio in the same run), with the part of
each that is the simulations themselves (the rest: the tables, built in this process).

    python benchmarks/scale.py                     # 4 replications of 500 ms, 2 workers
    python benchmarks/scale.py --workers 4 --duration 100ms --repeat 5

The closed-loop scenarios are the baseline's routed web child (open loop) beside N
children of 4 users each with 100 µs think time, routed and direct in turn, on the NIC
and the NVMe drive in turn. The run's wall time covers simulation and tables (what
``sim.run`` returns); the machine's other load moves it, so medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sim  # noqa: E402
from sim.scenario import from_dict  # noqa: E402

BASELINE = HERE.parent / "scenarios" / "baseline.yaml"


def closed_loops(n: int) -> sim.Scenario:
    """The baseline's routed web child beside ``n`` closed-loop children."""
    with open(BASELINE) as f:
        d: dict[str, Any] = yaml.safe_load(f)
    kids = []
    for i in range(n):
        dev = ["nic0", "nvme0"][(i // 2) % 2]
        st: dict[str, Any] = {"op": "send", "size": "1500B"}
        if dev == "nvme0":
            st = {"op": {"read": 0.7, "write": 0.3}, "size": "4KiB"}
        st.update({"outstanding": 4, "think": "100us"})
        path = ["routed", "direct"][i % 2]
        kids.append({"name": f"c{i}", "vcpus": 2, "io_path": path, "device": dev, "streams": [st]})
    d["children"] = d["children"][:1] + kids
    d["devices"][0]["vfs"] = d["devices"][1]["vfs"] = 256
    d["run"].update({"duration": "10ms", "warmup": "1ms"})
    return from_dict(d)


def median_time(f: Any, repeat: int, clock: Any = time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        t0 = clock()
        f()
        times.append(clock() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", default="500ms")
    ap.add_argument("--replications", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("analytic estimate (median of 5: wall time, and CPU time of this process)")
    cases = [("baseline", sim.load(BASELINE))]
    cases += [(f"{n} closed-loop children", closed_loops(n)) for n in (1, 8, 200)]
    for name, scn in cases:
        wall = median_time(lambda s=scn: sim.analytic(s), 5)
        cpu = median_time(lambda s=scn: sim.analytic(s), 5, time.process_time)
        print(f"  {name:26} {wall * 1e3:9.1f} ms wall {cpu * 1e3:9.1f} ms CPU")
    scn = sim.load(BASELINE, {"run.duration": args.duration, "run.warmup": "5ms"})
    reps = args.replications
    # whole run (what sim.run returns) and its simulation part (meta wall_s: the
    # replications, before the tables are built in this process)
    times: list[tuple[int, list[tuple[float, float]]]] = [(1, []), (args.workers, [])]
    for _ in range(args.repeat):  # interleaved, so both see the same background load
        for w, got in times:
            t0 = time.perf_counter()
            res = sim.run(scn, replications=reps, workers=w)
            got.append((time.perf_counter() - t0, res.meta["wall_s"]))
    (s, s_sim), (p, p_sim) = (
        tuple(statistics.median(x) for x in zip(*got, strict=True)) for _, got in times
    )
    print(f"baseline, {reps} replications of {args.duration} (median of {args.repeat})")
    for label, whole, part in (("serial", s, s_sim), (f"{args.workers} workers", p, p_sim)):
        rest = whole - part
        print(f"  {label:26} {whole:9.2f} s   simulation {part:.2f} s, tables etc. {rest:.2f} s")
    print(f"  speed-up {s / p:.2f}x (the simulations alone {s_sim / p_sim:.2f}x)")


if __name__ == "__main__":
    main()
