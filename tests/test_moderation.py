"""Interrupt moderation (coalescing) per device function, and NIC segmentation offload."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy
from conftest import bare_vcpus

import sim
from sim.analysis.stats import paired, t_interval
from sim.experiment.run import run
from sim.model.devices import NvmeDevice
from sim.model.env import SimEnv
from sim.model.host import simulate
from sim.model.hypervisor import VCpu
from sim.model.metrics import COMPONENT_COLUMNS, INTERRUPT
from sim.model.records import RunData
from sim.model.request import Request
from sim.results.tables import tabulate
from sim.scenario import Nvme, Scenario, ScenarioError, loads

PATHS = ["routed", "direct", "native", "hypervisor", "emulated"]
REPS = 6
CONFIDENCE = 0.999
"""Intervals in assertions are at 99.9 % (as ``hvsim validate``): a correct model fails a
test with probability 0.001, not one time in twenty."""

# one child alone on a NIC (one vCPU: all its completions go to one interrupt vector),
# interrupts not posted so that each costs an interrupt exit and an EOI exit; the NIC's
# per-request latency is random so that replications differ even in closed loop
NIC = """
name: moderation
host: {cores: 8, posted_interrupts: false}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, vfs: 2, latency: {dist: gamma, mean: 2us, cv: 0.5}}
  - {name: ssd, type: nvme, vfs: 2}
children:
  - name: c
    vcpus: 1
    io_path: direct
    device: nic
    streams: [{op: send, size: 1500B, outstanding: 32}]
run: {duration: 60ms, warmup: 10ms, seed: 7}
"""
USECS, FRAMES = 16.0, 8
MODERATED = {
    "devices[nic].interrupt_moderation.usecs": f"{USECS:g}us",
    "devices[nic].interrupt_moderation.frames": FRAMES,
}
LOW_LOAD = {"children[c].streams": [{"op": "send", "size": "1500B", "rate": "1k"}]}
# at high load the child completes about 100k-240k requests/s: a 100 µs timer leaves
# room for 8 completions, which then raise every interrupt
HIGH_USECS = 100.0
SATURATED = {**MODERATED, "devices[nic].interrupt_moderation.usecs": f"{HIGH_USECS:g}us"}


def nic(path: str = "direct", **overrides: Any) -> Scenario:
    return loads(NIC, overrides={"children[c].io_path": path, **overrides})


@dataclass
class Reps:
    """Replications of a scenario: the tables, and each replication's own records
    (counters and CPU per replication, which the tables average)."""

    scenario: Scenario
    result: sim.Result
    runs: list[RunData]

    def counter(self, name: str) -> np.ndarray:
        """A counter per replication (0 where it never counted)."""
        return np.array([float(r.counters.get(name, 0)) for r in self.runs])

    def function(self, fn: str) -> tuple[np.ndarray, np.ndarray]:
        """Completions and interrupts of the NIC's function ``fn`` per replication."""
        return (
            self.counter(f"nic.{fn}.completions"),
            self.counter(f"nic.{fn}.interrupts"),
        )

    def cpu(self, partition: str | None = None, category: str | None = None) -> np.ndarray:
        """Busy µs per replication in the window, of a partition and category (all by
        default)."""
        return np.array(
            [
                sum(
                    us
                    for part, _vcpu, cat, us in r.cpu
                    if (partition is None or part == partition)
                    and (category is None or cat == category)
                )
                for r in self.runs
            ]
        )

    def column(self, name: str) -> np.ndarray:
        """A column of the child's per-replication table, in replication order."""
        r = self.result.replications
        return r[r["partition"] == "c"].sort_values("replication")[name].to_numpy()

    def cpu_per_request(self) -> np.ndarray:
        """CPU of every partition per request completed, by replication."""
        return self.cpu() / self.column("requests")


def replicate(scn: Scenario, replications: int = REPS) -> Reps:
    runs = [simulate(scn, r, scn.run.seed) for r in range(replications)]
    return Reps(scn, tabulate(scn, runs, scn.run.seed, 0.0), runs)


