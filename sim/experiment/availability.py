"""Availability by design: expected availability, SLO-violation minutes per year and p99 per
state, per I/O path, from failure and repair processes over months (docs/design.md §3.5,
Reliability; ``hvsim availability``).

The two-level method
    Level 2 (request level, here): per I/O path (every I/O child switched to it, as
    :func:`sim.experiment.compare.on_path` does), a run without faults (the normal state)
    and one short run per state that matters: each distinct failure (a scripted fault of
    the kind the component is simulated as, :data:`sim.scenario.reliability.COMPONENTS`,
    at the same time and for the same length ``D`` in every run). Per child it measures
    the outage (:func:`sim.results.faults.availability_frame`: gaps between completions),
    whether it was touched (down: out for at least half of ``D``; routed: its requests
    went routed), the transient (outage beyond ``D``: retries, timeouts, the ring
    draining) and the p99 of the requests submitted during the fault (requests lost or
    failed count as over any bound). The states of LPs: each of the parent's LPs under
    ``root: pinned`` (its vCPU waits for it) on its own, the last LP for all the others;
    a child crash is not simulated (it touches only its own child: tested in the model's
    faults).

    Level 1 (:mod:`sim.analysis.availability`): ``runs`` independent horizons of the
    failure/repair processes; per child, the union of the outages of the instances that
    touch it (each stretched by its transient) is down; down, or a state whose p99 breaks
    the SLO, is violating. Availability = 1 - down / horizon; minutes per year scaled from
    the horizon. Intervals: 95 % Student-t across the level-1 runs (the per-state
    measurements are taken as known: their own spread is reported in ``states``).

Checked (tests/test_availability.py): with one exponential component, level 1 recovers
MTBF / (MTBF + MTTR); the two-level estimate agrees, within its interval, with brute force
(:func:`brute_force`: request-level runs over a short horizon with inflated failure rates,
the level-1 schedule scripted as faults).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.availability import (
    DOWN,
    PARENT_KINDS,
    ROUTED,
    Instance,
    StateEffect,
    child_intervals,
    effect,
    instances,
    length,
    merge,
    schedule,
)
from sim.experiment.compare import on_path
from sim.experiment.run import run
from sim.experiment.slo import parse_slo
from sim.results.faults import STALL_FACTOR, STALL_FLOOR_US, availability_frame
from sim.results.store import write_result, write_scenario_and_meta
from sim.scenario.plan import plan
from sim.scenario.reliability import YEAR_S
from sim.scenario.schema import Scenario
from sim.scenario.source import replace

PATHS = ("routed", "direct", "hypervisor", "emulated")
MINUTES_PER_YEAR = YEAR_S / 60.0


def _t95(n: int) -> float:
    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else math.inf


def _ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % half-width."""
    n = len(x)
    m = float(np.mean(x))
    if n < 2:
        return m, math.inf
    return m, _t95(n) * float(np.std(x, ddof=1)) / math.sqrt(n)


def p99_limit(slo: str | None) -> float:
    """The SLO's p99 bound in µs (inf without one; only ``p99<=`` is used per state)."""
    if not slo:
        return math.inf
    bound = [c.value for c in parse_slo(slo) if c.metric == "p99_us"]
    if not bound:
        raise ValueError("availability judges states by a p99 bound: give e.g. 'p99<=1ms'")
    return min(bound)


# ---------------------------------------------------------------------------------------
# Level 2: the request-level runs per state
# ---------------------------------------------------------------------------------------
def _state_window(scn: Scenario, length_us: float | None = None) -> tuple[float, float]:
    """When the scripted fault of a state run starts (a third of the way into the
    measurement window) and how long it lasts (µs): ``length_us``, default a third of the
    window."""
    w0, end = scn.run.warmup, scn.run.duration
    third = (end - w0) / 3.0
    return w0 + third, min(length_us, 2 * third) if length_us else third


