"""The work budget: what one replication of a scenario would simulate, estimated before
it runs, against ``run.request_budget``.

The estimate counts, per replication: the **requests** its streams issue; the **events**
that are not requests, each as one request (most cost less): CPU-load bursts, scheduler
events (time slices, credit ticks, accounting periods, one per vCPU and stream set up),
MMPP state switches (a bursty stream switches state 2 · duration / (length + between)
times, however few requests it issues) and occupancy samples (one per trace interval);
and the **time of slow sampler draws**, in requests' worth: a sampler draws in blocks of
:data:`~sim.scenario.distributions.BLOCK` values, and a draw costing at least
:data:`SLOW_DRAW_SECONDS` (as measured once, :func:`~sim.scenario.distributions.
draw_seconds`) counts as its time over :data:`REQUEST_SECONDS`, the time one simulated
request takes. The analytic estimate beside the results integrates each stream's size over
:data:`~sim.scenario.distributions.QUANTILE_POINTS` quantiles: a slow size distribution's
quantiles count the same way.

Only the refusal can depend on the measurement (a run's results never do: it draws from a
generator of its own), and only for a sampler grossly slower than NumPy's: below
:data:`SLOW_DRAW_SECONDS` a draw counts nothing, so the usual distributions (NumPy's, not
measured; scipy's, a microsecond or so a draw) leave the estimate as it was on any
machine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.scenario import units
from sim.scenario.distributions import (
    BLOCK,
    QUANTILE_POINTS,
    Distribution,
    draw_seconds,
    quantile_seconds,
)
from sim.scenario.fields import LONGEST, MAX_TIME_US
from sim.scenario.hardware import Disk, Nic, Nvme
from sim.scenario.plan import parent_spec, plan
from sim.scenario.schema import Scenario
from sim.scenario.workload import Child, Stream

MAX_TRACE_VALUES = 10_000_000
"""Most values the occupancy trace of one run may hold."""

REQUEST_SECONDS = 1 / 30_000
"""Wall time one simulated request takes, about (its events, its record, its row: some 30k
requests/s on one core): the unit a slow sampler's draws are counted in."""

SLOW_DRAW_SECONDS = 1e-4
"""The margin: a draw counts only when it takes at least this (3 requests' time, some
3,000 times a NumPy draw, 100 times a usual scipy one), so that timing noise (a factor of
2 or so on a loaded machine) never makes a usual sampler refuse a run. A draw just under
it makes a request up to about 4 times as long as counted."""

SAMPLERS = "requests' worth of sampler draws"
"""The budget's name for the time of slow sampler draws."""


def _device_time(s: Stream, d: Nic | Nvme | Disk, size: float) -> tuple[float, float]:
    """(µs one request of ``s`` of ``size`` bytes spends in ``d`` unqueued, requests/s
    ``d`` carries at most), for the stream's op mix."""
    if isinstance(d, Nic):  # a team's members each carry their own (at most)
        wire = d.wire_time(size)
        return d.latency.mean + wire, d.ports * 1e6 / wire if wire > 0 else math.inf
    if isinstance(d, Disk):
        service = d.positioning_moments()[0] + d.transfer_time(size)
        return service, d.spindles * 1e6 / service
    top = max(s.op.values())
    share = {op: w / top for op, w in s.op.items()}  # weights of 1e308 would add up to inf
    media = sum(w * d.media(op).mean for op, w in share.items())
    service = media / sum(share.values()) + d.transfer_time(size)
    carried = d.channels * 1e6 / service if service > 0 else math.inf
    return service, carried if d.max_iops is None else min(carried, d.max_iops)


def _peer_time(s: Stream, d: Nic | Nvme | Disk, size: float) -> float:
    """µs a request of ``s`` spends away at its peer, unqueued: for a remote one
    (sim.model.devices.RemotePeer) the switch both ways, the peer's port both ways, the
    response time and the reply on the child's receive wire; for a child on this host its
    response time; 0 without a peer."""
    if s.peer is None or not isinstance(d, Nic):
        return 0.0
    if s.peer.remote is None:  # a child on this host: its response time (hops unqueued
        return s.peer.response.mean if s.peer.response is not None else 0.0  # not counted)
    r = s.peer.remote
    reply = max(1.0, r.reply_size.mean)
    return 2 * r.switch_latency + d.wire_time(size) + r.response.mean + 2 * d.wire_time(reply)