def function_of(path: str) -> str:
    return "vf[0]" if path == "direct" else "pf"


def within(values: np.ndarray, expected: float, granularity: float) -> bool:
    """The replications' mean is ``expected`` within its Student-t half-width at
    ``CONFIDENCE`` plus ``granularity`` (the resolution of a count-based metric)."""
    mean, low, high = t_interval(values, CONFIDENCE)
    return abs(mean - expected) <= (high - low) / 2 + granularity


def assert_components_add_up(res: sim.Result, at_least: int = 1000) -> None:
    done = res.requests[res.requests["state"] == "completed"]
    assert len(done) > at_least
    total = done[list(COMPONENT_COLUMNS)].sum(axis=1)
    np.testing.assert_allclose(total, done["latency_us"], rtol=1e-9, atol=1e-6)
    assert (done[list(COMPONENT_COLUMNS)] >= -1e-9).all().all()


# -- tier 1: the rule on a hand-built drive ----------------------------------------------------
def _drive(usecs: str, frames: int) -> tuple[SimEnv, NvmeDevice]:
    scn = loads(
        "name: tiny\ndevices: [{name: ssd, type: nvme}]\nchildren: [{name: c, cpu_load: {}}]\n"
    )
    spec = Nvme(
        name="ssd",
        type="nvme",
        channels=4,
        bandwidth="1000GB/s",
        max_iops=None,
        interrupt_moderation={"usecs": usecs, "frames": frames},
    )
    env = SimEnv(scn, seed=1)
    return env, NvmeDevice(env, spec)


def _complete(
    env: SimEnv, dev: NvmeDevice, at: float, label: str, target: VCpu, log: list[Any]
) -> None:
    """A request submitted at ``at`` that holds a channel 10 µs, then waits for its
    interrupt; logs (label, delivery time, interrupt wait, runs the handler)."""
    req = Request(0, 0, 0, at, target, target, lambda: 10.0, None)

    def go() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at)
        yield from dev.serve(req, 0.0)
        irq = yield from dev.await_interrupt(req, target)
        log.append((label, env.now, req.c[INTERRUPT], irq.take()))

    env.process(go())


def test_interrupt_at_frames_or_timer_whichever_first() -> None:
    """frames 3, usecs 10: three completions 1 µs apart raise one interrupt at the third
    (waits 2, 1, 0 µs; one handler); a lone completion waits the full 10 µs; another
    target vCPU is another vector with its own count."""
    env, dev = _drive("10us", 3)
    a, b = bare_vcpus(env, 2)
    log: list[Any] = []
    for k in range(3):
        _complete(env, dev, float(k), f"a{k}", a, log)
    _complete(env, dev, 0.5, "b0", b, log)  # completes at 10.5 on the other vector
    _complete(env, dev, 50.0, "a3", a, log)
    env.run()
    assert sorted(log, key=lambda x: (x[1], x[0])) == [
        ("a0", 12.0, 2.0, False),
        ("a1", 12.0, 1.0, False),
        ("a2", 12.0, 0.0, True),  # the third completion raises it and runs the handler
        ("b0", 20.5, 10.0, True),
        ("a3", 70.0, 10.0, True),
    ]
    assert env.counters["ssd.pf.completions"] == 5
    assert env.counters["ssd.pf.interrupts"] == 3


@pytest.mark.parametrize(
    ("usecs", "frames", "delivered", "interrupts"),
    [
        ("10us", 0, [20.0, 20.0, 20.0, 20.0], 1),  # the timer alone: 10 µs after the first
        ("0us", 2, [11.0, 11.0, 13.0, 13.0], 2),  # the count alone: pairs
    ],
)
def test_zero_usecs_or_frames_leaves_the_other_rule(
    usecs: str, frames: int, delivered: list[float], interrupts: int
) -> None:
    """ethtool semantics: frames 0 is the timer alone, usecs 0 the count alone
    (completions at 10, 11, 12 and 13 µs)."""
    env, dev = _drive(usecs, frames)
    (v,) = bare_vcpus(env)
    log: list[Any] = []
    for k in range(4):
        _complete(env, dev, float(k), f"r{k}", v, log)
    env.run()
    assert sorted(t for _, t, _, _ in log) == delivered
    assert env.counters["ssd.pf.interrupts"] == interrupts
    assert sum(handler for *_, handler in log) == interrupts


