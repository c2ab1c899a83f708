"""The host kernels' DMA through the IOMMU (native, parent driver), routed receive by page
flipping or copying, and the guest protocol stack's per-packet and copy costs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import sim
from sim.scenario import ScenarioError, loads

# A bare-metal host sending 1460 B messages, open loop, well below saturation: every
# cost is constant, so each request's CPU is known exactly.
NATIVE = """
name: native-dma
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, line_rate: 10Gbps}
children:
  - name: c
    vcpus: 1
    io_path: native
    device: nic
    streams:
      - {op: send, size: 1460B, rate: 20k}
run: {duration: 40ms, warmup: 5ms, seed: 5}
"""

# A routed child whose parent's physical driver maps its DMA (host.iommu.parent).
ROUTED = """
name: routed-dma
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, line_rate: 10Gbps}
children:
  - name: c
    vcpus: 1
    io_path: routed
    device: nic
    streams:
      - {op: send, size: 8KiB, rate: 20k}
run: {duration: 40ms, warmup: 5ms, seed: 6}
"""

# A routed child receiving messages of one size from the wire.
RECEIVE = """
name: routed-rx
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, line_rate: 10Gbps}
children:
  - name: c
    vcpus: 1
    io_path: routed
    device: nic
    streams:
      - {op: receive, size: 1500B, rate: 10k}
