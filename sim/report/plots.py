"""Plots of results: each a function that takes the tidy frames and returns a figure.

One style for all of them: a colour-blind-safe palette (Okabe & Ito, 2008) with one fixed
colour per I/O path, latency component, CPU category and fault kind in every figure
(:mod:`sim.report.palette`), bar charts horizontal with one label per row and a height that
grows with the rows (so labels cannot overlap at any number of children), units on every
axis, latency on a log axis where it spans decades.
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
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from sim.analysis.stats import t_interval
from sim.experiment.capacity import Capacity
from sim.model.metrics import CATEGORIES, COMPONENTS
from sim.report.palette import (
    CATEGORY_COLORS,
    COMPONENT_COLORS,
    FALLBACK,
    FAULT_COLORS,
    OKABE_ITO,
    PATH_COLORS,
)
from sim.scenario import units

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


def _legend(ax: Axes, fontsize: str = "small") -> None:
    """The legend outside the axes, to their right (the constrained layout makes room):
    it never covers a curve or a bar, however many series there are."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


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
    _legend(ax)
    return fig


ROW_INCHES = 0.32
"""Height of one bar of a horizontal bar chart: a label per row, never two on one line."""


def _rows_figure(rows: int, width: float = 7.5) -> Figure:
    """A figure for a horizontal bar chart of ``rows`` bars: its height grows with them,
    so that labels (one per bar, on the y axis) cannot overlap however many there are."""
    return _figure(width, max(2.6, 1.6 + ROW_INCHES * rows))


