"""SMT siblings and the core scheduler: siblings run vCPUs of one partition at a time."""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.model.metrics import COMPONENT_COLUMNS
from sim.scenario import ScenarioError, from_dict, loads


def busy_children(policy: str, threads: int, extra_child: bool = False) -> Any:
    """Two (or three) one-vCPU CPU-bound children on one 2-thread core (2 LPs)."""
    children = [
        {"name": f"c{i}", "vcpus": 1, "cpu_load": {}} for i in range(3 if extra_child else 2)
    ]
    if extra_child:  # a second vCPU of c0: may share the core with c0's first
        children[0]["vcpus"] = 2
    data = {
        "name": "core",
        "host": {"cores": 2, "threads_per_core": threads, "scheduler": {"policy": policy}},
        "parent": {"vcpus": 1},
        "children": children,
        "run": {"duration": "600ms", "warmup": "60ms", "seed": 1, "replications": 1},
    }
    res = sim.run(from_dict(data, source="test"))
    kids = res.cpu[~res.cpu["partition"].isin(["parent", "host"])]
    return kids.groupby("partition")["utilization"].sum()


def test_core_scheduling_idles_a_sibling_that_classic_shares() -> None:
    """Classic: two partitions' CPU-bound vCPUs fill both threads of the core. Core: one
    partition at a time, so the other thread idles: half the CPU, shared by turns."""
    classic = busy_children("credit", 2)
    core = busy_children("core", 2)
    assert classic.sum() == pytest.approx(2.0, abs=0.02)
    assert core.sum() == pytest.approx(1.0, abs=0.05)
    assert core["c0"] == pytest.approx(0.5, abs=0.1)  # turns of a slice each
    assert core["c1"] == pytest.approx(0.5, abs=0.1)
    # without SMT every LP is a core of its own: core scheduling changes nothing
    assert busy_children("core", 1).sum() == pytest.approx(2.0, abs=0.02)


def test_siblings_may_run_two_vcpus_of_one_partition() -> None:
    """The core's two threads may run two vCPUs of the same partition together, and the
    partitions still take turns on the core."""
    core = busy_children("core", 2, extra_child=True)
    classic = busy_children("credit", 2, extra_child=True)
    assert classic.sum() == pytest.approx(2.0, abs=0.02)
    assert 1.0 < core.sum() < 2.0  # c0 fills the core on its turns, the others half
    # equal weights: each partition has the core a third of the time, c0 with two threads
    assert core["c0"] == pytest.approx(2 * core["c1"], rel=0.1)
    assert core["c1"] == pytest.approx(core["c2"], rel=0.1)


def test_threads_must_divide_the_lps() -> None:
    """LPs that do not make whole cores are refused at host.cores."""
    data = {
        "name": "x",
        "host": {"cores": 3, "threads_per_core": 2},
        "children": [{"name": "c", "cpu_load": {}}],
    }
    with pytest.raises(ScenarioError, match="multiple of threads_per_core"):
        from_dict(data, source="test")


def smt_run(slowdown: float, load: dict[str, Any]) -> Any:
    data = {
        "name": "smt",
        "host": {"cores": 2, "threads_per_core": 2, "smt_slowdown": slowdown},
        "parent": {"vcpus": 1},
        "children": [{"name": f"c{i}", "vcpus": 1, "cpu_load": load} for i in range(2)],
        "run": {"duration": "400ms", "warmup": "40ms", "seed": 2, "replications": 1},
    }
    return sim.run(from_dict(data, source="test")).cpu


def test_a_busy_sibling_slows_cpu_bound_work() -> None:
    """Two CPU-bound vCPUs on the two threads of a core each get 1/slowdown of a thread's
    work done; the rest is 'smt' time; every LP µs is still accounted for."""
    cpu = smt_run(2.0, {}).set_index(["partition", "category"])["utilization"]
    for c in ("c0", "c1"):
        assert cpu[(c, "guest")] == pytest.approx(0.5, abs=0.01)
        assert cpu[(c, "smt")] == pytest.approx(0.5, abs=0.01)
    assert smt_run(2.0, {}).groupby("category")["utilization"].sum().sum() == pytest.approx(2.0)
    full = smt_run(1.0, {}).set_index(["partition", "category"])["utilization"]
    assert full[("c0", "guest")] == pytest.approx(1.0, abs=0.01)


