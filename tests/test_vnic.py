"""The routed child's synthetic NIC offloads (``vnic: {tso, lro}``), independent of the
physical port's."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis.stats import paired
from sim.experiment.run import run
from sim.model.host import simulate
from sim.results.tables import tabulate
from sim.scenario import Scenario, ScenarioError, loads

# one routed child, one parent vCPU, constant costs so that per-request CPU is exact
VNIC = """
name: vnic
host: {cores: 8}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: c
    vcpus: 1
    io_path: routed
    device: nic
    streams: [{op: send, size: 64KiB, outstanding: 4}]
run: {duration: 40ms, warmup: 5ms, seed: 11}
"""
SEGMENTS = math.ceil(65536 / 1500)  # 44 packets of one MTU (the NIC's default 1500 B)
CONFIDENCE = 0.999


def scn(**overrides: Any) -> Scenario:
    return loads(VNIC, overrides=overrides)


def completed(res: sim.Result) -> pd.DataFrame:
    req = res.requests
    return req[req["state"] == "completed"]


def test_default_vnic_changes_nothing() -> None:
    """Both offloads on, written out, give the same requests as no ``vnic`` at all."""
    a = run(scn()).requests
    b = run(scn(**{"children[c].vnic": {"tso": True, "lro": True}})).requests
    assert len(a) > 500
    pd.testing.assert_frame_equal(a, b)


def test_without_virtual_tso_every_packet_costs_the_guest_and_the_parent() -> None:
    """A 64 KiB send without virtual TSO is 44 packets: the VSC's submit and completion,
    the VSP's request and completion and the physical driver's request are each paid 44
    times (the port's TSO does not help: the parent receives MTU packets), and the VSP
    copies each packet (below ``copy_threshold``) instead of walking a 16-page list."""
    on = scn()
    off = scn(**{"children[c].vnic.tso": False})
    a, b = completed(run(on)), completed(run(off))
    g, p = on.children[0].guest, on.parent
    guest_on = g.submit_cost.mean + g.complete_cost.mean
    np.testing.assert_allclose(a["guest_cpu_us"], guest_on)
    np.testing.assert_allclose(b["guest_cpu_us"], SEGMENTS * guest_on)
    per_packet = p.vsp.request_cost.mean + p.driver.request_cost.mean
    per_packet += p.vsp.completion_cost.mean
    interrupt = p.driver.interrupt_cost.mean  # once per device interrupt either way
    copy = 65536 * 8e6 / p.vsp.copy_bandwidth
    page_list = 16 * p.vsp.page_cost
    np.testing.assert_allclose(a["parent_cpu_us"], per_packet + interrupt + page_list)
    np.testing.assert_allclose(b["parent_cpu_us"], SEGMENTS * per_packet + interrupt + copy)


def test_without_virtual_tso_routed_throughput_per_core_drops() -> None:
    """Bound by its one parent vCPU, the routed child carries fewer 64 KiB sends without
    virtual TSO (paired over replications, the ratio's interval is below 1) and the
    parent vCPU is saturated: less throughput per parent core."""
    base = {"run.replications": 4, "children[c].streams[0].outstanding": 16}
    on = scn(**base)
    off = scn(**base, **{"children[c].vnic.tso": False})
    tput, busy = {}, {}
    for name, s in (("on", on), ("off", off)):
        runs = [simulate(s, r, s.run.seed) for r in range(4)]
        table = tabulate(s, runs, s.run.seed, 0.0).replications
        table = table[table["partition"] == "c"].sort_values("replication")
        tput[name] = table["throughput_rps"].to_numpy()
        window = s.run.duration - s.run.warmup
        busy[name] = np.array(
            [sum(us for part, _v, _c, us in r.cpu if part == "parent") / window for r in runs]
        )
    assert (busy["off"] > 0.95).all(), busy
    p = paired(tput["on"], tput["off"], CONFIDENCE)
    assert p["ratio_ci_high"] < 1.0, p
    assert (tput["off"] / busy["off"] < tput["on"] / busy["on"]).all()


def test_virtual_tso_is_independent_of_the_port() -> None:
    """With the port's TSO off, the VSP and the driver already send per segment; turning
    the virtual TSO off too adds the per-packet completions and the copies, not more
    sends."""
    port_off = {"devices[nic].tso": False}
    a = completed(run(scn(**port_off)))
    b = completed(run(scn(**port_off, **{"children[c].vnic.tso": False})))
    p = scn().parent
    moved = (SEGMENTS - 1) * p.vsp.completion_cost.mean
    copy = 65536 * 8e6 / p.vsp.copy_bandwidth - 16 * p.vsp.page_cost
    np.testing.assert_allclose(b["parent_cpu_us"] - a["parent_cpu_us"].mean(), moved + copy)


RX = {
    "children[c].streams": [{"op": "receive", "size": "64KiB", "rate": "2k"}],
}


def test_without_virtual_lro_each_frame_goes_to_the_guest_alone() -> None:
    """Receiving 64 KiB messages with the port's LRO on but the synthetic NIC's off: the
    physical driver still runs once per message, the VSP and the guest's receive once
    per frame (44)."""
    on = scn(**RX)
    a = completed(run(on))
    b = completed(run(scn(**RX, **{"children[c].vnic.lro": False})))
    g, p = on.children[0].guest, on.parent
    np.testing.assert_allclose(a["guest_cpu_us"], g.complete_cost.mean)
    np.testing.assert_allclose(b["guest_cpu_us"], SEGMENTS * g.complete_cost.mean)
    grew = (SEGMENTS - 1) * p.vsp.request_cost.mean
    np.testing.assert_allclose(b["parent_cpu_us"], a["parent_cpu_us"] + grew)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"children[c].io_path": "direct"}, "children[c].vnic: 'vnic' is the synthetic NIC"),
        ({"children[c].device": "ssd"}, "children[c].vnic: 'vnic' is the synthetic NIC"),
    ],
)
def test_vnic_is_refused_where_there_is_no_synthetic_nic(
    overrides: dict[str, Any], message: str
) -> None:
    text = VNIC.replace(
        "  - {name: nic, type: nic, vfs: 2}",
        "  - {name: nic, type: nic, vfs: 2}\n  - {name: ssd, type: nvme, vfs: 2}",
    )
    over = {"children[c].vnic.tso": False, **overrides}
    if "children[c].device" in overrides:
        over["children[c].streams"] = [{"op": "read", "size": "4KiB", "rate": "1k"}]
    with pytest.raises(ScenarioError, match=re.escape(message)):
        loads(text, overrides=over)


def test_the_estimate_prices_each_packet_as_the_simulation_does() -> None:
    """Open loop at 1k sends/s: the estimate's guest and parent CPU per request equal the
    simulation's, with virtual TSO on and off (constant costs: exactly)."""
    from sim.analysis import analytic

    for tso in (True, False):
        s = scn(
            **{
                "children[c].vnic.tso": tso,
                "children[c].streams": [{"op": "send", "size": "64KiB", "rate": "1k"}],
            }
        )
        est = analytic.estimate(s).children.iloc[0]
        sim_ = completed(run(s))
        for component in ("guest_cpu", "parent_cpu"):
            assert est[f"{component}_us"] == pytest.approx(sim_[f"{component}_us"].mean(), rel=1e-9)
