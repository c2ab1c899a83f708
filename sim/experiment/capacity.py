"""SLO-driven capacity search: the largest load, or the most children, that meets an SLO.

What it answers
    Per I/O path (every I/O child switched to it, as :func:`sim.experiment.compare.on_path` does),
    the largest **load factor** (``vary="load"``: every child's open-loop stream rates
    multiplied by it) or the largest **number of identical children** (``vary="children"``:
    the ``count`` of one child entry) at which every child the SLO is about meets every
    clause of the SLO, with confidence.

    Closed-loop streams do not scale with the load factor: their load is set by their
    ``outstanding`` users and think time, not by a rate, so they stay as they are
    (background that competes with the scaled load); to scale them, vary the children, or
    sweep ``outstanding``.

The SLO
    Clauses ``METRIC OP VALUE`` joined by ``and``: ``p99<=500us``, ``mean<=100us``,
    ``p999<=2ms``, ``throughput>=20Gbps`` (or a request rate, ``throughput>=20k/s``).
    Latency metrics (``mean``, ``p50``, ``p90``, ``p99``, ``p999``) take ``<=`` and a time
    with its unit; ``throughput`` takes ``>=`` and a bit rate or a request rate. Parsed by
    a small grammar (:func:`parse_slo`), never evaluated; an error names the clause and
    what is wrong, in one line. Every clause holds for each child the SLO is about
    (default: every child with I/O streams; each instance of a child with ``count``);
    ``throughput`` is a child's delivered throughput.

When a point meets it
    A point is simulated with ``R`` ≥ 2 replications (the same seed at every point and on
    every path: common random numbers, so a larger factor scales the very same arrival
    gaps and the metric grows with the load replication by replication). It meets the
    SLO only if, for every child and clause, the bound of the 95 % Student-t interval on
    the unfavourable side does: the upper bound for ``<=``, the lower bound for ``>=``;
    and if its summary warns of no saturation (a device or vCPU more than 95 % busy, a
    full ring, throughput below 95 % of the offered load, :func:`sim.results.diagnose.warnings`):
    there the estimates depend on the run's length, not only on the load.

The search
    Latency clauses fail as the load grows; ``throughput`` clauses fail as it shrinks
    (below what the child must deliver). The search finds the largest load meeting the
    latency clauses and the saturation rule; the throughput clauses are then checked
    there, where the delivered throughput is largest: if they fail there, no load meets
    the SLO.

    1. **Bracket by the analytic estimate** (:mod:`sim.analysis.analytic`): the factor (or count)
       at which the first station saturates from the work every request must do is an
       upper bracket: no larger load can be carried, so it is never simulated. For
       ``mean`` clauses the estimate's own crossing (the load at which its mean reaches
       the target) is the first point simulated, and the next ones sit just beyond it
       (±2 × the resolution), to bracket the answer in few points; otherwise the search
       starts at the scenario's own load (factor 1, or its count).
    2. **Halve down** from a first point that fails until one meets (or report that none
       does down to 1/1000 of it).
    3. **k-section by simulation** between the largest point known to meet and the
       smallest known to fail until they are within ``resolution`` (relative, for the
       factor; one child, for counts): each round simulates ``k`` points together
       (``per_round``, by default the workers; k = 1 is bisection), evenly inside the
       bracket, their replications spread over a process pool; without an analytic
       bracket (nothing saturates, up to 4096 children), the round's points double
       (×2, ×4, … ×2^k) until one fails. The first round adds k − 1 points between the
       first point and the analytic bracket, and each round of the halving down k − 1
       points above its own (while a point is left for halving down after them). After a
       round, the smallest load that failed is the upper
       end and the largest meeting below it the lower end (a point meeting above a
       failure is noise and left out). The result depends on k, never on the number of
       processes; a point runs without its requests table (``run.requests: none``, where
       that applies: the same summary).
    4. **Aimed rounds** (load factor): once a point meets, a round's k points are placed
       around the load at which the SLO is expected to fail (:func:`interpolated`) rather
       than evenly: between the bracket's ends (the smallest failing end being the
       analytic saturation, where the busiest resource is fully busy and every latency
       unbounded, until a point fails), the busiest resource's utilisation interpolated
       linearly to 95 % (the saturation rule) and each latency clause's 95 % upper bound,
       its reciprocal interpolated linearly (exact for M/M/1), to the target. Adjacent
       points lie closer than the resolution, so a round with points on both sides of the
       answer closes the bracket: around the aim when the upper end was simulated, at it
       and below when it is the analytic saturation (which counts only the work every
       request must do: the true one lies below, and the aim errs high). A round so placed
       that does not close the bracket is followed by an even k-section (a poor aim costs
       at most every other round). The aim only places points: each is judged by
       simulation as any other. Under ``under`` states it aims from the normal state's
       metrics (a miss then costs a round).

    The paths' searches run side by side (a thread each, feeding the one pool), so the
    pool keeps working while a path waits for the last replications of its round; each
    path's points, and so the result, are those of the paths searched one after another.

    The result is that bracket: ``capacity`` is the largest load simulated that met the
    SLO, ``capacity_high`` the smallest that did not (or the analytic saturation, or the
    search's point limit): the true capacity lies between them at the confidence of the
    per-point rule. The **binding resource** is the busiest resource at the capacity
    point (a vCPU of a child, the parent's vCPUs, a device, the host's LPs) among those
    the SLO's children use, from the simulated utilisations; the analytic bottleneck is
    given beside it.

Simplified
    The confidence is per point, child and clause (a one-sided 97.5 % bound each), not
    simultaneous over the points the search visits and the children it judges: with many
    children and clauses a point fails a little more often than 2.5 % by chance, which
    errs towards a smaller capacity. Bisection assumes the metric grows with the load: it
    does in expectation, and under common random numbers nearly replication by
    replication, but a noisy point can still send the bracket the wrong way by about the
    width of its interval. A point over the run's request budget (``run.request_budget``)
    is not simulated: the path's search stops there, with a note.

Sources
    Student-t intervals across independent replications and common random numbers (Law,
    *Simulation Modeling and Analysis*, ch. 9–11); the analytic bracket:
    :mod:`sim.analysis.analytic`.

Output (:meth:`Capacity.save`)
    ``capacity.csv`` (one row per path), ``points.csv`` (every point simulated, per
    child: its metrics with their intervals, whether it met), ``replications.csv`` (the
    samples behind them), ``capacity-METRIC.png`` (the SLO's metric against the load per
    path and child, with the SLO line and each path's capacity), ``meta.json``,
    ``scenario.resolved.yaml``, written through the result store
    (:mod:`sim.results.store`: its manifest, a user's files never replaced); read back by
    :func:`load_capacity`.

The module is callable: ``sim.experiment.capacity(scenario, "p99<=500us")`` is :func:`table` (the
capacity frame); :func:`search` returns the whole :class:`Capacity`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.analytic import estimate
from sim.experiment.compare import on_path
from sim.experiment.run import Spool, cores
from sim.experiment.slo import Clause, parse_slo
from sim.model.host import simulate
from sim.results.diagnose import SATURATED
from sim.results.result import Result
from sim.results.store import write_result, write_scenario_and_meta
from sim.results.tables import tabulate
from sim.scenario.columns import STANDARD_PERCENTILES, is_percentile_column
from sim.scenario.errors import ScenarioError
from sim.scenario.plan import plan
from sim.scenario.schema import Scenario
from sim.scenario.source import replace
from sim.scenario.workload import IO_PATHS

VARY = ("load", "children")
RESOLUTION = 0.05
"""Default relative resolution of a load factor."""
MAX_POINTS = 16
"""Default most points simulated per path."""
FLOOR = 1e-3
"""Smallest share of the first point the search halves down to."""


# ---------------------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------------------
@dataclass
class Point:
    """One simulated point of a search."""

    path: str
    x: float  # load factor or child count
    meets: bool  # latency clauses and no saturation (the bisection's test)
    lower_ok: bool  # throughput clauses
    reason: str  # why it does not meet (the first clause that fails), or ""
    rows: pd.DataFrame  # per child: the clauses' metrics with their intervals
    result: Result
    wall_s: float
    failed_under: str = ""  # the degraded state in which it failed ("" if none did)


@dataclass
class Capacity:
    """A capacity search: per path, its result (``table``), every point it simulated
    (``points``, per child) and the samples behind them (``replications``)."""

    scenario: Scenario
    slo: list[Clause]
    vary: str
    paths: list[str]
    table: pd.DataFrame
    points: pd.DataFrame
    replications: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def axis(self) -> str:
        return "load factor" if self.vary == "load" else "children"

    @property
    def metrics(self) -> list[str]:
        """The SLO's metrics, each once, in the order of its clauses."""
        return list(dict.fromkeys(c.metric for c in self.slo))

    def save(
        self, out: str | Path, files: Mapping[str, bytes] | None = None, force: bool = False
    ) -> Path:
        """Write the search's directory through the result store (module docstring), with
        ``files`` (name → content: the figures :func:`sim.report.plots.capacity_figure`
        draws) beside the tables; ``force`` writes beside files hvsim did not write.
        Returns its path."""

        def write(tmp: Path) -> None:
            self.table.to_csv(tmp / "capacity.csv", index=False)
            self.points.to_csv(tmp / "points.csv", index=False)
            self.replications.to_csv(tmp / "replications.csv", index=False)
            for name, content in (files or {}).items():
                (tmp / name).write_bytes(content)
            write_scenario_and_meta(tmp, self.scenario, self.meta, "capacity")

        write_result(out, "capacity", write, force=force)
        return Path(out)


