"""Devices: per-function queues, arbitration, NVMe queue depth and command-rate limit."""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import pytest
import simpy
from conftest import bare_vcpus

from sim.analysis.stats import paired, t_interval
from sim.model.devices import NvmeDevice
from sim.model.env import SimEnv
from sim.model.host import Host
from sim.model.metrics import DEVICE_QUEUE
from sim.model.request import Record, Request
from sim.scenario import Nvme, Scenario, loads

REPLICATIONS = 8
CONFIDENCE = 0.999
"""Intervals in assertions are at 99.9 % (as ``hvsim validate``): a correct model fails a
test with probability 0.001, not one time in twenty."""
T_SUBMIT, T_COMPLETE = 4, 5  # fields of a record (sim.model.workloads.Record)
COMPONENT0 = 6  # first latency component in a record


def simulate(scn: Scenario, replication: int) -> Host:
    """One replication of ``scn``, returning the host with its devices and streams."""
    env = SimEnv(scn, scn.run.seed, replication)
    host = Host(env)
    host.start()
    env.run(until=scn.run.duration)
    return host


def records(host: Host, child: str) -> list[Record]:
    """The completed requests of ``child`` submitted after the warm-up."""
    warmup = host.env.scenario.run.warmup
    return [
        tuple(r)
        for s in host.streams
        if s.child.name == child
        for r in s.done.whole()
        if r[T_SUBMIT] >= warmup
    ]


def completions(host: Host, child: str) -> int:
    """Requests of ``child`` that completed inside the measurement window (a throughput
    count without the bias of dropping the requests in flight at either edge)."""
    warmup = host.env.scenario.run.warmup
    return sum(
        1
        for s in host.streams
        if s.child.name == child
        for r in s.done.whole()
        if r[T_COMPLETE] > warmup
    )


def within(values: Sequence[float], expected: float, granularity: float) -> bool:
    """The replications' mean is ``expected`` within its Student-t half-width at
    ``CONFIDENCE`` plus ``granularity`` (the resolution of a count-based metric)."""
    mean, low, high = t_interval(values, CONFIDENCE)
    return abs(mean - expected) <= (high - low) / 2 + granularity


# -- tier 1: exact order on a hand-built drive -------------------------------------------
def _drive(**fields: Any) -> tuple[SimEnv, NvmeDevice]:
    scn = loads(
        """
name: tiny
devices: [{name: ssd, type: nvme, vfs: 2}]
children: [{name: c, cpu_load: {}}]
"""
    )
    spec = Nvme(
        **{
            "name": "ssd",
            "type": "nvme",
            "channels": 1,
            "read": "10us",
            "bandwidth": "1000GB/s",
            "vfs": 2,
            "max_iops": None,
            **fields,
        }
    )
    env = SimEnv(scn, seed=1)
    return env, NvmeDevice(env, spec)


def _submit(
    env: SimEnv, dev: NvmeDevice, at: float, label: str, vf: int | None, log: list[Any]
) -> None:
    (v,) = bare_vcpus(env)
    req = Request(0, 0, 0, at, v, v, lambda: 10.0, vf)

    def go() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at)
        yield from dev.serve(req, 0.0)
        log.append((label, env.now - 10.0, req.c[DEVICE_QUEUE]))

    env.process(go())


def _order(arbitration: str, pf_weight: int = 1) -> list[tuple[str, float, float]]:
    env, dev = _drive(arbitration=arbitration, pf_weight=pf_weight)
    log: list[Any] = []
    for k in range(3):
        _submit(env, dev, 0.0, f"pf{k}", None, log)
    _submit(env, dev, 1.0, "vf0", 0, log)
    env.run()
    return log


def test_fifo_serves_in_arrival_order_across_functions() -> None:
    """fifo: the VF's request, last to arrive, waits for all three of the PF's."""
    assert _order("fifo") == [
        ("pf0", 0.0, 0.0),
        ("pf1", 10.0, 10.0),
        ("pf2", 20.0, 20.0),
        ("vf0", 30.0, 29.0),
    ]


def test_round_robin_alternates_functions() -> None:
    """round_robin: after the PF's first request it is the VF's turn, queue lengths aside."""
    assert _order("round_robin") == [
        ("pf0", 0.0, 0.0),
        ("vf0", 10.0, 9.0),
        ("pf1", 20.0, 20.0),
        ("pf2", 30.0, 30.0),
    ]


def test_pf_weight_gives_the_pf_consecutive_starts() -> None:
    """pf_weight 2: the PF starts two requests per turn before the VF's."""
    assert _order("round_robin", pf_weight=2) == [
        ("pf0", 0.0, 0.0),
        ("pf1", 10.0, 10.0),
        ("vf0", 20.0, 19.0),
        ("pf2", 30.0, 30.0),
    ]