def _representatives(scn: Scenario, insts: Sequence[Instance]) -> dict[tuple[str, Any], str]:
    """(fault kind, target) to simulate → the key its measurement is stored under; LP
    instances: each of the parent's pinned LPs, and the last LP for the others; child
    crashes are not simulated."""
    reps: dict[tuple[str, Any], str] = {}
    for inst in insts:
        if inst.kind == "child_crash":
            continue
        if inst.kind == "lp_offline":
            lp = int(inst.target) if _parent_lp(scn, int(inst.target)) else scn.host.cores - 1
            reps[(inst.kind, lp)] = f"lp_offline {lp}"
        else:
            target = "parent" if inst.kind in PARENT_KINDS else inst.target
            reps[(inst.kind, target)] = f"{inst.kind} {target}"
    return reps


def _parent_lp(scn: Scenario, lp: int) -> bool:
    sch = scn.host.scheduler
    pinned = sch.root == "pinned" or sch.policy == "pinned"
    return pinned and lp < scn.parent.vcpus


def _state_key(scn: Scenario, inst: Instance) -> str:
    if inst.kind == "lp_offline":
        lp = int(inst.target) if _parent_lp(scn, int(inst.target)) else scn.host.cores - 1
        return f"lp_offline {lp}"
    target = "parent" if inst.kind in PARENT_KINDS else inst.target  # a driver's: the parent
    return f"{inst.kind} {target}"


def _p99(lat: np.ndarray, lost: int) -> float:
    """p99 of latencies with ``lost`` requests counting as infinitely late."""
    n = len(lat) + lost
    if n == 0:
        return math.nan
    full = np.concatenate([lat, np.full(lost, np.inf)])
    return float(np.quantile(full, 0.99, method="higher"))


@dataclass
class StateRuns:
    """Level 2 for one path: the normal state's p99 per child, and per state key and child
    its measurement (a row of ``frame``)."""

    normal: dict[str, float]
    frame: pd.DataFrame  # state, child, down_us, extra_us, touched, routed_share, p99_us
    floor_s: dict[str, float] = field(default_factory=dict)
    """Per child, the shortest outage the request-level measure counts (seconds): gaps
    between completions longer than 50 median gaps and 1 ms
    (:data:`sim.results.faults.STALL_FACTOR`), from the normal run."""


def measure_states(
    scn: Scenario,
    replications: int = 2,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
    length_us: float | None = None,
) -> StateRuns:
    """The level-2 runs of ``scn`` as it is (module docstring); each state's fault lasts
    ``length_us`` (default a third of the measurement window)."""
    insts = instances(scn)
    at, dur = _state_window(scn, length_us)
    window = scn.run.duration - scn.run.warmup
    base = run(scn.model_copy(update={"faults": []}), replications=replications, seed=seed)
    req = base.requests
    normal: dict[str, float] = {}
    floor: dict[str, float] = {}
    for part, g in req[req["in_window"]].groupby("partition", sort=False):
        lat = g.loc[g["state"] == "completed", "latency_us"].to_numpy()
        normal[str(part)] = _p99(lat, int((g["state"] != "completed").sum()))
        gaps = [  # per replication: their completions interleave
            float(np.median(np.diff(np.sort(t)))) if len(t) > 2 else 0.0
            for _, h in g[g["state"] == "completed"].groupby("replication")
            for t in [h["t_complete_us"].to_numpy()]
        ]
        gap = float(np.mean(gaps)) if gaps else 0.0
        floor[str(part)] = max(STALL_FLOOR_US, STALL_FACTOR * gap) / 1e6
    home = {q.name: q.path for q in plan(scn).children}
    rows = []
    for (kind, target), key in _representatives(scn, insts).items():
        fault = {"kind": kind, "at": f"{at}us", "duration": f"{dur}us", "target": target}
        faulted = replace(scn, {"faults": [fault]}, source=f"state {key}")
        res = run(faulted, replications=replications, seed=seed)
        av = availability_frame(res.requests, faulted).groupby("partition")["availability"]
        n_rep = res.requests["replication"].nunique()
        r = res.requests
        during = r[(r["t_submit_us"] >= at) & (r["t_submit_us"] < at + dur)]
        for part, g in during.groupby("partition", sort=False):
            name = str(part)
            downs = (1.0 - av.get_group(part).to_numpy()) * window
            down = float(downs.mean())
            extra_hw = _ci(np.maximum(downs - dur, 0.0))[1] if n_rep > 1 else math.nan
            done = g["state"] == "completed"
            routed = float((g["io_path"] != home[name]).mean()) if len(g) else 0.0
            rows.append({
                "state": key, "child": name, "down_us": down,
                "extra_us": max(0.0, down - dur) if down >= dur / 2 else 0.0,
                "extra_hw_us": extra_hw if down >= dur / 2 else 0.0,
                "touched": DOWN if down >= dur / 2 else (ROUTED if routed > 0.5 else ""),
                "routed_share": routed,
                "p99_us": _p99(g.loc[done, "latency_us"].to_numpy(), int((~done).sum())),
                "p99_normal_us": normal.get(name, math.nan),
            })  # fmt: skip
        if progress is not None:
            progress(f"{scn.name}: state {key} simulated")
    return StateRuns(normal, pd.DataFrame(rows), floor)


