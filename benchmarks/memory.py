"""Memory per simulated request: peak resident memory over requests, from two run lengths.

Each measurement is a fresh Python process (``subprocess``) that runs the baseline for one
duration, with one ``run.requests`` mode, serially (one process: its own peak is the
run's), and reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and the requests it
simulated. Bytes per request are the difference of the peaks of two run lengths over the
difference of their requests: what each further request costs, without the interpreter,
the libraries and the model themselves.

    python benchmarks/memory.py                         # 0.5 s and 2 s, all and none
    python benchmarks/memory.py --short 250ms --long 1s --modes none
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = ROOT / "scenarios" / "baseline.yaml"

CHILD = """
import json, resource, sys
from sim.experiment.run import run
from sim.scenario import load, replace
scn = load(sys.argv[1])
r = dict(scn.to_dict()["run"], duration=sys.argv[2], replications=1)
if sys.argv[3] != "all":  # the default: also where run.requests is not known
    r["requests"] = sys.argv[3]
res = run(replace(scn, {"run": r}), workers=1)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
print(json.dumps({"requests": res.meta["requests_simulated"], "peak_bytes": peak}))
"""


def measure(duration: str, mode: str, scenario: Path = BASELINE) -> dict[str, float]:
    """Peak RSS (bytes) and requests of one run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(scenario), duration, mode],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def per_request(short: str, long: str, mode: str) -> dict[str, float]:
    """Bytes per request in ``mode`` from runs of ``short`` and ``long``."""
    a, b = measure(short, mode), measure(long, mode)
    return {
        "mode": mode,  # type: ignore[dict-item]
        "requests_short": a["requests"],
        "requests_long": b["requests"],
        "peak_mib_short": a["peak_bytes"] / 2**20,
        "peak_mib_long": b["peak_bytes"] / 2**20,
        "bytes_per_request": (b["peak_bytes"] - a["peak_bytes"]) / (b["requests"] - a["requests"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", default="500ms", help="the shorter run (default 500ms)")
    ap.add_argument("--long", default="2s", help="the longer run (default 2s)")
    ap.add_argument("--modes", default="all,none", help="run.requests modes (default all,none)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    rows = [per_request(args.short, args.long, m.strip()) for m in args.modes.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"memory per request (baseline, peak RSS over requests, {args.short} vs {args.long})")
    for r in rows:
        print(
            f"  requests: {r['mode']:<6} {r['bytes_per_request']:8.0f} B/request   "
            f"({r['requests_short']:,} requests {r['peak_mib_short']:.0f} MiB, "
            f"{r['requests_long']:,} requests {r['peak_mib_long']:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
