"""Load over simulated time in a run's report (docs/design.md §3.4, §6): for a run whose
streams replay a trace or follow a rate profile, the arrivals, the latency (median and
p99) and each device's utilisation per "hour", and the busiest hour.

An "hour" is 1/24 of the day of a daily profile (``profile.period``), else an hour of
simulated time when the run lasts two hours or more, else 1/24 of the run. Requests are
binned by their submission, from the start of the run (the warm-up included); all
replications are pooled. Device utilisation is the mean
share of the device's servers busy, from the occupancy samples (``occupancy.csv``); the
CPU's utilisation is not sampled over time (cpu.csv has it over the whole window)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.results.result import Result
from sim.scenario import units
from sim.scenario.schema import Scenario

HOUR_US = 3600e6


def shaped(scn: Scenario) -> bool:
    """Whether any stream's load changes over time by design (a trace or a profile)."""
    return any(
        s.trace is not None or s.profile is not None for c in scn.children for s in c.streams
    )


def hour_of(scn: Scenario) -> tuple[float, str]:
    """Length of the report's "hour" (µs) and how it was chosen."""
    for c in scn.children:
        for s in c.streams:
            if s.profile is not None and s.profile.daily is not None:
                day = s.profile.steps()[2] or 24 * HOUR_US
                return day / 24, "an hour of the daily profile's day"
    if scn.run.duration >= 2 * HOUR_US:
        return HOUR_US, "an hour"
    return scn.run.duration / 24, "1/24 of the run"


@dataclass
class OverTime:
    """Per-hour table (hour start, arrivals/s, p50, p99 latency, utilisation per device)
    and the busiest hour's row."""

    table: pd.DataFrame
    busiest: pd.Series
    hour_us: float
    hour_is: str

    def sentence(self) -> str:
        b = self.busiest
        devices = [c for c in self.table.columns if c.startswith("util ")]
        util = ", ".join(f"{c[5:]} {b[c]:.0%}" for c in devices if pd.notna(b[c]))
        return (
            f"Busiest hour (an 'hour' here is {self.hour_is}, "
            f"{units.format_time(self.hour_us)}): from {units.format_time(b['start_us'])}, "
            f"{b['rate']:.4g} requests/s, latency p50 {b['p50_us']:.4g} µs, p99 "
            f"{b['p99_us']:.4g} µs" + (f", device utilisation {util}" if util else "") + "."
        )


def over_time(res: Result) -> OverTime:
    """The per-hour table of a run (module docstring)."""
    scn = res.scenario
    hour, how = hour_of(scn)
    reps = int(res.requests["replication"].nunique()) if len(res.requests) else 1
    reps = max(reps, 1)
    n = max(int(np.ceil(scn.run.duration / hour - 1e-9)), 1)
    edges = np.arange(n + 1) * hour
    req = res.requests
    done = req[req["state"] == "completed"] if "state" in req else req
    b_all = np.clip(np.searchsorted(edges, req["t_submit_us"].to_numpy(), "right") - 1, 0, n - 1)
    b_done = np.clip(np.searchsorted(edges, done["t_submit_us"].to_numpy(), "right") - 1, 0, n - 1)
    lengths = np.minimum(edges[1:], scn.run.duration) - edges[:-1]
    rows: dict[str, np.ndarray] = {
        "start_us": edges[:-1],
        "rate": np.bincount(b_all, minlength=n)[:n] / reps / (lengths / 1e6),
    }
    lat = done["latency_us"].to_numpy()
    p50 = np.full(n, np.nan)
    p99 = np.full(n, np.nan)
    for k in range(n):
        x = lat[b_done == k]
        if len(x):
            p50[k], p99[k] = np.percentile(x, [50, 99])
    rows["p50_us"], rows["p99_us"] = p50, p99
    occ = res.occupancy
    if len(occ):
        busy = occ[(occ["quantity"] == "busy") & (occ["kind"] != "ring")]
        for dev, g in busy.groupby("resource", sort=True):
            start = g["time_us"].to_numpy() - 1e-9  # a sample ends its interval
            at = np.clip(np.searchsorted(edges, start, "right") - 1, 0, n - 1)
            v = g["value"].to_numpy()
            sums, counts = np.bincount(at, v, n)[:n], np.bincount(at, minlength=n)[:n]
            with np.errstate(invalid="ignore", divide="ignore"):
                rows[f"util {dev}"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    table = pd.DataFrame(rows)
    busiest = table.iloc[int(np.argmax(table["rate"].to_numpy()))]
    return OverTime(table, busiest, hour, how)


def figure(ot: OverTime) -> Figure:
    """Arrivals, latency and device utilisation per hour; the busiest hour shaded."""
    t = ot.table
    x = t["start_us"].to_numpy() / 1e6
    w = ot.hour_us / 1e6
    fig = Figure(figsize=(9, 6.4), layout="constrained")
    ax_rate, ax_lat, ax_util = fig.subplots(3, 1, sharex=True)
    ax_rate.step(x, t["rate"], where="post", color="k")
    ax_rate.set_ylabel("arrivals/s")
    ax_lat.step(x, t["p50_us"], where="post", label="p50")
    ax_lat.step(x, t["p99_us"], where="post", label="p99")
    ax_lat.set(ylabel="latency (µs)", yscale="log")
    ax_lat.legend()
    devices = [c for c in t.columns if c.startswith("util ")]
    for c in devices:
        ax_util.step(x, t[c], where="post", label=c[5:])
    ax_util.set(ylabel="device utilisation", xlabel="simulated time (s)", ylim=(0, 1.05))
    if devices:
        ax_util.legend()
    b = float(ot.busiest["start_us"]) / 1e6
    for ax in (ax_rate, ax_lat, ax_util):
        ax.axvspan(b, b + w, color="orange", alpha=0.2, lw=0)
    ax_rate.set_title("load over simulated time (busiest hour shaded)")
    return fig
