"""The I/O paths side by side: hypervisor and emulated, their order, interrupts, VFs."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import sim
from sim.analysis.stats import paired, t_interval
from sim.experiment.compare import compare, on_path
from sim.experiment.run import run
from sim.model.metrics import COMPONENT_COLUMNS
from sim.scenario import Scenario, from_dict, loads, replace

SHORT = {"run.duration": "60ms", "run.warmup": "10ms"}

# one NIC child on an unloaded host: 8 LPs for a 2-vCPU child and a 2-vCPU parent
NIC = """
name: nic
host: {cores: 8}
parent: {vcpus: 2}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: web
    vcpus: 2
    io_path: routed
    device: nic
    streams:
      - {op: send, size: {dist: empirical, values: [256B, 1500B], weights: [0.7, 0.3]}, rate: 10k}
run: {duration: 100ms, warmup: 10ms, seed: 11}
"""
REPS = 6


def nic(**overrides: Any) -> Scenario:
    return loads(NIC, overrides=overrides)


def means(res: sim.Result, child: str) -> np.ndarray:
    """Mean latency of ``child`` per replication, in replication order."""
    r = res.replications
    return r[r["partition"] == child].sort_values("replication")["mean_us"].to_numpy()


def counters(res: sim.Result) -> dict[str, float]:
    return dict(zip(res.counters["counter"], res.counters["count"], strict=True))


def assert_components_add_up(res: sim.Result) -> None:
    req = res.requests
    done = req[req["state"] == "completed"]
    assert len(done) > 1000
    total = done[list(COMPONENT_COLUMNS)].sum(axis=1)
    np.testing.assert_allclose(total, done["latency_us"], rtol=1e-9, atol=1e-6)
    assert (done[list(COMPONENT_COLUMNS)] >= -1e-9).all().all()


# -- the two new paths on the baseline ------------------------------------------------------
@pytest.mark.parametrize("path", ["hypervisor", "emulated"])
def test_new_path_runs_the_baseline_and_components_add_up(path: str) -> None:
    """Every I/O child of the baseline runs on the path, no VF is used, and each request's
    components add up to its latency."""
    res = run(on_path(sim.load("scenarios/baseline.yaml", SHORT), path))
    s = res.summary.set_index("partition")
    assert set(s["io_path"]) == {path}
    assert not s["fallback"].any()
    assert_components_add_up(res)
    assert (s["ring_wait_us"] == 0).all()  # no VMBus
    assert (s["iommu_us"] == 0).all()  # the PF, no translation in the child's domain
    assert (s["interrupt_us"] > 0).all()  # the doorbell, or the register accesses
    if path == "hypervisor":
        assert (s["parent_cpu_us"] == 0).all()
    else:
        assert (s["parent_cpu_us"] > 0).all()


def test_paths_order_native_direct_hypervisor_routed_emulated() -> None:
    """Unloaded host, same NIC workload, common random numbers: native < direct ≤
    hypervisor < routed < emulated in mean latency, each step by its paired interval."""
    order = ["native", "direct", "hypervisor", "routed", "emulated"]
    cmp = compare(nic(), order, REPS)
    m = {p: means(cmp.results[p], "web") for p in order}
    assert all(len(v) == REPS for v in m.values())
    for faster, slower in itertools.pairwise(order):
        p = paired(m[faster], m[slower])  # slower - faster
        if (faster, slower) == ("direct", "hypervisor"):
            assert p["diff_ci_high"] >= 0, (faster, slower, p)  # not significantly faster
        else:
            assert p["diff_ci_low"] > 0, (faster, slower, p)


# -- emulated ---------------------------------------------------------------------------------
def test_emulated_exits_are_counted_per_register_access() -> None:
    """Each request exits to the device model exits_per_request times, each costing
    device_model_exit on the child's vCPU and access_cost on the parent's, and the device
    model raises each completion with one hypercall."""
    n = 3
    scn = nic(
        **{
            "children[web].io_path": "emulated",
            "children[web].emulated.exits_per_request": n,
            "run.warmup": "0us",
        }
    )
    res = run(scn)
    c = counters(res)
    req = res.requests
    issued = len(req)
    completed = int((req["state"] == "completed").sum())
    assert completed > 500
    assert n * completed <= c["exits.device_model"] <= n * issued
    assert completed <= c["exits.hypercall"] <= issued
    assert "exits.doorbell" not in c
    # the exits are in the interrupt component, at their configured cost (posted delivery)
    done = req[req["state"] == "completed"]
    costs = scn.host.costs
    np.testing.assert_allclose(done["interrupt_us"], n * costs.device_model_exit + costs.hypercall)
    cpu = res.cpu.set_index(["partition", "category"])["busy_us"]
    access = scn.children[0].emulated.access_cost.mean
    assert cpu.loc[("parent", "vsp")].sum() >= completed * n * access


# -- hypervisor ---------------------------------------------------------------------------------
def test_hypervisor_path_uses_no_parent_cpu_and_charges_the_hypervisor() -> None:
    """The hypervisor's I/O stack runs on the child's LPs as hypervisor time (at least its
    per-request and per-completion cost for every request), the parent never runs, and
    every request exits once for its doorbell."""
    scn = nic(**{"children[web].io_path": "hypervisor", "run.warmup": "0us"})
    res = run(scn)
    cpu = res.cpu[res.cpu["category"] != "idle"]
    assert cpu[cpu["partition"] == "parent"]["busy_us"].sum() == 0
    req = res.requests
    completed = int((req["state"] == "completed").sum())
    stack = scn.host.hypervisor_io
    mine = cpu[(cpu["partition"] == "web") & (cpu["category"] == "hypervisor")]["busy_us"].sum()
    assert mine >= completed * (stack.request_cost.mean + stack.completion_cost.mean)
    c = counters(res)
    assert completed <= c["exits.doorbell"] <= len(req)
    assert "exits.hypercall" not in c  # no VMBus signalling


# -- acceptance: interrupts and VFs -------------------------------------------------------------
def test_posted_interrupts_lower_direct_latency() -> None:
    """A direct child's mean latency is lower with posted interrupts than with interrupt
    and EOI exits: the paired difference's whole interval is above zero."""
    scn = nic(**{"children[web].io_path": "direct"})
    posted = means(run(scn, REPS), "web")
    exits = means(run(replace(scn, {"host.posted_interrupts": False}), REPS), "web")
    p = paired(posted, exits)
    assert p["diff_ci_low"] > 0, p


