"""Sweep scaling: 16 points serially, on a process pool and on a Dask LocalCluster of N
workers, each a fresh ``hvsim sweep`` into a fresh study directory, ``--repeat`` times
interleaved; prints the median wall times, the speed-ups over serial, Dask's difference
to the process pool and the load average while it ran.

    python benchmarks/sweep_scaling.py                  # 16 points of 200 ms, 2 replications
    python benchmarks/sweep_scaling.py --workers 4 --duration 500ms --repeat 5

The points are the baseline at 16 web rates (2 × 8 grid); every executor gives identical
numbers (the test suite checks that), so only the wall time differs. Each run is the
command a user types, in a new process (nothing stays warm from one run to the next), and
its wall time is what the user waits for: Python's start, the workers' start-up (a
LocalCluster's scheduler, nannies and workers), the points, the shutdown and the printed
study. ``sweep`` is the part ``study.json`` records (``last_run.wall_s``: from the first
point sent to the last stored and the workers stopped); ``rest`` is the wall time less
that: start-up and the table printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402

KINDS = ("serial", "processes", "dask")


def write_sweep(folder: Path, duration: str) -> Path:
    """The 16-point sweep file (and its scenario beside it) in ``folder``."""
    base = sim.load(ROOT / "scenarios" / "baseline.yaml", {"run.duration": duration,
                                                           "run.warmup": "20ms"})  # fmt: skip
    (folder / "scenario.yaml").write_text(yaml.safe_dump(base.to_dict(), sort_keys=False))
    spec = {
        "study": "scaling",
        "scenario": "scenario.yaml",
        "grid": {
            "children[web-routed].streams[0].rate": ["20k", "40k"],
            "children[web-direct].streams[0].rate": [f"{k}k" for k in range(10, 90, 10)],
        },
        "replications": 2,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_once(file: Path, out: Path, kind: str, workers: int) -> tuple[float, float]:
    """One ``hvsim sweep`` in a new process: its wall time and ``study.json``'s."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(file), "--out", str(out),
           "--executor", kind, "--workers", str(1 if kind == "serial" else workers)]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{kind}: hvsim sweep failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    last = json.loads((out / "study.json").read_text())["last_run"]
    if len(last["computed"]) != 16:
        sys.exit(f"{kind}: {len(last['computed'])} of 16 points computed")
    return wall, float(last["wall_s"])


def main() -> None:
    """Run the three executors and print their wall times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", default="200ms")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each executor (median)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs: dict[str, list[float]] = {k: [] for k in KINDS}
    sweeps: dict[str, list[float]] = {k: [] for k in KINDS}
    root = Path(tempfile.mkdtemp(prefix="hvsim-scaling-"))
    load0 = os.getloadavg()[0]
    try:
        file = write_sweep(root, args.duration)
        for i in range(args.repeat):
            for kind in KINDS:
                out = root / f"{kind}-{i}"
                wall, swept = run_once(file, out, kind, args.workers)
                runs[kind].append(wall)
                sweeps[kind].append(swept)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    walls = {k: statistics.median(v) for k, v in runs.items()}
    inner = {k: statistics.median(v) for k, v in sweeps.items()}
    rest = {
        k: statistics.median(w - s for w, s in zip(runs[k], sweeps[k], strict=True)) for k in KINDS
    }
    result = {
        "points": 16,
        "workers": args.workers,
        "repeat": args.repeat,
        "wall_s": {k: round(v, 2) for k, v in walls.items()},
        "runs_s": {k: [round(x, 2) for x in v] for k, v in runs.items()},
        "sweep_s": {k: round(v, 2) for k, v in inner.items()},
        "rest_s": {k: round(v, 2) for k, v in rest.items()},
        "speedup_processes": round(walls["serial"] / walls["processes"], 2),
        "speedup_dask": round(walls["serial"] / walls["dask"], 2),
        "dask_minus_processes_s": round(walls["dask"] - walls["processes"], 2),
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['points']} points, {args.duration} each × 2 replications, `hvsim sweep` "
          f"in a new process; medians of {args.repeat} runs (interleaved)")  # fmt: skip
    print(f"  {'':10} {'wall':>7}   {'sweep':>6} {'rest':>6}   runs")
    for k in KINDS:
        print(f"  {k:10} {walls[k]:7.2f} s {inner[k]:6.2f} {rest[k]:6.2f}   "
              f"{', '.join(f'{x:.2f}' for x in runs[k])}")  # fmt: skip
    print(f"speed-up on {args.workers} workers: processes {result['speedup_processes']}×, "
          f"Dask {result['speedup_dask']}× (Dask − processes: "
          f"{result['dask_minus_processes_s']:+.2f} s)")  # fmt: skip
    la = result["load_average"]
    print(f"load average (1 min) before / after: {la[0]} / {la[1]} on {result['cores']} cores")


if __name__ == "__main__":
    main()