def load_capacity(where: str | Path) -> Capacity:
    """Read back a directory written by :meth:`Capacity.save`."""
    from sim.scenario.source import load

    where = Path(where)
    meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))

    def frame(name: str) -> pd.DataFrame:
        try:
            return pd.read_csv(where / name)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()

    table = frame("capacity.csv")
    for col in ("note", "binding_clause", "binding_child", "binding_resource",
                "binding_detail", "analytic_bottleneck"):  # fmt: skip
        if col in table.columns:  # empty text reads back as NaN
            table[col] = table[col].astype(object).where(table[col].notna(), "")
    return Capacity(
        scenario=load(where / "scenario.resolved.yaml", read_traces=False),
        slo=parse_slo(" and ".join(meta["slo"])),
        vary=str(meta["vary"]),
        paths=list(meta["paths"]),
        table=table,
        points=frame("points.csv"),
        replications=frame("replications.csv"),
        meta=meta,
    )


# ---------------------------------------------------------------------------------------
# Setting the load
# ---------------------------------------------------------------------------------------
def scaled(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with every open-loop stream's rate multiplied by ``factor`` (a
    replayed trace's ``scale``)."""
    overrides: dict[str, Any] = {}
    for i, c in enumerate(scenario.children):
        for j, s in enumerate(c.streams):
            if s.rate is not None:
                overrides[f"children[{i}].streams[{j}].rate"] = s.rate * factor
            elif s.trace is not None:
                overrides[f"children[{i}].streams[{j}].trace.scale"] = s.trace.scale * factor
    return replace(scenario, overrides, source=f"load factor {factor:g}") if overrides else scenario


def with_count(scenario: Scenario, child: str, count: int) -> Scenario:
    """``scenario`` with ``count`` instances of the child entry ``child``."""
    i = next(k for k, c in enumerate(scenario.children) if c.name == child)
    return replace(scenario, {f"children[{i}].count": int(count)}, source=f"{count} × {child}")


def _at(base: Scenario, vary: str, child: str, x: float) -> Scenario:
    return scaled(base, x) if vary == "load" else with_count(base, child, int(x))


def _instances(scn: Scenario, entries: Sequence[str]) -> list[str]:
    return [name for name, spec in scn.instances() if spec.name in entries]


def lean(scn: Scenario) -> Scenario:
    """``scn`` keeping no requests table (``run.requests: none``: the same summary, which
    is all a point is judged on), where that mode applies; else ``scn``."""
    if scn.run.requests != "all":
        return scn
    try:
        return replace(scn, {"run.requests": "none"}, source="capacity point")
    except ScenarioError:  # faults, mser5, a command timer: the whole table is needed
        return scn


def _requests(scn: Scenario) -> float:
    """The open-loop requests ``scn`` offers per second (closed-loop streams count 0): a
    replication's relative cost."""
    return sum(s.offered(scn.run.duration) or 0.0 for _, c in scn.instances() for s in c.streams)


class Points:
    """Simulates points: each point's replications, in a process pool of ``workers``
    shared by every round and path of a search (in this process for 1). A point's result is
    :func:`~sim.experiment.run.run`'s for the same scenario, replications and seed, whatever
    the workers; its ``wall_s`` is the time its replications and tables took."""

    def __init__(self, workers: int) -> None:
        n = min(workers, cores())
        self.pool = ProcessPoolExecutor(max_workers=n) if n > 1 else None
        self.spool = Spool() if self.pool is not None else None  # the records come back by it

    def results(
        self, scns: Sequence[Scenario], replications: int, seed: int
    ) -> list[tuple[Result, float]]:
        """Each scenario's result and the seconds its work took."""
        tasks = [(scn, r) for scn in scns for r in range(replications)]
        if self.pool is None:
            runs = [simulate(scn, r, seed) for scn, r in tasks]
        else:
            # the most requests first, so that the round's last wave is its shortest tasks
            # (longest processing time first); the results go back in the tasks' order
            order = sorted(range(len(tasks)), key=lambda i: -_requests(tasks[i][0]))
            spool = self.spool
            assert spool is not None
            futures = {i: spool.submit(self.pool, *tasks[i], seed) for i in order}
            runs = [spool.receive(futures[i].result()) for i in range(len(tasks))]
        out = []
        for i, scn in enumerate(scns):
            mine = runs[i * replications : (i + 1) * replications]
            t0 = time.perf_counter()
            sim_s = sum(r.wall_s for r in mine)
            res = tabulate(scn, mine, seed, sim_s)
            out.append((res, sim_s + time.perf_counter() - t0))
        return out

    def close(self) -> None:
        """Stop the pool's processes and remove their spool."""
        if self.pool is not None:
            self.pool.shutdown()
        if self.spool is not None:
            self.spool.close()

    def cancel(self) -> None:
        """Drop the replications not started and take no more (an interrupted search):
        a round waiting for them raises ``CancelledError``, a new one ``RuntimeError``."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------
# Evaluating a point
# ---------------------------------------------------------------------------------------
def evaluate(
    res: Result, slo: Sequence[Clause], entries: Sequence[str]
) -> tuple[bool, bool, str, pd.DataFrame]:
    """Whether a simulated point meets the SLO: ``(meets, lower_ok, reason, rows)`` where
    ``meets`` is the latency clauses and the saturation rule, ``lower_ok`` the throughput
    clauses, ``reason`` the first failure, ``rows`` per child its metrics and intervals."""
    names = set(_instances(res.scenario, entries))
    summary = res.summary[res.summary["partition"].isin(names)]
    if "requests" in summary.columns:  # a revoked VF's empty row beside its routed one
        rows_of = summary.groupby("partition")["partition"].transform("size")
        summary = summary[(summary["requests"] > 0) | (rows_of == 1)]
    if summary.empty:
        raise ValueError("none of the SLO's children has I/O results")
    meets, lower_ok, reasons, rows = True, True, [], []
    duration = res.scenario.run.duration
    offered = {
        n: sum(s.offered(duration) or 0.0 for s in c.streams) for n, c in res.scenario.instances()
    }
    for _, r in summary.iterrows():
        part = str(r["partition"])
        row: dict[str, Any] = {
            "partition": part,
            "io_path": r["io_path"],
            "offered_rps": offered.get(part, 0.0),
            "throughput_rps": r["throughput_rps"],
            "analytic_mean_us": r.get("analytic_mean_us", math.nan),
            "analytic_utilization": r.get("analytic_utilization", math.nan),
            "warnings": r.get("warnings", ""),
        }
        ok_child = True
        for c in slo:
            est = float(r[c.metric])
            lo = float(r.get(f"{c.metric}_ci_low", math.nan))
            hi = float(r.get(f"{c.metric}_ci_high", math.nan))
            row[c.metric], row[f"{c.metric}_ci_low"], row[f"{c.metric}_ci_high"] = est, lo, hi
            if not c.met(lo, hi):
                ok_child = False
                bound = hi if c.upper else lo
                reasons.append(
                    f"{part}: {c.text} not met ({c.metric.removesuffix('_us')} "
                    f"{c.show(est)}, 95 % bound {c.show(bound)})"
                )
                if c.upper:
                    meets = False
                else:
                    lower_ok = False
        saturated = [w.strip() for w in str(row["warnings"]).split(";") if "saturated" in w]
        if saturated:
            ok_child = meets = False
            reasons.append(f"{part}: {saturated[0]}")
        row["meets"] = ok_child
        rows.append(row)
    return meets, lower_ok, "; ".join(reasons), pd.DataFrame(rows)


def binding_resource(res: Result, entries: Sequence[str]) -> tuple[str, float, str]:
    """The busiest resource the SLO's children use at a simulated point: ``(resource,
    utilisation, detail)``: their vCPUs, the parent's vCPUs when one of them goes through
    the parent, their devices, the host's LPs."""
    scn = res.scenario
    names = set(_instances(scn, entries))
    rows = res.summary[res.summary["partition"].isin(names)]
    parented = bool(rows["io_path"].isin(["routed", "emulated"]).any())
    devices = {spec.device for n, spec in scn.instances() if n in names and spec.device}
    window = scn.run.duration - scn.run.warmup
    cpu = res.cpu
    found: list[tuple[float, str, str]] = []
    busy = cpu[cpu["category"] != "idle"].groupby(["partition", "vcpu"], as_index=False)
    for r in busy["busy_us"].sum().itertuples():
        part, vcpu, u = str(r.partition), str(r.vcpu), float(r.busy_us) / window
        if part in names:
            found.append((u, f"vCPUs of {part}", vcpu))
        elif part == "parent" and parented:
            found.append((u, "parent vCPUs", vcpu))
    for _, r in res.resources.iterrows():
        if r["kind"] != "ring" and r["resource"] in devices:
            found.append((float(r["utilization"]), f"device {r['resource']}", str(r["resource"])))
    idle = cpu[cpu["category"] == "idle"]["utilization"]
    if len(idle):
        found.append((1.0 - float(idle.iloc[0]), "host LPs", f"{scn.host.cores} LPs"))
    if not found:
        return "", math.nan, ""
    u, resource, detail = max(found)
    return resource, u, f"{detail} {u:.0%} busy"


