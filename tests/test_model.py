"""The model: event order, conservation, reproducibility, I/O path mechanisms."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.experiment.run import run
from sim.model.env import SimEnv
from sim.model.hypervisor import Hypervisor
from sim.model.metrics import COMPONENT_COLUMNS
from sim.scenario import Scenario, loads, replace

SMALL = """
name: small
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: ssd, type: nvme, channels: 4, vfs: 4}
  - {name: nic, type: nic, vfs: 2}
children:
  - name: r
    io_path: routed
    device: ssd
    streams: [{op: {read: 0.7, write: 0.3}, size: 4KiB, rate: 20k}]
  - name: d
    io_path: direct
    device: ssd
    streams: [{op: {read: 0.7, write: 0.3}, size: 4KiB, rate: 20k}]
  - name: n
    io_path: direct
    device: nic
    streams: [{op: send, size: {dist: lognormal, mean: 3KiB, cv: 1.5}, rate: 30k}]
run: {duration: 100ms, warmup: 10ms, seed: 7}
"""


def small(**overrides: Any) -> Scenario:
    return loads(SMALL, overrides=overrides)


@pytest.fixture(scope="module")
def small_result() -> sim.Result:
    return run(small(), replications=2)


# -- tier 1: exact event order on a hand-built hypervisor --------------------------------
def _hv(cores: int, time_slice: float, policy: str = "fair") -> tuple[SimEnv, Hypervisor]:
    scn = small(
        **{
            "host.cores": cores,
            "host.scheduler.time_slice": f"{time_slice}us",
            "host.scheduler.policy": policy,
            "parent.vcpus": 1,
        }
    )
    env = SimEnv(scn, seed=1)
    return env, Hypervisor(env, scn.host)


def test_round_robin_preempts_at_item_boundary_after_slice() -> None:
    """A busy vCPU yields its only LP at the first item boundary after its slice."""
    env, hv = _hv(cores=1, time_slice=25.0)
    a = hv.vcpu(hv.domain("a", 256, 0), 0, 0.0)
    b = hv.vcpu(hv.domain("b", 256, 0), 0, 0.0)
    log: list[tuple[str, float, float, float]] = []

    def work(v: Any, label: str, start: float, item: float, n: int) -> Generator[Any, Any, None]:
        yield env.timeout(start)
        for _ in range(n):
            sched, queued = yield from v.acquire()
            yield env.timeout(item)
            v.release()
            log.append((label, env.now, sched, queued))

    for _ in range(3):  # three threads keep vCPU a always busy
        env.process(work(a, "a", 0.0, 10.0, 5))
    env.process(work(b, "b", 5.0, 1.0, 1))
    env.run()
    b_done = [x for x in log if x[0] == "b"]
    assert b_done == [("b", 31.0, 25.0, 0.0)]
    assert a.preemptions == 1
    # a resumes right after b blocks, and finishes its 15 items of 10 µs
    assert max(t for lbl, t, *_ in log if lbl == "a") == pytest.approx(151.0)


def test_free_lp_dispatches_without_event_and_charges_world_switch() -> None:
    """A blocked vCPU with a free LP runs at once; the dispatch cost is owed once."""
    env, hv = _hv(cores=2, time_slice=1000.0)
    v = hv.vcpu(hv.domain("a", 256, 0), 0, 0.5)
    got: list[Any] = []

    def one() -> Generator[Any, Any, None]:
        sched, queued = yield from v.acquire()
        debt = v.take_debt()
        got.append((env.now, sched, queued, debt))
        yield v.hold(("guest", 1.0), ("hypervisor", debt))
        v.release()

    env.process(one())
    env.run()
    assert got == [(0.0, 0.0, 0.0, 0.5)]
    assert v.busy_us == {"guest": 1.0, "hypervisor": 0.5}
    assert sorted(lp.index for lp in hv.idle) == [0, 1]


def test_two_busy_vcpus_share_one_lp_equally() -> None:
    """Round robin gives two always-runnable vCPUs equal shares of one LP."""
    env, hv = _hv(cores=1, time_slice=30.0)
    vs = [hv.vcpu(hv.domain(f"v{i}", 256, 0), 0, 0.0) for i in range(2)]

    def spin(v: Any) -> Generator[Any, Any, None]:
        while True:
            yield from v.acquire()
            yield env.timeout(1.0)
            v.charge("guest", 1.0)
            v.release()

    for v in vs:
        for _ in range(2):
            env.process(spin(v))
    env.run(until=10_000.0)
    shares = [v.busy_us["guest"] / 10_000.0 for v in vs]
    assert shares == pytest.approx([0.5, 0.5], abs=0.01)


# -- conservation and accounting ---------------------------------------------------------
def test_every_request_is_completed_or_in_flight(small_result: sim.Result) -> None:
    """Issued = completed + failed + in flight: ids of each stream are exactly 0..n-1."""
    req = small_result.requests
    assert set(req["state"]) <= {"completed", "failed", "in_flight"}
    for _, g in req.groupby(["replication", "partition", "stream"]):
        ids = np.sort(g["id"].to_numpy())
        assert np.array_equal(ids, np.arange(len(ids)))
    inflight = req[req["state"] == "in_flight"]
    assert inflight["t_complete_us"].isna().all()


def test_components_add_up_to_latency(small_result: sim.Result) -> None:
    """Every µs of a completed request's latency is in exactly one component."""
    req = small_result.requests
    done = req[req["state"] == "completed"]
    total = done[list(COMPONENT_COLUMNS)].sum(axis=1)
    np.testing.assert_allclose(total, done["latency_us"], rtol=1e-9, atol=1e-6)
    assert (done[list(COMPONENT_COLUMNS)] >= -1e-9).all().all()


