"""Replications of a scenario, their tables, and the result directory.

:func:`run` simulates ``R`` replications (replication ``r`` draws every stream from the
root seed with ``r`` in its spawn key, so replications are independent and the whole is
reproducible), then turns the records into tidy frames:

``requests``   one row per request issued (completed or still in flight at the end),
               with its timestamps and latency components; ``in_window`` marks the
               requests submitted after the warm-up and completed before the end, the
               ones every statistic is computed on.
``replications``  the same per replication: the samples behind every interval.
``summary``    one row per child (and per path, where a child fell back), with
               throughput, latency mean and percentiles, mean latency components, and,
               with R > 1, Student-t confidence bounds ``<metric>_ci_low/high``.
``cpu``        busy time per partition, vCPU and category over the measurement window,
               plus the host's idle time, so that the rows add up to LPs × window.
``counters``   exits by reason, interrupts, signals, ring-full events, preemptions,
               boosts, steals, cap parks, fallbacks; ``resources``: device and ring
               utilisation and occupancy.
``occupancy``  per replication and interval of ``run.trace_interval``: the mean bytes in
               every VMBus ring and the mean queue length and busy
               share of every device, over the whole run (warm-up included, marked).
``sched``      per vCPU: wake-ups, mean and largest wake-up delay (work arrived for a
               blocked vCPU → it runs), dispatches, preemptions, boosts.

:meth:`Result.save` writes the directory atomically: everything goes to a temporary
directory that is renamed into place, so a run that fails leaves no half-written result.

Throughput counts the requests in the window, divided by the window's length; requests
still in flight at the end are left out of it (their number is in ``requests`` with
``state == 'in_flight'``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim import __version__
from sim.metrics import COMPONENTS
from sim.model import RunData, simulate
from sim.scenario import IO_PATHS, Scenario
from sim.stats import PERCENTILES, latency_stats, mser5, paired, t_interval

LATENCY_METRICS = ("mean_us", *(f"{k}_us" for k in PERCENTILES))
CI_METRICS = ("throughput_rps", "throughput_bps", *LATENCY_METRICS)
KEYS = ["partition", "requested_path", "io_path"]


@dataclass
class Result:
    """Everything one ``run`` produced, as tidy frames."""

    scenario: Scenario
    requests: pd.DataFrame
    summary: pd.DataFrame
    cpu: pd.DataFrame
    counters: pd.DataFrame
    resources: pd.DataFrame
    sched: pd.DataFrame = field(default_factory=pd.DataFrame)
    replications: pd.DataFrame = field(default_factory=pd.DataFrame)
    occupancy: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path) -> Path:
        """Write the result directory atomically; returns its path."""
        with atomic_directory(out) as tmp:
            self.write(tmp)
        return Path(out)

    def write(self, where: Path) -> None:
        """Write every file of the result into the existing directory ``where``."""
        self.summary.to_csv(where / "summary.csv", index=False)
        self.replications.to_csv(where / "replications.csv", index=False)
        self.cpu.to_csv(where / "cpu.csv", index=False)
        self.counters.to_csv(where / "counters.csv", index=False)
        self.resources.to_csv(where / "resources.csv", index=False)
        self.sched.to_csv(where / "sched.csv", index=False)
        self.occupancy.to_csv(where / "occupancy.csv", index=False)
        self.requests.to_parquet(where / "requests.parquet", index=False)
        with open(where / "scenario.resolved.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(self.scenario.to_dict(), f, sort_keys=False, allow_unicode=True)
        with open(where / "meta.json", "w", encoding="utf-8") as f:
            json.dump(self.meta, f, indent=2)


@contextlib.contextmanager
def atomic_directory(out: str | Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` that replaces ``out`` when the block succeeds
    and vanishes when it fails: a result directory is either whole or absent."""
    out = Path(out)
    if out.exists() and not (out / "meta.json").exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not an hvsim result directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


RESULT_TABLES = ("summary", "replications", "cpu", "counters", "resources", "sched", "occupancy")