# ---------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------
def count_limits(base: Scenario, child: str) -> tuple[int, str, int, str]:
    """How many instances of ``child`` the host can hold before a limit that is not a
    load: ``(most, what, vf_at, vf_detail)``. ``most``: the licence or edition limit
    (``host.max_children``, ``host.edition``) less the other children's instances (4096
    without one), ``what`` its field; ``vf_at``: the smallest count at which a direct
    child of the scenario falls back to routed for want of a VF (0 if none does up to
    ``most``), ``vf_detail`` why."""
    others = sum(c.count for c in base.children if c.name != child)
    limit = base.host.child_limit
    most = 4096 - others if limit is None else limit - others
    what = base.host.child_limit_source if limit is not None else ""

    def fallbacks(k: int) -> tuple[int, str]:
        kids = [c.model_copy(update={"count": k}) if c.name == child else c for c in base.children]
        p = plan(base.model_copy(update={"children": kids}))  # the plan only: not validated
        why = next((q.fallback for q in p.children if q.fallback), "")
        return p.fallbacks, why

    if most < 1 or fallbacks(1)[0] or not fallbacks(most)[0]:
        n, why = fallbacks(1) if most >= 1 else (0, "")
        return most, what, (1 if n else 0), why
    lo, hi = 1, most  # lo: no fallback; hi: one
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fallbacks(mid)[0] else (mid, hi)
    return most, what, hi, fallbacks(hi)[1]