def test_cpu_accounting_adds_up_to_lps_times_window(small_result: sim.Result) -> None:
    """Busy plus idle time over all LPs equals LPs × measurement window."""
    scn = small_result.scenario
    window = scn.run.duration - scn.run.warmup
    total = small_result.cpu["busy_us"].sum()
    assert total == pytest.approx(scn.host.cores * window, rel=1e-9)
    cats = set(small_result.cpu["category"])
    assert {"vsc", "vsp", "driver", "guest", "hypervisor", "idle"} <= cats


def test_routed_requests_use_the_parent_and_direct_ones_do_not(small_result: sim.Result) -> None:
    """Routed latency includes parent CPU and ring time; direct has none, and IOMMU time."""
    s = small_result.summary.set_index("partition")
    assert s.loc["r", "parent_cpu_us"] > 0
    assert s.loc["d", "parent_cpu_us"] == 0
    assert s.loc["d", "ring_wait_us"] == 0
    assert s.loc["d", "iommu_us"] > 0
    assert s.loc["r", "mean_us"] > s.loc["d", "mean_us"]


# -- reproducibility and common random numbers -------------------------------------------
def test_same_seed_gives_identical_frames() -> None:
    """Same seed ⇒ identical request frames and summaries."""
    a, b = run(small(), replications=2), run(small(), replications=2)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.summary, b.summary)


def test_different_seed_gives_different_results() -> None:
    """A different seed changes the arrivals and so the results."""
    a = run(small(), seed=1).requests
    b = run(small(), seed=2).requests
    assert not a["t_submit_us"].head(50).equals(b["t_submit_us"].head(50))


def test_replications_are_independent() -> None:
    """Each replication draws its own streams."""
    req = run(small(), replications=2).requests
    r0 = req[(req["replication"] == 0) & (req["partition"] == "r")]["t_submit_us"].head(20)
    r1 = req[(req["replication"] == 1) & (req["partition"] == "r")]["t_submit_us"].head(20)
    assert not np.array_equal(r0.to_numpy(), r1.to_numpy())


def test_switching_path_keeps_arrivals_and_sizes() -> None:
    """Common random numbers: a child's arrivals, ops and sizes do not depend on its path."""
    a = run(small()).requests
    b = run(small(**{"children[d].io_path": "routed"})).requests
    cols = ["id", "t_submit_us", "op", "size_bytes"]
    da = a[a["partition"] == "d"][cols].sort_values("id").reset_index(drop=True)
    db = b[b["partition"] == "d"][cols].sort_values("id").reset_index(drop=True)
    n = min(len(da), len(db))
    pd.testing.assert_frame_equal(da.head(n), db.head(n))
    # and the other children's streams are untouched too
    na = a[a["partition"] == "n"]["t_submit_us"].to_numpy()
    nb = b[b["partition"] == "n"]["t_submit_us"].to_numpy()
    assert np.array_equal(np.sort(na)[:100], np.sort(nb)[:100])


# -- mechanisms -----------------------------------------------------------------------------
def test_child_without_free_vf_falls_back_to_routed() -> None:
    """More direct children than VFs: the extra ones run routed and the results say so."""
    scn = small(**{"devices[nic].vfs": 1, "children[r].io_path": "direct"})
    raw = scn.to_dict()
    raw["children"].append({**raw["children"][2], "name": "n2"})
    scn = sim.scenario.from_dict(raw)
    res = run(scn)
    s = res.summary.set_index("partition")
    assert not s.loc["n", "fallback"]
    assert s.loc["n2", "fallback"]
    assert s.loc["n2", "requested_path"] == "direct"
    assert s.loc["n2", "io_path"] == "routed"
    assert s.loc["n2", "parent_cpu_us"] > 0
    counters = res.counters.set_index("counter")["count"]
    assert counters["vf_fallbacks"] == 1


def test_signal_only_on_empty_to_non_empty() -> None:
    """One request at a time signals both ways every time; heavy load batches signals."""
    one = small(
        children=[
            {
                "name": "r",
                "io_path": "routed",
                "device": "ssd",
                "streams": [{"op": "read", "outstanding": 1}],
            }
        ]
    )
    res = run(one)
    c = res.counters.set_index("counter")["count"]
    n = res.summary["requests"].sum()
    assert n > 100
    assert c["signals.to_parent"] == pytest.approx(n, abs=2)
    assert c["signals.to_child"] == pytest.approx(n, abs=2)
    assert c["exits.hypercall"] == c["signals.to_parent"] + c["signals.to_child"]
    # the parent is the bottleneck: its ring never drains, so children stop signalling
    busy = replace(
        one, {"children[r].streams[0].outstanding": 64, "parent.vsp.request_cost": "20us"}
    )
    res = run(busy)
    c = res.counters.set_index("counter")["count"]
    assert c.get("signals.to_parent", 0) / res.summary["requests"].sum() < 0.01