def load_result(where: str | Path) -> Result:
    """Read back a result directory written by :meth:`Result.save`."""
    from sim.scenario import load

    where = Path(where)
    if not (where / "meta.json").is_file() or not (where / "summary.csv").is_file():
        raise FileNotFoundError(f"{where} is not an hvsim result directory (no summary.csv)")
    frames: dict[str, pd.DataFrame] = {}
    for name in RESULT_TABLES:
        f = where / f"{name}.csv"
        try:
            frames[name] = pd.read_csv(f) if f.is_file() else pd.DataFrame()
        except pd.errors.EmptyDataError:
            frames[name] = pd.DataFrame()
    if "warnings" in frames["summary"]:
        frames["summary"]["warnings"] = frames["summary"]["warnings"].fillna("")
    requests = pd.read_parquet(where / "requests.parquet")
    meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
    return Result(
        scenario=load(where / "scenario.resolved.yaml"),
        requests=requests,
        meta=meta,
        **frames,
    )


def load_comparison(where: str | Path) -> Comparison:
    """Read back a comparison directory written by :meth:`Comparison.save`."""
    where = Path(where)
    if not (where / "comparison.csv").is_file():
        raise FileNotFoundError(f"{where} is not an hvsim comparison (no comparison.csv)")
    meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
    results = {p: load_result(where / p) for p in meta["paths"]}
    first = results[meta["paths"][0]]
    return Comparison(
        first.scenario, list(meta["paths"]), results, pd.read_csv(where / "comparison.csv"), meta
    )


def run(scenario: Scenario, replications: int | None = None, seed: int | None = None) -> Result:
    """Simulate ``scenario`` ``replications`` times (default: the scenario's) → :class:`Result`."""
    reps = scenario.run.replications if replications is None else replications
    if reps < 1:
        raise ValueError("replications must be at least 1")
    root = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    runs = [simulate(scenario, r, root) for r in range(reps)]
    wall = time.perf_counter() - t0
    return tabulate(scenario, runs, root, wall)


def tabulate(scenario: Scenario, runs: Sequence[RunData], seed: int, wall_s: float) -> Result:
    """Turn replications' records into a :class:`Result`."""
    requests = requests_frame(runs)
    warm = warmup_frame(requests, scenario)
    mark_window(requests, warm, scenario.run.duration)
    per_rep = replication_frame(requests, [r.replication for r in runs], warm, scenario)
    order = [name for name, _ in scenario.instances()]
    cpu = cpu_frame(runs)
    resources = _resources_frame(runs)
    counters = _counters_frame(runs)
    summary = summary_frame(per_rep, order)
    notes = warnings(scenario, summary, warm, cpu, resources, counters)
    if len(summary):
        summary["warnings"] = ["; ".join(notes.get(p, [])) for p in summary["partition"]]
    meta = {
        "scenario": scenario.name,
        "seed": seed,
        "replications": len(runs),
        "replication_seeds": [
            {"replication": r.replication, "root_seed": r.seed, "spawn_key_prefix": [r.replication]}
            for r in runs
        ],
        "duration_us": scenario.run.duration,
        "warmup_us": scenario.run.warmup,
        "warmup_method": scenario.run.warmup_method,
        "warnings": [f"{p}: {w}" for p, ws in notes.items() for w in ws],
        "wall_s": round(wall_s, 3),
        "wall_s_per_replication": [round(r.wall_s, 3) for r in runs],
        "requests_simulated": len(requests),
        "versions": _versions(),
    }
    return Result(
        scenario=scenario,
        requests=requests,
        summary=summary,
        replications=per_rep,
        cpu=cpu,
        counters=counters,
        resources=resources,
        sched=sched_frame(runs),
        occupancy=occupancy_frame(runs),
        meta=meta,
    )