def test_bursts_stretch_only_while_the_sibling_is_busy() -> None:
    """Bursts of CPU work take longer while the sibling runs, so less work is done in the
    same time than without slowdown, but more than with the sibling always busy."""
    load = {
        "busy": {"dist": "exponential", "mean": "2ms"},
        "idle": {"dist": "exponential", "mean": "2ms"},
    }
    slow = smt_run(2.0, load)
    full = smt_run(1.0, load)
    guest = [r[r["category"] == "guest"]["utilization"].sum() for r in (slow, full)]
    assert guest[0] < guest[1]
    smt = slow[slow["category"] == "smt"]["utilization"].sum()
    assert 0 < smt < guest[0]
    assert slow["utilization"].sum() <= 2.0 + 1e-9


def test_smt_slowdown_needs_siblings() -> None:
    """A slowdown without SMT threads would be ignored: refused."""
    data = {
        "name": "x",
        "host": {"cores": 2, "smt_slowdown": 1.5},
        "children": [{"name": "c", "cpu_load": {}}],
    }
    with pytest.raises(ScenarioError, match="threads_per_core > 1"):
        from_dict(data, source="test")


# LP 0 runs the parent, LP 1 (its SMT sibling) a CPU-bound child or nothing; the routed
# child sends from the other core (LPs 2, 3)
ROUTED_SIBLING = """
name: smt-routed
host: {cores: 4, threads_per_core: 2, smt_slowdown: 1.5}
parent: {vcpus: 1, pin: [0]}
devices:
  - {name: nic, type: nic}
children:
  - name: web
    vcpus: 1
    pin: [2]
    io_path: routed
    device: nic
    streams:
      - {op: send, size: 1500B, rate: 2k}
  - {name: hog, vcpus: 1, pin: [1], cpu_load: {}}
run: {duration: 60ms, warmup: 10ms, seed: 5, replications: 1}
"""


def routed_parent_cpu(overrides: dict[str, Any]) -> tuple[float, Any]:
    """Mean parent CPU per request of the routed child, and the run's result."""
    res = sim.run(loads(ROUTED_SIBLING, overrides=overrides))
    s = res.summary.set_index("partition")
    return float(s.loc["web", "parent_cpu_us"]), res


def test_a_busy_sibling_slows_a_routed_requests_parent_work() -> None:
    """The parent's VSP and driver work for a routed request takes smt_slowdown times as
    long while its LP's sibling runs a CPU-bound vCPU: the request's parent CPU grows by
    that factor, the extra is charged as 'smt', and components still add up."""
    slow, res = routed_parent_cpu({})
    full, base = routed_parent_cpu({"host.smt_slowdown": 1.0})
    # the hog beside the sending child instead: the parent's sibling idles
    idle_sibling, _ = routed_parent_cpu({"children[hog].pin": [3]})
    assert full > 0
    # the hog never leaves LP 1, so every parent item runs beside it: the VSP and driver
    # take 1.5 times as long, and the parent item's exits and world switch (the request's
    # interrupt and sched_wait time, of which part is the child's) lose half their time too
    b = base.summary.set_index("partition").loc["web"]
    assert slow >= 1.5 * full * (1 - 1e-9)
    assert slow <= 1.5 * full + 0.5 * (b["interrupt_us"] + b["sched_wait_us"]) + 1e-9
    assert idle_sibling == pytest.approx(full, rel=1e-6)
    cpu = res.cpu.set_index(["partition", "category"])["utilization"]
    assert cpu[("parent", "smt")] > 0
    req = res.requests
    done = req[req["state"] == "completed"]
    assert len(done) > 50
    parts = done[list(COMPONENT_COLUMNS)].sum(axis=1)
    assert parts.to_numpy() == pytest.approx(done["latency_us"].to_numpy(), rel=1e-9)


def test_the_estimate_says_it_leaves_smt_and_core_scheduling_out() -> None:
    """The analytic estimate runs every item at full speed on an LP of its own: with SMT
    slowdown or core scheduling on, it says so and does not claim to hold."""
    base = {"run.duration": "20ms", "run.warmup": "2ms"}

    def why(**over: Any) -> list[str]:
        est = sim.analytic(sim.load("scenarios/baseline.yaml", {**base, **over}))
        if over:
            assert not est.children["holds"].any()
        return list(est.children["why_not"])

    assert not any("SMT" in w or "core scheduling" in w for w in why())
    smt = why(**{"host.threads_per_core": 2, "host.smt_slowdown": 1.3})
    assert all("SMT sibling" in w for w in smt)
    core = why(**{"host.threads_per_core": 2, "host.scheduler.policy": "core"})
    assert all("core scheduling" in w for w in core)