def test_full_ring_blocks_the_writer() -> None:
    """A ring with room for two descriptors fills; writers wait and the level stays bounded."""
    scn = small(
        **{
            "parent.vmbus.ring_size": "128B",
            "parent.vsp.request_cost": "30us",
            "children[r].streams[0].rate": "30k",
        }
    )
    res = run(scn)
    c = res.counters.set_index("counter")["count"]
    assert c["ring_full"] > 0
    s = res.summary.set_index("partition")
    assert s.loc["r", "ring_wait_us"] > 0
    rings = res.resources[res.resources["kind"] == "ring"]
    assert (rings["max_level"] <= 128).all()


def test_interrupts_without_posting_cost_two_exits() -> None:
    """Without posted interrupts each delivery costs an interrupt exit and an EOI exit."""
    base = small(**{"host.costs.interrupt_exit": "2us", "host.costs.eoi_exit": "1us"})
    posted = run(base).summary.set_index("partition")
    exits = run(replace(base, {"host.posted_interrupts": False}))
    s = exits.summary.set_index("partition")
    assert posted.loc["d", "interrupt_us"] == 0
    assert s.loc["d", "interrupt_us"] == pytest.approx(3.0)
    c = exits.counters.set_index("counter")["count"]
    assert c["exits.external_interrupt"] == c["exits.eoi"] == c["interrupts"]


def test_strict_iommu_charges_map_and_unmap_per_request() -> None:
    """Strict IOMMU mode adds to every direct request the guest's map and unmap through
    its virtual IOMMU (per mapping and per page, an exit per request of it, the
    hypervisor's physical-table updates) and the invalidation, which makes the one page
    of every 4 KiB request miss. The only other direct child is routed here; the
    child's own vCPUs rarely invalidate at once (the IOMMU's queue busy < 2 % of the
    time), so the waits for the queue add less than one invalidation per request."""
    scn = small(**{"host.iommu.mode": "strict", "children[n].io_path": "routed"})
    s = run(scn).summary.set_index("partition")
    spec, trap = scn.host.iommu, scn.host.costs.device_model_exit
    invalidation = spec.host_invalidation("strict")
    expected = (
        sum(spec.map_costs("strict", 4096, trap))
        + sum(spec.unmap_costs("strict", 4096, trap))
        + invalidation
        + spec.page_walk
    )
    assert expected - 1e-9 <= s.loc["d", "iommu_us"] < expected + invalidation


def test_native_path_has_no_virtualization_costs() -> None:
    """Native: no exits, no IOMMU, no world switch, no parent."""
    s = run(small(**{"children[d].io_path": "native"})).summary.set_index("partition")
    for comp in ("interrupt_us", "iommu_us", "parent_cpu_us", "ring_wait_us"):
        assert s.loc["d", comp] == 0


def test_closed_loop_obeys_littles_law() -> None:
    """Closed loop with N outstanding and no think time: throughput × latency = N."""
    scn = small(
        **{
            "children": [
                {
                    "name": "c",
                    "io_path": "direct",
                    "device": "ssd",
                    "streams": [{"op": "read", "outstanding": 6}],
                }
            ],
            "run.duration": "300ms",
        }
    )
    s = run(scn).summary.iloc[0]
    assert s["throughput_rps"] * s["mean_us"] / 1e6 == pytest.approx(6.0, rel=0.02)


def test_deterministic_arrivals_are_exact() -> None:
    """Deterministic arrivals at 10k/s give one request every 100 µs."""
    scn = small(
        **{"children[d].streams[0].arrival": "deterministic", "children[d].streams[0].rate": "10k"}
    )
    req = run(scn).requests
    t = np.sort(req[req["partition"] == "d"]["t_submit_us"].to_numpy())
    np.testing.assert_allclose(np.diff(t), 100.0)


def test_oversubscribed_lps_show_scheduling_delay() -> None:
    """With more busy vCPUs than LPs, requests wait for their vCPU to be scheduled."""
    scn = small(**{"host.cores": 1, "children[d].vcpus": 1, "children[r].vcpus": 1})
    s = run(scn).summary.set_index("partition")
    assert s.loc["r", "sched_wait_us"] > 1.0
    roomy = run(small()).summary.set_index("partition")
    assert s.loc["r", "sched_wait_us"] > 2 * roomy.loc["r", "sched_wait_us"]


def test_simpy_environment_is_per_run() -> None:
    """Two simulations in one process do not share state."""
    e1, e2 = SimEnv(small(), 1), SimEnv(small(), 1)
    assert e1.counters is not e2.counters
    assert e1._queue is not e2._queue
    g1, g2 = e1.rng("k"), e2.rng("k")
    assert g1.random() == g2.random()
    with pytest.raises(ValueError, match="twice"):
        e1.rng("k")