def occupancy_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Tidy trace of ring and device-queue occupancy: one row per replication, interval
    end (``time_us``), resource and quantity (``bytes``: bytes in a ring;
    ``queue``: requests waiting for a device; ``busy``: share of its servers busy)."""
    cols = ["time_us", "resource", "kind", "quantity", "value"]
    frames = [
        pd.DataFrame(r.trace, columns=cols).assign(replication=r.replication)
        for r in runs
        if r.trace
    ]
    if not frames:
        return pd.DataFrame(columns=["replication", *cols, "in_window"])
    df = pd.concat(frames, ignore_index=True)[["replication", *cols]]
    df["in_window"] = df["time_us"] > runs[0].warmup_us  # intervals ending after warm-up
    return df


def warmup_frame(requests: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per replication and child: the MSER-5 truncation point of its latency series (in
    submission order, from time 0) and the warm-up used (fixed, or the later of the two
    under ``warmup_method: mser5``)."""
    fixed = scenario.run.warmup
    auto = scenario.run.warmup_method == "mser5"
    rows = []
    done = requests[requests["state"] == "completed"]
    for (rep, part), g in done.groupby(["replication", "partition"], sort=False):
        g = g.sort_values("t_submit_us")
        d, found = mser5(g["latency_us"].to_numpy())
        t = g["t_submit_us"].to_numpy()
        cut = float(t[d]) if d < len(t) else float(scenario.run.duration)
        used = max(fixed, cut) if auto else fixed
        rows.append((rep, part, used, cut, found))
    cols = ["replication", "partition", "warmup_us", "mser_warmup_us", "mser_found"]
    return pd.DataFrame(rows, columns=cols)


def mark_window(requests: pd.DataFrame, warm: pd.DataFrame, end: float) -> None:
    """Set ``in_window``: completed, submitted after its warm-up, completed by ``end``."""
    merged = requests.merge(warm, on=["replication", "partition"], how="left")
    cut = merged["warmup_us"].fillna(0.0).to_numpy()
    requests["in_window"] = (
        (requests["state"] == "completed").to_numpy()
        & (requests["t_submit_us"].to_numpy() >= cut)
        & (requests["t_complete_us"].to_numpy() <= end)
    )


