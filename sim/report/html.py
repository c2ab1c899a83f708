"""``hvsim report DIR``: one self-contained ``report.html`` for a run, a comparison, a sweep
or a capacity search.

The page is meant to be forwarded as is, to readers who never open a terminal: it opens
from a file, needs no network (figures are embedded SVG, the style is inline) and reads
top to bottom:

1. the question, and the scenario in plain words (:func:`sim.report.provenance.describe`);
2. the headline table: per child and path, throughput, mean and p99 latency with their
   95 % confidence intervals, and the ratio to the other path (paired by replication);
3. warnings (saturation, wide intervals, warm-up) before any figure is trusted;
4. the figures (:mod:`sim.report.plots`) with a caption saying how to read each;
5. the busiest resources;
6. where every number came from (:func:`sim.report.provenance.provenance`);
7. how to reproduce it: command, seed, replications, versions.

Which kind of directory it is, its manifest says (:mod:`sim.results.store`); without one,
its files: ``comparison.csv`` (a comparison), ``study.json`` (a sweep), ``capacity.csv``
(a capacity search), ``summary.csv`` (a run). The report reads only files inside the
directory: a link out of it, or a comparison whose ``meta.json`` names a path outside it,
is refused. Every name that comes from a scenario file is escaped (the template
autoescapes). The file is written through the result store (a temporary name, renamed;
listed in the directory's manifest), so a failed report leaves the previous one (or none),
and a file hvsim did not write is never replaced.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.stats import paired, t_interval
from sim.experiment.study import GridColumn, load_study, study_grid
from sim.report import answer, overtime, plots
from sim.report.provenance import describe, provenance
from sim.report.text import capacity_warnings
from sim.results.result import Comparison, Result, load_comparison, load_result
from sim.results.store import (
    MANIFEST,
    add_file,
    hvsim_version,
    inside,
    read_manifest,
    write_file,
)
from sim.scenario import units
from sim.scenario.schema import Scenario


class ReportError(Exception):
    """The directory cannot be reported on; ``str()`` is the one line shown to the user."""


@dataclass
class Shown:
    title: str
    caption: str
    uri: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Page:
    """Everything the template shows."""

    title: str
    kind: str
    question: str
    scenario: Scenario
    headline: Table
    figures: list[Shown]
    warnings: list[str]
    resources: Table
    reproduce: dict[str, Any]
    extra: list[tuple[str, Table]] = field(default_factory=list)
    analytic: Table | None = None
    answer: list[str] = field(default_factory=list)
    """Two or three plain sentences that answer the question (:mod:`sim.report.answer`)."""


# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------
def _us(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else units.format_time(v)


@dataclass
class Num:
    """A table cell: an estimate and, under it, its confidence interval."""

    main: str
    ci: str = ""

    def __str__(self) -> str:
        return f"{self.main} {self.ci}".strip()


def _ci(value: Any, lo: Any, hi: Any, fmt: Any) -> Num:
    if value is None or not math.isfinite(value):
        return Num("—")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return Num(fmt(value))
    # Student-t intervals are symmetric: the half-width says it in fewer characters
    return Num(fmt(value), f"± {fmt((hi - lo) / 2)}")


def _rate(v: float) -> str:
    return units.format_rate(v).replace("/s", " req/s")


def _ratio(v: float) -> str:
    return f"{v:,.0f}×" if abs(v) >= 1000 else f"{v:.3g}×"


def _cell(row: Any, metric: str, fmt: Any) -> Num:
    return _ci(row[metric], row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high"), fmt)


def _svg(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _path_label(row: Any, revoked: bool = False) -> str:
    if bool(row.get("fallback", False)):
        why = "while its VF was revoked" if revoked else "no free VF"
        return f"{row['io_path']} (asked {row['requested_path']}: {why})"
    return str(row["io_path"])


# ---------------------------------------------------------------------------------------
# Pieces shared by the kinds
# ---------------------------------------------------------------------------------------
def _twins(scenario: Scenario) -> dict[str, list[str]]:
    """Children that run the same workload on the same device, differing only in name,
    path or VF: the run compares them side by side."""
    groups: dict[str, list[str]] = {}
    for c in scenario.children:
        if c.device is None or c.count > 1:
            continue
        key = json.dumps(
            c.model_dump(mode="json", exclude={"name", "io_path", "vf"}), sort_keys=True
        )
        groups.setdefault(key, []).append(c.name)
    return {n: [m for m in g if m != n] for g in groups.values() if len(g) > 1 for n in g}


def _versus(reps: pd.DataFrame, mine: str, other: str, metric: str) -> Num:
    """Ratio of ``mine`` to ``other`` for ``metric``, paired by replication."""
    a = reps[reps["partition"] == other].sort_values("replication")[metric].to_numpy()
    b = reps[reps["partition"] == mine].sort_values("replication")[metric].to_numpy()
    if len(a) == 0 or len(a) != len(b):
        return Num("—")
    p = paired(a, b)
    return _ci(p["ratio"], p["ratio_ci_low"], p["ratio_ci_high"], _ratio)


def _run_headline(res: Result) -> Table:
    twins = _twins(res.scenario)
    columns = ["child", "I/O path", "throughput", "bandwidth", "mean latency", "p99 latency"]
    if twins:
        columns += ["same workload on", "mean ÷ its mean", "p99 ÷ its p99"]
    faulted = "availability" in res.summary.columns  # faults scheduled (sim.model.faults)
    if faulted:
        columns += ["availability", "longest stall", "failed", "retried"]
    revoked = {str(f.target) for f in res.scenario.faults if f.kind == "vf_revoke"}
    rows: list[list[Any]] = []
    paths = res.summary.set_index("partition")["io_path"].to_dict()
    for _, r in res.summary.iterrows():
        part = str(r["partition"])
        row: list[Any] = [
            part,
            _path_label(r, part in revoked),
            _cell(r, "throughput_rps", _rate),
            _cell(r, "throughput_bps", units.format_bitrate),
            _cell(r, "mean_us", _us),
            _cell(r, "p99_us", _us),
        ]
        if twins:
            other = next(
                (o for o in twins.get(part, []) if paths.get(o, r["io_path"]) != r["io_path"]),
                None,
            )
            if other is None:
                row += ["—", "", ""]
            else:
                row += [
                    f"{other} ({paths[other]})",
                    _versus(res.replications, part, other, "mean_us"),
                    _versus(res.replications, part, other, "p99_us"),
                ]
        if faulted:
            row += [
                _cell(r, "availability", lambda v: f"{v:.1%}"),
                _cell(r, "longest_stall_us", _us),
                f"{int(r['failed']):,}",
                f"{int(r['retried']):,}",
            ]
        rows.append(row)
    note = (
        "Means over replications, with the half-width of their 95 % Student-t confidence "
        "interval under each. "
        "Where two children run the same workload on different paths, the last columns "
        "give their ratio, paired by replication (they ran side by side)."
    )
    if faulted:
        note += (
            " With faults: availability is the share of the measurement window in which "
            "the child's requests could complete (gaps between its completions far longer "
            "than its usual ones count as down), the longest stall its largest gap "
            "between completions, failed and retried its requests that failed for good "
            "and that needed more than one attempt (totals over replications); latency "
            "includes the faults."
        )
    return Table(columns, rows, note)


def _analytic(results: dict[str, Result]) -> Table | None:
    """The analytic estimate beside each simulated mean (:mod:`sim.analysis.analytic`), with the
    tolerance its approximations and the interval give, where the summary has it."""
    from sim.analysis.analytic import disagreement, tolerance

    columns = ["child", "I/O path", "simulated mean", "analytic mean", "difference",
               "tolerance", "busiest station", "check"]  # fmt: skip
    rows: list[list[Any]] = []
    for res in results.values():
        if "analytic_mean_us" not in res.summary.columns:
            continue
        for _, r in res.summary.iterrows():
            a, m = float(r["analytic_mean_us"]), float(r["mean_us"])
            if not math.isfinite(a):
                continue
            half = (r.get("mean_us_ci_high", math.nan) - r.get("mean_us_ci_low", math.nan)) / 2
            tol = tolerance(a, float(r["analytic_wait_us"]), half)
            if not bool(r["analytic_holds"]):
                check = "not checked: beyond the approximation"
            elif not math.isfinite(tol):
                check = "not checked: one replication"
            else:
                check = "disagrees" if disagreement(r) else "agrees"
            rows.append([
                str(r["partition"]), _path_label(r), _cell(r, "mean_us", _us), _us(a),
                _us(m - a), _us(tol), f"{float(r['analytic_utilization']):.0%} busy", check,
            ])  # fmt: skip
    if not rows:
        return None
    note = (
        "The analytic estimate is an open queueing network of the same costs "
        "(sim.analysis.analytic): "
        "M/G/1 vCPUs with the world switch as setup, M/G/1 or M/G/c devices, Poisson "
        "arrivals; it leaves out scheduling waits. Its service times are exact, its waits "
        "approximate: it is held against the simulation only where every station on the "
        "child's path is at most 60 % busy, no vCPU competes for an LP and the loop is open, "
        "and then the tolerance is its waits plus the 95 % half-width plus 1 %."
    )
    return Table(columns, rows, note)


def _resources(res: Result, label: str = "") -> list[list[str]]:
    """Utilisation of vCPUs, devices and rings, busiest first."""
    rows: list[tuple[float, list[str]]] = []
    window = res.scenario.run.duration - res.scenario.run.warmup
    vcpus = {"parent": res.scenario.parent.vcpus}
    vcpus.update({n: c.vcpus for n, c in res.scenario.instances()})
    busy = res.cpu[res.cpu["category"] != "idle"].groupby("partition", sort=False)["busy_us"]
    for part, us in busy.sum().items():
        n = vcpus.get(str(part), 1)
        u = us / (window * n)
        rows.append((u, [f"{part}: {n} vCPU{'s' if n > 1 else ''}", f"{u:.1%} busy", "", ""]))
    for _, r in res.resources.iterrows():
        u = float(r["utilization"])
        if r["kind"] == "ring":
            cells = [f"{u:.2%} full", f"{units.format_size(r['mean_level'])} on average",
                     f"{units.format_size(r['max_level'])}"]  # fmt: skip
        else:
            cells = [f"{u:.1%} busy", f"{r['mean_level']:.3g} requests waiting on average",
                     f"{r['max_level']:.0f} waiting"]  # fmt: skip
        rows.append((u, [f"{r['resource']} ({r['kind']})", *cells]))
    rows.sort(key=lambda x: -x[0])
    return [[*([label] if label else []), *cells] for _, cells in rows]


_RESOURCE_COLUMNS = ["resource", "utilisation", "occupancy", "peak"]


def _reproduce(meta: dict[str, Any], directory: Path, scenario: Scenario) -> dict[str, Any]:
    return {
        "command": meta.get("command") or f"hvsim run {scenario.name}.yaml",
        "seed": meta.get("seed"),
        "replications": meta.get("replications"),
        "wall": f"{meta['wall_s']:.1f} s" if "wall_s" in meta else "—",
        "versions": meta.get("versions", {}),
        "directory": str(directory),
        "set_in_scenario": meta.get("set_in_scenario"),
    }


def _warnings(summary: pd.DataFrame, label: str = "") -> list[str]:
    out = []
    for _, r in summary.iterrows():
        text = str(r.get("warnings", "") or "")
        for w in filter(None, (x.strip() for x in text.split(";"))):
            out.append(f"{r['partition']}{label}: {w}")
    return out


# ---------------------------------------------------------------------------------------
# The three kinds
# ---------------------------------------------------------------------------------------
def _run_page(directory: Path) -> Page:
    res = load_result(directory)
    scn = res.scenario
    twins = _twins(scn)
    question = (
        "The same workload runs side by side on different I/O paths: how do their latency "
        "and throughput compare on this host, and where does the time go?"
        if twins
        else "What latency and throughput does each child get on this host, and where "
        "does its time go?"
    )
    if scn.faults:
        question += " " + _faults_question(scn)
    figures = _result_figures(res, "")
    if overtime.shaped(scn):
        figures.append(_over_time_figure(res))
    return Page(
        title=f"{scn.name}: simulation report",
        kind="run",
        question=question,
        scenario=scn,
        headline=_run_headline(res),
        figures=figures,
        warnings=_warnings(res.summary),
        resources=Table(_RESOURCE_COLUMNS, _resources(res)),
        reproduce=_reproduce(res.meta, directory, scn),
        analytic=_analytic({"": res}),
        answer=answer.run_answer(res.summary, res.replications, twins),
    )


OCCUPANCY_SHOWN = 0.10
"""The occupancy figure is shown when a VMBus ring was at least this share full at its
peak, or a device had a request waiting on average: below that it would plot a few bytes
in a ring of hundreds of KiB (the resources table still lists every ring and queue)."""


def _occupancy_figure(res: Result, where: str) -> Shown | None:
    """The occupancy figure of a run, where it matters (:func:`_occupancy_matters`):
    rings as a share of their capacity, device queues in requests."""
    if not len(res.occupancy) or not _occupancy_matters(res.resources):
        return None
    ring = res.scenario.parent.vmbus.ring_size
    return Shown(
        f"Ring and device-queue occupancy over time{where}",
        f"How full each VMBus ring is (share of its {units.format_size(ring)}) and how many "
        "requests wait for each device, averaged per interval over the replications. A "
        "ring or queue that keeps growing is a saturated resource.",
        _svg(plots.occupancy(res.occupancy, res.scenario.run.warmup, ring_bytes=ring)),
    )


def _occupancy_matters(resources: pd.DataFrame) -> bool:
    """Whether a ring's peak fill reached :data:`OCCUPANCY_SHOWN` of its capacity or a
    device queue held a request on average."""
    if resources.empty:
        return False
    for _, r in resources.iterrows():
        util, mean, peak = float(r["utilization"]), float(r["mean_level"]), float(r["max_level"])
        if r["kind"] == "ring":
            if mean > 0 and util > 0 and peak * util / mean >= OCCUPANCY_SHOWN:
                return True
        elif mean >= 1.0:
            return True
    return False


def _over_time_figure(res: Result) -> Shown:
    """Load, latency and device utilisation over simulated time (sim.report.overtime)."""
    ot = overtime.over_time(res)
    return Shown(
        "Load over simulated time",
        "Arrivals per second, latency (median and p99, log scale) and each device's "
        "utilisation per hour of the run, all replications pooled; the busiest hour is "
        f"shaded. {ot.sentence()}",
        _svg(overtime.figure(ot)),
    )


def _result_figures(res: Result, label: str) -> list[Shown]:
    on = f" ({label})" if label else ""
    kept = str(res.meta.get("requests_kept", "all"))  # run.requests: all, sample N, none
    figs = []
    if kept != "none":  # no requests kept: no distribution to draw (the summary has it)
        of = f" Drawn from {kept} completed requests per stream." if kept != "all" else ""
        figs.append(
            Shown(
                f"Latency distribution{on}",
                "Share of requests (y) finished within a latency (x, log scale), one line "
                "per child. A line further left is faster; the top of the curve is the "
                f"tail.{of}",
                _svg(plots.latency_cdf(res.requests)),
            )
        )
    figs += [
        Shown(
            f"Where the mean latency goes{on}",
            "Each bar is a child's mean latency split into the places its time went: the "
            "child's own CPU and scheduling, the VMBus ring and the parent's CPU (routed "
            "only), the IOMMU, the device, interrupt delivery.",
            _svg(plots.latency_breakdown(res.summary)),
        ),
        Shown(
            f"CPU time by partition{on}",
            "CPU time used in the measurement window, by partition and by what it was "
            "spent on (the host's idle time is left out; the resources table gives "
            "each partition's utilisation).",
            _svg(plots.cpu_breakdown(res.cpu, include_idle=False)),
        ),
    ]
    shown = _occupancy_figure(res, on)
    if shown:
        figs.append(shown)
    if len(res.faults):
        figs.append(_faults_figure(res, on))
    return figs


def _faults_question(scn: Scenario) -> str:
    """The scenario's faults in words, as a question."""
    said = []
    for f in scn.faults:
        what = f.kind.replace("_", " ")
        target = "" if f.target == "parent" else f" of {f.target}"
        lasting = f" for {units.format_time(f.duration)}" if f.duration is not None else ""
        said.append(f"a {what}{target} at {units.format_time(f.at)}{lasting}")
    return (
        f"And with {', '.join(said)}: which children stall, for how long, what fails or "
        "is retried, and which carry on?"
    )