def _analytic_limit(
    base: Scenario, vary: str, child: str, start: float, most: int = 4096
) -> tuple[float, str]:
    """The smallest load (factor, or count up to ``most``) at which a station saturates
    from mandatory work, and that station's resource: the upper bracket."""
    if vary == "load":
        est = estimate(base)
        return est.saturation_factor, est.resource
    n = min(int(start), most)

    def saturated(k: int) -> tuple[bool, str]:
        e = estimate(with_count(base, child, k))
        return e.saturation_factor <= 1.0, e.resource

    sat, resource = saturated(n)
    if sat:
        return float(n), resource
    hi = n
    while True:  # doubling, then bisection: the count at which a station saturates
        lo, hi = hi, min(hi * 2, most)
        sat, resource = saturated(hi)
        if sat or hi == most:
            break
    if not sat:
        return math.inf, ""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s, r = saturated(mid)
        lo, hi, resource = (lo, mid, r) if s else (mid, hi, resource)
    return float(hi), resource


def _analytic_guess(
    base: Scenario,
    vary: str,
    child: str,
    slo: Sequence[Clause],
    entries: Sequence[str],
    start: float,
    limit: float,
) -> float:
    """For ``mean`` clauses: the largest load at which the analytic mean of every SLO
    child meets them (NaN without a mean clause, or when it meets none)."""
    means = [c for c in slo if c.metric == "mean_us"]
    if not means:
        return math.nan
    target = min(c.value for c in means)

    def ok(x: float) -> bool:
        est = estimate(_at(base, vary, child, x)).children
        rows = est[est["partition"].isin(_instances(_at(base, vary, child, x), entries))]
        return bool(len(rows)) and bool((rows["mean_us"] <= target).all())

    hi: float = limit if math.isfinite(limit) else start * 64
    lo: float = start
    if not ok(lo):
        lo = 1.0 if vary == "children" else start * FLOOR
        if lo >= start or not ok(lo):
            return math.nan
        hi = start
    if vary == "children":
        while hi - lo > 1:
            whole = float(math.floor((lo + hi) / 2))
            lo, hi = (whole, hi) if ok(whole) else (lo, whole)
        return float(lo)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        if hi - lo <= 1e-4 * lo:
            break
    return lo


def interpolated(
    low: Point, high: Point | None, high_x: float, slo: Sequence[Clause], entries: Sequence[str]
) -> float:
    """The load factor at which the SLO is expected to fail first inside the bracket
    between ``low``, a simulated point that meets it, and ``high_x`` (``high``, its
    simulated point, which failed; or None for the analytic saturation, where every latency
    is unbounded and the busiest resource fully busy); NaN if they give no basis. The
    smallest of: the factor at which the busiest resource (:func:`binding_resource`) would
    be more than 95 % busy (the saturation rule), its utilisation interpolated linearly
    between the two ends; and, per latency clause and child, the factor at which the
    clause's 95 % upper bound reaches the target, the reciprocal of the bound interpolated
    linearly between the two ends (:func:`crossing`). Interpolating rather than
    extrapolating from ``low`` alone matters: the work per request falls as the load grows
    (fewer wake-ups from halt, on ``scenarios/capacity.yaml`` the child's vCPUs are 63 %
    busy at factor 6.75 and 94 % at 11.4, not 100 %).

    An M/M/1 response time is exponential with rate μ − λ (Kleinrock, *Queueing Systems*
    vol. 1, 1975, ch. 3): the reciprocal of its mean and of every percentile,
    ``−ln(1 − q) / (μ − λ)``, falls linearly with the load to 0 at saturation, so there
    the interpolation is exact but for the points' noise; elsewhere it is an approximation
    that only places the next points, each still judged by simulation."""
    found = []
    u0 = binding_resource(low.result, entries)[1]
    u1 = 1.0 if high is None else binding_resource(high.result, entries)[1]
    if u0 < SATURATED < u1:
        found.append(low.x + (SATURATED - u0) / (u1 - u0) * (high_x - low.x))
    for c in slo:
        if not c.upper:
            continue
        col = f"{c.metric}_ci_high"
        rows = high.rows if high is not None else None
        above = {} if rows is None else dict(zip(rows["partition"], rows[col], strict=True))
        for part, bound in zip(low.rows["partition"], low.rows[col], strict=True):
            if high is not None and part not in above:
                continue
            bound_high = math.inf if high is None else float(above[part])
            found.append(crossing(low.x, float(bound), high_x, bound_high, c.value))
    inside = [v for v in found if low.x < v < high_x]
    return min(inside) if inside else math.nan


