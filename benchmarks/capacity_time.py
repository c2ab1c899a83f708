"""Capacity-search wall time: ``hvsim capacity scenarios/capacity.yaml --slo "p99<=200us"``
as a user runs it (a fresh process, its default workers and points per round), timed from
outside ``--repeat`` times; prints the median wall time, each run's wall and CPU seconds
(its own and its workers'), the load average while it ran, and the points it simulated and
the capacity it found per path (the same in every run: the search is deterministic).

    python benchmarks/capacity_time.py                               # median of 3 runs
    python benchmarks/capacity_time.py --workers 1 --per-round 1     # serial bisection
    python benchmarks/capacity_time.py --repeat 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = ROOT / "scenarios" / "capacity.yaml"


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed(slo: str, extra: list[str]) -> dict[str, object]:
    """Wall and CPU seconds of one capacity search in a fresh process, and its points,
    capacity and bracket per path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "capacity"
        cmd = [sys.executable, "-m", "sim.cli", "capacity", str(SCENARIO), "--slo", slo,
               "--out", str(out), "--quiet", *extra]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cpu0, t0 = _cpu_children(), time.perf_counter()
        # from the repository: `-m sim.cli` takes the current directory first on its path
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
        wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
        meta = json.loads((out / "meta.json").read_text())
        table = (out / "capacity.csv").read_text().splitlines()
    head = table[0].split(",")
    rows = [dict(zip(head, line.split(","), strict=False)) for line in table[1:]]
    return {
        "wall_s": wall,
        "cpu_s": cpu,  # the search's process and its workers (they are waited for)
        "points": {r["path"]: int(r["points"]) for r in rows},
        "capacity": {r["path"]: float(r["capacity"]) for r in rows},
        "capacity_high": {r["path"]: float(r["capacity_high"]) for r in rows},
        "per_round": meta.get("points_per_round"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slo", default="p99<=200us")
    ap.add_argument("--workers", type=int, help="hvsim's --workers (default: its own)")
    ap.add_argument("--per-round", type=int, help="hvsim's --per-round (default: its own)")
    ap.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat: must be at least 1")
    extra = [] if args.workers is None else ["--workers", str(args.workers)]
    extra += [] if args.per_round is None else ["--per-round", str(args.per_round)]
    load0 = os.getloadavg()[0]
    runs = [timed(args.slo, extra) for _ in range(args.repeat)]
    load1 = os.getloadavg()[0]
    walls = [float(r["wall_s"]) for r in runs]  # type: ignore[arg-type]
    cpus = [float(r["cpu_s"]) for r in runs]  # type: ignore[arg-type]
    first = runs[0]
    summary = {
        "median_wall_s": statistics.median(walls),
        "wall_s": walls,
        "cpu_s": cpus,
        "load_average": [load0, load1],
        "points": first["points"],
        "capacity": first["capacity"],
        "capacity_high": first["capacity_high"],
        "per_round": first["per_round"],
        "same_answer_every_run": all(
            r["capacity"] == first["capacity"] and r["points"] == first["points"] for r in runs
        ),
    }
    if args.json:
        print(json.dumps(summary))
        return
    cap, high = first["capacity"], first["capacity_high"]
    pts = ", ".join(
        f"{p} {n} points (capacity {cap[p]:.3g}, bracket {cap[p]:.3g}–{high[p]:.3g})"  # type: ignore[index]
        for p, n in first["points"].items()  # type: ignore[attr-defined]
    )
    each = ", ".join(f"{w:.1f} s ({c:.0f} s CPU)" for w, c in zip(walls, cpus, strict=True))
    differed = "" if summary["same_answer_every_run"] else "; THE ANSWER DIFFERED BETWEEN RUNS"
    print(f"capacity search ({SCENARIO.name}, {args.slo}, {first['per_round']} points a round): "
          f"median {statistics.median(walls):.1f} s wall of {len(runs)} runs [{each}]; "
          f"load average {load0:.1f} → {load1:.1f}; {pts}{differed}")  # fmt: skip


if __name__ == "__main__":
    main()