def test_moderation_that_never_raises_is_rejected() -> None:
    """usecs 0 with frames 0 would never raise an interrupt: invalid input."""
    with pytest.raises(ScenarioError, match="never raise"):
        nic(**{"devices[nic].interrupt_moderation.frames": 0})


# -- defaults: nothing moves --------------------------------------------------------------------
def _written_out(text: str, moderation: str) -> str:
    return text.replace(
        "vfs: 2, latency:",
        f"vfs: 2, tso: true, interrupt_moderation: {moderation}, latency:",
    ).replace(
        "{name: ssd, type: nvme, vfs: 2}",
        f"{{name: ssd, type: nvme, vfs: 2, interrupt_moderation: {moderation}}}",
    )


@pytest.mark.parametrize("path", PATHS)
def test_defaults_change_nothing(path: str) -> None:
    """Without the fields, with the defaults written out, and with frames 1 (an interrupt
    per completion whatever usecs): identical requests, request by request, on the NIC
    and on the drive, and one interrupt per completion."""
    drive_child = (
        f"  - {{name: d, vcpus: 1, io_path: {path}, device: ssd,"
        " streams: [{op: read, size: 4KiB, rate: 20k}]}\n"
    )
    text = NIC.replace("run:", drive_child + "run:")
    cols = ["replication", "partition", "id", "t_submit_us", "latency_us", *COMPONENT_COLUMNS]
    frames = {}
    for label, body in (
        ("absent", text),
        ("default", _written_out(text, "{usecs: 0us, frames: 1}")),
        ("frames 1", _written_out(text, "{usecs: 50us, frames: 1}")),
    ):
        reps = replicate(loads(body, overrides={"children[c].io_path": path}), 2)
        frames[label] = reps.result.requests[cols]
        comp, irqs = reps.function(function_of(path))
        np.testing.assert_array_equal(comp, irqs)
        assert (comp > 1000).all()
    assert set(frames["absent"]["partition"]) == {"c", "d"}
    assert frames["absent"].equals(frames["default"])
    assert frames["absent"].equals(frames["frames 1"])


# -- high load: fewer interrupts, less CPU per request -----------------------------------------
@pytest.fixture(scope="module")
def high_load() -> dict[tuple[str, bool], Reps]:
    """Closed loop of 32 MTU sends, direct and routed, moderation off and on (frames 8
    within 100 µs)."""
    out = {}
    for path in ("direct", "routed"):
        out[(path, False)] = replicate(nic(path))
        out[(path, True)] = replicate(nic(path, **SATURATED))
    return out


@pytest.mark.parametrize("path", ["direct", "routed"])
def test_interrupts_per_completion_fall_to_one_over_frames(
    high_load: dict[tuple[str, bool], Reps], path: str
) -> None:
    """Off: one interrupt per completion. On, with completions filling a vector within
    usecs: 1/frames (an interrupt delivers at most frames completions, and the count
    raises every one); and with a 16 µs timer, which fires before 8 completions come,
    between 1/frames and 1."""
    comp, irqs = high_load[(path, False)].function(function_of(path))
    np.testing.assert_array_equal(comp, irqs)
    assert (comp > 1000).all()
    comp, irqs = high_load[(path, True)].function(function_of(path))
    assert within(irqs / comp, 1 / FRAMES, granularity=1 / comp.min())
    comp, irqs = replicate(nic(path, **MODERATED)).function(function_of(path))
    ratio = irqs / comp
    assert (ratio >= 1 / FRAMES - 1 / comp).all()  # one partial interrupt at an edge
    low, high = t_interval(ratio, CONFIDENCE)[1:]
    assert low > 1 / FRAMES
    assert high < 1.0


