"""The failure/repair level of the availability estimate (docs/design.md §3.5, Reliability):
which component instances a host has, what each one's failure does to each child (the
blast radius), and the alternating failure/repair process over a long horizon.

Level 1 of the two-level method (:mod:`sim.experiment.availability` adds level 2, the
request-level runs per state). Event-level and fast: per component instance, up times and
repair times alternate (:class:`~sim.scenario.reliability.Process`: exponential, Weibull
or lognormal up times; exponential, lognormal or fixed repairs), plus its scheduled
maintenance windows; the intervals each child spends down, on the routed fallback, or in
a slowed state are the unions of the intervals of the instances touching it. A direct
child whose VF is revoked is down while the parent is too (its fallback runs through the
parent).

Randomness: one generator per level-1 run, from the root seed and the run's index under a
key of its own (:data:`STREAM`): no request-level draw moves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.scenario.plan import Placement, plan
from sim.scenario.reliability import COMPONENTS, Process
from sim.scenario.schema import Scenario

STREAM = 0x5E11AB1E
"""The key of level-1 generators: ``default_rng([seed, STREAM, run])``."""

PARENT_KINDS = ("parent_crash", "parent_hang")
DOWN, ROUTED, SLOWED = "down", "routed", "slowed"


@dataclass(frozen=True)
class Instance:
    """One failing thing: its component (:data:`COMPONENTS`), the fault kind it is
    simulated as, and its target (``parent``, a device, a child, an LP index)."""

    component: str
    kind: str
    target: str | int

    @property
    def label(self) -> str:
        return self.component if self.target == "parent" else f"{self.component} {self.target}"


def instances(scn: Scenario) -> list[Instance]:
    """Every component instance of ``scn`` whose process is active, in :data:`COMPONENTS`
    order: the parent's, per device (the parent's driver; the hypervisor's driver where a
    child uses the hypervisor path to it; the device), per VF in use, per LP, per child."""
    p = plan(scn)
    procs = scn.reliability.processes()
    out: list[Instance] = []
    for comp, (kind, what) in COMPONENTS.items():
        if not procs[comp].active:
            continue
        targets: list[str | int]
        if what == "parent":
            targets = ["parent"]
        elif what == "device":
            targets = [d.name for d in scn.devices]
            if comp == "hv_driver":
                used = {q.device for q in p.children if q.path == "hypervisor"}
                targets = [t for t in targets if t in used]
        elif what == "direct child":
            targets = [q.name for q in p.children if q.vf is not None]
        elif what == "lp":
            targets = list(range(scn.host.cores))
        else:
            targets = [q.name for q in p.children]
        out += [Instance(comp, kind, t) for t in targets]
    return out


def effect(inst: Instance, child: Placement) -> str:
    """What a failure of ``inst`` does to ``child`` by the model's rules (§3.5): ``down``
    (its I/O stops), ``routed`` (its VF is revoked: it runs routed), or "" (untouched, or
    only slowed: an LP, measured by simulation)."""
    kind, target, path = inst.kind, inst.target, child.path
    if kind in PARENT_KINDS:
        return DOWN if path in ("routed", "emulated") else ""
    if kind == "hv_driver_crash":
        return DOWN if path == "hypervisor" and child.device == target else ""
    if kind == "device_reset":
        return DOWN if child.device == target else ""
    if kind == "vf_revoke":
        return ROUTED if child.name == target and child.vf is not None else ""
    if kind == "child_crash":
        return DOWN if child.name == target else ""
    return ""


def blast_radius(scn: Scenario) -> dict[str, dict[str, str]]:
    """instance label → {child: effect} for every child it touches (rules of :func:`effect`)."""
    p = plan(scn)
    out: dict[str, dict[str, str]] = {}
    for inst in instances(scn):
        out[inst.label] = {c.name: e for c in p.children if (e := effect(inst, c))}
    return out


# ---------------------------------------------------------------------------------------
# The processes
# ---------------------------------------------------------------------------------------
def _up_time(proc: Process, rng: np.random.Generator) -> float:
    mean = float(proc.mtbf or math.inf)
    if proc.failure == "exponential":
        return float(rng.exponential(mean))
    k = float(proc.shape or 1.0)
    if proc.failure == "weibull":
        return float(mean / math.gamma(1.0 + 1.0 / k) * rng.weibull(k))
    return float(rng.lognormal(math.log(mean) - k * k / 2.0, k))


def _repair_time(proc: Process, rng: np.random.Generator) -> float:
    mean = float(proc.mttr)
    if proc.repair == "fixed":
        return mean
    if proc.repair == "exponential":
        return float(rng.exponential(mean))
    s = float(proc.repair_shape)
    return float(rng.lognormal(math.log(mean) - s * s / 2.0, s))


def merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of intervals, as sorted disjoint intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersect(
    xs: Sequence[tuple[float, float]], ys: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The intersection of two sorted disjoint interval lists."""
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def length(intervals: Sequence[tuple[float, float]]) -> float:
    return float(sum(b - a for a, b in intervals))


