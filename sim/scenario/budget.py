"""The work budget: what one replication of a scenario would simulate, estimated before
it runs, against ``run.request_budget``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.scenario.fields import LONGEST, MAX_TIME_US
from sim.scenario.hardware import Nic, Nvme
from sim.scenario.plan import plan
from sim.scenario.schema import Scenario
from sim.scenario.workload import Stream

MAX_TRACE_VALUES = 10_000_000
"""Most values the occupancy trace of one run may hold."""


def _device_time(s: Stream, d: Nic | Nvme, size: float) -> tuple[float, float]:
    """(µs one request of ``s`` of ``size`` bytes spends in ``d`` unqueued, requests/s
    ``d`` carries at most), for the stream's op mix."""
    if isinstance(d, Nic):
        wire = d.wire_time(size)
        return d.latency.mean + wire, 1e6 / wire if wire > 0 else math.inf
    top = max(s.op.values())
    share = {op: w / top for op, w in s.op.items()}  # weights of 1e308 would add up to inf
    media = sum(w * d.media(op).mean for op, w in share.items())
    service = media / sum(share.values()) + d.transfer_time(size)
    carried = d.channels * 1e6 / service if service > 0 else math.inf
    return service, carried if d.max_iops is None else min(carried, d.max_iops)


def work_estimate(scn: Scenario) -> tuple[dict[str, float], tuple[tuple[Any, ...], str] | None]:
    """What one replication of ``scn`` simulates, about: ``({kind: count}, problem)``.

    Requests: an open-loop stream issues duration × rate; a closed-loop one at most
    outstanding / (think time + the guest's costs + the device's time) per µs (Little's
    law with the least time a request keeps its slot: queueing, the parent, the IOMMU and
    interrupts only add), at most what the child's vCPUs (the guest's costs) and the
    device carry. CPU-load bursts: duration / (busy + idle) per loaded vCPU. Scheduler
    events: time slices, credit ticks and accounting periods, and one per vCPU and per
    stream set up. ``problem`` names a loop that would not let simulated time advance."""
    run, host = scn.run, scn.host
    duration = run.duration
    requests = bursts = 0.0
    closed: dict[str, float] = {}
    carried: dict[str, float] = {}
    vcpus, streams = scn.parent.vcpus, 0
    for i, c in enumerate(scn.children):
        vcpus += c.count * c.vcpus
        streams += c.count * len(c.streams)
        guest_cpu = c.guest.submit_cost.mean + c.guest.complete_cost.mean
        for j, s in enumerate(c.streams):
            if c.device is None:
                continue
            dev = scn.device(c.device)
            largest = s.size.largest if math.isfinite(s.size.largest) else s.size.mean
            if _device_time(s, dev, largest)[0] > MAX_TIME_US:
                return {}, (
                    ("children", i, "streams", j, "size"),
                    f"one request would keep device '{dev.name}' busy {LONGEST}",
                )
            if s.rate is not None:
                requests += c.count * s.rate * duration / 1e6
                continue
            if s.outstanding is None:
                continue
            in_device, most = _device_time(s, dev, s.size.mean)
            cycle = s.think.mean + guest_cpu + in_device
            if cycle <= 0:
                return {}, (
                    ("children", i, "streams", j),
                    "a closed-loop request here takes no time (no think time, guest cost or "
                    "device time): simulated time would not advance",
                )
            per_s = min(s.outstanding * 1e6 / cycle, most)
            if guest_cpu > 0:
                per_s = min(per_s, c.vcpus * 1e6 / guest_cpu)
            closed[dev.name] = closed.get(dev.name, 0.0) + c.count * per_s
            carried[dev.name] = max(carried.get(dev.name, 0.0), most)
        load = c.cpu_load
        if load is not None and load.busy is not None:
            cycle = load.busy.mean + load.idle.mean
            if cycle <= 0:
                return {}, (
                    ("children", i, "cpu_load"),
                    "busy and idle are both 0: simulated time would not advance",
                )
            loaded = len(set(load.vcpus)) if load.vcpus else c.vcpus
            bursts += c.count * loaded * duration / cycle
    requests += sum(min(x, carried[d]) for d, x in closed.items()) * duration / 1e6
    sch = host.scheduler
    events = vcpus + streams + min(host.cores, vcpus) * duration / sch.time_slice
    if sch.policy == "credit":
        events += host.cores * duration / sch.tick + vcpus * duration / sch.accounting_period
    parts = {"requests": requests, "CPU-load bursts": bursts, "scheduler events": events}
    return parts, None


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
    parts, problem = work_estimate(scn)
    return problem[1] if problem else _over_budget(scn, parts, runs, what)


def _over_budget(scn: Scenario, parts: Mapping[str, float], runs: int, what: str) -> str | None:
    per_replication = sum(parts.values())
    total = per_replication * scn.run.replications * runs
    budget = scn.run.request_budget
    if total <= budget:
        return None
    named = " and ".join(k for k, v in parts.items() if not v < 0.1 * per_replication)
    about = "about" if math.isfinite(total) else "more than"
    return (
        f"this {what} would simulate {about} {_sci(total)} {named} (budget {_sci(budget)}; "
        "raise it with --budget or run.request_budget)"
    )


def check_budget(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """The run's estimated work against its budget, and the size of its occupancy trace."""
    parts, problem = work_estimate(scn)
    if problem:
        return problem
    message = _over_budget(scn, parts, 1, "run")
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