run: {duration: 40ms, warmup: 5ms, seed: 7}
"""

MODES = ("off", "passthrough", "static", "deferred", "strict")
CLOCK_GHZ = 2.5  # the default host clock: cycles → µs


def us(cycles: float) -> float:
    return cycles / (CLOCK_GHZ * 1e3)


def run(text: str, seed: int = 0, **overrides: Any) -> sim.Result:
    scn = loads(text, overrides={"run.seed": 100 + seed, **overrides})
    return sim.run(scn)


def completed(res: sim.Result, child: str = "c") -> pd.DataFrame:
    req = res.requests
    return req[(req["partition"] == child) & (req["state"] == "completed") & req["in_window"]]


def cpu_per_request(res: sim.Result, partition: str, category: str, child: str = "c") -> float:
    cpu = res.cpu
    busy = cpu[(cpu["partition"] == partition) & (cpu["category"] == category)]["busy_us"].sum()
    done = res.summary.set_index("partition").loc[child]
    return float(busy) / float(done["requests"])


def summary(res: sim.Result, child: str = "c") -> pd.Series:
    return res.summary.set_index("partition").loc[child]


# -- the host DMA API on bare metal --------------------------------------------------------
def test_native_iommu_costs_are_the_per_operation_costs() -> None:
    """On a native host every request's iommu time is exactly the sum of its operations:
    strict maps (allocation + a page), unmaps (a page + release) and invalidates,
    deferred does the same without the invalidation, static and passthrough nothing."""
    one_page_map_unmap = us(3986 + 588 + 438 + 408)
    expected = {
        "off": 0.0,
        "passthrough": 0.0,
        "static": 0.0,
        "deferred": one_page_map_unmap,
        "strict": one_page_map_unmap + us(2127),
    }
    for mode, cost in expected.items():
        req = completed(run(NATIVE, **{"host.iommu.native": mode}))
        assert len(req) > 500
        # a translating mode also walks: a 1-page buffer ring of 256 misses the 64-entry
        # IOTLB on every request (0.3 µs); the rest is CPU
        walk = 0.3 if mode in ("static", "deferred", "strict") else 0.0
        cpu = req["iommu_us"] - walk
        assert cpu.max() == pytest.approx(cost, abs=1e-9), mode
        assert cpu.min() == pytest.approx(cost, abs=1e-9), mode


@pytest.mark.parametrize("seed", range(3))
def test_native_strict_deferred_static_off_order_cpu_and_latency(seed: int) -> None:
    """Native: strict > deferred > static > off in mean latency, and strict > deferred >
    static = passthrough = off in CPU per request (common random numbers)."""
    res = {m: run(NATIVE, seed, **{"host.iommu.native": m}) for m in MODES}
    lat = {m: float(summary(r)["mean_us"]) for m, r in res.items()}
    cpu = {m: cpu_per_request(r, "c", "guest") for m, r in res.items()}
    assert lat["strict"] > lat["deferred"] > lat["static"] > lat["off"]
    assert lat["passthrough"] == pytest.approx(lat["off"], rel=1e-12)
    assert cpu["strict"] > cpu["deferred"] > cpu["static"]
    # equal up to the window's edge (work of requests in flight at its ends)
    assert cpu["static"] == pytest.approx(cpu["off"], rel=1e-3)
    assert cpu["passthrough"] == pytest.approx(cpu["off"], rel=1e-9)


def test_native_strict_lowers_cpu_bound_throughput() -> None:
    """A CPU-bound native sender (closed loop on one core) carries fewer requests per
    second under strict than deferred, and deferred fewer than without mapping."""
    closed = {"children[c].streams[0].rate": None, "children[c].streams[0].outstanding": 8}
    x = {
        m: float(summary(run(NATIVE, **closed, **{"host.iommu.native": m}))["throughput_rps"])
        for m in ("off", "deferred", "strict")
    }
    assert x["off"] > x["deferred"] > x["strict"]


def test_strict_invalidations_serialise_across_cores() -> None:
    """Strict invalidations wait for the IOMMU's one queue: with four native senders on
    four cores each unmap spins behind the others', so a request's iommu time exceeds its
    operations' sum; one sender alone never waits."""
    inv = "20us"  # slow invalidation to make the queue the bottleneck
    common = {
        "host.iommu.native": "strict",
        "host.iommu.invalidation_cost": inv,
        "children[c].streams[0].rate": None,
        "children[c].streams[0].outstanding": 4,
    }
    alone = completed(run(NATIVE, **common))
    ops = us(3986 + 588 + 438 + 408) + 20.0 + 0.3  # and the page walk of each DMA
    assert alone["iommu_us"].max() == pytest.approx(ops, abs=1e-9)
    four = run(NATIVE, **common, **{"children[c].count": 4})
    req = four.requests
    req = req[(req["state"] == "completed") & req["in_window"]]
    assert req["iommu_us"].mean() > 1.5 * ops
    # the queue serves one invalidation at a time: at most 1 / 20 µs over all children
    per_s = len(req) / ((40 - 5) * 1e-3)
    assert per_s <= 1e6 / 20.0 * 1.01
    # the spin is CPU time, counted once: each sender's one vCPU is busy, never above 100 %
    window = (40 - 5) * 1e3
    cpu = four.cpu[four.cpu["category"] != "idle"].groupby("partition")["busy_us"].sum()
    for name in (f"c-{i}" for i in range(1, 5)):
        assert window * 0.95 < cpu[name] <= window * (1 + 1e-9)


# -- the parent's physical driver behind the IOMMU -----------------------------------------
def test_parent_iommu_costs_the_parent_driver_per_page() -> None:
    """Routed through a parent whose driver maps its DMA: the parent's driver CPU per
    request grows by exactly the map/unmap of the request's pages (8 KiB: two) plus the
    strict invalidation, and the child's latency grows with it."""
    base = run(ROUTED)
    strict = run(ROUTED, **{"host.iommu.parent": "strict"})
    deferred = run(ROUTED, **{"host.iommu.parent": "deferred"})
    d0 = cpu_per_request(base, "parent", "driver")
    two_pages = us(3986 + 2 * 588 + 2 * 438 + 408)
    walks = 2 * 0.3  # both pages miss the IOTLB (a ring of 256 two-page buffers)
    strictest = completed(strict)["iommu_us"].max()
    assert strictest == pytest.approx(two_pages + us(2127) + walks, abs=1e-9)
    # deferred's batch flush adds a little driver CPU beyond its per-request operations
    assert cpu_per_request(deferred, "parent", "driver") - d0 >= two_pages * 0.999
    assert cpu_per_request(strict, "parent", "driver") - d0 == pytest.approx(
        two_pages + us(2127), rel=1e-2
    )
    assert summary(strict)["mean_us"] > summary(deferred)["mean_us"] > summary(base)["mean_us"]
    # the child's own CPU does not move: the mapping is the parent's
    assert cpu_per_request(strict, "c", "vsc") == pytest.approx(
        cpu_per_request(base, "c", "vsc"), rel=1e-9
    )