def _faults_figure(res: Result, on: str) -> Shown:
    """Latency against time around the scenario's faults (:mod:`sim.model.faults`)."""
    return Shown(
        f"Latency over time around the faults{on}",
        "Mean (top) and p99 (bottom) latency of the requests submitted in each interval, "
        "one line per child, with each fault's interval shaded. A routed child stalls "
        "while the parent is down and pays for it after (retries, resubmissions); a "
        "direct child's line should not move. A gap is an interval whose requests did "
        "not complete (lost, failed, or still in flight).",
        _svg(plots.latency_over_time(res.requests, res.faults, end_us=res.scenario.run.duration)),
    )


def _compare_page(directory: Path) -> Page:
    cmp_: Comparison = load_comparison(directory)
    base = cmp_.meta["base"]
    t = cmp_.table
    columns = ["child", "I/O path", "throughput", "mean latency", "p99 latency",
               f"mean vs {base}", f"p99 vs {base}"]  # fmt: skip
    rows = []
    for (part, path), g in t.groupby(["partition", "path"], sort=False):
        m = g.set_index("metric")
        cells: list[Any] = [str(part), str(path)]
        for metric, fmt in (("throughput_rps", _rate), ("mean_us", _us), ("p99_us", _us)):
            r = m.loc[metric]
            cells.append(_ci(r["value"], r["ci_low"], r["ci_high"], fmt))
        for metric in ("mean_us", "p99_us"):
            r = m.loc[metric]
            if path == base:
                cells.append("base")
            else:
                cells.append(
                    _ci(
                        r[f"ratio_to_{base}"],
                        r[f"ratio_ci_low_to_{base}"],
                        r[f"ratio_ci_high_to_{base}"],
                        _ratio,
                    )
                )
        rows.append(cells)
    headline = Table(
        columns,
        rows,
        "Every path ran with the same random numbers (common random numbers), so the "
        "ratios are paired by replication: their intervals are those of the ratio itself.",
    )
    requests = pd.concat([r.requests for r in cmp_.results.values()], ignore_index=True)
    summary = pd.concat([r.summary for r in cmp_.results.values()], ignore_index=True)
    cpu = pd.concat(
        [r.cpu.assign(partition=r.cpu["partition"] + f" ({p})") for p, r in cmp_.results.items()],
        ignore_index=True,
    )
    figures = [
        Shown(
            "Latency distribution per path",
            "Share of requests finished within a latency (log scale): one line per child "
            "and path. The gap between a child's lines is what the path costs or saves.",
            _svg(plots.latency_cdf(requests)),
        ),
        Shown(
            "Where the mean latency goes, per path",
            "Mean latency split into components, for each child on each path side by side.",
            _svg(plots.latency_breakdown(summary)),
        ),
        Shown(
            "CPU time by partition, per path",
            "CPU time in the window by partition and category; routed I/O shows up as the "
            "parent's VSP and driver time.",
            _svg(plots.cpu_breakdown(cpu, include_idle=False)),
        ),
    ]
    resources_rows: list[list[str]] = []
    warnings: list[str] = []
    for p, res in cmp_.results.items():
        resources_rows += _resources(res, p)
        warnings += _warnings(res.summary, f" ({p})")
        shown = _occupancy_figure(res, f" ({p})")
        if shown and (res.occupancy["kind"] == "ring").any():
            figures.append(shown)
        if len(res.faults):
            figures.append(_faults_figure(res, f" ({p})"))
    paths = ", ".join(cmp_.paths)
    return Page(
        title=f"{cmp_.scenario.name}: {paths} compared",
        kind="comparison",
        question=f"How does each child fare if all its I/O takes the {paths} path, on the "
        "same host and with the same workload?",
        scenario=cmp_.scenario,
        headline=headline,
        figures=figures,
        warnings=warnings,
        resources=Table(["path", *_RESOURCE_COLUMNS], resources_rows),
        reproduce=_reproduce(cmp_.meta, directory, cmp_.scenario),
        analytic=_analytic(cmp_.results),
        answer=answer.comparison_answer(cmp_.table, cmp_.paths, warnings),
    )


