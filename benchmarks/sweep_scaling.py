"""Sweep scaling: 16 points serially, on a process pool and on a Dask LocalCluster of N
workers, each into a fresh study directory, ``--repeat`` times interleaved; prints the
median wall times, the speed-ups over serial and the load average while it ran.

    python benchmarks/sweep_scaling.py                  # 16 points of 200 ms, 2 replications
    python benchmarks/sweep_scaling.py --workers 4 --duration 500ms --repeat 5

The points are the baseline at 16 web rates (2 × 8 grid); every executor gives identical
numbers (the test suite checks that), so only the wall time differs. Start-up of the
workers (a LocalCluster takes a few seconds) is included: that is what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sim  # noqa: E402
from sim.experiment.study import make_sweep, run_sweep  # noqa: E402


def main() -> None:
    """Run the three executors and print their wall times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", default="200ms")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each executor (median)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = sim.load(HERE.parent / "scenarios" / "baseline.yaml", {
        "run.duration": args.duration, "run.warmup": "20ms"})  # fmt: skip
    sweep = make_sweep(
        {
            "study": "scaling",
            "scenario": base.to_dict(),
            "grid": {
                "children[web-routed].streams[0].rate": ["20k", "40k"],
                "children[web-direct].streams[0].rate": [f"{k}k" for k in range(10, 90, 10)],
            },
            "replications": 2,
        }
    )
    kinds = (("serial", 1), ("processes", args.workers), ("dask", args.workers))
    runs: dict[str, list[float]] = {k: [] for k, _ in kinds}
    root = Path(tempfile.mkdtemp(prefix="hvsim-scaling-"))
    load0 = os.getloadavg()[0]
    try:
        for i in range(args.repeat):
            for kind, workers in kinds:
                t0 = time.perf_counter()
                out = root / f"{kind}-{i}"
                report = run_sweep(sweep, out, workers=workers, executor=kind, progress=False)
                runs[kind].append(time.perf_counter() - t0)
                assert len(report.computed) == len(sweep.points)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    walls = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "points": len(sweep.points),
        "workers": args.workers,
        "repeat": args.repeat,
        "wall_s": {k: round(v, 2) for k, v in walls.items()},
        "runs_s": {k: [round(x, 2) for x in v] for k, v in runs.items()},
        "speedup_processes": round(walls["serial"] / walls["processes"], 2),
        "speedup_dask": round(walls["serial"] / walls["dask"], 2),
        "dask_minus_processes_s": round(walls["dask"] - walls["processes"], 2),
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['points']} points, {args.duration} each × 2 replications; "
          f"medians of {args.repeat} runs (interleaved)")  # fmt: skip
    for k, v in walls.items():
        print(f"  {k:10} {v:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in runs[k])}")
    print(f"speed-up on {args.workers} workers: processes {result['speedup_processes']}×, "
          f"Dask {result['speedup_dask']}× (Dask − processes: "
          f"{result['dask_minus_processes_s']:+.2f} s)")  # fmt: skip
    la = result["load_average"]
    print(f"load average (1 min) before / after: {la[0]} / {la[1]} on {result['cores']} cores")


if __name__ == "__main__":
    main()