@pytest.mark.parametrize("path", ["direct", "routed"])
def test_cpu_per_request_falls_at_high_load(
    high_load: dict[tuple[str, bool], Reps], path: str
) -> None:
    """Per-interrupt costs are paid once per interrupt: CPU per completed request is lower
    with moderation (the intervals do not overlap); the direct child takes an interrupt
    exit and an EOI exit per interrupt, not per completion; the routed parent's driver
    runs its ISR/DPC once per interrupt."""
    off = high_load[(path, False)].cpu_per_request()
    on = high_load[(path, True)].cpu_per_request()
    assert t_interval(on, CONFIDENCE)[2] < t_interval(off, CONFIDENCE)[1], (on, off)
    reps = high_load[(path, True)]
    comp, irqs = reps.function(function_of(path))
    if path == "direct":
        exits = reps.counter("exits.external_interrupt")
        np.testing.assert_array_equal(exits, reps.counter("exits.eoi"))
        # no other interrupt on the direct path; a handler may run on the other side of
        # a window's edge from the moment its interrupt was raised
        assert (np.abs(exits - irqs) <= 1).all(), (exits, irqs)
    else:
        driver = reps.cpu("parent", "driver")
        drv = reps.scenario.parent.driver
        expected = drv.request_cost.mean * comp + drv.interrupt_cost.mean * irqs
        # work of the requests in flight at either edge of the window: at most 32 each
        edge = 2 * 32 * (drv.request_cost.mean + drv.interrupt_cost.mean)
        assert (np.abs(driver - expected) <= edge).all(), (driver, expected)


@pytest.mark.parametrize("path", PATHS)
def test_components_add_up_under_moderation(path: str) -> None:
    """Every path under moderation: each request's components still add up to its
    latency, with fewer interrupts than completions."""
    reps = replicate(nic(path, **MODERATED, **{"children[c].streams[0].outstanding": 8}), 1)
    assert_components_add_up(reps.result)
    comp, irqs = reps.function(function_of(path))
    assert irqs[0] < comp[0]


# -- low load: the timer fires ------------------------------------------------------------------
@pytest.mark.parametrize("path", ["direct", "routed", "native"])
def test_low_load_latency_rises_by_usecs(path: str) -> None:
    """One request at a time: each completion is alone on its vector and waits for the
    timer. Paired by replication (same arrivals), the mean latency rises by the mean wait,
    which lies between usecs × interrupts/completions (only the first completion of an
    interrupt waits the full usecs) and usecs; the rise is in the interrupt component."""
    off = replicate(nic(path, **LOW_LOAD))
    on = replicate(nic(path, **LOW_LOAD, **MODERATED))
    comp, irqs = on.function(function_of(path))
    p = paired(off.column("mean_us"), on.column("mean_us"), CONFIDENCE)
    half = (p["diff_ci_high"] - p["diff_ci_low"]) / 2
    assert USECS * float(np.min(irqs / comp)) - half <= p["diff"] <= USECS + half, p
    rise = paired(off.column("interrupt_us"), on.column("interrupt_us"), CONFIDENCE)
    assert rise["diff"] == pytest.approx(p["diff"], abs=half + 1e-9)


def test_low_load_wait_is_exactly_usecs_per_request() -> None:
    """Deterministic arrivals 1 ms apart, posted interrupts: every request waits exactly
    usecs for its interrupt and its latency is exactly usecs longer, request by request."""
    det = {
        "host.posted_interrupts": True,
        "children[c].streams": [
            {"op": "send", "size": "1500B", "rate": "1k", "arrival": "deterministic"}
        ],
    }
    off = run(nic("direct", **det)).requests
    on = run(nic("direct", **det, **MODERATED)).requests
    done = on["state"] == "completed"
    assert len(off) == len(on)
    assert done.sum() > 40
    np.testing.assert_allclose(on.loc[done, "interrupt_us"], USECS)
    np.testing.assert_allclose((on["latency_us"] - off["latency_us"])[done], USECS)