def test_max_iops_spaces_starts() -> None:
    """Three commands at once on four free channels start 1/max_iops apart."""
    env, dev = _drive(channels=4, max_iops="100k")
    log: list[Any] = []
    for k in range(3):
        _submit(env, dev, 0.0, f"c{k}", None, log)
    env.run()
    assert [(s, q) for _, s, q in log] == [(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)]
    assert env.counters["ssd.iops_limited"] == 2


def test_queue_depth_holds_requests_on_the_host() -> None:
    """queue_depth 3: two commands in the drive; the third waits outside for an entry."""
    env, dev = _drive(channels=4, queue_depth=3)
    log: list[Any] = []
    for k in range(3):
        _submit(env, dev, 0.0, f"c{k}", None, log)
    env.run()
    assert [(s, q) for _, s, q in log] == [(0.0, 0.0), (0.0, 0.0), (10.0, 10.0)]
    assert dev.servers.functions[None].max_in_device == 2
    assert dev.servers.backlog.max == 1
    assert dev.servers.queue_level.max == 0
    assert env.counters["ssd.queue_full"] == 1


# -- one function: fifo and round robin are the same device ------------------------------
ONE_FUNCTION = """
name: one
host: {cores: 4}
parent: {vcpus: 2}
devices:
  - {name: nic, type: nic, vfs: 1}
  - {name: ssd, type: nvme, channels: 2, vfs: 0, max_iops: 200k}
children:
  - name: web
    io_path: direct
    device: nic
    streams: [{op: send, size: {dist: lognormal, mean: 16KiB, cv: 1.5}, rate: 100k}]
  - name: db
    count: 2
    io_path: routed
    device: ssd
    streams: [{op: {read: 0.7, write: 0.3}, size: 4KiB, rate: 10k}]
run: {duration: 40ms, warmup: 5ms, seed: 3}
"""


def test_one_function_fifo_and_round_robin_are_identical() -> None:
    """With one function in use per device (a VF on the NIC; the PF, shared by two routed
    children, on the drive) the arbitration changes nothing, request by request."""
    fifo = {"devices[nic].arbitration": "fifo", "devices[ssd].arbitration": "fifo"}
    a = simulate(loads(ONE_FUNCTION), 0)
    b = simulate(loads(ONE_FUNCTION, overrides=fifo), 0)
    assert any(r[COMPONENT0 + DEVICE_QUEUE] > 0 for s in a.streams for r in s.done.whole())
    for sa, sb in zip(a.streams, b.streams, strict=True):
        assert np.array_equal(sa.done.whole(), sb.done.whole())
    for name in ("nic", "ssd"):
        assert a.devices[name].utilization() == b.devices[name].utilization()


# -- round robin protects a light function from a heavy one ------------------------------
FAIRNESS = """
name: fairness
host: {cores: 8}
parent: {vcpus: 1}
devices: [{name: nic, type: nic, vfs: 2}]
children:
  - name: heavy
    vcpus: 2
    io_path: direct
    device: nic
    streams: [{op: send, size: 64KiB, outstanding: 16}]
  - name: light
    vcpus: 1
    io_path: direct
    device: nic
    streams: [{op: send, size: 1KiB, rate: 5k}]
run: {duration: 60ms, warmup: 10ms, seed: 11}
"""


def test_round_robin_shields_a_light_vf_from_a_heavy_one() -> None:
    """A heavy closed-loop VF keeps the port busy with a deep queue: under fifo a light
    VF's request waits behind that queue, under round robin for about half a heavy
    transmission (the residual of the one on the wire)."""
    waits: dict[str, list[float]] = {"fifo": [], "round_robin": []}
    for arbitration, out in waits.items():
        scn = loads(FAIRNESS, overrides={"devices[nic].arbitration": arbitration})
        for r in range(REPLICATIONS):
            host = simulate(scn, r)
            assert host.devices["nic"].utilization() > 0.95
            light = records(host, "light")
            out.append(float(np.mean([x[COMPONENT0 + DEVICE_QUEUE] for x in light])))
    rr_hi = t_interval(waits["round_robin"], CONFIDENCE)[2]
    ff_lo = t_interval(waits["fifo"], CONFIDENCE)[1]
    assert rr_hi < ff_lo
    nic = loads(FAIRNESS).devices[0]
    heavy_wire = (65536 + math.ceil(65536 / nic.mtu) * nic.frame_overhead) * 8e6 / nic.line_rate
    assert rr_hi < heavy_wire  # on average less than the transmission in progress
    cmp = paired(waits["fifo"], waits["round_robin"], CONFIDENCE)
    assert cmp["ratio_ci_high"] < 1.0


# -- the PF is one function: routed children share one share ---------------------------
SHARING = """
name: sharing
host: {cores: 8}
parent: {vcpus: 2}
devices: [{name: nic, type: nic, vfs: 1}]
children:
  - name: routed
    count: 2
    vcpus: 1
    io_path: routed
    device: nic
    streams: [{op: send, size: {dist: lognormal, mean: 256KiB, cv: 0.5}, outstanding: 8}]
  - name: direct
    vcpus: 1
    io_path: direct
    device: nic
    streams: [{op: send, size: {dist: lognormal, mean: 256KiB, cv: 0.5}, outstanding: 8}]
run: {duration: 60ms, warmup: 10ms, seed: 5}
"""