def effects_of(
    scn: Scenario, states: StateRuns, p99_max_us: float
) -> dict[tuple[str, str], StateEffect]:
    """(instance label, child) → :class:`StateEffect` from the level-2 measurements; a
    child crash: down, no transient, only its own child."""
    out: dict[tuple[str, str], StateEffect] = {}
    frame = states.frame.set_index(["state", "child"]) if len(states.frame) else None
    children = plan(scn).children
    for inst in instances(scn):
        for c in children:
            if inst.kind == "child_crash":
                if c.name == inst.target:
                    out[(inst.label, c.name)] = StateEffect(DOWN, 0.0, True)
                continue
            key = (_state_key(scn, inst), c.name)
            if frame is None or key not in frame.index:
                continue
            row: Any = frame.loc[key]
            touched = str(row["touched"])
            violates = bool(row["p99_us"] > p99_max_us) if touched != DOWN else True
            if touched == DOWN:
                hw = float(row["extra_hw_us"]) / 1e6
                out[(inst.label, c.name)] = StateEffect(
                    DOWN, float(row["extra_us"]) / 1e6, True, 0.0 if math.isnan(hw) else hw
                )
            elif touched == ROUTED or violates:
                out[(inst.label, c.name)] = StateEffect(touched or "slowed", 0.0, violates)
    return out


