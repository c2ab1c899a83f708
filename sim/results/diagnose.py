"""When a result is not to be trusted as it stands: saturated resources, warm-up not
found or too short, wide confidence intervals, disagreement with the analytic estimate
where it should hold. One list of notes per child, shown under every table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.analysis.analytic import disagreement
from sim.scenario import names
from sim.scenario.hardware import interrupt_vcpu
from sim.scenario.plan import Plan, plan
from sim.scenario.schema import Scenario

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
    (:func:`sim.analysis.analytic.disagreement`)."""
    notes: dict[str, list[str]] = {}
    window = scenario.run.duration - scenario.run.warmup
    busy = cpu[cpu["category"] != "idle"].groupby("vcpu")["busy_us"].sum()
    hot_vcpus = {str(v) for v, us in busy.items() if us / window > SATURATED}
    devices = resources[resources["kind"] != "ring"].set_index("resource")["utilization"]
    count = counters.set_index("counter")["count"] if len(counters) else pd.Series(dtype=float)
    streams = dict(scenario.instances())
    placements = plan(scenario)
    for _, row in summary.iterrows():
        part = row["partition"]
        out = notes.setdefault(part, [])
        spec = streams.get(part)
        dev = spec.device if spec is not None and spec.device is not None else ""
        if dev in devices.index and devices[dev] > SATURATED:
            out.append(f"saturated: device {dev} {devices[dev]:.0%} busy")
        theirs = _serving(scenario, placements, part) if row["io_path"] in PARENT_PATHS else set()
        hot = sorted(v for v in hot_vcpus if v.startswith(f"{part}.") or (
            v.startswith("parent.") and (theirs is None or v in theirs)
        ))  # fmt: skip
        if hot:
            out.append(f"saturated: {', '.join(hot)} busy > {SATURATED:.0%}")
        if row["io_path"] == "routed" and count.get("ring_full", 0) > 0:
            out.append("saturated: a VMBus ring was full (writers blocked)")
        offered = (
            sum(_offered(s, scenario.run.warmup, scenario.run.duration) for s in spec.streams)
            if spec is not None
            else 0.0
        )
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


def _serving(scenario: Scenario, placements: Plan, part: str) -> set[str] | None:
    """The parent vCPUs that serve a child on a parent path: its channels' (or its device
    model's) and, for a single-queue NIC, vCPU 0, which takes all its traffic
    (docs/design.md §3.2); None where the plan does not say (e.g. a direct child moved to the
    routed path by a fault: any parent vCPU may serve it)."""
    try:
        placed = placements[part]
    except KeyError:
        return None
    vcpus = set(placed.parent_vcpus)
    device = next((d for d in scenario.devices if d.name == placed.device), None)
    k = interrupt_vcpu(device)
    if k is not None:
        vcpus.add(k)
    return {names.vcpu("parent", i) for i in vcpus} or None


def _offered(stream: Any, start: float, end: float) -> float:
    """Requests per second a stream offers from ``start`` to ``end`` (µs): its rate, a
    profile's mean over the window, a replayed trace's arrivals (0: closed loop)."""
    total = stream.offered(end)
    if total is None or end <= start:
        return 0.0
    before = stream.offered(start) if start > 0 else 0.0
    return float((total * end - (before or 0.0) * start) / (end - start))