def requests_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per request of every replication."""
    cols = ["id", "op", "size_bytes", "vcpu", "t_submit_us", "t_complete_us", *COMPONENTS]
    parts = []
    for run_ in runs:
        for s in run_.streams:
            rows = s.done + s.in_flight
            arr = np.array(rows, dtype=float) if rows else np.empty((0, len(cols)), dtype=float)
            df = pd.DataFrame(arr, columns=cols)
            df["op"] = np.asarray(s.ops, dtype=object)[df["op"].to_numpy(dtype=int)]
            df.insert(0, "replication", run_.replication)
            df.insert(1, "partition", s.partition)
            df.insert(2, "stream", s.stream)
            df.insert(3, "requested_path", s.requested_path)
            df.insert(4, "io_path", s.io_path)
            df.insert(5, "device", s.device)
            df["state"] = ["completed"] * len(s.done) + ["in_flight"] * len(s.in_flight)
            parts.append(df)
    if not parts:  # no I/O streams at all (CPU-only scenarios): typed empty table
        parts.append(
            pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).assign(
                replication=0,
                partition="",
                stream=0,
                requested_path="",
                io_path="",
                device="",
                state="",
            )
        )
    df = pd.concat(parts, ignore_index=True)
    for col in ("id", "size_bytes", "vcpu"):
        df[col] = df[col].astype("int64")
    df["latency_us"] = df["t_complete_us"] - df["t_submit_us"]
    warm = runs[0].warmup_us if runs else 0.0
    end = runs[0].duration_us if runs else 0.0
    df["in_window"] = (
        (df["state"] == "completed") & (df["t_submit_us"] >= warm) & (df["t_complete_us"] <= end)
    )
    order = [
        "replication", "partition", "stream", "requested_path", "io_path", "device", "id",
        "op", "size_bytes", "vcpu", "t_submit_us", "t_complete_us", "latency_us", "state",
        "in_window", *COMPONENTS,
    ]  # fmt: skip
    return df[order]


def replication_frame(
    requests: pd.DataFrame,
    replications: Sequence[int],
    warm: pd.DataFrame,
    scenario: Scenario,
) -> pd.DataFrame:
    """Per replication, child and path: requests, throughput, latency statistics and mean
    components over the measurement window (the samples every interval is built from)."""
    inw = requests[requests["in_window"]]
    cuts = warm.set_index(["replication", "partition"])
    rows = []
    for _, key in requests[KEYS].drop_duplicates().iterrows():
        sel = inw[(inw["partition"] == key["partition"]) & (inw["io_path"] == key["io_path"])]
        for r in replications:
            x = sel[sel["replication"] == r]
            k = (r, key["partition"])
            cut = float(cuts.loc[k, "warmup_us"]) if k in cuts.index else scenario.run.warmup
            window_s = (scenario.run.duration - cut) / 1e6
            m: dict[str, Any] = {"replication": r, **{k2: key[k2] for k2 in KEYS}}
            m["requests"] = len(x)
            m["throughput_rps"] = len(x) / window_s
            m["throughput_bps"] = float(x["size_bytes"].sum()) * 8.0 / window_s
            m.update(latency_stats(x["latency_us"].to_numpy()))
            for comp in COMPONENTS:
                m[f"{comp}_us"] = float(x[comp].mean()) if len(x) else float("nan")
            if k in cuts.index:
                m["warmup_us"] = cut
                m["mser_warmup_us"] = float(cuts.loc[k, "mser_warmup_us"])
            rows.append(m)
    return pd.DataFrame(rows)


def summary_frame(per_rep: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per child and path: means over replications with Student-t CIs (R > 1)."""
    rows = []
    if per_rep.empty:
        return pd.DataFrame()
    n_reps = per_rep["replication"].nunique()
    for key, frame in per_rep.groupby(KEYS, sort=False):
        row: dict[str, Any] = dict(zip(KEYS, key, strict=True))
        row["fallback"] = row["requested_path"] != row["io_path"]
        row["replications"] = n_reps
        row["requests"] = int(frame["requests"].sum())
        for col in frame.columns.drop([*KEYS, "replication", "requests"]):
            if frame[col].dtype == object:
                continue
            mean, lo, hi = t_interval(frame[col].to_numpy())
            row[col] = mean
            if col in CI_METRICS and n_reps > 1:
                row[f"{col}_ci_low"] = lo
                row[f"{col}_ci_high"] = hi
        rows.append(row)
    rank = {name: i for i, name in enumerate(order)}
    out = pd.DataFrame(rows)
    out = out.sort_values("partition", key=lambda s: s.map(rank), kind="stable")
    return out.reset_index(drop=True)


def cpu_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Busy µs per partition, vCPU and category over the window (mean over replications),
    plus the host's idle time; ``utilization`` is busy / window for a vCPU row and
    busy / (LPs × window) for the idle row."""
    if not runs:
        return pd.DataFrame(columns=["partition", "vcpu", "category", "busy_us", "utilization"])
    window = runs[0].duration_us - runs[0].warmup_us
    rows = []
    for run_ in runs:
        busy = 0.0
        for part, vcpu, cat, us in run_.cpu:
            rows.append((run_.replication, part, vcpu, cat, us))
            busy += us
        idle = max(run_.cores * window - busy, 0.0)
        rows.append((run_.replication, "host", "all", "idle", idle))
    df = pd.DataFrame(rows, columns=["replication", "partition", "vcpu", "category", "busy_us"])
    n = len(runs)
    out = (
        df.groupby(["partition", "vcpu", "category"], sort=False)["busy_us"].sum() / n
    ).reset_index()
    cores = runs[0].cores
    out["utilization"] = np.where(
        out["category"] == "idle", out["busy_us"] / (cores * window), out["busy_us"] / window
    )
    return out


def sched_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Per vCPU: wake-ups and their delay, dispatches, preemptions, boosts (mean over
    replications; the maximum wake-up delay is the largest of all)."""
    cols = ["partition", "vcpu", "wakeups", "wake_total_us", "max_wakeup_us", "dispatches",
            "preemptions", "boosts"]  # fmt: skip
    df = pd.DataFrame([row for r in runs for row in r.sched], columns=cols)
    n = max(len(runs), 1)
    g = df.groupby(["partition", "vcpu"], sort=False)
    out = g[["wakeups", "wake_total_us", "dispatches", "preemptions", "boosts"]].sum() / n
    out["max_wakeup_us"] = g["max_wakeup_us"].max()
    out["mean_wakeup_us"] = out["wake_total_us"] / out["wakeups"].where(out["wakeups"] > 0)
    out = out.reset_index()
    return out[["partition", "vcpu", "wakeups", "mean_wakeup_us", "max_wakeup_us",
                "dispatches", "preemptions", "boosts"]]  # fmt: skip