def latency_breakdown(summary: pd.DataFrame) -> Figure:
    """Mean latency split into its components, one horizontal stacked bar per child and
    path (first child at the top)."""
    fig = _rows_figure(len(summary))
    ax = fig.add_subplot()
    labels = [literal(f"{r.partition} ({r.io_path})") for r in summary.itertuples()]
    ys = np.arange(len(summary))
    left = np.zeros(len(summary))
    for comp in COMPONENTS:
        values = summary[f"{comp}_us"].fillna(0.0).to_numpy()
        if not values.any():
            continue
        ax.barh(ys, values, left=left, color=COMPONENT_COLORS.get(comp, FALLBACK), label=comp,
                edgecolor="white", linewidth=0.5)  # fmt: skip
        left += values
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    ax.set_xlabel("mean latency (µs)")
    ax.set_title("Where the mean latency goes")
    _legend(ax)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def cpu_breakdown(cpu: pd.DataFrame, include_idle: bool = True) -> Figure:
    """CPU time per partition and category over the measurement window (ms), one
    horizontal stacked bar per partition; each category has its colour in every figure
    (:mod:`sim.report.palette`)."""
    busy = cpu if include_idle else cpu[cpu["category"] != "idle"]
    table = busy.pivot_table(index="partition", columns="category", values="busy_us",
                             aggfunc="sum", fill_value=0.0, sort=False) / 1e3  # fmt: skip
    fig = _rows_figure(len(table))
    ax = fig.add_subplot()
    order = [c for c in (*CATEGORIES, "idle") if c in table.columns]
    order += [c for c in table.columns if c not in order]
    left = np.zeros(len(table))
    ys = np.arange(len(table))
    for cat in order:
        values = table[cat].to_numpy()
        ax.barh(ys, values, left=left, color=CATEGORY_COLORS.get(str(cat), FALLBACK),
                label=literal(cat))  # fmt: skip
        left += values
    ax.set_yticks(ys, [literal(p) for p in table.index])
    ax.invert_yaxis()
    ax.set_xlabel("CPU time in the window (ms)")
    ax.set_title("CPU time by partition and category")
    _legend(ax)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def metric_vs_load(
    frame: pd.DataFrame,
    load: str,
    metric: str = "p99_us",
    partitions: Sequence[str] | None = None,
    slo: float | None = None,
    xlabel: str | None = None,
    slo_label: str | None = None,
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
    text_x = False
    for i, ((part, path), g) in enumerate(frame.groupby(["partition", "io_path"], sort=False)):
        if part not in names:
            continue
        rows = []
        for _, h in g.groupby("point_index", sort=True):
            m, lo, hi = t_interval(h[metric].to_numpy())
            rows.append((h[load].iloc[0], m, lo, hi))
        pts = pd.DataFrame(rows, columns=["x", "m", "lo", "hi"])
        text = not pd.api.types.is_numeric_dtype(pts["x"])  # object or str: one tick each
        text_x = text_x or text
        xs = np.arange(len(pts)) if text else pts["x"].to_numpy()
        color = _color(str(path), i)
        ax.plot(xs, pts["m"], marker="o", color=color, label=literal(f"{part} ({path})"),
                linestyle=styles[names.index(part) % len(styles)])  # fmt: skip
        ax.fill_between(xs, pts["lo"], pts["hi"], color=color, alpha=0.2, linewidth=0)
        if text:
            ax.set_xticks(xs, [literal(v) for v in pts["x"]])
    if slo is not None:
        ax.axhline(slo, color="black", linestyle="--", linewidth=1,
                   label=literal(slo_label or f"SLO {slo:g}"))  # fmt: skip
    unit = {"_rps": "requests/s", "_bps": "bit/s"}.get(metric[-4:], "µs")
    name = metric.removesuffix("_us").removesuffix("_rps").removesuffix("_bps")
    ax.set_xlabel(literal(xlabel or f"{load.split('.')[-1]} (as swept)"))
    ax.set_ylabel(f"{name} ({unit})")
    if metric.endswith("_us"):
        ax.set_yscale("log")
        ax.set_ylabel(f"{name} ({unit}, log scale)")
    ax.set_title(literal(f"{name} against {load.split('.')[-1]}"))
    ax.grid(True, which="both", alpha=0.3)
    # numbers as 120k, not 120000 (a log axis and named ticks keep their own labels)
    axes = [ax.yaxis] if text_x else [ax.xaxis, ax.yaxis]
    for axis in axes:
        if axis.get_scale() == "linear":
            axis.set_major_formatter(EngFormatter(sep=""))
    _legend(ax)
    return fig


def occupancy(
    trace: pd.DataFrame, warmup_us: float | None = None, ring_bytes: float | None = None
) -> Figure:
    """Occupancy over time from a run's ``occupancy`` frame: how full each VMBus ring is
    (top; as a share of ``ring_bytes``, the capacity of every ring, where given, else in
    bytes) and requests waiting for each device (bottom), mean across replications per
    interval; the warm-up is shaded."""
    fig = _figure(9.0, 5.0)
    rings, queues = fig.subplots(2, 1, sharex=True)
    kib = False
    if len(trace):
        mean = trace.groupby(["quantity", "resource", "time_us"], sort=False)["value"].mean()
        kib = "bytes" in mean.index.get_level_values(0) and mean.loc["bytes"].max() >= 4096
        ring_scale = 100.0 / ring_bytes if ring_bytes else 1 / 1024 if kib else 1.0
        for ax, quantity, scale in ((rings, "bytes", ring_scale), (queues, "queue", 1.0)):
            if quantity not in mean.index.get_level_values(0):
                ax.text(0.5, 0.5, "none in this run", transform=ax.transAxes, ha="center")
                continue
            for i, (name, g) in enumerate(mean.loc[quantity].groupby(level=0, sort=False)):
                t = g.index.get_level_values(1).to_numpy() / 1e3
                ax.plot(t, g.to_numpy() * scale, color=OKABE_ITO[i % len(OKABE_ITO)],
                        label=literal(name), linewidth=1.2)  # fmt: skip
            _legend(ax, "x-small")
    for ax in (rings, queues):
        if warmup_us:
            ax.axvspan(0, warmup_us / 1e3, color="#DDDDDD", alpha=0.6, linewidth=0)
        ax.grid(True, alpha=0.3)
    if ring_bytes:
        rings.set_ylabel(f"ring full (% of\n{units.format_size(ring_bytes)})")
        rings.set_ylim(bottom=0)
    else:
        rings.set_ylabel("in ring (KiB)" if kib else "in ring (bytes)")
    rings.set_title("VMBus ring and device-queue occupancy (interval means; warm-up shaded)")
    queues.set_ylabel("waiting for device\n(requests)")
    queues.set_xlabel("simulated time (ms)")
    return fig


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
    _legend(mean_ax, "x-small")
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
    fig = metric_vs_load(frame, cap.axis, clause.metric, slo=clause.value, xlabel=cap.axis,
                         slo_label=f"SLO {clause.text}")  # fmt: skip
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