def _sweep_page(directory: Path) -> Page:
    try:
        frame = load_study(directory)
    except FileNotFoundError as exc:
        raise ReportError(str(exc)) from None
    info = json.loads((directory / "study.json").read_text(encoding="utf-8"))
    if frame.empty:
        raise ReportError(f"{directory}: the study has no finished point yet")
    spec = info.get("sweep", {})
    grid = study_grid(frame)
    keys = [g.key for g in grid]
    points = sorted(set(frame["point_index"]))
    first = directory / "points" / f"{_key_of(info, points[0])}.yaml"
    from sim.scenario.source import load

    scn = load(first, read_traces=False)
    columns = [*(g.column for g in grid), "child", "I/O path", "throughput",
               "mean latency", "p99 latency"]  # fmt: skip
    rows = []
    for (_, part, path), g in frame.groupby(["point_index", "partition", "io_path"], sort=True):
        cells: list[Any] = [c.show(g[c.column].iloc[0]) for c in grid] + [str(part), str(path)]
        for metric, fmt in (("throughput_rps", _rate), ("mean_us", _us), ("p99_us", _us)):
            cells.append(_ci(*t_interval(g[metric].to_numpy()), fmt))
        rows.append(cells)
    headline = Table(
        columns,
        rows,
        "One row per point of the sweep and child, with the half-width of the 95 % "
        "confidence interval over replications under each value.",
    )
    figures = []
    for c in grid:
        sub = _hold_others(frame, grid, c)
        numeric = pd.api.types.is_numeric_dtype(frame[c.column])
        unit = " (requests/s)" if numeric and c.column.endswith("rate") else ""
        for metric, what in (("p99_us", "p99 latency"), ("throughput_rps", "throughput")):
            figures.append(
                Shown(
                    f"{what.capitalize()} against {c.column}",
                    f"{what.capitalize()} at each value of {c.key}, one line per child and "
                    "path, with the 95 % confidence band over replications"
                    + ("; other swept values held at their first value." if len(grid) > 1 else "."),
                    _svg(plots.metric_vs_load(sub, c.column, metric, xlabel=c.column + unit)),
                )
            )
    warnings = []
    if "warnings" in frame.columns:
        for (pi, part), g in frame.groupby(["point_index", "partition"], sort=True):
            text = "; ".join(sorted({str(w) for w in g["warnings"] if isinstance(w, str) and w}))
            if text:
                where = ", ".join(f"{c.column}={c.show(g[c.column].iloc[0])}" for c in grid)
                warnings.append(f"point {pi} ({where}), {part}: {text}")
    last = info.get("last_run", {})
    if last.get("failed"):
        warnings.append(
            f"{len(last['failed'])} point(s) failed and are not shown: see {directory / 'failed'}"
        )
    reproduce = {
        "command": info.get("command") or f"hvsim sweep SWEEP_FILE --out {directory}",
        "seed": spec.get("seed"),
        "replications": spec.get("replications"),
        "wall": f"{last['wall_s']:.1f} s (last run)" if "wall_s" in last else "—",
        "versions": {"hvsim": info.get("hvsim", "?"), "python": info.get("python", "?")},
        "directory": str(directory),
    }
    return Page(
        title=f"{info.get('study', directory.name)}: sweep report",
        kind="sweep",
        question="How do latency and throughput change as "
        + " and ".join(k.replace(", ", " and ") for k in keys)
        + (" varies?" if len(keys) == 1 and "," not in keys[0] else " vary?"),
        scenario=scn,
        headline=headline,
        figures=figures,
        warnings=warnings,
        resources=Table([], []),
        reproduce=reproduce,
        answer=answer.sweep_answer(frame, grid),
    )


