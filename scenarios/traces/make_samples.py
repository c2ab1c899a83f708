"""Writes the sample measurements in this folder (synthetic, generated here; no third-party
data) and their converted traces. Run from the repository root:

    python scenarios/traces/make_samples.py

* ``db.blkparse.txt``: ``blkparse`` text output of a database volume (2 CPUs, queue and
  completion events), 1 s of bursty I/O: a two-state MMPP of mean 1500 requests/s
  (bursts 8x the quiet rate, 20 ms long, 180 ms apart), 70 % reads of 4-128 KiB.
* ``fileserver.typeperf.csv``: ``typeperf -f CSV`` disk counters of a file server, one
  sample a second for 40 s, the load rising and falling over the period.
* ``db-blk.csv``, ``fileserver.parquet``: the two converted by ``hvsim convert`` (the
  second stored as Parquet).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sim.model.workloads import mmpp_gaps
from sim.scenario.traces import convert
from sim.scenario.workload import Burst

HERE = Path(__file__).parent


def blkparse(rng: np.random.Generator) -> str:
    gap = mmpp_gaps(Burst(factor=8, length="20ms", between="180ms"), 1500.0, rng)
    t, lines, seq = 0.0, [], [0, 0]
    events = []
    while True:
        t += gap()
        if t > 1.0e6:
            break
        read = rng.random() < 0.7
        sectors = int(rng.choice([8, 16, 64, 256], p=[0.55, 0.25, 0.15, 0.05]))
        sector = int(rng.integers(0, 2**28)) * 8
        cpu = int(rng.integers(0, 2))
        done = t + float(rng.gamma(2.0, 60.0)) + sectors * 0.4
        events.append((t, cpu, "Q", read, sector, sectors))
        events.append((done, cpu, "C", read, sector, sectors))
    events.sort(key=lambda e: e[0])
    for when, cpu, action, read, sector, sectors in events:
        seq[cpu] += 1
        rwbs = "R" if read else "WS"
        who = " [postgres]" if action == "Q" else " [0]"
        lines.append(
            f"  8,16   {cpu} {seq[cpu]:8d} {when / 1e6:14.9f}  {4242 if action == 'Q' else 0:5d}"
            f"  {action}  {rwbs:3s} {sector} + {sectors}{who}"
        )
    lines.append("CPU0 (sdb):")
    lines.append(f" Reads Queued:    {sum(1 for e in events if e[2] == 'Q' and e[3])}")
    return "\n".join(lines) + "\n"


def typeperf(rng: np.random.Generator) -> str:
    disk = "\\\\FS01\\PhysicalDisk(0 C:)"
    head = [
        '"(PDH-CSV 4.0) (Coordinated Universal Time)(0)"',
        f'"{disk}\\Disk Reads/sec"',
        f'"{disk}\\Disk Writes/sec"',
        f'"{disk}\\Avg. Disk Bytes/Read"',
        f'"{disk}\\Avg. Disk Bytes/Write"',
    ]
    out = [",".join(head)]
    start = datetime.datetime(2026, 3, 2, 9, 0, 0)
    for s in range(41):
        level = 1.0 + 2.0 * np.sin(np.pi * s / 40) ** 2  # quiet, busy, quiet
        reads = 150 * level * rng.uniform(0.9, 1.1)
        writes = 60 * level * rng.uniform(0.9, 1.1)
        rsize = 32768 * rng.uniform(0.8, 1.2)
        wsize = 16384 * rng.uniform(0.8, 1.2)
        when = (start + datetime.timedelta(seconds=s)).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3]
        out.append(f'"{when}","{reads:.6f}","{writes:.6f}","{rsize:.3f}","{wsize:.3f}"')
    return "\n".join(out) + "\n"


def main() -> None:
    rng = np.random.default_rng(20260302)
    (HERE / "db.blkparse.txt").write_text(blkparse(rng))
    (HERE / "fileserver.typeperf.csv").write_text(typeperf(rng))
    from sim.scenario.traces import to_csv

    (HERE / "db-blk.csv").write_text(to_csv(convert(HERE / "db.blkparse.txt", "blkparse")))
    data = convert(HERE / "fileserver.typeperf.csv", "typeperf", seed=1)
    pd.DataFrame(
        {
            "timestamp[us]": data.t_us - data.t_us[0],
            "op": [data.ops[i] for i in data.op],  # type: ignore[union-attr]
            "size[B]": data.size,
        }
    ).to_parquet(HERE / "fileserver.parquet", index=False)


if __name__ == "__main__":
    main()
