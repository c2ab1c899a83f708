"""Replications of a scenario, their tables, and the result directory.

:func:`run` simulates ``R`` replications (replication ``r`` draws every stream from the
root seed with ``r`` in its spawn key, so replications are independent and the whole is
reproducible), then turns the records into tidy frames:

``requests``   one row per request issued (``state``: completed, failed, or still in
               flight at the end; ``failure``, ``attempts``), with its timestamps and
               latency components; ``in_window`` marks the requests submitted after the
               warm-up and completed before the end, the ones every statistic is
               computed on. Completed + failed + in flight = issued, for every stream of
               every replication, or the run raises (``ConservationError``).
``replications``  the same per replication: the samples behind every interval.
``summary``    one row per child (and per path, where a child fell back), with
               throughput, latency mean and percentiles, mean latency components, and,
               with R > 1, Student-t confidence bounds ``<metric>_ci_low/high``; beside
               them the analytic estimate (:mod:`sim.analytic`): ``analytic_mean_us``,
               ``analytic_wait_us`` (its part that rests on approximations),
               ``analytic_utilization`` (the busiest station on the child's path) and
               ``analytic_holds`` (whether the approximation should hold there).
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
``faults``     with faults scheduled (:mod:`sim.faults`), per fault and child: what the
               fault did to the child (:func:`fault_frame`); the summary then (and
               whenever a request failed or was retried) also has ``availability``,
               ``longest_stall_us``, ``failed`` and ``retried`` (:func:`with_fault_columns`).

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
from sim.analytic import Estimate, beside, disagreement, estimate
from sim.metrics import COMPONENTS
from sim.model import RunData, simulate
from sim.scenario import IO_PATHS, Scenario
from sim.stats import PERCENTILES, latency_stats, mser5, paired, t_interval
from sim.workloads import ConservationError

LATENCY_METRICS = ("mean_us", *(f"{k}_us" for k in PERCENTILES))
CI_METRICS = ("throughput_rps", "throughput_bps", *LATENCY_METRICS)
COUNTS = ("requests", "failed", "retried")
"""Columns the summary sums over replications (the others are means)."""
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
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)
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
        if len(self.faults):
            self.faults.to_csv(where / "faults.csv", index=False)
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


RESULT_TABLES = (
    "summary", "replications", "cpu", "counters", "resources", "sched", "occupancy", "faults",
)  # fmt: skip


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
        w = frames["summary"]["warnings"]  # all empty reads back as a float column
        frames["summary"]["warnings"] = w.astype(object).where(w.notna(), "")
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
    retried = (requests["attempts"] > 1).any() or (requests["state"] == "failed").any()
    if (scenario.faults or retried) and len(per_rep):  # availability, stalls (sim.faults)
        per_rep = with_fault_columns(per_rep, requests, scenario)
    order = [name for name, _ in scenario.instances()]
    cpu = cpu_frame(runs)
    resources = _resources_frame(runs)
    counters = _counters_frame(runs)
    summary = summary_frame(per_rep, order)
    if len(summary):  # the analytic estimate beside the simulated mean (sim.analytic)
        try:
            est: Estimate | None = estimate(scenario)
        except ArithmeticError:  # no estimate (e.g. a station saturated by open loops)
            est = None
        summary = summary.join(beside(summary, est))
    notes = warnings(scenario, summary, warm, cpu, resources, counters)
    if scenario.faults or retried:
        for part, note in fault_notes(summary).items():
            notes.setdefault(part, []).append(note)
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
        faults=fault_frame(requests, scenario, len(runs)) if scenario.faults else pd.DataFrame(),
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
    """One row per request of every replication: ``state`` is ``completed``, ``failed``
    (``failure`` says why; ``t_complete_us`` is when it failed) or ``in_flight`` at the
    end; ``attempts`` is 1 unless faults made the request retried (:mod:`sim.faults`),
    and ``io_path`` is the path its last attempt took. Raises
    :class:`~sim.workloads.ConservationError` unless every stream's requests are exactly
    its ids 0..issued-1, each once."""
    cols = ["id", "op", "size_bytes", "vcpu", "t_submit_us", "t_complete_us", *COMPONENTS]
    parts = []
    for run_ in runs:
        for s in run_.streams:
            rows = s.done + s.failed + s.in_flight
            arr = np.array(rows, dtype=float) if rows else np.empty((0, len(cols)), dtype=float)
            _check_conserved(arr[:, 0], s.issued, f"replication {run_.replication}, "
                             f"{s.partition} stream {s.stream}")  # fmt: skip
            df = pd.DataFrame(arr, columns=cols)
            df["op"] = np.asarray(s.ops, dtype=object)[df["op"].to_numpy(dtype=int)]
            df.insert(0, "replication", run_.replication)
            df.insert(1, "partition", s.partition)
            df.insert(2, "stream", s.stream)
            df.insert(3, "requested_path", s.requested_path)
            df.insert(4, "io_path", s.io_path)
            df.insert(5, "device", s.device)
            df["state"] = (
                ["completed"] * len(s.done)
                + ["failed"] * len(s.failed)
                + ["in_flight"] * len(s.in_flight)
            )
            df["failure"] = ""
            df["attempts"] = 1
            if s.failures or s.attempts or s.paths:  # faults (sim.faults): exceptions by id
                ids = df["id"].astype("int64")
                if s.failures:
                    df["failure"] = ids.map(s.failures).fillna("")
                if s.attempts:
                    df["attempts"] = ids.map(s.attempts).fillna(1).astype("int64")
                if s.paths:
                    df["io_path"] = ids.map(s.paths).fillna(s.io_path)
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
                failure="",
                attempts=0,
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
        "failure", "attempts", "in_window", *COMPONENTS,
    ]  # fmt: skip
    return df[order]


def _check_conserved(ids: np.ndarray, issued: int, where: str) -> None:
    """Every id 0..issued-1 once among a stream's completed, failed and in-flight
    requests (:class:`ConservationError` otherwise): O(requests), vectorised."""
    n = len(ids)
    if n == issued and (n == 0 or np.array_equal(np.bincount(ids.astype(np.int64), minlength=n),
                                                 np.ones(n, dtype=np.int64))):  # fmt: skip
        return
    raise ConservationError(
        f"{where}: {n} requests recorded for {issued} issued, or an id missing or twice"
    )


# ---------------------------------------------------------------------------------------
# Faults: availability, stalls, failures, and what each fault did (sim.faults)
# ---------------------------------------------------------------------------------------
STALL_FACTOR = 50.0
"""A gap between a child's successive completions is an outage when it is longer than
this many of the child's median gaps (and than :data:`STALL_FLOOR_US`). Exponential gaps
(Poisson arrivals) exceed 50 median gaps, 35 mean gaps, with probability e^-35 ≈ 6e-16:
chance never makes one."""
STALL_FLOOR_US = 1000.0
"""The shortest outage: 1 ms (a slow child's ordinary gaps are not outages)."""


def completion_gaps(t: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """The gaps between successive completion times ``t`` within ``[start, end]``, the
    window's edges counting as completions: (when each gap starts, its length)."""
    inside = np.sort(t[(t >= start) & (t <= end)])
    edges = np.concatenate(([start], inside, [end]))
    return edges[:-1], np.diff(edges)


def outages(gaps: np.ndarray) -> np.ndarray:
    """Which of a child's completion ``gaps`` are outages (:data:`STALL_FACTOR`); with no
    completion at all, the whole window is one."""
    if len(gaps) <= 1:
        return np.ones(len(gaps), dtype=bool)
    return gaps > max(STALL_FLOOR_US, STALL_FACTOR * float(np.median(gaps)))


def availability_frame(requests: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per replication and child, over the measurement window (after ``run.warmup``):

    ``availability``      the share of the window its requests could complete: 1 minus
                          the outages (:func:`outages`: gaps between successive
                          completions far longer than its usual ones) over the window;
    ``longest_stall_us``  the largest gap between successive completions, the window's
                          edges counting as completions (a child that stops for good
                          stalls to the end)."""
    start, end = scenario.run.warmup, scenario.run.duration
    rows = []
    for (rep, part), g in requests.groupby(["replication", "partition"], sort=False):
        done = g["t_complete_us"].to_numpy()[(g["state"] == "completed").to_numpy()]
        _, gaps = completion_gaps(done, start, end)
        down = float(gaps[outages(gaps)].sum())
        rows.append((rep, part, 1.0 - down / (end - start), float(gaps.max())))
    cols = ["replication", "partition", "availability", "longest_stall_us"]
    return pd.DataFrame(rows, columns=cols)


def with_fault_columns(
    per_rep: pd.DataFrame, requests: pd.DataFrame, scenario: Scenario
) -> pd.DataFrame:
    """``per_rep`` (:func:`replication_frame`) with each child's ``availability`` and
    ``longest_stall_us`` (:func:`availability_frame`, the same on each of its paths) and
    per child and path the requests submitted in the window that ``failed`` and that
    were ``retried`` (took more than one attempt, whatever their end)."""
    avail = availability_frame(requests, scenario)
    sub = requests[requests["t_submit_us"] >= scenario.run.warmup]
    counts = (
        sub.assign(failed=sub["state"].eq("failed"), retried=sub["attempts"].gt(1))
        .groupby(["replication", *KEYS], sort=False)[["failed", "retried"]]
        .sum()
        .reset_index()
    )
    out = per_rep.merge(avail, on=["replication", "partition"], how="left")
    out = out.merge(counts, on=["replication", *KEYS], how="left")
    out[["failed", "retried"]] = out[["failed", "retried"]].fillna(0).astype("int64")
    return out


def fault_frame(requests: pd.DataFrame, scenario: Scenario, replications: int) -> pd.DataFrame:
    """What each fault did to each child, mean over replications: one row per fault
    (``fault`` its index, ``kind``, ``target``, ``at_us``, ``duration_us``, ``factor``)
    and child. A request is *hit* by a fault when it was in flight at some time during
    it (submitted before its end, not ended before its start; a child crash without
    duration lasts to the end of the run): ``requests`` hit, of them ``completed``,
    ``failed``, ``retried`` (more than one attempt), ``in_flight`` at the end, and
    ``routed`` (their last attempt went routed: a revoked VF); ``mean_us_during`` and
    ``p99_us_during`` over those hit that completed; ``mean_us_outside`` and
    ``p99_us_outside`` over the child's requests in the window that no fault hit;
    ``longest_stall_us`` the longest gap between the child's completions that overlaps
    the fault."""
    end_run = scenario.run.duration
    faults = scenario.faults
    rows = []
    for (rep, part), g in requests.groupby(["replication", "partition"], sort=False):
        t_sub = g["t_submit_us"].to_numpy()
        t_end = g["t_complete_us"].fillna(np.inf).to_numpy()
        state = g["state"].to_numpy()
        done = state == "completed"
        latency = g["latency_us"].to_numpy()
        attempts = g["attempts"].to_numpy()
        routed = (g["io_path"] == "routed").to_numpy()
        starts, gaps = completion_gaps(t_end[done], 0.0, end_run)
        hit_any = np.zeros(len(g), dtype=bool)
        found = []
        for i, f in enumerate(faults):
            hit = (t_sub < min(f.end, end_run)) & (t_end >= f.at)
            hit_any |= hit
            over = (starts < min(f.end, end_run)) & (starts + gaps > f.at)
            found.append((i, f, hit, float(gaps[over].max()) if over.any() else 0.0))
        outside = latency[done & ~hit_any & g["in_window"].to_numpy()]
        for i, f, hit, stall in found:
            during = latency[hit & done]
            rows.append({
                "replication": rep, "fault": i, "kind": f.kind, "target": str(f.target),
                "at_us": f.at, "duration_us": f.duration if f.duration is not None else np.nan,
                "factor": f.factor if f.factor is not None else np.nan, "partition": part,
                "requested_path": str(g["requested_path"].iloc[0]),
                "requests": int(hit.sum()), "completed": int((hit & done).sum()),
                "failed": int((hit & (state == "failed")).sum()),
                "retried": int((hit & (attempts > 1)).sum()),
                "in_flight": int((hit & (state == "in_flight")).sum()),
                "routed": int((hit & routed).sum()),
                "mean_us_during": float(during.mean()) if len(during) else np.nan,
                "p99_us_during": float(np.percentile(during, 99)) if len(during) else np.nan,
                "mean_us_outside": float(outside.mean()) if len(outside) else np.nan,
                "p99_us_outside": float(np.percentile(outside, 99)) if len(outside) else np.nan,
                "longest_stall_us": stall,
            })  # fmt: skip
    if not rows:
        return pd.DataFrame()
    per_rep = pd.DataFrame(rows)
    ident = ["fault", "kind", "target", "at_us", "duration_us", "factor", "partition",
             "requested_path"]  # fmt: skip
    out = per_rep.drop(columns="replication").groupby(ident, sort=False, dropna=False).mean()
    out = out.reset_index()
    out.insert(len(ident), "replications", replications)
    return out


def fault_notes(summary: pd.DataFrame) -> dict[str, str]:
    """Per child whose I/O was interrupted, failed or retried: one line for its warnings
    (its latency figures include the faults and retries)."""
    notes: dict[str, str] = {}
    if "availability" not in summary.columns:
        return notes
    for part, g in summary.groupby("partition", sort=False):
        avail, stall = float(g["availability"].iloc[0]), float(g["longest_stall_us"].iloc[0])
        failed, retried = int(g["failed"].sum()), int(g["retried"].sum())
        if avail < 0.999 or failed or retried:
            notes[str(part)] = (
                f"faults: available {avail:.1%} of the window, longest stall "
                f"{stall / 1e3:.3g} ms, {failed:,} failed, {retried:,} retried (its latency "
                "figures include the faults)"
            )
    return notes


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
        counts = [c for c in COUNTS if c in frame.columns]
        for col in counts:
            row[col] = int(frame[col].sum())
        for col in frame.columns.drop([*KEYS, "replication", *counts]):
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


def _own_path(reps: pd.DataFrame) -> pd.DataFrame:
    """One row per child and replication: where a child ran on two paths in one run (its
    VF revoked for a while, :mod:`sim.faults`), the row of the path it asked for."""
    two = reps.duplicated(["partition", "replication"], keep=False)
    return reps[~two | (reps["io_path"] == reps["requested_path"])] if two.any() else reps


def comparison_frame(results: dict[str, Result], base: str) -> pd.DataFrame:
    """Tidy table: per child, metric and path, the value with its CI, and the paired
    difference and ratio to ``base`` with theirs."""
    rows = []
    ref = _own_path(results[base].replications).set_index(["partition", "replication"])
    for path, res in results.items():
        reps = _own_path(res.replications).set_index(["partition", "replication"])
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


PARENT_PATHS = ("routed", "emulated")
"""Paths whose I/O runs on the parent's vCPUs (and, routed, through VMBus rings)."""

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
    ``run.ci_warning`` of their estimate, a mean further from the analytic estimate than
    its approximations and the interval explain where it should hold
    (:func:`sim.analytic.disagreement`)."""
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
            row["io_path"] in PARENT_PATHS and v.startswith("parent.")
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
        gap = disagreement(row)  # only where the estimate should hold
        if gap:
            out.append(gap)
    return {k: v for k, v in notes.items() if v}