def _key_of(info: dict[str, Any], index: int) -> str:
    for p in info["points"]:
        if p["index"] == index:
            return str(p["key"])
    raise ReportError(f"point {index} is not in study.json")


def _hold_others(frame: pd.DataFrame, grid: Sequence[GridColumn], c: GridColumn) -> pd.DataFrame:
    """The rows of ``frame`` where every swept parameter but ``c`` is at its first value."""
    sub = frame
    for other in grid:
        if other.column != c.column:
            sub = sub[sub[other.column] == sub[other.column].iloc[0]]
    return sub


_CAPACITY_COLUMNS = ["I/O path", "capacity", "bracket", "offered at capacity",
                     "at capacity (binding clause)", "binding resource",
                     "analytic saturation"]  # fmt: skip


def _capacity_rows(cap: Any) -> list[list[Any]]:
    """Per path: the capacity, its bracket, the offered load there, the binding clause's
    value with its interval and child, the binding resource, the analytic saturation."""

    def x(v: float) -> str:
        if not math.isfinite(v):
            return "—"
        return f"{v:.3g}×" if cap.vary == "load" else f"{int(v)}"

    rows: list[list[Any]] = []
    for _, r in cap.table.iterrows():
        sat = Num(x(float(r["analytic_saturation"])), str(r["analytic_bottleneck"]))
        if not math.isfinite(float(r["capacity"])):
            note = str(r.get("note") or "no load simulated met the SLO")
            rows.append([str(r["path"]), "—", f"below {x(float(r['capacity_high']))}", "—",
                         note, "—", sat])  # fmt: skip
            continue
        clause = next(c for c in cap.slo if c.text == r["binding_clause"])
        half = (float(r["ci_high"]) - float(r["ci_low"])) / 2
        rows.append([
            str(r["path"]),
            x(float(r["capacity"])),
            f"{x(float(r['capacity']))} – {x(float(r['capacity_high']))}",
            _rate(float(r["offered_rps"])),
            Num(f"{clause.text}: {clause.show(float(r['value']))}",
                f"± {clause.show(half)} ({r['binding_child']})"),
            Num(str(r["binding_resource"]), str(r["binding_detail"])),
            sat,
        ])  # fmt: skip
    return rows