def outages(proc: Process, horizon: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """One instance's down intervals in ``[0, horizon)``: failures (a stationary start:
    the first up time drawn like any other) with their repairs, and maintenance windows;
    a failure does not happen while the instance is already down."""
    out: list[tuple[float, float]] = []
    if proc.every is not None:
        t = float(proc.offset)
        while t < horizon:
            out.append((t, min(t + float(proc.window), horizon)))
            t += float(proc.every)
    if proc.mtbf:
        t = 0.0
        while True:
            t += _up_time(proc, rng)
            if t >= horizon:
                break
            end = t + _repair_time(proc, rng)
            out.append((t, min(end, horizon)))
            t = end
    return merge(out)


@dataclass
class Schedule:
    """One level-1 run: every instance's down intervals over ``horizon`` seconds."""

    horizon: float
    down: dict[Instance, list[tuple[float, float]]]


def schedule(scn: Scenario, horizon: float, seed: int, run: int) -> Schedule:
    """Level-1 run ``run`` of ``scn`` over ``horizon`` seconds (its own generator)."""
    rng = np.random.default_rng([seed, STREAM, run])
    procs = scn.reliability.processes()
    return Schedule(horizon, {i: outages(procs[i.component], horizon, rng) for i in instances(scn)})


@dataclass(frozen=True)
class StateEffect:
    """What an instance's failure does to a child, as level 2 measured it: its effect,
    the extra outage after the repair (retries, timeouts: the transient, seconds) and
    whether the child violates the SLO while it lasts."""

    effect: str
    extra_s: float = 0.0
    violates: bool = False
    extra_hw_s: float = 0.0
    """95 % half-width of ``extra_s`` (level 2's own uncertainty)."""


def child_intervals(
    scn: Scenario,
    sched: Schedule,
    effects: Mapping[tuple[str, str], StateEffect],
    floor_s: Mapping[str, float] | None = None,
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per child: its ``down`` intervals (each touching outage stretched by its transient)
    and its ``violating`` ones (down, or in a state where level 2 found the SLO broken)
    over one level-1 run. ``effects``: (instance label, child) → :class:`StateEffect`;
    ``floor_s``: per child, the shortest outage its requests show (shorter ones are not
    counted, as the request-level availability does not see them)."""
    p = plan(scn)
    parent_down = merge(
        iv for inst, ivs in sched.down.items() if inst.kind in PARENT_KINDS for iv in ivs
    )
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for c in p.children:
        down: list[tuple[float, float]] = []
        bad: list[tuple[float, float]] = []
        for inst, ivs in sched.down.items():
            se = effects.get((inst.label, c.name))
            if se is None or not ivs:
                continue
            if se.effect == DOWN:
                stretched = [(a, min(b + se.extra_s, sched.horizon)) for a, b in ivs]
                down += stretched
            elif se.effect == ROUTED:  # on the fallback: down while the parent is
                down += intersect(ivs, parent_down)
                if se.violates:
                    bad += ivs
            elif se.violates:
                bad += ivs
        floor = (floor_s or {}).get(c.name, 0.0)
        d = [iv for iv in merge(down) if iv[1] - iv[0] >= floor]
        out[c.name] = {"down": d, "violating": merge(d + bad)}
    return out