def _shares(overrides: dict[str, Any]) -> tuple[list[float], list[float], list[float], int]:
    """Per replication: the direct child's share of the port's completions, each routed
    child's, and the smallest total count."""
    direct: list[float] = []
    routed_1: list[float] = []
    routed_2: list[float] = []
    fewest = 1 << 62
    scn = loads(SHARING, overrides=overrides)
    for r in range(REPLICATIONS):
        host = simulate(scn, r)
        n = {c: completions(host, c) for c in ("direct", "routed-1", "routed-2")}
        total = sum(n.values())
        fewest = min(fewest, total)
        direct.append(n["direct"] / total)
        routed_1.append(n["routed-1"] / total)
        routed_2.append(n["routed-2"] / total)
    return direct, routed_1, routed_2, fewest


@pytest.mark.parametrize("pf_weight", [1, 2])
def test_routed_children_share_the_pf(pf_weight: int) -> None:
    """Three backlogged children: the direct one's VF gets 1/(1 + pf_weight) of the port
    under round robin; the two routed children split the PF's share between them."""
    direct, r1, r2, n = _shares({"devices[nic].pf_weight": pf_weight})
    assert within(direct, 1.0 / (1 + pf_weight), granularity=2.0 / n)
    pf = [a + b for a, b in zip(r1, r2, strict=True)]
    assert within(pf, pf_weight / (1 + pf_weight), granularity=2.0 / n)
    if pf_weight == 1:  # each routed child gets less than the direct one
        for routed in (r1, r2):
            assert paired(direct, routed, CONFIDENCE)["diff_ci_high"] < 0


def test_fifo_gives_the_pf_a_share_per_request_queued() -> None:
    """Under fifo the routed children, with twice the requests queued, take more of the
    port than the PF's round-robin share: the direct child gets less than half."""
    direct_rr, *_ = _shares({})
    direct_ff, *_ = _shares({"devices[nic].arbitration": "fifo"})
    assert paired(direct_rr, direct_ff, CONFIDENCE)["diff_ci_high"] < 0


# -- NVMe: command-rate limit and queue depth under a closed loop ------------------------
CLOSED = """
name: closed
host: {cores: 4}
devices:
  - {name: ssd, type: nvme, channels: 8, read: {dist: exponential, mean: 20us},
     bandwidth: 3.2GB/s, vfs: 0}
children:
  - name: c
    vcpus: 2
    io_path: native
    device: ssd
    guest: {submit_cost: 0us, complete_cost: 0us}
    streams: [{op: read, size: 1B, outstanding: 32}]
run: {duration: 30ms, warmup: 5ms, seed: 9}
"""


def _throughput(overrides: dict[str, Any]) -> tuple[list[float], float, list[Host]]:
    """Per replication: completions per second in the window; and one request's worth of
    throughput (the resolution of the count)."""
    scn = loads(CLOSED, overrides=overrides)
    window_s = (scn.run.duration - scn.run.warmup) / 1e6
    hosts = [simulate(scn, r) for r in range(REPLICATIONS)]
    return [completions(h, "c") / window_s for h in hosts], 1.0 / window_s, hosts


def test_channels_bound_the_drive_without_an_iops_limit() -> None:
    """max_iops null: 8 always-busy channels of mean 20 µs complete 400k commands/s."""
    rates, one, _ = _throughput({"devices[ssd].max_iops": None})
    assert within(rates, 8 / 20e-6, granularity=one)


def test_max_iops_caps_throughput() -> None:
    """max_iops 100k, below the channels' 400k/s: the drive completes 100k commands/s."""
    rates, one, hosts = _throughput({"devices[ssd].max_iops": "100k"})
    assert within(rates, 100e3, granularity=one)
    assert all(h.env.counters["ssd.iops_limited"] > 0 for h in hosts)
    # requests wait in the drive with channels free: the limit, not the channels, binds
    assert all(h.devices["ssd"].utilization() < 0.3 for h in hosts)


def test_queue_depth_limits_commands_in_the_drive() -> None:
    """queue_depth 5: at most 4 of the 32 outstanding requests are in the drive, never
    waiting for one of its 8 channels; throughput is 4 channels' worth, 200k/s."""
    rates, one, hosts = _throughput({"devices[ssd].max_iops": None, "devices[ssd].queue_depth": 5})
    for h in hosts:
        dev = h.devices["ssd"]
        assert dev.servers.functions[None].max_in_device == 4
        assert dev.servers.queue_level.max == 0
        assert dev.servers.backlog.max == 32 - 4
        assert h.env.counters["ssd.queue_full"] > 0
        assert dev.function_stats()[0][0] == "ssd.pf"
    assert within(rates, 4 / 20e-6, granularity=one)