def crossing(x0: float, b0: float, x1: float, b1: float, target: float) -> float:
    """Where a latency bound ``b0`` at load ``x0`` (meeting ``target``) and ``b1`` at
    ``x1`` (above it; NaN or infinite: unbounded) reaches ``target``, its reciprocal
    interpolated linearly in the load (:func:`interpolated`); NaN if they do not straddle
    the target."""
    if not (0 < b0 <= target and x0 < x1):
        return math.nan
    y1 = 0.0 if not math.isfinite(b1) else 1.0 / b1
    if not math.isnan(b1) and b1 <= target:
        return math.nan
    y0, y = 1.0 / b0, 1.0 / target
    return x0 + (y0 - y) / (y0 - y1) * (x1 - x0)


def _search_path(
    base: Scenario,
    path: str,
    slo: Sequence[Clause],
    vary: str,
    child: str,
    entries: Sequence[str],
    replications: int,
    seed: int,
    resolution: float,
    max_points: int,
    progress: Callable[[str], None] | None,
    under: Sequence[str] = (),
    pool: Points | None = None,
    per_round: int = 1,
) -> tuple[dict[str, Any], list[Point]]:
    """One path's search (module docstring): its row of the table and its points;
    ``under``: degraded states (:func:`degraded`) in which the SLO must hold too;
    ``per_round`` points simulated together in each round, by ``pool``."""
    pool = pool if pool is not None else Points(1)
    t0 = time.perf_counter()
    start = (
        1.0 if vary == "load" else float(next(c.count for c in base.children if c.name == child))
    )
    most, most_what, vf_at, vf_why = (
        count_limits(base, child) if vary == "children" else (0, "", 0, "")
    )
    if vary == "children":
        start = min(start, float(most))
    limit, limit_resource = _analytic_limit(base, vary, child, start, max(most, 1))
    guess = _analytic_guess(base, vary, child, slo, entries, start, limit)
    points: dict[float, Point] = {}
    step = resolution if vary == "load" else 1.0

    def probe_all(xs: Sequence[float], scns: Sequence[Scenario]) -> list[Point]:
        """Simulate the points ``xs`` (scenarios ``scns``) together, their replications
        spread over the pool."""
        found = pool.results([lean(scn) for scn in scns], replications, seed)
        out = []
        for x, (res, wall) in zip(xs, found, strict=True):
            meets, lower_ok, reason, rows = evaluate(res, slo, entries)
            out.append(Point(path, x, meets, lower_ok, reason, rows, res, wall))
        for state in under:  # the SLO must hold in each degraded state, at the points meeting it
            held = [(pt, scn) for pt, scn in zip(out, scns, strict=True) if pt.meets]
            faulted = [degraded(scn, state) for _, scn in held]
            for (pt, _), (dres, dwall) in zip(
                held, pool.results(faulted, replications, seed), strict=True
            ):
                pt.wall_s += dwall
                ok, _, why, _ = evaluate(dres, slo, entries)
                if not ok:
                    pt.meets, pt.failed_under, pt.reason = False, state, f"under {state}: {why}"
        for pt in out:
            points[pt.x] = pt
            if progress is not None:
                what = "meets" if pt.meets else f"fails: {pt.reason}"
                progress(f"{path}: {_show(vary, pt.x)}: {what} ({pt.wall_s:.1f} s)")
        return out

    def close(a: float, b: float) -> bool:
        return b - a <= 1.0 if vary == "children" else b <= a * (1.0 + resolution)

    def snap(x: float) -> float:
        return float(math.floor(x)) if vary == "children" else x

    lo = math.nan  # the largest load known to meet
    hi, hi_from = limit, "analytic saturation"  # the smallest known to fail
    if vary == "children" and math.isfinite(hi):
        hi = float(hi)
    bound = ""  # a limit that is not a load: the licence, or the VFs
    if vary == "children" and most_what and most + 1 <= hi:
        hi, hi_from, bound = float(most + 1), most_what, "licence"
    if vary == "children" and vf_at and vf_at <= hi:
        hi, hi_from, bound = float(vf_at), f"VFs: {vf_why}", "VFs"
    bound_hi = hi if bound else math.nan
    if vary == "children" and hi <= 1:  # not even one child fits
        row0: dict[str, Any] = {
            "path": path, "vary": vary, "capacity": math.nan, "capacity_high": hi,
            "high_from": hi_from, "resolution": 1, "points": 0, "wall_s": 0.0,
            "binding_resource": bound, "fallbacks": 0,
            "note": f"no child fits: {hi_from}",
        }  # fmt: skip
        return row0, []
    first = guess if math.isfinite(guess) and guess < hi else start
    if first >= hi:  # the scenario's own load is beyond saturation
        first = snap(hi / 2) if vary == "load" else max(1.0, snap(hi - 1))

    def grid(a: float, b: float, m: int) -> list[float]:
        """``m`` points evenly inside (a, b), snapped, new ones only."""
        if not (math.isfinite(a) and math.isfinite(b)) or m < 1:
            return []
        xs = [snap(a + (b - a) * j / (m + 1)) for j in range(1, m + 1)]
        return [v for v in dict.fromkeys(xs) if a < v < b and v not in points]

    k = max(1, per_round)

    def guided(a: float, b: float) -> list[float]:
        """``k`` points at the load at which the SLO is expected to fail inside the bracket
        (a, b) (:func:`interpolated`), adjacent ones closer than the resolution, so that a
        round in which some meet and some fail closes the bracket: around it when ``b``
        was simulated; at it and below when ``b`` is the analytic saturation, which counts
        only the work every request must do, so that the true saturation, and the load
        at which latencies grow, lie below it and the aim errs high. Empty if the ends
        give no basis, and for counts."""
        if vary != "load" or a not in points or not math.isfinite(b):
            return []
        c = interpolated(points[a], points.get(b), b, slo, entries)
        if not math.isfinite(c):
            return []
        ratio = (1.0 + resolution) ** 0.98
        below = (k - 1) / 2 if b in points else k - 1  # steps from the lowest point to c
        c = min(max(c, a * ratio ** (1 + below)), b / ratio ** (k - below))
        xs = [c * ratio ** (j - below) for j in range(k)]
        return [v for v in xs if a < v < b and v not in points]

    def beyond(x: float) -> list[float]:
        """``x``'s round: k - 1 points above it, while a point stays for halving down."""
        return grid(x, hi, k - 1) if len(points) + k < max_points else []

    pending = [first, *beyond(first)]
    note = ""
    was_guided = False  # the last round's points were placed by interpolation
    while len(points) < max_points:
        batch = [v for v in dict.fromkeys(pending) if v not in points][: max_points - len(points)]
        if not batch:
            break
        stop, scns = "", {}
        for v in sorted(batch):  # e.g. a point over the run's request budget
            try:
                scns[v] = _at(base, vary, child, v)
            except ScenarioError as exc:
                stop = f"stopped before {_show(vary, v)}: {exc.message}"
                break
        batch = [v for v in batch if v in scns]
        pts = probe_all(batch, [scns[v] for v in batch]) if batch else []
        # the smallest load that failed bounds the bracket; the largest meeting below it
        # is its other end (one meeting above a failure is noise, left out)
        for pt in pts:
            if not pt.meets and pt.x < hi:
                hi, hi_from = pt.x, "simulation"
        met = [pt.x for pt in pts if pt.meets and pt.x < hi]
        if met and not max(met) <= lo:
            lo = max(met)
        if stop:
            note = stop
            break
        if math.isnan(lo):  # no point met yet: just below the guess, then halve down
            x = hi
            below = (
                snap(guess * (1 - 2 * step) if vary == "load" else guess - 1)
                if math.isfinite(guess)
                else math.nan
            )
            fresh = math.isfinite(below) and 0 < below < x and below not in points
            nxt = below if fresh else snap(x / 2)
            if nxt < max(first * FLOOR, 1.0 if vary == "children" else 0.0) or nxt in points:
                note = f"not met at any load simulated, down to {_show(vary, x)}"
                break
            pending = [nxt, *beyond(nxt)]
            continue
        if not math.isfinite(hi):  # no bracket above: double until a point fails
            pending = [snap(lo * 2**j) for j in range(1, k + 1)]
            continue
        if close(lo, hi):
            break
        # near the analytic guess first, then k-section of the bracket
        near = [
            snap(v)
            for v in (guess * (1 + 2 * step), guess * (1 - 2 * step))
            if math.isfinite(guess) and vary == "load"
        ]
        near += [guess + 1, guess - 1] if math.isfinite(guess) and vary == "children" else []
        inside = [v for v in near if lo < v < hi and v not in points]
        # a round placed by interpolation that did not close the bracket is followed by a
        # k-section: a poor interpolation costs at most every other round
        aimed = [] if inside or was_guided else guided(lo, hi)
        was_guided = bool(aimed)
        pending = inside[:k] or aimed or grid(lo, hi, k)
        if not pending:
            break
    else:
        note = f"stopped at the limit of {max_points} points"
        if not math.isnan(lo) and math.isfinite(hi) and not close(lo, hi):
            hi_from = "point limit: " + hi_from

    row: dict[str, Any] = {
        "path": path,
        "vary": vary,
        "capacity": lo,
        "capacity_high": hi,
        "high_from": hi_from,
        "resolution": resolution if vary == "load" else 1,
    }
    if not math.isnan(lo):
        at = points[lo]
        if not at.lower_ok:
            note = "throughput clause not met even at the largest load meeting the others"
            row["capacity"] = math.nan
        rows = at.rows
        row["offered_rps"] = float(rows["offered_rps"].sum())
        row["throughput_rps"] = float(rows["throughput_rps"].sum())
        worst = min(
            ((c.margin(float(r[c.metric])), c, r) for c in slo for _, r in rows.iterrows()),
            key=lambda t: t[0],
        )
        _, clause, r = worst
        row.update(
            binding_clause=clause.text,
            binding_child=r["partition"],
            value=float(r[clause.metric]),
            ci_low=float(r[f"{clause.metric}_ci_low"]),
            ci_high=float(r[f"{clause.metric}_ci_high"]),
        )
        resource, util, detail = binding_resource(at.result, entries)
        row.update(binding_resource=resource, binding_utilization=util, binding_detail=detail)
        moved = rows[rows["io_path"] != path] if path != "as-is" else rows.iloc[0:0]
        row["fallbacks"] = len(moved)
        if bound and hi == bound_hi and lo + 1 >= hi and not note:  # met up to the limit
            if bound == "VFs":
                n_back = plan(_at(base, vary, child, hi)).fallbacks  # within the limits
                row.update(binding_resource="VFs", binding_detail=vf_why, fallbacks_beyond=n_back)
                note = (
                    f"VFs bind: {vf_why}; at {int(hi)} children {n_back} would fall back "
                    "to routed (not counted)"
                )
            else:
                row.update(binding_resource="licence", binding_detail=most_what)
                note = f"the licence binds: {most_what}"
        if len(moved):
            note = (
                f"{len(moved)} of {len(rows)} children fell back to "
                f"{moved['io_path'].iloc[0]} (no free VF)" + (f"; {note}" if note else "")
            )
    if under:  # the failure that binds: the one the first point above the capacity failed in
        above = points.get(hi)
        row["binding_failure"] = above.failed_under if above is not None else ""
        if row["binding_failure"]:
            note = f"the SLO fails first under {row['binding_failure']}" + (
                f"; {note}" if note else ""
            )
    row.update(
        analytic_saturation=limit,
        analytic_bottleneck=limit_resource,
        analytic_guess=guess,
        points=len(points),
        wall_s=round(time.perf_counter() - t0, 3),
        note=note,
    )
    return row, sorted(points.values(), key=lambda p: p.x)