def _exhausted() -> Scenario:
    """Three children with the same workload on a NIC with one VF: two ask for direct
    (the second finds no VF), one asks for routed."""
    raw = nic(**{"devices[nic].vfs": 1, "children[web].io_path": "direct"}).to_dict()
    web = raw["children"][0]
    raw["children"] = [
        {**web, "name": "first"},
        {**web, "name": "extra"},
        {**web, "name": "asked", "io_path": "routed"},
    ]
    return from_dict(raw)


# an equivalence margin, not a fitted value: a 5 % difference in mean latency is the
# smallest a capacity planner would act on
EQUIVALENCE = 0.05


def test_vf_exhaustion_sends_the_extra_child_to_routed_with_routed_latency() -> None:
    """The child that finds no VF runs routed (fallback=True) with routed latency: paired
    (common random numbers) with the same child asking for routed, the ratio's interval
    is exactly 1, request by request; and beside a child that asked for routed with the
    same workload but its own arrivals, the ratio's 90 % interval lies within the
    equivalence margin (two one-sided tests)."""
    fell = run(_exhausted(), 2 * REPS)
    asked = run(replace(_exhausted(), {"children[extra].io_path": "routed"}), 2 * REPS)
    s = fell.summary.set_index("partition")
    assert (s.loc["first", "io_path"], bool(s.loc["first", "fallback"])) == ("direct", False)
    assert (s.loc["extra", "requested_path"], s.loc["extra", "io_path"]) == ("direct", "routed")
    assert bool(s.loc["extra", "fallback"])
    assert s.loc["extra", "parent_cpu_us"] > 0
    assert not asked.summary.set_index("partition").loc["extra", "fallback"]

    p = paired(means(asked, "extra"), means(fell, "extra"))
    assert p["ratio_ci_low"] <= 1.0 <= p["ratio_ci_high"], p
    assert p["ratio_ci_high"] - p["ratio_ci_low"] < EQUIVALENCE, p
    cols = ["replication", "id", "t_submit_us", "latency_us", *COMPONENT_COLUMNS]
    a = fell.requests[fell.requests["partition"] == "extra"][cols].reset_index(drop=True)
    b = asked.requests[asked.requests["partition"] == "extra"][cols].reset_index(drop=True)
    assert len(a) > 5000
    assert a.equals(b)

    ratio, low, high = t_interval(means(fell, "extra") / means(fell, "asked"), confidence=0.90)
    assert low > 1 - EQUIVALENCE, (ratio, low, high)
    assert high < 1 + EQUIVALENCE, (ratio, low, high)


def test_a_saturated_parent_is_reported_for_emulated_children() -> None:
    """The device model runs on the parent's vCPUs: an emulated child learns that the
    parent is the saturated resource, as a routed child does."""
    from sim.scenario import from_dict

    scn = from_dict(
        {
            "name": "emulated-hot-parent",
            "host": {"cores": 12},
            "parent": {"vcpus": 1},
            "devices": [{"name": "nic", "type": "nic", "vfs": 0}],
            "children": [
                {
                    "name": "legacy",
                    "vcpus": 8,
                    "io_path": "emulated",
                    "device": "nic",
                    "streams": [{"op": "send", "size": "1500B", "rate": "100k"}],
                },
            ],
            "run": {"duration": "40ms", "warmup": "5ms"},
        }
    )
    res = sim.run(scn)
    assert "saturated: parent.vcpu[0] busy" in res.summary.loc[0, "warnings"]
