"""What faults did to a run: availability and stalls per child (gaps between its
completions far longer than its usual ones), failed and retried requests, and per fault
and child the requests it hit (:mod:`sim.model.faults` injects them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.scenario.schema import Scenario

KEYS = ["partition", "requested_path", "io_path"]


# ---------------------------------------------------------------------------------------
# Faults: availability, stalls, failures, and what each fault did (sim.model.faults)
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