def test_parent_iommu_on_routed_receive() -> None:
    """A routed receive's buffer is unmapped and a fresh one mapped by the parent's
    driver: strict costs the parent more than deferred, deferred more than off."""
    cost = {
        m: cpu_per_request(run(RECEIVE, **{"host.iommu.parent": m}), "parent", "driver")
        for m in ("off", "static", "deferred", "strict")
    }
    assert cost["strict"] > cost["deferred"] > cost["static"]
    assert cost["static"] == pytest.approx(cost["off"], rel=1e-9)


# -- routed receive: page flipping or copying ----------------------------------------------
@pytest.mark.parametrize("lro", [True, False])
def test_flip_costs_per_page_copy_per_byte(lro: bool) -> None:
    """The parent's VSP CPU per received message: a copy costs its bytes over the copy
    rate, a flip costs flip_page_cost per page of every unit (per 1500 B frame without
    LRO, one page each; with LRO, the coalesced message's pages)."""
    size, rate = 64 * 1024, "8Gbps"  # 1 GB/s: an era memory copy
    flip = "4000cycles"
    common = {
        "children[c].streams[0].size": f"{size}B",
        "children[c].streams[0].rate": "2k",
        "parent.vsp.copy_bandwidth": rate,
        "parent.vsp.flip_page_cost": flip,
        "devices[nic].lro": lro,
    }
    copy = completed(run(RECEIVE, **common))["parent_cpu_us"]
    flipped = completed(run(RECEIVE, **common, **{"parent.vsp.receive": "flip"}))["parent_cpu_us"]
    pages = 16 if lro else 44  # 4 KiB pages, or one page per frame (44 frames)
    copy_us = size * 8e6 / 8e9
    assert copy.max() == pytest.approx(copy.min(), rel=1e-12)  # constant costs
    assert copy.mean() - flipped.mean() == pytest.approx(copy_us - pages * us(4000), rel=1e-9)


def test_flip_is_dearer_for_small_messages_and_cheaper_for_large_ones() -> None:
    """At a fixed copy rate and flip cost, copying wins for small messages (a whole page
    flipped for a few bytes) and flipping for large ones (one flip per 4 KiB)."""
    common = {
        "parent.vsp.copy_bandwidth": "8Gbps",
        "parent.vsp.flip_page_cost": "4000cycles",
        "children[c].streams[0].rate": "2k",
    }

    def vsp(size: str, mode: str) -> float:
        over = {**common, "children[c].streams[0].size": size, "parent.vsp.receive": mode}
        return float(completed(run(RECEIVE, **over))["parent_cpu_us"].mean())

    assert vsp("256B", "flip") > vsp("256B", "copy")
    assert vsp("64KiB", "flip") < vsp("64KiB", "copy")


