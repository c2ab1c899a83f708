"""Plots of results: each a function that takes the tidy frames and returns a figure.

One style for all of them: a colour-blind-safe palette (Okabe & Ito, 2008) with one fixed
colour per I/O path, units on every axis, latency on a log axis where it spans decades.
They use matplotlib's object API only (no global pyplot state), so they work the same in a
notebook, a script and the report, and two figures never share an axis by accident.

* :func:`latency_cdf`           latency distribution per child and path (log x)
* :func:`latency_breakdown`     where the mean latency goes, stacked per child and path
* :func:`cpu_breakdown`         CPU time per partition and category
* :func:`metric_vs_load`        a metric (p99, mean, throughput) against offered load per
                                path, from a sweep's tidy frame, with 95 % CI bands
* :func:`occupancy`             ring and device-queue occupancy over time (the trace of a
                                run, mean across replications, warm-up shaded)
* :func:`latency_over_time`     mean and p99 latency per time bin and child, each fault's
                                interval shaded (runs with faults, :mod:`sim.model.faults`)

A CDF is drawn through at most ``CDF_POINTS`` quantiles per line: the shape is the same
and a figure of a million requests stays small (the report embeds it).

Every string from the user's data (partition, device and resource names, grid values and
keys, fault targets, SLO text) reaches a label, title, legend or tick through
:func:`literal`, so that it shows as written: matplotlib would read text between two ``$``
as math (``$\\alpha$`` drawn as α; ``$\\frac$`` breaks the figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.stats import t_interval
from sim.experiment.capacity import Capacity
from sim.model.metrics import CATEGORIES, COMPONENTS

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")  # fmt: skip
PATH_COLORS = {"routed": "#D55E00", "direct": "#0072B2", "native": "#009E73"}
# one colour per latency component; the device's own time in greys, so that what the
# virtualization layers add stands out
COMPONENT_COLORS = {
    "guest_cpu": "#0072B2",
    "sched_wait": "#E69F00",
    "guest_queue": "#56B4E9",
    "ring_wait": "#D55E00",
    "parent_cpu": "#CC79A7",
    "parent_queue": "#F0E442",
    "iommu": "#009E73",
    "device_queue": "#888888",
    "device_service": "#C8C8C8",
    "interrupt": "#000000",
    "retry": "#882255",
}


CDF_POINTS = 2000


def literal(text: object) -> str:
    """``text`` as a label shows it, character for character: every ``$`` escaped, so that
    matplotlib does not read what lies between two of them as math."""
    return str(text).replace("$", r"\$")


def _color(path: str, i: int = 0) -> str:
    return PATH_COLORS.get(path, OKABE_ITO[i % len(OKABE_ITO)])


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def latency_cdf(requests: pd.DataFrame, partitions: Sequence[str] | None = None) -> Figure:
    """Empirical CDF of latency (µs, log scale) per child and path, in-window requests."""
    fig = _figure()
    ax = fig.add_subplot()
    req = requests[requests["in_window"]]
    names = list(partitions) if partitions is not None else list(req["partition"].unique())
    styles = ["-", "--", ":", "-."]
    for i, ((part, path), g) in enumerate(req.groupby(["partition", "io_path"], sort=False)):
        if part not in names:
            continue
        x = np.sort(g["latency_us"].to_numpy())
        if x.size == 0:
            continue
        y = np.arange(1, x.size + 1) / x.size
        if x.size > CDF_POINTS:  # keep the tail in full detail: log-spaced in 1 - F
            tail = 1.0 - np.geomspace(1.0, 1.0 / x.size, CDF_POINTS)
            idx = np.unique(np.clip(np.ceil(tail * x.size).astype(int) - 1, 0, x.size - 1))
            idx = np.union1d(idx, np.linspace(0, x.size - 1, CDF_POINTS // 4).astype(int))
            idx = np.union1d(idx, [x.size - 1])
            x, y = x[idx], y[idx]
        ax.plot(x, y, color=_color(str(path), i), linestyle=styles[names.index(part) % 4],
                label=literal(f"{part} ({path})"))  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("latency (µs, log scale)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.set_ylim(0, 1.0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Latency distribution")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def latency_breakdown(summary: pd.DataFrame) -> Figure:
    """Mean latency split into its components, one stacked bar per child and path."""
    fig = _figure(7.5, 4.0)
    ax = fig.add_subplot()
    labels = [literal(f"{r.partition}\n({r.io_path})") for r in summary.itertuples()]
    bottom = np.zeros(len(summary))
    for comp in COMPONENTS:
        values = summary[f"{comp}_us"].fillna(0.0).to_numpy()
        if not values.any():
            continue
        ax.bar(labels, values, bottom=bottom, color=COMPONENT_COLORS[comp], label=comp,
               edgecolor="white", linewidth=0.5)  # fmt: skip
        bottom += values
    ax.set_ylabel("mean latency (µs)")
    ax.set_title("Where the mean latency goes")
    ax.legend(fontsize="small", ncols=2)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def cpu_breakdown(cpu: pd.DataFrame, include_idle: bool = True) -> Figure:
    """CPU time per partition and category over the measurement window (ms)."""
    fig = _figure(7.5, 4.0)
    ax = fig.add_subplot()
    busy = cpu if include_idle else cpu[cpu["category"] != "idle"]
    table = busy.pivot_table(index="partition", columns="category", values="busy_us",
                             aggfunc="sum", fill_value=0.0, sort=False) / 1e3  # fmt: skip
    order = [c for c in (*CATEGORIES, "idle") if c in table.columns]
    bottom = np.zeros(len(table))
    names = [literal(p) for p in table.index]
    for i, cat in enumerate(order):
        values = table[cat].to_numpy()
        color = "#BBBBBB" if cat == "idle" else OKABE_ITO[i % len(OKABE_ITO)]
        ax.bar(names, values, bottom=bottom, color=color, label=literal(cat))
        bottom += values
    ax.set_ylabel("CPU time in the window (ms)")
    ax.set_title("CPU time by partition and category")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def metric_vs_load(
    frame: pd.DataFrame,
    load: str,
    metric: str = "p99_us",
    partitions: Sequence[str] | None = None,
    slo: float | None = None,
    xlabel: str | None = None,
) -> Figure:
    """``metric`` against the swept parameter ``load`` (a grid column of a sweep's tidy
    frame, or the load of a capacity search), one line per child and path, with the 95 %
    CI across replications as a band; ``slo`` draws the target, ``xlabel`` names the
    x axis (default: the swept field, as swept)."""
    if load not in frame.columns:
        raise ValueError(f"'{load}' is not a column of the frame (the sweep's grid keys are)")
    fig = _figure()
    ax = fig.add_subplot()
    names = list(partitions) if partitions is not None else list(frame["partition"].unique())
    styles = ["-", "--", ":", "-."]
    for i, ((part, path), g) in enumerate(frame.groupby(["partition", "io_path"], sort=False)):
        if part not in names:
            continue
        rows = []
        for _, h in g.groupby("point_index", sort=True):
            m, lo, hi = t_interval(h[metric].to_numpy())
            rows.append((h[load].iloc[0], m, lo, hi))
        pts = pd.DataFrame(rows, columns=["x", "m", "lo", "hi"])
        text = not pd.api.types.is_numeric_dtype(pts["x"])  # object or str: one tick each
        xs = np.arange(len(pts)) if text else pts["x"].to_numpy()
        color = _color(str(path), i)
        ax.plot(xs, pts["m"], marker="o", color=color, label=literal(f"{part} ({path})"),
                linestyle=styles[names.index(part) % len(styles)])  # fmt: skip
        ax.fill_between(xs, pts["lo"], pts["hi"], color=color, alpha=0.2, linewidth=0)
        if text:
            ax.set_xticks(xs, [literal(v) for v in pts["x"]])
    if slo is not None:
        ax.axhline(slo, color="black", linestyle="--", linewidth=1, label=f"SLO {slo:g}")
    unit = {"_rps": "requests/s", "_bps": "bit/s"}.get(metric[-4:], "µs")
    name = metric.removesuffix("_us").removesuffix("_rps").removesuffix("_bps")
    ax.set_xlabel(literal(xlabel or f"{load.split('.')[-1]} (as swept)"))
    ax.set_ylabel(f"{name} ({unit})")
    if metric.endswith("_us"):
        ax.set_yscale("log")
        ax.set_ylabel(f"{name} ({unit}, log scale)")
    ax.set_title(literal(f"{name} against {load.split('.')[-1]}"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def occupancy(trace: pd.DataFrame, warmup_us: float | None = None) -> Figure:
    """Occupancy over time from a run's ``occupancy`` frame: bytes in each VMBus ring (top)
    and requests waiting for each device (bottom), mean across replications per interval;
    the warm-up is shaded."""
    fig = _figure(9.0, 5.0)
    rings, queues = fig.subplots(2, 1, sharex=True)
    if len(trace):
        mean = trace.groupby(["quantity", "resource", "time_us"], sort=False)["value"].mean()
        kib = "bytes" in mean.index.get_level_values(0) and mean.loc["bytes"].max() >= 4096
        for ax, quantity, scale in ((rings, "bytes", 1 / 1024 if kib else 1.0),
                                    (queues, "queue", 1.0)):  # fmt: skip
            if quantity not in mean.index.get_level_values(0):
                ax.text(0.5, 0.5, "none in this run", transform=ax.transAxes, ha="center")
                continue
            for i, (name, g) in enumerate(mean.loc[quantity].groupby(level=0, sort=False)):
                t = g.index.get_level_values(1).to_numpy() / 1e3
                ax.plot(t, g.to_numpy() * scale, color=OKABE_ITO[i % len(OKABE_ITO)],
                        label=literal(name), linewidth=1.2)  # fmt: skip
            ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in (rings, queues):
        if warmup_us:
            ax.axvspan(0, warmup_us / 1e3, color="#DDDDDD", alpha=0.6, linewidth=0)
        ax.grid(True, alpha=0.3)
    rings.set_ylabel("in ring (KiB)" if len(trace) and kib else "in ring (bytes)")
    rings.set_title("VMBus ring and device-queue occupancy (interval means; warm-up shaded)")
    queues.set_ylabel("waiting for device\n(requests)")
    queues.set_xlabel("simulated time (ms)")
    return fig


FAULT_COLORS = {
    "parent_crash": "#D55E00",
    "parent_hang": "#E69F00",
    "vsp_slowdown": "#F0E442",
    "vf_revoke": "#56B4E9",
    "device_reset": "#CC79A7",
    "lp_offline": "#999999",
    "child_crash": "#000000",
    "hv_driver_crash": "#009E73",
}


def latency_over_time(
    requests: pd.DataFrame, faults: pd.DataFrame, bins: int = 100, end_us: float | None = None
) -> Figure:
    """Mean (top) and p99 (bottom) latency of the requests submitted in each of ``bins``
    time bins, per child (all replications pooled; completed requests, warm-up
    included), against simulated time, with each fault's interval shaded and named.
    ``faults`` is a result's ``faults`` frame (one interval per ``fault``); ``end_us``
    the end of the run (default: the last submission). A bin where a child completed
    nothing leaves a gap in its line: its requests were stalled, failed, or not
    issued."""
    fig = _figure(9.0, 5.5)
    mean_ax, p99_ax = fig.subplots(2, 1, sharex=True)
    done = requests[requests["state"] == "completed"]
    end = float(end_us) if end_us is not None else float(requests["t_submit_us"].max())
    width = end / bins if end > 0 else 1.0
    edges = np.arange(bins) * width
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for part, g in done.groupby("partition", sort=False):
        path = str(g["requested_path"].iloc[0])
        k = seen[path] = seen.get(path, -1) + 1
        which = np.minimum((g["t_submit_us"].to_numpy() // width).astype(int), bins - 1)
        lat = g["latency_us"].groupby(which)
        stats = pd.DataFrame({"mean": lat.mean(), "p99": lat.quantile(0.99)}).reindex(range(bins))
        x = (edges + width / 2) / 1e3
        style = {"color": _color(path, len(seen) - 1), "linestyle": styles[k % len(styles)],
                 "linewidth": 1.2, "label": literal(f"{part} ({path})")}  # fmt: skip
        mean_ax.plot(x, stats["mean"].to_numpy(), **style)
        p99_ax.plot(x, stats["p99"].to_numpy(), **style)
    shown: set[str] = set()
    if len(faults):
        for _, f in faults.drop_duplicates("fault").iterrows():
            start = float(f["at_us"]) / 1e3
            dur = float(f["duration_us"])
            stop = (float(f["at_us"]) + dur) / 1e3 if np.isfinite(dur) else end / 1e3
            kind = str(f["kind"])
            label = literal(f"{kind} ({f['target']})")
            for ax in (mean_ax, p99_ax):
                ax.axvspan(start, stop, color=FAULT_COLORS.get(kind, "#BBBBBB"), alpha=0.25,
                           linewidth=0, label=label if ax is mean_ax and label not in shown
                           else None)  # fmt: skip
            shown.add(label)
    for ax, what in ((mean_ax, "mean"), (p99_ax, "p99")):
        ax.set_yscale("log")
        ax.set_ylabel(f"{what} latency\n(µs, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    mean_ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    mean_ax.set_title("Latency over time by submission time (faults shaded)")
    p99_ax.set_xlabel("simulated time (ms)")
    p99_ax.set_xlim(0, end / 1e3)
    return fig


def capacity_figure(cap: Capacity, metric: str | None = None) -> Figure:
    """A capacity search's SLO metric (its first clause's by default) against the load,
    one line per path and child with its 95 % band (counting children, or with more than six: the
    worst child's, replication by replication), the SLO line, and each path's
    capacity."""
    clause = next((c for c in cap.slo if c.metric == metric), cap.slo[0])
    frame = cap.replications
    if cap.vary == "children" or frame["partition"].nunique() > 6:
        # one line per path: the worst of the children, replication by replication
        keys = ["path", "io_path", cap.axis, "point_index", "replication"]
        frame = (
            frame.groupby(keys, as_index=False)[clause.metric]
            .agg("max" if clause.upper else "min")
            .assign(partition="worst child")
        )
    fig = metric_vs_load(frame, cap.axis, clause.metric, slo=clause.value, xlabel=cap.axis)
    ax = fig.axes[0]
    for _, r in cap.table.iterrows():
        if math.isfinite(r["capacity"]):
            ax.axvline(
                r["capacity"],
                color=PATH_COLORS.get(str(r["path"]), "grey"),
                linestyle=":",
                linewidth=1,
            )
    metric_name = clause.metric.removesuffix("_us")
    ax.set_title(literal(f"{clause.text}: {metric_name} against {cap.axis}"))
    return fig