class _Draws:
    """The time of slow sampler draws, in requests' worth, and the slowest sampler."""

    def __init__(self) -> None:
        self.total = 0.0
        self.slowest: tuple[float, Distribution] | None = None

    def add(self, dist: Distribution | None, instances: float, uses: float) -> None:
        """``instances`` samplers of ``dist``, each used ``uses`` times a replication: each
        draws whole blocks."""
        if dist is None or not uses > 0:
            return
        self._count(dist, instances * _blocks(uses) * BLOCK, draw_seconds(dist))

    def quantiles(self, dist: Distribution, instances: float, replications: int) -> None:
        """The analytic estimate's quantiles of a size (once a run: a share a replication)."""
        per_run = instances * QUANTILE_POINTS
        self._count(dist, per_run / replications, quantile_seconds(dist))

    def _count(self, dist: Distribution, values: float, seconds: float) -> None:
        if seconds < SLOW_DRAW_SECONDS:
            return
        self.total += values * seconds / REQUEST_SECONDS
        if self.slowest is None or seconds > self.slowest[0]:
            self.slowest = (seconds, dist)

    def note(self) -> str:
        """What the slowest sampler costs, for the refusal."""
        if self.slowest is None:
            return ""
        seconds, dist = self.slowest
        return (
            f": scipy.stats.{dist.params['scipy_name']} takes about "
            f"{units.format_time(seconds * 1e6)} a draw, as long as "
            f"{seconds / REQUEST_SECONDS:,.0f} simulated requests"
        )


def _blocks(uses: float) -> float:
    return math.ceil(uses / BLOCK) if math.isfinite(uses) else math.inf


def work_estimate(scn: Scenario) -> tuple[dict[str, float], tuple[tuple[Any, ...], str] | None]:
    """What one replication of ``scn`` simulates, about: ``({kind: count}, problem)``.

    Requests: an open-loop stream issues duration × rate; a closed-loop one at most
    outstanding / (think time + the guest's costs + the device's time) per µs (Little's
    law with the least time a request keeps its slot: queueing, the parent, the IOMMU and
    interrupts only add), at most what the child's vCPUs (the guest's costs) and the
    device carry. CPU-load bursts: duration / (busy + idle) per loaded vCPU. Scheduler
    events: time slices, credit ticks and accounting periods, and one per vCPU and per
    stream set up. MMPP state switches: 2 · duration / (length + between) per bursty
    stream. Timer ticks: hz · duration per vCPU of a child with a timer (tickless: at
    most). Housekeeping rounds: duration / interval per child instance. Occupancy samples:
    one per trace interval. Slow sampler draws, in requests'
    worth (module docstring). ``problem`` names a loop that would not let simulated time
    advance."""
    parts, problem, _ = _estimate(scn)
    return parts, problem


