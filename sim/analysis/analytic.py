"""Analytic estimate of every I/O path: an open queueing network beside the simulation.

What it models
    Each child's requests are a class of customers in an open network whose stations are
    the places the simulation queues (docs/design.md §3.2, :mod:`sim.model.iopaths`):

    * **vCPUs**, each an M/G/1 station with *setup*: the child's vCPUs (submission on the
      issuing vCPU, completion on the completing one: two visits per request) and the
      parent's (routed: the request and the completion of every channel placed on it,
      :mod:`sim.model.partitions`; emulated: the device model's vCPU; the parent's own
      streams, ``parent.streams``: their driver request and completion, a class of
      their own on the same stations, reported as partition ``parent``). A vCPU that finds itself
      idle blocks, so the visit that starts its next busy period first pays the world
      switch (``host.costs.vcpu_dispatch``, 0 on bare metal). That is an M/G/1 queue with
      an exceptional first service (Welch, *Operations Research* 12, 1964): with arrival
      rate λ, service S, setup d, ρ = λE[S], the share of arrivals finding it idle is
      P₀ = (1−ρ)/(1+λd) and the mean wait in queue is
      W = λ(P₀E[(S+d)²] + (1−P₀)E[S²]) / (2(1−ρ)) (Brumelle's E[V] = λE[WS] + λE[S²]/2
      with W = V under FIFO and PASTA). Each visit is charged P₀·d as ``sched_wait``.
      The visits' service is the sum of the path's costs there, means and variances from
      the scenario's distributions; the signals (a hypercall on empty → non-empty of a
      VMBus ring, an interrupt when one was signalled) are paid with the probability that
      the ring was empty, 1 − (entries waiting in it) by Little's law, solved by fixed
      point with the waits.
    * **VMBus rings**: an entry waits in the outbound ring until the channel's parent
      vCPU takes it, in the inbound ring until the completing child vCPU does: their wait
      is that vCPU's queue (``ring_wait``), not a station of its own. Rings never fill.
    * **devices**: the NIC port an M/G/1 of the wire times (after the per-request
      ``latency``, a pure delay, with the IOMMU walks in it); the NVMe drive an M/G/c of
      its commands (media time + transfer + IOMMU walks) by the Allen–Cunneen
      approximation, W = C(c, a)·(1+C²ₛ)/2 / (cμ − λ) (Erlang C; exact for c = 1,
      Pollaczek–Khinchine). Every function's traffic shares one FIFO queue: round-robin
      arbitration changes how the wait is shared between functions, not its
      work-weighted mean (Kleinrock's conservation law), and is ignored.
    * **IOMMU**: a page misses in the LRU IOTLB when the distinct pages referenced
      between two uses of it (its stack distance: the child's whole ring of
      ``dma_buffers``, plus what the other direct children touch meanwhile) exceed
      ``iotlb_entries``; then every page of every request misses, else none does (the
      cyclic pattern LRU serves all or nothing, :mod:`sim.model.iommu`). ``strict`` misses
      always; ``deferred`` adds the first pass after each flush.
    * **interrupt delivery**: its exits (0 when posted) are service on the vCPU that
      takes the interrupt.
    * a NIC without ``tso``: the sending stack's per-request costs are paid once per
      segment, ``ceil(size / mtu)`` of them (:mod:`sim.model.iopaths`).
    * a routed child's ``vnic.tso: false``: its VSC's submit and completion, the VSP's
      request and completion and the driver's request per MTU packet, each packet copied
      (or page-listed) on its own (:mod:`sim.model.iopaths`); ``vnic.lro`` concerns
      receive streams only, which the estimate does not model.

    Open-loop streams arrive at their rates (Poisson). Closed-loop streams are solved by
    Schweitzer–Bard approximate MVA (:mod:`sim.analysis.mva`, :func:`_closed_loops`)
    with the open streams as the open classes of a mixed network; a closed stream's
    waits are then the MVA's, its mean latency N/X − Z (Little), and an open stream's
    wait at a station holding closed-loop customers the mixed network's.

    Per child: its mean latency split into the simulation's components, the utilisation
    of every station it visits, and the **saturation factor**: the factor by which every
    open-loop rate can grow before the first station it visits reaches utilisation 1,
    computed from the work every request must do (without signals and world switches,
    which only add): no larger load can be carried, so it is an upper bracket for a
    capacity search (:mod:`sim.experiment.capacity`). The host's LPs (all vCPU work over
    ``host.cores``) and an NVMe drive's ``max_iops`` count there too.

What it ignores, and when it should hold
    Per-VM and per-vCPU work (:mod:`sim.model.periodic`): guest timer ticks, per-VM
    housekeeping, halt exits and the parent's own ``cpu_load`` are not in the estimate;
    a scenario with any of them is marked as one where it does not hold, and the capacity
    bracket (work per request only) stays an upper bound.

    Scheduling: a vCPU waiting for an LP (overcommit, background ``cpu_load``, a pinned
    parent vCPU whose LP a floating child vCPU holds, BOOST and the rate limit) is not
    modelled; only the world switch is. The flows inside the network are not Poisson:
    round robin over a child's vCPUs smooths them, and a routed request's completion
    comes back to its parent vCPU a device time after its own request left it, so it
    finds that vCPU busy more often than a Poisson arrival would. NVMe ``queue_depth``,
    a full ring, the deferred-flush CPU, the devices' round robin and interrupt
    moderation (one interrupt per completion is assumed; a moderated device is marked as
    one where the estimate does not hold) are left out.

    The service means along a path are exact; what rests on the approximations is the
    waits (queueing and world switches) and the IOMMU walks: the ``wait_us`` of a child.
    Where it should hold — every station the child visits at most :data:`HOLDS_BELOW`
    busy (beyond it the waits grow as 1/(1−ρ) and so do their errors), no more vCPUs
    than LPs, no ``cpu_load``, open loop only, no faults scheduled (the estimate is of
    the host without them), no NIC ``receive`` streams (the estimate has no receive
    stages: it walks them as sends, and says it does not hold) — the errors of those
    approximations are of the order of the waits themselves (an M/G/1 wait with
    smoother-than-Poisson arrivals is lower, down to 0 for deterministic ones; the
    feedback of completions raises it by a part of it). :func:`disagreement` therefore
    flags a simulated mean that differs from the estimate by more than ``wait_us`` plus
    the simulation's 95 % confidence half-width plus 1 % of the estimate (the
    finite-horizon allowance ``hvsim validate`` uses): a gap the approximations cannot
    explain.

Sources
    Schweitzer (1979) and Bard (1979) approximate MVA, mixed networks (Lazowska et al.,
    *Quantitative System Performance*, 1984, ch. 7), Seidmann et al. (1987) for several
    servers; Pollaczek–Khinchine and Erlang C (Kleinrock, *Queueing Systems* vol. 1, 1975);
    Allen–Cunneen (Allen, *Probability, Statistics and Queueing Theory*, 1990); M/G/1
    with exceptional first service (Welch 1964); Jackson networks for the tandem cases
    ``hvsim validate`` checks, which this estimate reproduces exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import mva
from sim.analysis.network import Klass, Network
from sim.analysis.queueing import size_points
from sim.model.metrics import (
    COMPONENTS,
)
from sim.scenario.hardware import Nvme
from sim.scenario.plan import Placement, plan
from sim.scenario.schema import Scenario

HOLDS_BELOW = 0.6
"""Largest utilisation of a station on a child's path at which the estimate is held
against the simulation (:func:`disagreement`)."""

BIAS = 0.01
"""Allowance for the finite-horizon bias of a simulation that starts empty, as a share of
the estimate (the one ``hvsim validate`` uses)."""


# ---------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """The analytic estimate of a scenario.

    ``children``: per child instance and path, throughput, mean latency (and its
    components ``<component>_us``), ``wait_us`` (the part resting on the queueing
    approximations), ``utilization`` (the busiest station it visits) and ``bottleneck``,
    ``saturation_factor`` and ``saturation_rps``, ``holds`` and ``why_not``.
    ``stations``: per station, its resource, servers, visits per second, mean service,
    utilisation, utilisation from mandatory work, mean wait. ``stages``: per child and
    stage of its path, its stations, their utilisation (the request-weighted mean) and
    the stage's mean wait and service.
    ``saturation_factor``: the factor on every open-loop rate at which the first station
    saturates (mandatory work), ``bottleneck`` that station and its ``resource``."""

    children: pd.DataFrame
    stations: pd.DataFrame
    stages: pd.DataFrame
    saturation_factor: float
    bottleneck: str
    resource: str


Key = tuple[str, int]  # (child instance, stream index)
Sizes = dict[Key, tuple[np.ndarray, np.ndarray]]


def _rates(placed: list[Placement], closed: dict[Key, float], duration: float) -> dict[Key, float]:
    """Requests per µs of every stream: open loop its mean rate over the run (a trace's,
    a profile's), closed loop its estimate."""
    rates: dict[Key, float] = {}
    for p in placed:
        for j, s in p.streams():
            offered = s.offered(duration)
            rates[(p.name, j)] = (
                offered / 1e6 if offered is not None else closed.get((p.name, j), 0)
            )
    return rates


Signals = tuple[dict[str, float], dict[str, float]]  # per channel: outbound, inbound
Stretch = dict[Key | None, dict[str, float]]  # per closed stream (None: open), per station


def _solve(
    scn: Scenario,
    placed: list[Placement],
    rates: dict[Key, float],
    sizes: Sizes,
    start: Signals = ({}, {}),
) -> Network:
    """The network with the signal probabilities at their fixed point, sought from
    ``start`` (1 for a channel it does not name)."""
    out, inb = start
    net = Network(scn, placed, rates, out, inb, sizes)
    for _ in range(100):
        net.solve()
        new_out, new_in = net.signals()
        change = max(
            [abs(new_out[k] - out.get(k, 1.0)) for k in new_out]
            + [abs(new_in[k] - inb.get(k, 1.0)) for k in new_in]
            + [0.0]
        )
        out, inb = new_out, new_in
        if change < 1e-10:
            break
        net = Network(scn, placed, rates, out, inb, sizes)
    net.solve()
    return net


def _closed_loops(
    scn: Scenario, placed: list[Placement], sizes: Sizes
) -> tuple[dict[Key, float], Signals, Stretch]:
    """Throughput (per µs) of every closed-loop stream by Schweitzer–Bard MVA
    (:func:`sim.analysis.mva.schweitzer`), the open-loop streams beside them.

    The stations' demands depend on the throughputs through the world switches (a visit
    pays P₀·d, P₀ the share of visits finding the vCPU idle), the signal probabilities and
    the IOTLB: each round builds the network at the current throughputs and signal
    probabilities, solves the MVA on its demands, and moves both on until the throughputs
    settle; the signal probabilities reached are returned for :func:`_solve` to start
    from, and the waits per µs of service the MVA implies (:func:`_mva`), which replace
    the open network's where closed-loop customers queue: by Little's law a closed
    loop's mean latency is then N/X − Z, consistent with its throughput."""
    loops = [
        ((p.name, j), float(s.outstanding or 0), s.think.mean)
        for p in placed
        if p.path != "none"
        for j, s in p.streams()
        if s.closed
    ]
    if not loops:
        return {}, ({}, {}), {}
    keys = [key for key, _, _ in loops]
    users = np.array([n for _, n, _ in loops])
    think = np.array([z for _, _, z in loops])
    x = np.full(len(loops), PROBE)  # a network needs a rate to hold a class's legs
    out: dict[str, float] = {}
    inb: dict[str, float] = {}
    queues: np.ndarray | None = None
    stretch: Stretch = {}
    for sweep in range(MAX_ROUNDS):
        probe = dict(zip(keys, np.maximum(x, PROBE).tolist(), strict=True))
        net = Network(scn, placed, _rates(placed, probe, scn.run.duration), out, inb, sizes)
        net.solve()
        new_x, queues, stretch = _mva(net, keys, users, think, queues)
        out, inb = net.signals()
        if sweep >= DAMP_AFTER:  # a step (the IOTLB's) can make the plain iteration cycle
            new_x = (x + new_x) / 2
        change = np.max(np.abs(new_x - x) / np.maximum(new_x, 1e-12))
        x = new_x
        if change <= SETTLED:
            break
    return dict(zip(keys, x.tolist(), strict=True)), (out, inb), stretch


PROBE = 1e-9
"""Requests per µs at which a closed-loop class is put into the network to read its
demands before its throughput is known (its load there is negligible)."""

MAX_ROUNDS = 200
DAMP_AFTER = 50  # rounds after which each moves half way (a step can make them cycle)
SETTLED = 1e-6  # largest relative change of a throughput in a round that ends the search


def _mva(
    net: Network,
    keys: list[Key],
    users: np.ndarray,
    think: np.ndarray,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, Stretch]:
    """The closed loops' throughputs on the demands of ``net``: per stream, the mean
    service per request at every station (its vCPUs' shares averaged over them, a visit's
    world-switch share P₀·d included), its pure delays plus think time, and the open
    streams' utilisation of every station. Also the MVA customers per stream and station
    (to start the next round from) and the waits it implies, per µs of service: per
    closed stream at every station it visits, and for the open streams at every station
    holding closed-loop customers (the mixed network's (1 + Q)/(1 − U) − 1, Seidmann's
    split for several servers)."""
    index = {key: c for c, key in enumerate(keys)}
    stations = {name: k for k, name in enumerate(net.stations)}
    demand = np.zeros((len(keys), len(stations)))
    delay = think.astype(float).copy()
    open_util = np.zeros(len(stations))
    per_key: dict[Key, int] = {}
    for kl in net.classes:
        per_key[(kl.child, kl.stream)] = per_key.get((kl.child, kl.stream), 0) + 1
    for kl in net.classes:
        c = index.get((kl.child, kl.stream))
        w = 1.0 / per_key[(kl.child, kl.stream)]
        for leg in kl.legs:
            st = leg.station
            if st is None:
                if c is not None:
                    delay[c] += w * sum(leg.service.values())
                continue
            if c is None:
                open_util[stations[st.name]] += kl.rate * leg.demand()
            else:
                demand[c, stations[st.name]] += w * leg.demand()
                delay[c] += w * leg.delay
    servers = np.array([float(st.servers) for st in net.stations.values()])
    if start is not None and start.shape != demand.shape:
        start = None  # a station appeared (a vCPU first given work): start afresh
    x, resid, queues = mva.schweitzer(demand, users, delay, open_util, servers, start)
    names = list(stations)
    stretch: Stretch = {}
    for c, key in enumerate(keys):
        on = np.flatnonzero(demand[c] > 0)
        stretch[key] = {names[k]: float(resid[c, k] / demand[c, k] - 1.0) for k in on}
    held = queues.sum(axis=0)
    per_server = open_util / servers
    stretch[None] = {
        names[k]: float(((1.0 + held[k]) / (1.0 - per_server[k]) - 1.0) / servers[k])
        if per_server[k] < 1.0
        else math.inf
        for k in np.flatnonzero(held > 0)
    }
    return x, queues, stretch


def _contention(scn: Scenario, net: Network) -> str:
    """Why vCPUs may wait for an LP here (empty: they should not). Only vCPUs with work
    count: a parent vCPU that serves no channel never runs."""
    if any(c.cpu_load is not None for c in scn.children):
        return "background cpu_load competes for the LPs"
    if scn.parent.cpu_load is not None:
        return "the parent's cpu_load competes for its vCPUs and the LPs"
    if any(c.timer.mode != "off" for c in scn.children):
        return "guest timer ticks take the vCPUs (not in the estimate)"
    if scn.host.housekeeping.cost.mean > 0:
        return "per-VM housekeeping takes parent vCPUs (not in the estimate)"
    if scn.host.costs.halt_exit > 0:
        return "halt exits lengthen the wake-ups (not in the estimate)"
    if scn.host.threads_per_core > 1 and scn.host.smt_slowdown != 1.0:
        return "work on an LP whose SMT sibling runs a vCPU is slowed (not in the estimate)"
    if scn.host.threads_per_core > 1 and scn.host.scheduler.policy == "core":
        return "core scheduling idles an LP while another partition runs on its core"
    working = [st.name for st in net.stations.values() if st.kind == "vcpu"]
    parent = sum(1 for n in working if n.startswith("parent."))
    children = len(working) - parent
    minroot, cores = scn.host.scheduler.minroot, scn.host.cores
    if minroot:
        if children > cores - minroot:
            return f"{children} busy child vCPUs on the {cores - minroot} LPs minroot leaves"
    elif parent + children > cores:
        return f"{parent + children} busy vCPUs on {cores} LPs (overcommit)"
    pins = [lp for c in scn.children if c.pin for _ in range(c.count) for lp in c.pin]
    if len(pins) != len(set(pins)):
        return "vCPUs pinned to the same LP"
    return ""


def estimate(scn: Scenario) -> Estimate:
    """The analytic estimate of ``scn`` (module docstring)."""
    the_plan = plan(scn)
    placed = the_plan.routes()  # a child on several devices: a placement per device
    if the_plan.parent is not None:  # the parent's own streams: a class of their own
        placed.append(the_plan.parent)
    sizes = {(p.name, j): size_points(s.size) for p in placed for j, s in p.streams()}
    closed, signals, stretch = _closed_loops(scn, placed, sizes)
    rates = _rates(placed, closed, scn.run.duration)
    net = _solve(scn, placed, rates, sizes, signals)
    for kl in net.classes:
        if stretch:
            kl.stretch = stretch.get((kl.child, kl.stream), stretch[None])
    bound = Network(scn, placed, rates, {}, {}, sizes, bound=True)  # mandatory work only
    open_only = {k: (v if _is_open(placed, k) else 0.0) for k, v in rates.items()}
    bound_open = Network(scn, placed, open_only, {}, {}, sizes, bound=True)
    cores = scn.host.cores
    contention = _contention(scn, net)

    st_rows: list[dict[str, Any]] = []
    for st in net.stations.values():
        b = bound.stations.get(st.name)
        bo = bound_open.stations.get(st.name)
        closed_part = (b.bound_utilization if b else 0.0) - (bo.bound_utilization if bo else 0.0)
        st_rows.append(
            {
                "station": st.name,
                "resource": st.resource,
                "kind": st.kind,
                "servers": st.servers,
                "visits_per_s": st.lam * 1e6,
                "service_us": st.work / st.lam if st.lam else 0.0,
                "utilization": st.utilization,
                "bound_utilization": b.bound_utilization if b else 0.0,
                "open_utilization": bo.bound_utilization if bo else 0.0,
                "closed_utilization": closed_part,
                "wait_us": st.wait,
            }
        )
    # the LPs and the NVMe command rate: no queue of their own here, but limits
    st_rows.append(
        {
            "station": "host LPs",
            "resource": "host LPs",
            "kind": "lps",
            "servers": cores,
            "visits_per_s": math.nan,
            "service_us": math.nan,
            "utilization": net.lp_work / cores,
            "bound_utilization": bound.lp_bound / cores,
            "open_utilization": bound_open.lp_bound / cores,
            "closed_utilization": (bound.lp_bound - bound_open.lp_bound) / cores,
            "wait_us": 0.0,
        }
    )
    for d in scn.devices:
        dev = net.stations.get(d.name)
        if isinstance(d, Nvme) and d.max_iops is not None and dev is not None and dev.lam:
            bo = bound_open.stations.get(d.name)
            u = dev.lam * 1e6 / d.max_iops
            uo = (bo.lam if bo else 0.0) * 1e6 / d.max_iops
            st_rows.append(
                {
                    "station": f"{d.name} command rate",
                    "resource": f"device {d.name}",
                    "kind": "rate",
                    "servers": 1,
                    "visits_per_s": dev.lam * 1e6,
                    "service_us": 1e6 / d.max_iops,
                    "utilization": u,
                    "bound_utilization": u,
                    "open_utilization": uo,
                    "closed_utilization": u - uo,
                    "wait_us": 0.0,
                }
            )
    for row in st_rows:
        row["saturation_factor"] = _factor(row["open_utilization"], row["closed_utilization"])
    neck = min(st_rows, key=lambda r: r["saturation_factor"])

    child_rows: list[dict[str, Any]] = []
    stage_rows: list[dict[str, Any]] = []
    for p in placed:
        if p.on is not None:  # the child's other devices: in its own row
            continue
        ks = [k for k in net.classes if k.child == p.name]
        if not ks:
            continue
        total = sum(k.rate for k in ks)
        comps = np.zeros(len(COMPONENTS))
        mean = approx = 0.0
        for k in ks:
            m, c, a = k.latency()
            mean += k.rate * m / total
            comps += k.rate * c / total
            approx += k.rate * a / total
        visited = {leg.station.name for k in ks for leg in k.legs if leg.station is not None}
        used = p.spec.devices_used
        limits = {"host LPs", *(f"{d} command rate" for d in used)}
        on_path = [r for r in st_rows if r["station"] in visited | limits]
        busiest = max(on_path, key=lambda r: r["utilization"])
        first = min(on_path, key=lambda r: r["saturation_factor"])
        why = []
        if busiest["utilization"] > HOLDS_BELOW:
            why.append(
                f"{busiest['station']} {busiest['utilization']:.0%} busy (> {HOLDS_BELOW:.0%})"
            )
        if contention:
            why.append(contention)
        if any(s.closed for s in p.spec.streams):
            why.append("closed loop")
        if any(s.arrival == "mmpp" for s in p.spec.streams):
            why.append("bursty (mmpp) arrivals, which the estimate takes as Poisson")
        if any("receive" in s.op for s in p.spec.streams):
            why.append(
                "receive streams, which the estimate does not model (it walks them as sends)"
            )
        if scn.faults:
            why.append("faults are scheduled; the estimate is of the host without them")
        if any(s.peer is not None and s.peer.child is not None for s in p.spec.streams):
            why.append(
                "a peer child on this host: the estimate walks its sends as sends to the "
                "wire (the virtual switch's channel hops or the NIC hairpin, the peer's "
                "receive and reply, and its response are left out)"
            )
        if any(s.peer is not None and s.peer.remote is not None for s in p.spec.streams):
            why.append(
                "a remote peer: the estimate is of the host's part of the round trip (the "
                "switch, the peer's port, its response time and the reply on the receive "
                "wire are left out)"
            )
        io = scn.host.iommu
        mode = {
            "native": io.native,
            "routed": io.parent,
            "emulated": io.parent,
            "parent": io.parent,
            "hypervisor": io.hypervisor,
        }.get(p.path)
        vmode = p.spec.iommu_mode(io.mode)
        if p.path == "direct" and vmode in ("strict", "deferred"):
            why.append(
                f"the guest's virtual IOMMU ({vmode}): strict invalidations waiting for "
                "the IOMMU's queue and deferred flushes are left out (its map/unmap CPU, "
                "exits and physical-table updates are in)"
            )
        if mode in ("static", "strict", "deferred"):
            kernels = {"native": "host kernel", "hypervisor": "hypervisor"}
            whose = kernels.get(p.path, "parent kernel")
            why.append(
                f"the {whose}'s IOMMU domain "
                f"({mode}): its IOTLB walks, strict invalidations waiting for the IOMMU's "
                "queue and deferred flushes are left out (its map/unmap CPU is in)"
            )
        teams = [getattr(scn.device(d), "team", None) for d in used]
        if any(m is not None and m.policy == "round_robin" for m in teams) and any(
            s.closed for s in p.spec.streams
        ):
            why.append(
                "a round-robin team with closed-loop streams: each request's wire time is "
                "charged to one member standing for all (conservative)"
            )
        if any(scn.device(d).interrupt_moderation.frames != 1 for d in used):
            why.append("interrupt moderation, which the estimate leaves out")
        offered = sum(s.rate for s in p.spec.streams if s.rate is not None)
        looped = sum(
            closed.get((p.name, j), 0.0) * 1e6 for j, s in enumerate(p.spec.streams) if s.closed
        )
        child_rows.append(
            {
                "partition": p.name,
                "requested_path": p.requested_path,
                "io_path": p.path,
                "throughput_rps": total * 1e6,
                "mean_us": mean,
                "wait_us": approx,
                **{f"{c}_us": float(v) for c, v in zip(COMPONENTS, comps, strict=True)},
                "utilization": busiest["utilization"],
                "busiest": busiest["station"],
                "saturation_factor": first["saturation_factor"],
                "bottleneck": first["station"],
                "saturation_rps": first["saturation_factor"] * offered + looped,
                "holds": not why,
                "why_not": "; ".join(why),
            }
        )
        stage_rows += _stages(p, ks, total)
    return Estimate(
        pd.DataFrame(child_rows),
        pd.DataFrame(st_rows),
        pd.DataFrame(stage_rows),
        neck["saturation_factor"],
        neck["station"],
        neck["resource"],
    )


def _stages(p: Placement, ks: list[Klass], total: float) -> list[dict[str, Any]]:
    """Per stage of a child's path (every request passes each once): its stations, their
    utilisation, and the stage's mean wait and service, over the child's requests."""
    seen: dict[str, dict[str, Any]] = {}
    for k in ks:
        w = k.rate / total
        for leg in k.legs:
            st = leg.station
            row = seen.setdefault(
                leg.stage,
                {
                    "partition": p.name,
                    "io_path": p.path,
                    "stage": leg.stage,
                    "stations": [],
                    "utilization": 0.0,
                    "wait_us": 0.0,
                    "service_us": 0.0,
                },
            )
            if st is not None:
                if st.name not in row["stations"]:
                    row["stations"].append(st.name)
                row["utilization"] += w * st.utilization
                row["wait_us"] += w * k.wait(leg)
                row["wait_us"] += w * (st.p_idle * st.setup if leg.setup else 0.0)
            row["service_us"] += w * sum(leg.service.values())
    for row in seen.values():
        row["stations"] = ", ".join(row["stations"])
    return list(seen.values())


def _is_open(placed: list[Placement], key: tuple[str, int]) -> bool:
    for p in placed:
        if p.name == key[0]:
            return not p.spec.streams[key[1]].closed
    return True


def _factor(open_u: float, closed_u: float) -> float:
    """Factor on the open-loop rates at which a station saturates, counting the
    closed-loop streams' load at its estimate (mandatory work only)."""
    if open_u <= 0:
        return math.inf
    return max(0.0, 1.0 - closed_u) / open_u


# ---------------------------------------------------------------------------------------
# Beside the simulation
# ---------------------------------------------------------------------------------------
def beside(summary: pd.DataFrame, est: Estimate | None) -> pd.DataFrame:
    """Columns to put beside a run's summary, row for row: ``analytic_mean_us``,
    ``analytic_wait_us``, ``analytic_utilization``, ``analytic_holds`` (NaN and False
    where there is no estimate)."""
    by = None
    if est is not None and len(est.children):
        by = est.children.set_index(["partition", "io_path"])
    rows = []
    for _, r in summary.iterrows():
        key = (r["partition"], r["io_path"])
        if by is None or key not in by.index:
            rows.append((math.nan, math.nan, math.nan, False))
            continue
        a = by.loc[key]
        rows.append(
            (float(a["mean_us"]), float(a["wait_us"]), float(a["utilization"]), bool(a["holds"]))
        )
    return pd.DataFrame(
        rows,
        columns=["analytic_mean_us", "analytic_wait_us", "analytic_utilization", "analytic_holds"],
        index=summary.index,
    )


def tolerance(analytic_mean: float, wait: float, ci_half: float) -> float:
    """The largest gap between a simulated mean and the estimate that the estimate's
    approximations and the simulation's noise explain: the waits, the 95 % half-width,
    and :data:`BIAS` of the estimate."""
    return wait + ci_half + BIAS * abs(analytic_mean)


def disagreement(row: Any) -> str:
    """A warning for a summary row whose simulated mean is further from the estimate
    than :func:`tolerance` where the estimate should hold (empty otherwise, and with one
    replication: no interval)."""
    if not bool(row.get("analytic_holds", False)):
        return ""
    a, m = row.get("analytic_mean_us"), row.get("mean_us")
    lo, hi = row.get("mean_us_ci_low"), row.get("mean_us_ci_high")
    values = (a, m, lo, hi)
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return ""
    tol = tolerance(float(a), float(row["analytic_wait_us"]), (float(hi) - float(lo)) / 2)
    gap = float(m) - float(a)
    if abs(gap) <= tol:
        return ""
    return (
        f"analytic: mean {float(m):.3g} µs is {abs(gap):.3g} µs "
        f"{'above' if gap > 0 else 'below'} the analytic {float(a):.3g} µs, beyond the "
        f"{tol:.3g} µs its waits and the CI explain"
    )


def format_estimate(est: Estimate, children: Iterable[str] | None = None) -> str:
    """The estimate as text: per child, mean latency, busiest station, saturation."""
    df = est.children
    if children is not None:
        df = df[df["partition"].isin(list(children))]
    lines = [
        f"{'child':14} {'path':9} {'mean':>9} {'busiest station':28} {'util':>5} "
        f"{'saturates at':>13}  {'bottleneck'}"
    ]
    for _, r in df.iterrows():
        lines.append(
            f"{r['partition']:14} {r['io_path']:9} {r['mean_us']:8.3g}µ {r['busiest']:28} "
            f"{r['utilization']:5.0%} {r['saturation_factor']:12.3g}×  {r['bottleneck']}"
        )
    return "\n".join(lines)