# -- TSO -------------------------------------------------------------------------------------
LARGE = {"children[c].streams[0].size": "64KiB", "children[c].streams[0].outstanding": 4}
NO_TSO = {"devices[nic].tso": False}


@pytest.mark.parametrize("path", PATHS)
def test_without_tso_the_send_cost_is_paid_per_segment(path: str) -> None:
    """64 KiB sends without TSO: the sending stack's per-request cost is paid once per
    MTU segment (44 of them): the guest driver's submit (direct, native), the VSP's and
    the physical driver's request cost (routed, emulated), the hypervisor stack's
    request cost (hypervisor). Its component grows by exactly (segments - 1) × cost."""
    tso = run(nic(path, **LARGE))
    scn = nic(path, **LARGE, **NO_TSO)
    soft = run(scn)
    n = math.ceil(65536 / scn.devices[0].mtu)
    assert n == 44
    guest, parent = scn.children[0].guest, scn.parent
    routed = parent.vsp.request_cost.mean + parent.driver.request_cost.mean
    per_segment, component = {
        "direct": (guest.submit_cost.mean, "guest_cpu"),
        "native": (guest.submit_cost.mean, "guest_cpu"),
        "hypervisor": (scn.host.hypervisor_io.request_cost.mean, "guest_cpu"),
        "routed": (routed, "parent_cpu"),
        "emulated": (routed, "parent_cpu"),
    }[path]
    grew = soft.summary[f"{component}_us"].iloc[0] - tso.summary[f"{component}_us"].iloc[0]
    assert grew == pytest.approx((n - 1) * per_segment, rel=1e-9)
    assert_components_add_up(soft, at_least=100)


def test_without_tso_cpu_per_request_scales_with_segments() -> None:
    """Direct 64 KiB sends: the guest's CPU per completed request is segments × submit +
    complete without TSO, submit + complete with it (up to the work of the requests in
    flight at the window's edges)."""
    guest = nic().children[0].guest
    for overrides, n in (({}, 1), (NO_TSO, 44)):
        reps = replicate(nic("direct", **LARGE, **overrides))
        done = reps.column("requests")
        per_request = reps.cpu("c", "guest") / done
        expected = n * guest.submit_cost.mean + guest.complete_cost.mean
        edge = 2 * 4 * expected / done  # 4 outstanding at each edge, at most
        assert (np.abs(per_request - expected) <= edge).all(), (per_request, expected)


def test_without_tso_a_cpu_bound_routed_child_carries_less() -> None:
    """A routed child whose parent vCPU is the bottleneck without TSO (the VSP and driver
    cost 44 times as much per 64 KiB send): the parent vCPU saturates and the child's
    throughput drops (paired by replication, the ratio's interval is below 1)."""
    big = {**LARGE, "children[c].streams[0].outstanding": 16}
    tso = replicate(nic("routed", **big))
    soft = replicate(nic("routed", **big, **NO_TSO))
    p = paired(tso.column("throughput_rps"), soft.column("throughput_rps"), CONFIDENCE)
    assert p["ratio_ci_high"] < 1.0, p
    window = soft.scenario.run.duration - soft.scenario.run.warmup
    assert (soft.cpu("parent") / window > 0.95).all()


@pytest.mark.parametrize("path", PATHS)
def test_tso_changes_nothing_for_mtu_sends(path: str) -> None:
    """Sends of at most one MTU are one segment either way: identical requests."""
    sizes = {"dist": "empirical", "values": ["64B", "1500B"], "weights": [0.5, 0.5]}
    base = {"children[c].streams[0].size": sizes}
    a = run(nic(path, **base), 2).requests
    b = run(nic(path, **base, **NO_TSO), 2).requests
    assert len(a) > 3000
    pd.testing.assert_frame_equal(a, b)
