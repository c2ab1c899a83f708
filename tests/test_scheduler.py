"""The credit scheduler: exact event order on hand-built hosts, and its switches."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

import sim
from sim.experiment.run import run
from sim.model.env import SimEnv
from sim.model.hypervisor import OVER, RUNNING, UNDER, Background, Hypervisor, VCpu
from sim.scenario import Scenario, loads, replace
from sim.scenario.distributions import constant

BASE = """
name: sched
host: {cores: 1, scheduler: {policy: credit}}
parent: {vcpus: 1}
children:
  - {name: hog, vcpus: 1, cpu_load: {}}
run: {duration: 300ms, warmup: 0us}
"""


def host(**overrides: Any) -> tuple[SimEnv, Hypervisor]:
    scn = loads(BASE, overrides=overrides)
    env = SimEnv(scn, seed=1)
    return env, Hypervisor(env, scn.host)


def hog(
    env: SimEnv, hv: Hypervisor, name: str = "hog", affinity: Any = None, pri: int = UNDER
) -> VCpu:
    """An always-runnable vCPU, started now, at priority ``pri`` (its wake-up BOOST is
    what a tick would take away; these hosts run no ticks)."""
    v = hv.vcpu(hv.domain(name, 256, 0), 0, 0.0, affinity)
    v.bg = Background(None, constant(0.0).sampler(env.rng(f"{name}/idle")))
    hv.burst_start(v)
    v.pri = pri
    return v


def waker(
    env: SimEnv, v: VCpu, at: float, cost: float, log: list[Any]
) -> Generator[Any, Any, None]:
    """Work for ``v`` arriving at ``at``: records (sched wait, start time)."""
    yield env.timeout(at)
    sched, _ = yield from v.acquire()
    log.append((sched, env.now))
    yield env.timeout(cost)
    v.release()


def test_boost_preempts_after_the_ratelimit() -> None:
    """A BOOSTed waker preempts the running vCPU once it has run the 1 ms ratelimit."""
    env, hv = host()
    h = hog(env, hv)
    ls = hv.vcpu(hv.domain("ls", 256, 0), 0, 0.0)
    log: list[Any] = []
    env.process(waker(env, ls, 500.0, 10.0, log))
    env.run(until=5000.0)
    assert log == [(500.0, 1000.0)]
    assert ls.boosts == 1
    assert h.preemptions == 1
    assert h.state == RUNNING  # and the hog runs again once the waker blocks


def test_without_boost_equal_priority_waits_for_the_slice() -> None:
    """Without BOOST an UNDER waker waits for the UNDER vCPU's 30 ms slice to end."""
    env, hv = host(**{"host.scheduler.boost": False})
    hog(env, hv)
    ls = hv.vcpu(hv.domain("ls", 256, 0), 0, 0.0)
    log: list[Any] = []
    env.process(waker(env, ls, 500.0, 10.0, log))
    env.run(until=40_000.0)
    assert log == [(29_500.0, 30_000.0)]
    assert ls.boosts == 0


def test_under_preempts_over_without_boost() -> None:
    """A vCPU with credit (UNDER) preempts one that spent its credit (OVER), ratelimited."""
    env, hv = host(**{"host.scheduler.boost": False})
    hog(env, hv, pri=OVER)
    ls = hv.vcpu(hv.domain("ls", 256, 0), 0, 0.0)
    log: list[Any] = []
    env.process(waker(env, ls, 500.0, 10.0, log))
    env.run(until=5000.0)
    assert log == [(500.0, 1000.0)]
    assert ls.pri == UNDER


def test_ticks_demote_boost_and_spent_credit() -> None:
    """Ticks end BOOST and, once a vCPU has spent its credit, make it OVER: the UNDER
    vCPU waiting for the LP then preempts it."""
    env, hv = host()
    a = hog(env, hv, "a", pri=0)
    b = hog(env, hv, "b", pri=0)
    hv.start()  # each of the two gets 15 ms of credit per 30 ms period
    env.run(until=10_001.0)
    # the tick demoted a (BOOST → UNDER, 5 ms of credit left): still-BOOSTed b preempts it
    assert (a.pri, a.credit, a.preemptions) == (UNDER, 5000.0, 1)
    assert b.state == RUNNING
    env.run(until=20_001.0)
    # b's turn to be demoted; equal priorities now: no preemption before the slice ends
    assert (b.pri, b.credit) == (UNDER, 5000.0)
    assert b.state == RUNNING
    env.run(until=40_001.0)
    # b's slice (from 10 ms) ended at 40 ms and a runs again; b got 15 ms at the 30 ms
    # accounting (-5 → 10 ms) and ran 10 ms more
    assert a.state == RUNNING
    assert b.preemptions == 1
    assert b.credit == pytest.approx(0.0)


def test_ratelimit_zero_preempts_at_once() -> None:
    """With ratelimit 0 a BOOSTed waker runs the moment it wakes."""
    env, hv = host(**{"host.scheduler.ratelimit": "0us"})
    hog(env, hv)
    ls = hv.vcpu(hv.domain("ls", 256, 0), 0, 0.0)
    log: list[Any] = []
    env.process(waker(env, ls, 500.0, 10.0, log))
    env.run(until=2000.0)
    assert log == [(0.0, 500.0)]