def _capacity_page(directory: Path) -> Page:
    from sim.experiment.capacity import load_capacity

    cap = load_capacity(directory)
    m = cap.meta
    scn = cap.scenario
    children = ", ".join(m.get("children", []))
    slo = " and ".join(m["slo"])
    if cap.vary == "load":
        what = "the largest factor on every open-loop stream's rate"
    else:
        what = f"the largest number of {children} children"
    paths = ", ".join(cap.paths)
    question = (
        f"On this host, what is {what} at which every child the SLO is about ({children}) "
        f"still meets {slo}, with 95 % confidence, on each I/O path ({paths})?"
    )
    headline = Table(
        _CAPACITY_COLUMNS,
        _capacity_rows(cap),
        "The capacity is the largest load simulated whose 95 % bounds meet the SLO; the "
        "bracket ends at the smallest that did not (or at the analytic saturation, which is "
        "never simulated): the true capacity lies between them. At capacity: the binding "
        "clause's value with the half-width of its 95 % interval and the child it binds on; "
        "the binding resource is the busiest resource the SLO's children use there, with "
        "its utilisation; the analytic saturation is the load at which the first station "
        f"saturates, and which. {m.get('points', '?')} points, {m.get('replications')} "
        "replications each, the same seed at every point (common random numbers).",
    )
    figures = []
    if len(cap.replications):
        for metric in cap.metrics:
            clause = next(c for c in cap.slo if c.metric == metric)
            figures.append(
                Shown(
                    f"{clause.text}: {metric.removesuffix('_us')} against the {cap.axis}",
                    f"The SLO's metric at every {cap.axis} simulated, one line per path and "
                    "child with its 95 % band; the horizontal line is the SLO, each dotted "
                    "vertical line a path's capacity.",
                    _svg(plots.capacity_figure(cap, metric)),
                )
            )
    warnings = [f"{r['path']}: {r['note']}" for _, r in cap.table.iterrows() if r.get("note")]
    warnings += capacity_warnings(cap)
    return Page(
        title=f"{scn.name}: capacity under {slo}",
        kind="capacity",
        question=question,
        scenario=scn,
        headline=headline,
        figures=figures,
        warnings=warnings,
        resources=Table([], []),
        reproduce=_reproduce(m, directory, scn),
        answer=answer.capacity_answer(cap),
    )


