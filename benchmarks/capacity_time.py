"""Capacity-search wall time: ``hvsim capacity scenarios/capacity.yaml --slo "p99<=200us"``
as a user runs it (a fresh process, its default workers and points per round), timed from
outside, with the points it simulated per path.

    python benchmarks/capacity_time.py
    python benchmarks/capacity_time.py --workers 1 --per-round 1    # serial bisection
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = ROOT / "scenarios" / "capacity.yaml"


def timed(slo: str, extra: list[str]) -> dict[str, object]:
    """Wall seconds of one capacity search in a fresh process, and its points per path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "capacity"
        cmd = [sys.executable, "-m", "sim.cli", "capacity", str(SCENARIO), "--slo", slo,
               "--out", str(out), "--quiet", *extra]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        meta = json.loads((out / "meta.json").read_text())
        table = (out / "capacity.csv").read_text().splitlines()
    head = table[0].split(",")
    rows = [dict(zip(head, line.split(","), strict=False)) for line in table[1:]]
    return {
        "wall_s": wall,
        "points": {r["path"]: int(r["points"]) for r in rows},
        "capacity": {r["path"]: float(r["capacity"]) for r in rows},
        "per_round": meta.get("points_per_round"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slo", default="p99<=200us")
    ap.add_argument("--workers", type=int, help="hvsim's --workers (default: its own)")
    ap.add_argument("--per-round", type=int, help="hvsim's --per-round (default: its own)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    extra = [] if args.workers is None else ["--workers", str(args.workers)]
    extra += [] if args.per_round is None else ["--per-round", str(args.per_round)]
    r = timed(args.slo, extra)
    if args.json:
        print(json.dumps(r))
        return
    pts = ", ".join(
        f"{p} {n} points (capacity {r['capacity'][p]:.3g})" for p, n in r["points"].items()
    )  # type: ignore[attr-defined]
    print(f"capacity search ({SCENARIO.name}, {args.slo}, {r['per_round']} points a round): "
          f"{r['wall_s']:.1f} s wall; {pts}")  # fmt: skip


if __name__ == "__main__":
    main()