def _counters_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    rows = [(r.replication, k, v) for r in runs for k, v in sorted(r.counters.items())]
    df = pd.DataFrame(rows, columns=["replication", "counter", "count"])
    window_s = (runs[0].duration_us - runs[0].warmup_us) / 1e6 if runs else 1.0
    out = (df.groupby("counter")["count"].sum() / max(len(runs), 1)).reset_index()
    out["per_second"] = out["count"] / window_s
    return out


def _resources_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    rows = [(r.replication, *res) for r in runs for res in r.resources]
    cols = ["replication", "resource", "kind", "utilization", "mean_level", "max_level"]
    df = pd.DataFrame(rows, columns=cols)
    return (
        df.groupby(["resource", "kind"], sort=False)
        .agg(
            utilization=("utilization", "mean"),
            mean_level=("mean_level", "mean"),
            max_level=("max_level", "max"),
        )
        .reset_index()
    )


def _versions() -> dict[str, str]:
    import scipy
    import simpy

    return {
        "hvsim": __version__,
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


COMPARE_METRICS = ("throughput_rps", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us")


@dataclass
class Comparison:
    """The same scenario run with every I/O child on each of several paths, paired."""

    scenario: Scenario
    paths: list[str]
    results: dict[str, Result]
    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path) -> Path:
        """Write ``comparison.csv``, ``meta.json`` and one full result per path, atomically."""
        with atomic_directory(out) as tmp:
            self.table.to_csv(tmp / "comparison.csv", index=False)
            for path, res in self.results.items():
                (tmp / path).mkdir()
                res.write(tmp / path)
            with open(tmp / "meta.json", "w", encoding="utf-8") as f:
                json.dump(self.meta, f, indent=2)
        return Path(out)


def on_path(scenario: Scenario, path: str) -> Scenario:
    """``scenario`` with every child that does I/O switched to ``path``."""
    overrides: dict[str, Any] = {}
    for i, c in enumerate(scenario.children):
        if c.device is not None:
            overrides[f"children[{i}].io_path"] = path
            if path != "direct":
                overrides[f"children[{i}].vf"] = None
    return scenario.replace(overrides, source=f"path {path}")


def compare(
    scenario: Scenario,
    paths: Sequence[str] = ("routed", "direct"),
    replications: int | None = None,
    seed: int | None = None,
) -> Comparison:
    """Run ``scenario`` once per I/O path with common random numbers; the first path is the
    base of the paired differences and ratios."""
    paths = list(paths)
    bad = [p for p in paths if p not in IO_PATHS]
    if bad:
        raise ValueError(f"unknown path '{bad[0]}' (paths: {', '.join(IO_PATHS)})")
    if len(paths) < 2 or len(set(paths)) != len(paths):
        raise ValueError("compare needs at least two different paths")
    t0 = time.perf_counter()
    results = {p: run(on_path(scenario, p), replications, seed) for p in paths}
    table = comparison_frame(results, paths[0])
    first = results[paths[0]]
    meta = {
        "scenario": scenario.name,
        "paths": paths,
        "base": paths[0],
        "seed": first.meta["seed"],
        "replications": first.meta["replications"],
        "wall_s": round(time.perf_counter() - t0, 3),
        "versions": first.meta["versions"],
        "common_random_numbers": True,
    }
    return Comparison(scenario, paths, results, table, meta)


def comparison_frame(results: dict[str, Result], base: str) -> pd.DataFrame:
    """Tidy table: per child, metric and path, the value with its CI, and the paired
    difference and ratio to ``base`` with theirs."""
    rows = []
    ref = results[base].replications.set_index(["partition", "replication"])
    for path, res in results.items():
        reps = res.replications.set_index(["partition", "replication"])
        for partition in res.replications["partition"].unique():
            mine = reps.loc[partition].sort_index()
            theirs = ref.loc[partition].sort_index()
            for metric in COMPARE_METRICS:
                value, lo, hi = t_interval(mine[metric].to_numpy())
                p = paired(theirs[metric].to_numpy(), mine[metric].to_numpy())
                rows.append(
                    {
                        "partition": partition,
                        "metric": metric,
                        "path": path,
                        "io_path": str(mine["io_path"].iloc[0]),
                        "value": value,
                        "ci_low": lo,
                        "ci_high": hi,
                        **{f"{k}_to_{base}": v for k, v in p.items()},
                    }
                )
    return pd.DataFrame(rows)


SATURATED = 0.95
"""Utilisation above which a device or vCPU is reported saturated."""


def warnings(
    scenario: Scenario,
    summary: pd.DataFrame,
    warm: pd.DataFrame,
    cpu: pd.DataFrame,
    resources: pd.DataFrame,
    counters: pd.DataFrame,
) -> dict[str, list[str]]:
    """When a result is not to be trusted as it stands, per child: saturated resources,
    a warm-up too short or not found, confidence intervals wider than
    ``run.ci_warning`` of their estimate."""
    notes: dict[str, list[str]] = {}
    window = scenario.run.duration - scenario.run.warmup
    busy = cpu[cpu["category"] != "idle"].groupby("vcpu")["busy_us"].sum()
    hot_vcpus = {str(v) for v, us in busy.items() if us / window > SATURATED}
    devices = resources[resources["kind"] != "ring"].set_index("resource")["utilization"]
    count = counters.set_index("counter")["count"] if len(counters) else pd.Series(dtype=float)
    streams = dict(scenario.instances())
    for _, row in summary.iterrows():
        part = row["partition"]
        out = notes.setdefault(part, [])
        spec = streams.get(part)
        dev = spec.device if spec is not None and spec.device is not None else ""
        if dev in devices.index and devices[dev] > SATURATED:
            out.append(f"saturated: device {dev} {devices[dev]:.0%} busy")
        hot = sorted(v for v in hot_vcpus if v.startswith(f"{part}.") or (
            row["io_path"] == "routed" and v.startswith("parent.")
        ))  # fmt: skip
        if hot:
            out.append(f"saturated: {', '.join(hot)} busy > {SATURATED:.0%}")
        if row["io_path"] == "routed" and count.get("ring_full", 0) > 0:
            out.append("saturated: a VMBus ring was full (writers blocked)")
        offered = sum(s.rate for s in spec.streams if s.rate) if spec is not None else 0.0
        if offered and row["throughput_rps"] < 0.95 * offered:
            out.append(
                f"saturated: throughput {row['throughput_rps'] / offered:.0%} of the offered load"
            )
        w = warm[warm["partition"] == part]
        if len(w) and not w["mser_found"].all():
            out.append("warm-up: MSER-5 found no steady state in some replication (run longer)")
        elif len(w) and scenario.run.warmup_method == "fixed":
            transient = float(w["mser_warmup_us"].mean())
            if transient > scenario.run.warmup:
                out.append(
                    f"warm-up: MSER-5 puts the transient at {transient / 1e3:.1f} ms, past "
                    f"the fixed warm-up of {scenario.run.warmup / 1e3:.1f} ms"
                )
        if row["replications"] < 2:
            out.append("one replication: no confidence intervals")
        else:
            for metric in ("throughput_rps", "mean_us", "p99_us"):
                lo, hi, est = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], row[metric]
                rel = (hi - lo) / 2 / abs(est) if est else float("inf")
                if rel > scenario.run.ci_warning:
                    name = metric.removesuffix("_us").removesuffix("_rps")
                    out.append(f"wide CI: {name} ±{rel:.0%}")
    return {k: v for k, v in notes.items() if v}