def degraded(scn: Scenario, state: str) -> Scenario:
    """``scn`` in a degraded state for the whole run: ``state`` is a fault
    kind with an optional target, ``KIND[:TARGET]`` (``parent_crash``, ``parent_hang``,
    ``vf_revoke[:CHILD]`` (default: the first child holding a VF), ``device_reset:DEVICE``,
    ``hv_driver_crash:DEVICE``, ``lp_offline:LP``, ``child_crash:CHILD``). ``ValueError``
    with one line if it cannot apply."""
    kind, _, target = state.partition(":")
    fault: dict[str, Any] = {
        "kind": kind,
        "at": "0us",  # from the start: the whole run, warm-up included, is in the state
        "duration": f"{scn.run.duration}us",
    }
    if kind == "vf_revoke" and not target:
        holders = [q.name for q in plan(scn).children if q.vf is not None]
        if not holders:
            raise ValueError(f"--under {state}: no child holds a VF here")
        target = holders[0]
    if target:
        fault["target"] = int(target) if kind == "lp_offline" and target.isdigit() else target
    try:
        return replace(
            scn, {"faults": [*scn.to_dict()["faults"], fault]}, source=f"--under {state}"
        )
    except ScenarioError as exc:
        raise ValueError(f"--under {state}: {exc.message}") from None