# -- the guest protocol stack --------------------------------------------------------------
def test_native_throughput_cpu_bound_when_per_packet_cost_exceeds_the_wire() -> None:
    """Native, no TSO, 64 KiB sends (44 frames, 54 µs of wire at 10 Gb/s): with per-packet
    stack costs whose sum is below the wire time the link is the bottleneck; above it the
    vCPU is, busy all the time, and throughput is 1 / (the CPU per request)."""
    over = {
        "children[c].streams[0].rate": None,
        "children[c].streams[0].outstanding": 8,
        "children[c].streams[0].size": "64KiB",
        "children[c].guest.submit_cost": "0.1us",
        "children[c].guest.complete_cost": "1us",
        "devices[nic].tso": False,
    }
    frames = 44
    cheap = run(NATIVE, **over, **{"children[c].guest.packet_cost": "0.5us"})
    dear = run(NATIVE, **over, **{"children[c].guest.packet_cost": "2us"})
    cpu_cheap = frames * (0.1 + 0.5) + 1.0  # 27.4 µs < 54 µs of wire: link-bound
    cpu_dear = frames * (0.1 + 2.0) + 1.0  # 93.4 µs > 54 µs: CPU-bound
    assert completed(dear)["guest_cpu_us"].max() == pytest.approx(cpu_dear, rel=1e-9)
    assert completed(cheap)["guest_cpu_us"].max() == pytest.approx(cpu_cheap, rel=1e-9)
    # CPU-bound: the vCPU is never idle, throughput within the window's edge of 1 / CPU
    assert float(summary(dear)["throughput_rps"]) == pytest.approx(1e6 / cpu_dear, rel=0.03)
    assert float(summary(dear)["device_queue_us"]) == 0.0
    # link-bound: requests queue for the wire, throughput near the port's frame rate
    wire = float(summary(cheap)["device_service_us"])
    assert float(summary(cheap)["device_queue_us"]) > 0.0
    assert float(summary(cheap)["throughput_rps"]) == pytest.approx(1e6 / wire, rel=0.05)


def test_copy_to_user_is_per_byte_on_send_and_receive() -> None:
    """guest.copy_bandwidth adds size / rate of the guest's CPU to every message."""
    for text in (NATIVE, RECEIVE):
        base = completed(run(text))["guest_cpu_us"].mean()
        over = {"children[c].guest.copy_bandwidth": "16Gbps"}
        copied = completed(run(text, **over))["guest_cpu_us"].mean()
        size = 1460 if text is NATIVE else 1500
        assert copied - base == pytest.approx(size * 8e6 / 16e9, rel=1e-9)


def test_unknown_modes_are_errors() -> None:
    """A mode outside off/passthrough/static/strict/deferred, or a receive mode other
    than copy/flip, is refused naming its field."""
    with pytest.raises(ScenarioError, match=r"host\.iommu\.native"):
        loads(NATIVE, overrides={"host.iommu.native": "lazy"})
    with pytest.raises(ScenarioError, match=r"host\.iommu\.parent"):
        loads(NATIVE, overrides={"host.iommu.parent": True})
    # YAML reads an unquoted off as false: it is the mode off
    assert (
        loads(NATIVE.replace("{cores: 4}", "{cores: 4, iommu: {native: off}}")).host.iommu.native
        == "off"
    )
    with pytest.raises(ScenarioError, match=r"parent\.vsp\.receive"):
        loads(ROUTED, overrides={"parent.vsp.receive": "transfer"})


# -- the analytic estimate -----------------------------------------------------------------
def test_estimate_counts_host_mapping_and_stack_cpu_and_says_what_it_leaves_out() -> None:
    """The estimate's iommu time of a native strict host and of a deferred parent is the
    mapping CPU the simulation charges (the walks it leaves out, and says so); its guest
    CPU includes the stack's per-packet and copy costs exactly."""
    from sim.analysis.analytic import estimate

    strict = loads(NATIVE, overrides={"host.iommu.native": "strict"})
    est = estimate(strict).children.iloc[0]
    walk = 0.3
    assert est["iommu_us"] == pytest.approx(us(3986 + 588 + 438 + 408 + 2127), rel=1e-9)
    assert float(summary(sim.run(strict))["iommu_us"]) == pytest.approx(
        est["iommu_us"] + walk, rel=1e-9
    )
    assert not est["holds"]
    assert "IOMMU domain (strict)" in est["why_not"]

    parent = loads(ROUTED, overrides={"host.iommu.parent": "deferred"})
    est = estimate(parent).children.iloc[0]
    assert est["iommu_us"] == pytest.approx(us(3986 + 2 * 588 + 2 * 438 + 408), rel=1e-9)
    assert "parent kernel's IOMMU domain" in est["why_not"]

    stack = {"children[c].guest.packet_cost": "1us", "children[c].guest.copy_bandwidth": "16Gbps"}
    for text in (NATIVE, ROUTED):
        scn = loads(text, overrides=stack)
        est = estimate(scn).children.iloc[0]
        assert est["holds"]
        sim_cpu = float(summary(sim.run(scn))["guest_cpu_us"])
        assert est["guest_cpu_us"] == pytest.approx(sim_cpu, rel=1e-9)