def _confine(d: Path) -> None:
    """Refuse a directory that would make the report read outside it: a link that leads
    out, or a comparison naming a path outside it."""
    said = "hvsim report reads only files inside it"
    root = d.resolve()
    for here, dirnames, filenames in os.walk(d):
        for name in (*dirnames, *filenames):
            p = Path(here) / name
            if p.is_symlink():
                t = p.resolve()
                if t != root and root not in t.parents:
                    raise ReportError(
                        f"{d}: {p.relative_to(d)} links to {t}, outside the directory; {said}"
                    )
    meta = d / "meta.json"
    if (d / "comparison.csv").is_file() and meta.is_file():
        try:
            paths = json.loads(meta.read_text(encoding="utf-8")).get("paths")
        except (OSError, ValueError, AttributeError):
            return  # unreadable: page() says so
        for p in paths if isinstance(paths, list) else []:
            if not isinstance(p, str) or "/" in p or not inside(d, p):
                raise ReportError(
                    f"{d}: meta.json names the path {p!r}, not a directory inside it; {said}"
                )


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------
_KINDS = {
    "run": "run",
    "compare": "comparison",
    "sweep": "sweep",
    "capacity": "capacity",
    "availability": "availability",
}


def _availability_page(directory: Path) -> Page:
    """An ``hvsim availability`` directory: its section is :mod:`sim.report.availability`."""
    from sim.report.availability import section

    sec = section(directory)
    av = sec["availability"]
    return Page(
        title=sec["title"],
        kind="availability",
        question=sec["question"],
        scenario=av.scenario,
        headline=Table(sec["headline"][0], sec["headline"][1], sec["note"]),
        figures=[],
        warnings=[],
        resources=Table([], []),
        reproduce=_reproduce(av.meta, directory, av.scenario),
        extra=[(title, Table(cols, rows)) for title, cols, rows in sec["extra"]],
    )