def _show(vary: str, x: float) -> str:
    return f"factor {x:.4g}" if vary == "load" else f"{int(x)} children"


def search(
    scenario: Scenario,
    slo: str | Sequence[Clause],
    vary: str = "load",
    paths: Sequence[str] | None = ("routed", "direct"),
    children: Sequence[str] | None = None,
    replications: int | None = None,
    seed: int | None = None,
    resolution: float = RESOLUTION,
    max_points: int = MAX_POINTS,
    progress: Callable[[str], None] | None = None,
    under: Sequence[str] = (),
    workers: int = 1,
    per_round: int | None = None,
) -> Capacity:
    """Search the capacity of ``scenario`` under ``slo`` on each of ``paths`` (None: the
    scenario's own paths, as given); ``children``: the child entries the SLO is about
    (default every child with I/O streams; with ``vary="children"`` exactly one, whose
    count varies). ``replications`` per point (at least 2: a point is judged on its
    interval; default the scenario's), ``resolution`` the relative resolution of a load
    factor; ``under``: degraded states (:func:`degraded`, e.g. ``vf_revoke``,
    ``parent_crash``) in which every point must meet the SLO too, the one that binds
    named in ``binding_failure``. ``ValueError`` (an :class:`SloError` for the SLO) for
    invalid arguments. Each round simulates ``per_round`` points (default ``workers``;
    k-section of the bracket, or aimed, module docstring), their replications in up to
    ``workers`` processes, the paths side by side when there are two or more: the result
    depends on ``per_round``, never on ``workers``; a path's ``wall_s`` is the time its
    search took, alongside the others' (the paths' times overlap)."""
    clauses, entries, child, path_list, reps = prepare(
        scenario, slo, vary, paths, children, replications, resolution, max_points
    )
    scenario = _with_percentiles(scenario, clauses)
    root = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    rows, points, reps_frames = [], [], []
    per = workers if per_round is None else per_round
    if per < 1:
        raise ValueError(f"points per round must be at least 1 (got {per})")
    bases = [scenario if p == "as-is" else on_path(scenario, p) for p in path_list]
    for base in bases:  # each degraded state applies on each path, before anything runs
        for state in under:
            degraded(base, state)
    lock = threading.Lock()

    def report(line: str) -> None:
        if progress is not None:
            with lock:
                progress(line)

    pool = Points(workers)

    def one(at: tuple[str, Scenario]) -> tuple[dict[str, Any], list[Point]]:
        p, base = at
        return _search_path(base, p, clauses, vary, child, entries, reps, root, resolution,
                            max_points, report if progress else None, under, pool, per)  # fmt: skip

    try:
        if pool.pool is not None and len(bases) > 1:
            found = _side_by_side(one, list(zip(path_list, bases, strict=True)), pool)
        else:
            found = [one(at) for at in zip(path_list, bases, strict=True)]
    finally:
        pool.close()
    for p, (row, pts) in zip(path_list, found, strict=True):
        rows.append(row)
        for k, pt in enumerate(pts):
            frame = pt.rows.assign(
                path=p,
                x=pt.x,
                point_meets=pt.meets and pt.lower_ok,
                reason=pt.reason,
                wall_s=round(pt.wall_s, 3),
            )
            points.append(frame)
            rep = pt.result.replications
            rep = rep[rep["partition"].isin(set(pt.rows["partition"]))]
            axis = "load factor" if vary == "load" else "children"
            # one line per child and searched path (a VF fallback stays on its path's line)
            reps_frames.append(rep.assign(**{axis: pt.x}, point_index=k, path=p, io_path=p))
    cap = _assemble(
        scenario,
        clauses,
        vary,
        path_list,
        entries,
        reps,
        root,
        resolution,
        max_points,
        rows,
        points,
        reps_frames,
        time.perf_counter() - t0,
    )
    cap.meta["under"] = list(under)
    cap.meta["points_per_round"] = per
    return cap


