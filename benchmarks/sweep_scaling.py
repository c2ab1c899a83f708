"""Sweep scaling: 16 points serially, then on 2 workers (Dask LocalCluster and a process
pool), each into a fresh study directory; prints the wall times and the speed-ups.

    python benchmarks/sweep_scaling.py                  # 16 points of 200 ms, 2 replications
    python benchmarks/sweep_scaling.py --workers 4 --duration 500ms

The points are the baseline at 16 web rates (2 × 8 grid); every executor gives identical
numbers (the test suite checks that), so only the wall time differs. Start-up of the
workers (a LocalCluster takes a few seconds) is included: that is what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import shutil
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
    walls: dict[str, float] = {}
    root = Path(tempfile.mkdtemp(prefix="hvsim-scaling-"))
    try:
        for kind, workers in (("serial", 1), ("dask", args.workers), ("processes", args.workers)):
            t0 = time.perf_counter()
            report = run_sweep(sweep, root / kind, workers=workers, executor=kind, progress=False)
            walls[kind] = time.perf_counter() - t0
            assert len(report.computed) == len(sweep.points)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = {
        "points": len(sweep.points),
        "workers": args.workers,
        "wall_s": {k: round(v, 2) for k, v in walls.items()},
        "speedup_dask": round(walls["serial"] / walls["dask"], 2),
        "speedup_processes": round(walls["serial"] / walls["processes"], 2),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['points']} points, {args.duration} each × 2 replications")
    for k, v in walls.items():
        print(f"  {k:10} {v:7.1f} s")
    print(f"speed-up on {args.workers} workers: Dask {out['speedup_dask']}×, "
          f"processes {out['speedup_processes']}×")  # fmt: skip


if __name__ == "__main__":
    main()