def _estimate(
    scn: Scenario,
) -> tuple[dict[str, float], tuple[tuple[Any, ...], str] | None, str]:
    """:func:`work_estimate`, and what the slowest sampler costs (for the refusal)."""
    run, host = scn.run, scn.host
    duration = run.duration
    requests = bursts = switches = 0.0
    closed: dict[str, float] = {}
    carried: dict[str, float] = {}
    issued: list[tuple[Child, Stream, Nic | Nvme | Disk, float]] = []  # a stream's requests/s
    vcpus, streams = scn.parent.vcpus, 0
    for loc, c in _partitions(scn):
        streams += c.count * len(c.streams)
        if loc[0] == "parent":  # its own streams: on its vCPUs, at its driver's costs
            drv = scn.parent.driver
            guest_cpu = drv.request_cost.mean + drv.interrupt_cost.mean
        else:
            vcpus += c.count * c.vcpus
            guest_cpu = c.guest.submit_cost.mean + c.guest.complete_cost.mean
        for j, s in enumerate(c.streams):
            if c.device_of(s) is None:
                continue
            dev = scn.device(str(c.device_of(s)))
            largest = s.size.largest if math.isfinite(s.size.largest) else s.size.mean
            if _device_time(s, dev, largest)[0] > MAX_TIME_US:
                return (
                    {},
                    (
                        (*loc, "streams", j, "size"),
                        f"one request would keep device '{dev.name}' busy {LONGEST}",
                    ),
                    "",
                )
            offered = s.offered(duration)  # a trace's arrivals, a profile's mean rate
            if offered is not None:
                requests += c.count * offered * duration / 1e6
                issued.append((c, s, dev, offered))
                if s.arrival == "mmpp":
                    b = s.burst
                    cycle = b.length + b.between if b is not None else 100e3
                    switches += c.count * 2 * duration / cycle
                continue
            if s.outstanding is None:
                continue
            in_device, most = _device_time(s, dev, s.size.mean)
            cycle = s.think.mean + guest_cpu + in_device + _peer_time(s, dev, s.size.mean)
            if cycle <= 0:
                return (
                    {},
                    (
                        (*loc, "streams", j),
                        "a closed-loop request here takes no time (no think time, guest cost or "
                        "device time): simulated time would not advance",
                    ),
                    "",
                )
            per_s = min(s.outstanding * 1e6 / cycle, most)
            if guest_cpu > 0:
                per_s = min(per_s, c.vcpus * 1e6 / guest_cpu)
            closed[dev.name] = closed.get(dev.name, 0.0) + c.count * per_s
            carried[dev.name] = max(carried.get(dev.name, 0.0), most)
            issued.append((c, s, dev, per_s))
        load = c.cpu_load
        if load is not None and load.busy is not None:
            cycle = load.busy.mean + load.idle.mean
            if cycle <= 0:
                return (
                    {},
                    (
                        (*loc, "cpu_load"),
                        "busy and idle are both 0: simulated time would not advance",
                    ),
                    "",
                )
            loaded = len(set(load.vcpus)) if load.vcpus else c.vcpus
            bursts += c.count * loaded * duration / cycle
    load = scn.parent.cpu_load
    if load is not None and load.busy is not None:
        cycle = load.busy.mean + load.idle.mean
        if cycle <= 0:
            return (
                {},
                (
                    ("parent", "cpu_load"),
                    "busy and idle are both 0: simulated time would not advance",
                ),
                "",
            )
        bursts += len(set(load.vcpus or range(scn.parent.vcpus))) * duration / cycle
    # every tick and housekeeping round is a process, a timeout and a work item
    ticks = sum(
        c.count * c.vcpus * c.timer.hz * duration / 1e6
        for c in scn.children
        if c.timer.mode != "off"
    )
    rounds = 0.0
    if host.housekeeping.cost.mean > 0:
        vms = sum(c.count for c in scn.children if c.io_path != "native")
        rounds = vms * duration / host.housekeeping.interval
    requests += sum(min(x, carried[d]) for d, x in closed.items()) * duration / 1e6
    sch = host.scheduler
    events = vcpus + streams + min(host.cores, vcpus) * duration / sch.time_slice
    if sch.policy == "credit":
        events += host.cores * duration / sch.tick + vcpus * duration / sch.accounting_period
    interval = duration / 200 if run.trace_interval is None else run.trace_interval
    samples = duration / interval if interval > 0 else 0.0
    draws = _sampler_draws(scn, issued, closed, carried)
    parts = {
        "requests": requests,
        "CPU-load bursts": bursts,
        "timer ticks": ticks,
        "housekeeping rounds": rounds,
        "scheduler events": events,
        "MMPP state switches": switches,
        "occupancy samples": samples,
        SAMPLERS: draws.total,
    }
    return parts, None, draws.note()


def _partitions(scn: Scenario) -> list[tuple[tuple[Any, ...], Child]]:
    """Every partition whose streams a run issues, with its location: each child, and the
    parent with its own streams (``parent.streams``, as :func:`~sim.scenario.plan.parent_spec`)."""
    out: list[tuple[tuple[Any, ...], Child]] = [
        (("children", i), c) for i, c in enumerate(scn.children)
    ]
    if scn.parent.streams:
        out.append((("parent",), parent_spec(scn)))
    return out