def _side_by_side(
    one: Callable[[tuple[str, Scenario]], tuple[dict[str, Any], list[Point]]],
    paths: list[tuple[str, Scenario]],
    pool: Points,
) -> list[tuple[dict[str, Any], list[Point]]]:
    """Each path's search (``one``) in a thread of its own, all feeding ``pool``, so that
    the pool stays busy while a path waits for the last replication of its round; their
    results in the order of ``paths``. An error or an interrupt in one stops them all: the
    pool's queued replications are dropped, so no thread goes on searching."""
    threads = ThreadPoolExecutor(max_workers=len(paths))
    try:
        futures = [threads.submit(one, at) for at in paths]
        return [f.result() for f in futures]
    except BaseException:
        pool.cancel()
        raise
    finally:
        threads.shutdown(wait=True)


def _with_percentiles(scenario: Scenario, clauses: Sequence[Clause]) -> Scenario:
    """``scenario`` computing every percentile the SLO names (``run.percentiles``)."""
    have = {*STANDARD_PERCENTILES, *scenario.run.percentiles}
    extra = [c.metric.removesuffix("_us") for c in clauses if is_percentile_column(c.metric)]
    extra = [p for p in dict.fromkeys(extra) if p not in have]
    if not extra:
        return scenario
    return replace(scenario, {"run.percentiles": [*scenario.run.percentiles, *extra]}, "--slo")


def prepare(
    scenario: Scenario,
    slo: str | Sequence[Clause],
    vary: str = "load",
    paths: Sequence[str] | None = ("routed", "direct"),
    children: Sequence[str] | None = None,
    replications: int | None = None,
    resolution: float = RESOLUTION,
    max_points: int = MAX_POINTS,
) -> tuple[list[Clause], list[str], str, list[str], int]:
    """Check a search's arguments before anything runs: ``(clauses, the SLO's child
    entries, the child whose count varies or "", paths, replications)``; ``ValueError``
    (an :class:`SloError` for the SLO) with a one-line message."""
    clauses = parse_slo(slo) if isinstance(slo, str) else list(slo)
    if vary not in VARY:
        raise ValueError(f"vary must be one of {', '.join(VARY)} (got '{vary}')")
    reps = scenario.run.replications if replications is None else replications
    if reps < 2:
        raise ValueError(
            "a capacity search needs at least 2 replications per point: a point meets the "
            "SLO only if its confidence bound does"
        )
    if not 0 < resolution < 1:
        raise ValueError(f"resolution must be between 0 and 1 (got {resolution})")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 (got {max_points})")
    io = [c.name for c in scenario.children if c.streams]
    entries = list(children) if children else io
    unknown = [e for e in entries if e not in io]
    if unknown:
        raise ValueError(
            f"no child with I/O streams named '{unknown[0]}' (children: {', '.join(io)})"
        )
    child = ""
    if vary == "children":
        if len(entries) != 1:
            raise ValueError(
                "with vary children, name the one child whose count varies (children: "
                f"{', '.join(io)})"
            )
        child = entries[0]
    elif not any(s.rate or s.trace for c in scenario.children for s in c.streams):
        raise ValueError("no open-loop stream to scale: vary the children instead")
    path_list = list(paths) if paths else ["as-is"]
    bad = [p for p in path_list if p not in IO_PATHS and p != "as-is"]
    if bad:
        raise ValueError(f"unknown path '{bad[0]}' (paths: {', '.join(IO_PATHS)})")
    if len(set(path_list)) != len(path_list):
        raise ValueError("a path is named twice")
    return clauses, entries, child, path_list, reps


def _assemble(
    scenario: Scenario,
    clauses: list[Clause],
    vary: str,
    path_list: list[str],
    entries: list[str],
    reps: int,
    root: int,
    resolution: float,
    max_points: int,
    rows: list[dict[str, Any]],
    points: list[pd.DataFrame],
    reps_frames: list[pd.DataFrame],
    wall_s: float,
) -> Capacity:
    """The search's frames and meta."""
    table = pd.DataFrame(rows)
    point_frame = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    if len(point_frame):
        first = ["path", "x", "point_meets", "partition", "io_path"]
        point_frame = point_frame[first + [c for c in point_frame.columns if c not in first]]
        point_frame = point_frame.rename(
            columns={"x": "load_factor" if vary == "load" else "children"}
        )
    replications_frame = (
        pd.concat(reps_frames, ignore_index=True) if reps_frames else pd.DataFrame()
    )
    from sim.results.store import versions

    meta = {
        "scenario": scenario.name,
        "slo": [c.text for c in clauses],
        "vary": vary,
        "paths": path_list,
        "children": entries,
        "replications": reps,
        "seed": root,
        "replication_seeds": [  # the same at every point and on every path
            {"replication": r, "root_seed": root, "spawn_key_prefix": [r]} for r in range(reps)
        ],
        "resolution": resolution,
        "max_points": max_points,
        "duration_us": scenario.run.duration,
        "warmup_us": scenario.run.warmup,
        "wall_s": round(wall_s, 3),
        "points": int(table["points"].sum()) if len(table) else 0,
        "versions": versions(),
    }
    return Capacity(
        scenario, clauses, vary, path_list, table, point_frame, replications_frame, meta
    )


def table(scenario: Any, slo: str, **kwargs: Any) -> pd.DataFrame:
    """The capacity per path as a frame (:func:`search`'s ``table``); ``scenario`` a
    :class:`Scenario` or a path to one."""
    if not isinstance(scenario, Scenario):
        from sim.scenario.source import load

        scenario = load(scenario)
    return search(scenario, slo, **kwargs).table