def test_cap_parks_the_partition_each_period() -> None:
    """A 50 % cap on an always-runnable vCPU parks it after 15 ms of every 30 ms period."""
    res = run(loads(BASE, overrides={"children[hog].cap": 50}))
    busy = res.cpu[res.cpu["partition"] == "hog"]["busy_us"].sum()
    assert busy / 300_000.0 == pytest.approx(0.5, abs=1e-6)
    parks = res.counters.set_index("counter")["count"]["cap_parks"]
    assert parks == 10


def test_fair_policy_has_no_priorities() -> None:
    """Policy fair: no credit, no BOOST; vCPUs stay UNDER."""
    env, hv = host(**{"host.scheduler.policy": "fair"})
    h = hog(env, hv)
    hv.start()
    env.run(until=100_000.0)
    assert h.pri == UNDER
    assert h.boosts == 0


def test_stealing_moves_queued_vcpus_to_idle_lps() -> None:
    """With load balancing a queued vCPU runs on another LP as soon as one frees up."""
    for balance, expect_steals in ((True, True), (False, False)):
        env, hv = host(
            **{
                "host.cores": 2,
                "host.scheduler.load_balance": balance,
                "host.scheduler.boost": False,
            }
        )
        a = hog(env, hv, "a")
        b = hog(env, hv, "b")
        assert {a.lp.index, b.lp.index} == {0, 1}  # type: ignore[union-attr]
        # a third vCPU whose home is LP 0 queues there; LP 1's hog then stops
        c = hv.vcpu(hv.domain("c", 256, 0), 0, 0.0)
        c.last_lp = a.lp.index  # type: ignore[union-attr]
        log: list[Any] = []
        env.process(waker(env, c, 100.0, 10.0, log))
        env.timeout(2000.0).callbacks.append(lambda _e, hv=hv, b=b: _stop(hv, b))
        env.run(until=10_000.0)
        steals = env.counters["steals"] > 0
        assert steals == expect_steals
        if balance:
            assert log[0][1] == pytest.approx(2000.0)


def _stop(hv: Hypervisor, v: VCpu) -> None:
    """End ``v``'s background load for good (it blocks)."""
    assert v.bg is not None
    v.bg.active = False
    assert v.lp is not None
    hv.stop_background(v)
    hv.switch(v.lp)


def test_minroot_keeps_children_off_reserved_lps() -> None:
    """minroot: 2 keeps every child vCPU off LPs 0-1 and the parent on them."""
    scn: Scenario = sim.load(
        "scenarios/overcommit.yaml",
        {
            "host.scheduler.minroot": 2,
            "parent.vcpus": 2,
            "run.duration": "50ms",
            "run.warmup": "0us",
        },
    )
    env = SimEnv(scn, seed=1)
    from sim.model.host import Host

    h = Host(env)
    h.start()
    env.run(until=scn.run.duration)
    for v in h.hv.vcpus:
        if v.partition == "parent":
            assert v.affinity == frozenset({v.index})
        else:
            assert v.affinity == frozenset(range(2, 16))
            assert v.last_lp >= 2


def test_root_floating_lets_parent_move() -> None:
    """root: floating gives the parent no affinity; pinned gives vCPU i LP i."""
    pinned = sim.load("scenarios/baseline.yaml")
    floating = replace(pinned, {"host.scheduler.root": "floating"})
    for scn, expect in ((pinned, [frozenset({i}) for i in range(4)]), (floating, [None] * 4)):
        env = SimEnv(scn, seed=1)
        hv = Hypervisor(env, scn.host)
        from sim.model.partitions import ParentPartition

        parent = ParentPartition(env, hv, scn.parent, scn.host)
        assert [v.affinity for v in parent.vcpus] == expect


def test_wakeup_statistics_reach_sched_csv(tmp_path: Any) -> None:
    """sched.csv has per-vCPU wake-ups, delays, dispatches, preemptions and boosts."""
    res = run(
        sim.load("scenarios/overcommit.yaml", {"run.duration": "100ms", "run.warmup": "10ms"})
    )
    out = res.save(tmp_path / "oc")
    import pandas as pd

    s = pd.read_csv(out / "sched.csv")
    assert list(s.columns) == [
        "partition", "vcpu", "wakeups", "mean_wakeup_us", "max_wakeup_us",
        "dispatches", "preemptions", "boosts",
    ]  # fmt: skip
    assert s["wakeups"].sum() > 0
    assert s["preemptions"].sum() > 0
    assert (s["max_wakeup_us"].fillna(0) >= s["mean_wakeup_us"].fillna(0)).all()


def _events(env: SimEnv, until: float) -> int:
    n = 0
    while env.peek() < until:
        env.step()
        n += 1
    return n


@pytest.mark.parametrize(
    ("policy", "bound"),
    [("fair", 2), ("pinned", 2), ("credit", 1_000_000 // 10_000 + 1_000_000 // 30_000 + 2)],
)
def test_no_events_while_nothing_changes(policy: str, bound: int) -> None:
    """One always-runnable vCPU alone for 1 s: no slice timers, no polling; under credit
    only the 10 ms ticks and 30 ms accounting periods."""
    # the occupancy trace (one event per interval) is off: this is about the scheduler
    overrides = {"host.scheduler.policy": policy, "host.cores": 2, "run.duration": "1s",
                 "run.trace_interval": "0us"}  # fmt: skip
    if policy == "pinned":
        overrides["children[hog].pin"] = [1]  # type: ignore[assignment]
    scn = loads(BASE, overrides=overrides)
    env = SimEnv(scn, seed=1)
    from sim.model.host import Host

    Host(env).start()
    assert _events(env, 1_000_000.0) <= bound