def _sampler_draws(
    scn: Scenario,
    issued: list[tuple[Child, Stream, Nic | Nvme | Disk, float]],
    closed: Mapping[str, float],
    carried: Mapping[str, float],
) -> _Draws:
    """The slow draws of every sampler a replication uses (one per stream, op, child
    instance, loaded vCPU, ... as the model makes them), each used about once a request
    (or burst, or register access) of its owner."""
    seconds = scn.run.duration / 1e6
    draws = _Draws()
    per_child: dict[int, float] = {}  # requests of one instance of a child
    for c, s, dev, per_s in issued:
        if s.outstanding is not None and closed[dev.name] > carried[dev.name]:
            per_s *= carried[dev.name] / closed[dev.name]  # the device's share of its loops
        n = per_s * seconds
        per_child[id(c)] = per_child.get(id(c), 0.0) + n
        draws.add(s.size, c.count, n)
        draws.quantiles(s.size, c.count, scn.run.replications)
        if s.outstanding is not None:
            draws.add(s.think, c.count, n)
        if s.peer is not None and s.peer.remote is not None:
            draws.add(s.peer.remote.response, c.count, n)
            draws.add(s.peer.remote.reply_size, c.count, n)
        elif s.peer is not None:
            draws.add(s.peer.response, c.count, n)
            draws.add(s.peer.reply_size, c.count, n)
        top = max(s.op.values())
        total = sum(w / top for w in s.op.values())
        if isinstance(dev, Disk):
            continue  # uniform draws in blocks: cheap
        for op, w in s.op.items():
            service = (
                dev.latency if isinstance(dev, Nic) else dev.read if op == "read" else dev.write
            )
            draws.add(service, c.count, n * w / top / total)
    through_parent = 0.0
    own = [c for loc, c in _partitions(scn) if loc[0] == "parent"]
    for c in own:  # the parent's own streams: its driver's costs, counted below
        through_parent += per_child.get(id(c), 0.0)
    for c in scn.children:
        n = per_child.get(id(c), 0.0)
        draws.add(c.guest.submit_cost, c.count, n)
        draws.add(c.guest.complete_cost, c.count, n)
        path = c.io_path
        if path == "routed" and scn.in_hypervisor(c.device):
            path = "hypervisor"  # no parent data path: routed children fall back to it
        if path == "emulated":
            draws.add(c.emulated.access_cost, c.count, n * c.emulated.exits_per_request)
        if path == "hypervisor":
            draws.add(scn.host.hypervisor_io.request_cost, c.count, n)
            draws.add(scn.host.hypervisor_io.completion_cost, c.count, n)
        if path in ("routed", "direct", "emulated"):  # direct may fall back to routed
            through_parent += c.count * n
        load = c.cpu_load
        if load is not None and load.busy is not None:
            loaded = len(set(load.vcpus)) if load.vcpus else c.vcpus
            per_vcpu = seconds * 1e6 / (load.busy.mean + load.idle.mean)
            draws.add(load.busy, c.count * loaded, per_vcpu)
            draws.add(load.idle, c.count * loaded, per_vcpu)
        if c.timer.mode != "off":
            draws.add(c.timer.handler_cost, c.count * c.vcpus, seconds * c.timer.hz)
    load = scn.parent.cpu_load
    if load is not None and load.busy is not None:
        loaded = len(set(load.vcpus)) if load.vcpus else scn.parent.vcpus
        per_vcpu = seconds * 1e6 / (load.busy.mean + load.idle.mean)
        draws.add(load.busy, loaded, per_vcpu)
        draws.add(load.idle, loaded, per_vcpu)
    hk = scn.host.housekeeping
    if hk.cost.mean > 0:
        draws.add(hk.cost, sum(c.count for c in scn.children), seconds * 1e6 / hk.interval)
    vsp, driver = scn.parent.vsp, scn.parent.driver
    for dist in (vsp.request_cost, vsp.completion_cost, driver.request_cost, driver.interrupt_cost):
        draws.add(dist, 1, through_parent)
    return draws


def _sci(x: float) -> str:
    """3.2e10, 1e7: a count as a message shows it."""
    if not math.isfinite(x):
        return "1e308"
    if x < 1e4:
        return f"{x:.0f}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def budget_problem(scn: Scenario, runs: int = 1, what: str = "run") -> str | None:
    """The message if ``runs`` runs of ``scn`` (its replications each) would simulate more
    than ``run.request_budget`` (see :func:`work_estimate`), else None."""
    parts, problem, note = _estimate(scn)
    return problem[1] if problem else _over_budget(scn, parts, runs, what, note)


def _over_budget(
    scn: Scenario, parts: Mapping[str, float], runs: int, what: str, note: str = ""
) -> str | None:
    per_replication = sum(parts.values())
    total = per_replication * scn.run.replications * runs
    budget = scn.run.request_budget
    if total <= budget:
        return None
    named = [k for k, v in parts.items() if not v < 0.1 * per_replication]
    about = "about" if math.isfinite(total) else "more than"
    return (
        f"this {what} would simulate {about} {_sci(total)} {' and '.join(named)} (budget "
        f"{_sci(budget)}; raise it with --budget or run.request_budget)"
        + (note if SAMPLERS in named else "")
    )


def check_budget(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """The run's estimated work against its budget, and the size of its occupancy trace."""
    parts, problem, note = _estimate(scn)
    if problem:
        return problem
    message = _over_budget(scn, parts, 1, "run", note)
    if message:
        return ("run", "duration"), message
    run = scn.run
    interval = run.duration / 200 if run.trace_interval is None else run.trace_interval
    if interval > 0:
        levels = 2 * len(scn.devices) + 2 * len(plan(scn).channels())
        values = math.floor(run.duration / interval) * levels * run.replications
        if values > MAX_TRACE_VALUES:
            return ("run", "trace_interval"), (
                f"the occupancy trace would hold about {_sci(values)} values (intervals × "
                f"rings and device queues × replications); at most {_sci(MAX_TRACE_VALUES)}: "
                "give a longer trace_interval, or 0 for none"
            )
    return None