def kind(directory: str | Path) -> str:
    """``run``, ``comparison``, ``sweep`` or ``capacity``: what the manifest of
    ``directory`` says, or else what its files show."""
    d = Path(directory)
    if not d.is_dir():
        raise ReportError(f"{d}: no such directory")
    manifest = read_manifest(d)
    if manifest is not None:
        return _KINDS[manifest.kind]
    if (d / "comparison.csv").is_file():
        return "comparison"
    if (d / "study.json").is_file():
        return "sweep"
    if (d / "capacity.csv").is_file() and (d / "meta.json").is_file():
        return "capacity"
    if (d / "summary.csv").is_file() and (d / "meta.json").is_file():
        return "run"
    raise ReportError(
        f"{d}: not an hvsim result (no {MANIFEST}, summary.csv, comparison.csv, "
        "capacity.csv or study.json)"
    )


def page(directory: str | Path) -> Page:
    """What the report of ``directory`` shows, before rendering."""
    d = Path(directory)
    builders = {
        "run": _run_page,
        "comparison": _compare_page,
        "sweep": _sweep_page,
        "capacity": _capacity_page,
        "availability": _availability_page,
    }
    try:
        what = kind(d)
        _confine(d)
        return builders[what](d)
    except ReportError:
        raise
    except (FileNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ReportError(f"{d}: incomplete or unreadable result ({exc})") from None


def render(directory: str | Path) -> str:
    """The HTML text of the report of ``directory``."""
    pg = page(directory)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(
        resources.files("sim.report").joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    prov = provenance(pg.scenario, pg.reproduce.get("set_in_scenario"))
    return template.render(
        page=pg,
        description=describe(pg.scenario, pg.reproduce["replications"], pg.reproduce["seed"]),
        provenance=prov.to_dict("records"),
        assumed=int(prov["assumed"].sum()),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        hvsim=hvsim_version(),
        nan=np.nan,
    )


def _is_report(path: Path) -> bool:
    """Whether ``path`` is a report hvsim wrote (its generator tag says so)."""
    try:
        with open(path, "rb") as f:
            return b'<meta name="generator" content="hvsim' in f.read(1024)
    except OSError:
        return False


def build(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``directory`` to ``out`` (default ``DIR/report.html``, listed
    in the directory's manifest) atomically; returns its path. An existing file is
    replaced only if hvsim wrote it."""
    text = render(directory).encode("utf-8")
    d = Path(directory)
    target = Path(out) if out is not None else d / "report.html"
    if target.parent.resolve() == d.resolve():
        add_file(d, target.name, text, replaceable=_is_report)
        return target
    if os.path.lexists(target) and (target.is_symlink() or not _is_report(target)):
        raise ReportError(f"{target} exists and is not a report hvsim wrote; not replacing it")
    write_file(target, text)
    return target