@pytest.mark.parametrize("path", ["native", "direct", "routed", "hypervisor", "emulated"])
def test_stack_cost_on_every_path(path: str) -> None:
    """Every path's guest pays its stack's per-packet cost (one packet with TSO) and the
    user copy per byte on a send, on top of its driver's costs."""
    over = {"children[c].io_path": path, "devices[nic].vfs": 2}
    base = completed(run(NATIVE, **over))["guest_cpu_us"].mean()
    stack = {"children[c].guest.packet_cost": "1.5us", "children[c].guest.copy_bandwidth": "16Gbps"}
    more = completed(run(NATIVE, **over, **stack))["guest_cpu_us"].mean()
    assert more - base == pytest.approx(1.5 + 1460 * 8e6 / 16e9, rel=1e-9)


def test_parent_iommu_on_the_emulated_path() -> None:
    """The device model's DMA goes through the parent's domain too: strict costs the
    request its map, unmap, invalidation and walk."""
    over = {"children[c].io_path": "emulated", "host.iommu.parent": "strict"}
    req = completed(run(NATIVE, **over))
    assert req["iommu_us"].max() == pytest.approx(us(3986 + 588 + 438 + 408 + 2127) + 0.3)


# -- the hypervisor's own drivers behind the IOMMU (ESX-style I/O stack) -------------------
HYPERVISOR = (
    ROUTED.replace("name: routed-dma", "name: hv-dma")
    .replace("host: {cores: 4}", "host: {cores: 4, io_stack: hypervisor}")
    .replace("io_path: routed", "io_path: hypervisor")
)


@pytest.mark.parametrize("op", ["send", "receive"])
def test_hypervisor_iommu_costs_the_hypervisor_per_page(op: str) -> None:
    """On the hypervisor path the hypervisor's drivers map their DMA in their own domain
    (host.iommu.hypervisor): strict costs each request exactly the map/unmap of its pages
    (8 KiB: two) and the invalidation, on the child's LP as hypervisor time; deferred
    less, static only IOTLB walks; the parent does nothing; the estimate follows."""
    text = HYPERVISOR.replace("op: send", f"op: {op}")
    base = run(text)
    res = {m: run(text, **{"host.iommu.hypervisor": m}) for m in ("static", "deferred", "strict")}
    assert (completed(base)["iommu_us"] == 0).all()
    two_pages = us(3986 + 2 * 588 + 2 * 438 + 408)
    walks = 2 * 0.3  # both pages miss the IOTLB (a ring of 256 two-page buffers)
    assert completed(res["strict"])["iommu_us"].max() == pytest.approx(
        two_pages + us(2127) + walks, abs=1e-9
    )
    assert completed(res["static"])["iommu_us"].max() == pytest.approx(walks, abs=1e-9)

    # all the extra CPU is the hypervisor's, on the child's LP (its vsc, exits unchanged)
    def busy(r: sim.Result) -> pd.Series:
        return r.cpu[r.cpu["partition"] == "c"].groupby("category")["busy_us"].sum()

    grew = busy(res["strict"]) - busy(base)
    assert grew["hypervisor"] > 0.9 * len(completed(base)) * (two_pages + us(2127))
    assert grew.drop("hypervisor").abs().max() < 1e-3 * grew["hypervisor"]
    means = [summary(r)["mean_us"] for r in (base, res["deferred"], res["strict"])]
    assert means == sorted(means)
    parent = res["strict"].cpu.query("partition == 'parent' and category != 'idle'")
    assert parent["busy_us"].sum() == 0
    est = sim.analytic(loads(text, overrides={"host.iommu.hypervisor": "strict"}))
    row = est.children.set_index("partition").loc["c"]
    assert row["iommu_us"] == pytest.approx(two_pages + us(2127), rel=1e-9)
