"""Analytic estimate and replication speed: the analytic time for the baseline and for 1,
8 and 200 closed-loop children (medians), and a run's replications serially and on a
process pool (wall times, medians, and their ratio in the same run).

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
    serial, pooled = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same background load
        serial.append(median_time(lambda: sim.run(scn, replications=reps), 1))
        pooled.append(median_time(lambda: sim.run(scn, replications=reps, workers=args.workers), 1))
    s, p = statistics.median(serial), statistics.median(pooled)
    print(f"baseline, {reps} replications of {args.duration} (median of {args.repeat})")
    print(f"  serial                     {s:9.2f} s")
    print(f"  {args.workers} workers                  {p:9.2f} s   speed-up {s / p:.2f}x")


if __name__ == "__main__":
    main()