# ---------------------------------------------------------------------------------------
# Level 1 combined
# ---------------------------------------------------------------------------------------
def combine(
    scn: Scenario,
    effects: dict[tuple[str, str], StateEffect],
    horizon_s: float,
    runs: int,
    seed: int,
    floor_s: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per child over ``runs`` level-1 horizons: availability, down and violating minutes
    per year, outages per year and the longest outage, with 95 % intervals."""
    per: dict[str, dict[str, list[float]]] = {}
    extra_var: dict[str, float] = {}  # level 2: var of the transients' total, per horizon
    for k in range(runs):
        sched = schedule(scn, horizon_s, seed, k)
        for (label, child), se in effects.items():
            if se.effect == DOWN and se.extra_hw_s:
                n = sum(len(v) for i, v in sched.down.items() if i.label == label)
                extra_var[child] = extra_var.get(child, 0.0) + (n * se.extra_hw_s) ** 2 / runs
        for child, ivs in child_intervals(scn, sched, effects, floor_s).items():
            d = per.setdefault(child, {"down": [], "bad": [], "n": [], "worst": []})
            d["down"].append(length(ivs["down"]))
            d["bad"].append(length(ivs["violating"]))
            d["n"].append(len(ivs["down"]))
            d["worst"].append(max((b - a for a, b in ivs["down"]), default=0.0))
    rows = []
    for child, d in per.items():
        down = np.asarray(d["down"]) / horizon_s
        bad = np.asarray(d["bad"]) / horizon_s
        # level 1's spread across runs and level 2's (the transients, common to all runs)
        l2 = math.sqrt(extra_var.get(child, 0.0)) / horizon_s
        a, a_hw = _ci(1.0 - down)
        dm, dm_hw = _ci(down * MINUTES_PER_YEAR)
        vm, vm_hw = _ci(bad * MINUTES_PER_YEAR)
        a_hw = math.hypot(a_hw, l2)
        dm_hw = math.hypot(dm_hw, l2 * MINUTES_PER_YEAR)
        vm_hw = math.hypot(vm_hw, l2 * MINUTES_PER_YEAR)
        rows.append({
            "child": child, "availability": a, "availability_hw": a_hw, "transients_hw": l2,
            "down_min_per_year": dm, "down_min_per_year_hw": dm_hw,
            "slo_violation_min_per_year": vm, "slo_violation_min_per_year_hw": vm_hw,
            "outages_per_year": float(np.mean(d["n"])) * YEAR_S / horizon_s,
            "worst_outage_s": float(np.max(d["worst"])),
        })  # fmt: skip
    return pd.DataFrame(rows)


@dataclass
class Availability:
    """``hvsim availability``: per path and child the estimate (``table``), per state and
    child the level-2 measurements (``states``) and what each failure touches
    (``blast``)."""

    scenario: Scenario
    table: pd.DataFrame
    states: pd.DataFrame
    blast: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write ``availability.csv``, ``states.csv``, ``blast.csv``, ``meta.json`` and
        ``scenario.resolved.yaml`` through the result store."""

        def write(tmp: Path) -> None:
            self.table.to_csv(tmp / "availability.csv", index=False)
            self.states.to_csv(tmp / "states.csv", index=False)
            self.blast.to_csv(tmp / "blast.csv", index=False)
            write_scenario_and_meta(tmp, self.scenario, self.meta, "availability")

        write_result(out, "availability", write, force=force)
        return Path(out)


def load_availability(where: str | Path) -> Availability:
    """Read back a directory written by :meth:`Availability.save`."""
    from sim.scenario.source import load

    d = Path(where)
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    return Availability(
        load(d / "scenario.resolved.yaml"),
        pd.read_csv(d / "availability.csv"),
        pd.read_csv(d / "states.csv", keep_default_na=False, na_values=[""]),
        pd.read_csv(d / "blast.csv", keep_default_na=False),
        meta,
    )


def blast_table(scn: Scenario, states: StateRuns | None = None) -> pd.DataFrame:
    """Failure × child: what it does ("down", "routed", ""): as level 2 measured it where
    it simulated that state (``states``), by the model's rules otherwise (a child crash;
    without ``states``). LPs: the parent's and the last one only."""
    p = plan(scn)
    measured = (
        states.frame.set_index(["state", "child"])["touched"]
        if states is not None and len(states.frame)
        else None
    )
    rows = []
    for inst in instances(scn):
        if inst.kind == "lp_offline" and _state_key(scn, inst) != f"lp_offline {inst.target}":
            continue  # measured as the last LP
        row: dict[str, Any] = {"failure": inst.label}
        for c in p.children:
            key = (_state_key(scn, inst), c.name)
            if measured is not None and key in measured.index:
                row[c.name] = str(measured.loc[key])
            else:
                row[c.name] = effect(inst, c)
        rows.append(row)
    return pd.DataFrame(rows)


def estimate(
    scenario: Scenario,
    paths: Sequence[str] | None = PATHS,
    slo: str | None = None,
    years: float = 1.0,
    runs: int = 100,
    replications: int = 2,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Availability:
    """The two-level estimate per path (module docstring): ``runs`` level-1 horizons of
    ``years`` each, ``replications`` per level-2 run, states judged by the SLO's p99."""
    limit = p99_limit(slo)
    root = scenario.run.seed if seed is None else seed
    tables, state_frames, blasts = [], [], []
    for p in list(paths) if paths else ["as-is"]:
        scn = scenario if p == "as-is" else on_path(scenario, p)
        states = measure_states(scn, replications, root, progress)
        eff = effects_of(scn, states, limit)
        t = combine(scn, eff, years * YEAR_S, runs, root, states.floor_s)
        t.insert(0, "path", p)
        t["p99_normal_us"] = t["child"].map(states.normal)
        worst = states.frame.groupby("child")["p99_us"].max() if len(states.frame) else None
        t["p99_worst_state_us"] = t["child"].map(worst) if worst is not None else math.nan
        tables.append(t)
        state_frames.append(states.frame.assign(path=p))
        blasts.append(blast_table(scn, states).assign(path=p))
    meta = {
        "scenario": scenario.name, "paths": list(paths or ["as-is"]), "slo": slo or "",
        "years": years, "runs": runs, "replications": replications, "seed": root,
        "state_duration_us": scenario.run.duration,
    }  # fmt: skip
    return Availability(
        scenario,
        pd.concat(tables, ignore_index=True),
        pd.concat(state_frames, ignore_index=True),
        pd.concat(blasts, ignore_index=True),
        meta,
    )


# ---------------------------------------------------------------------------------------
# Brute force: the schedule scripted into one request-level run
# ---------------------------------------------------------------------------------------
def scripted(scn: Scenario, run_index: int, seed: int) -> list[dict[str, Any]]:
    """Level-1 run ``run_index`` over the measurement window of ``scn`` (a short horizon:
    its reliability processes inflated to fail within it, spans in ms) as a ``faults``
    list: outages of one kind and target merged; a hang that overlaps a crash is part of
    the crash."""
    w0, end = scn.run.warmup, scn.run.duration
    sched = schedule(scn, (end - w0) / 1e6, seed, run_index)
    by: dict[tuple[str, Any], list[tuple[float, float]]] = {}
    for inst, ivs in sched.down.items():
        by.setdefault((inst.kind, inst.target), []).extend(ivs)
    crashes = merge(by.pop(("parent_crash", "parent"), []))
    hangs = merge(by.pop(("parent_hang", "parent"), []))
    for a, b in merge(crashes + hangs):  # the parent's outages as one each
        kind = "parent_crash" if any(x < b and a < y for x, y in crashes) else "parent_hang"
        by.setdefault((kind, "parent"), []).append((a, b))
    faults = []
    for (kind, target), ivs in by.items():
        for a, b in merge(ivs):
            at = w0 + a * 1e6
            if at >= end:
                continue
            faults.append({"kind": kind, "at": f"{at}us", "duration": f"{(b - a) * 1e6}us",
                           "target": target})  # fmt: skip
    return sorted(faults, key=lambda f: float(f["at"][:-2]))


def brute_force(scn: Scenario, n: int, seed: int) -> pd.DataFrame:
    """``n`` request-level runs of ``scn``, each with its own level-1 schedule scripted as
    faults (:func:`scripted`) and its own seed: per run and child, the availability."""
    rows = []
    for k in range(n):
        faults = scripted(scn, k, seed)
        faulted = replace(scn, {"faults": faults}, source=f"schedule {k}")
        res = run(faulted, replications=1, seed=seed + 1 + k)
        av = availability_frame(res.requests, faulted)
        for _, r in av.iterrows():
            rows.append({"run": k, "child": r["partition"], "availability": r["availability"],
                         "faults": len(faults)})  # fmt: skip
    return pd.DataFrame(rows)
