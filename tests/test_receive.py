"""NIC receive: messages from the wire to the guest on every path that models it, LRO."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis.stats import paired
from sim.experiment.run import run
from sim.model.host import simulate
from sim.model.metrics import COMPONENT_COLUMNS
from sim.model.records import RunData
from sim.results.tables import tabulate
from sim.scenario import Scenario, ScenarioError, loads

# one NIC child on an unloaded host: a 2-vCPU child, a 2-vCPU parent, 8 LPs
RX = """
name: rx
host: {cores: 8}
parent: {vcpus: 2}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: c
    vcpus: 2
    io_path: direct
    device: nic
    guest:
      complete_cost: {dist: gamma, mean: 2us, cv: 0.5}
    streams:
      - op: receive
        size: {dist: empirical, values: [256B, 1500B, 9000B], weights: [0.5, 0.3, 0.2]}
        rate: 20k
run: {duration: 40ms, warmup: 5ms, seed: 17}
"""
REPS = 5
RECEIVING = ("native", "direct", "routed", "hypervisor")


def rx(path: str = "direct", **overrides: Any) -> Scenario:
    return loads(RX, overrides={"children[c].io_path": path, **overrides})


def done(res: sim.Result, op: str | None = None) -> pd.DataFrame:
    req = res.requests
    keep = req["state"] == "completed"
    if op is not None:
        keep &= req["op"] == op
    return req[keep]


def means(res: sim.Result) -> np.ndarray:
    r = res.replications
    return r[r["partition"] == "c"].sort_values("replication")["mean_us"].to_numpy()


def cpu(r: RunData, partition: str | None = None) -> float:
    return sum(us for part, _v, _cat, us in r.cpu if partition is None or part == partition)


@pytest.mark.parametrize("path", RECEIVING)
def test_receive_runs_and_components_add_up(path: str) -> None:
    """A receive stream completes on the path; each message's components add up to its
    latency, which starts at its last frame (no wire time, no device queue in it)."""
    res = run(rx(path))
    d = done(res)
    assert len(d) > 500
    assert set(d["op"]) == {"receive"}
    total = d[list(COMPONENT_COLUMNS)].sum(axis=1)
    np.testing.assert_allclose(total, d["latency_us"], rtol=1e-9, atol=1e-6)
    assert (d[list(COMPONENT_COLUMNS)] >= -1e-9).all().all()
    assert (d["device_queue_us"] == 0).all()
    np.testing.assert_allclose(d["device_service_us"], 2.0)  # the NIC's DMA latency only
    s = res.summary.set_index("partition").loc["c"]
    assert s["io_path"] == path
    assert (s["parent_cpu_us"] > 0) == (path == "routed")
    assert (s["iommu_us"] > 0) == (path == "direct")
    assert not bool(s["analytic_holds"])  # the estimate says it does not model receive


def test_receive_latency_native_below_direct_below_routed() -> None:
    """Paired over replications, native < direct < routed for the same arrivals."""
    native, direct, routed = (
        means(run(rx(p), replications=REPS)) for p in ("native", "direct", "routed")
    )
    for low, high in ((native, direct), (direct, routed)):
        p = paired(low, high)
        assert p["diff_ci_low"] > 0, p


def test_lro_off_pays_per_frame_costs() -> None:
    """Without LRO the guest's per-message receive cost scales with the frames (direct),
    and so do the parent driver's and VSP's (routed); per-byte costs do not."""
    size = 64 * 1024
    frames = math.ceil(size / 1500)
    over = {
        "children[c].streams[0].size": "64KiB",
        "children[c].streams[0].rate": "2k",
        "children[c].guest.complete_cost": "2us",
    }
    direct = {lro: run(rx("direct", **over, **{"devices[nic].lro": lro})) for lro in (True, False)}
    g = {lro: done(r)["guest_cpu_us"].to_numpy() for lro, r in direct.items()}
    np.testing.assert_allclose(g[True], 2.0)
    np.testing.assert_allclose(g[False], 2.0 * frames)
    io = {lro: done(r)["iommu_us"].mean() for lro, r in direct.items()}
    assert io[True] == pytest.approx(io[False], rel=0.05)
    routed = {lro: run(rx("routed", **over, **{"devices[nic].lro": lro})) for lro in (True, False)}
    p = {lro: done(r)["parent_cpu_us"].to_numpy() for lro, r in routed.items()}
    per_unit = 4.0 + 1.5  # the VSP's and the physical driver's request_cost (defaults)
    np.testing.assert_allclose(p[False] - p[True], (frames - 1) * per_unit, rtol=1e-9)


def test_lro_off_lowers_a_cpu_bound_routed_childs_throughput() -> None:
    """With one parent vCPU, 64 KiB messages at 5k/s fit with LRO and saturate the parent
    without it (44 frames × the driver and VSP costs): throughput and CPU per message."""
    over = {
        "parent.vcpus": 1,
        "children[c].io_path": "routed",
        "children[c].streams[0].size": "64KiB",
        "children[c].streams[0].rate": "5k",
    }
    res, per_msg = {}, {}
    for lro in (True, False):
        scn = loads(RX, overrides={**over, "devices[nic].lro": lro})
        runs = [simulate(scn, r, scn.run.seed) for r in range(3)]
        res[lro] = tabulate(scn, runs, scn.run.seed, 0.0)
        d = done(res[lro])
        per_msg[lro] = d["parent_cpu_us"].mean() + d["guest_cpu_us"].mean()
        parent_busy = np.array([cpu(r, "parent") for r in runs]) / (35_000.0)
        if not lro:
            assert parent_busy.min() > 0.97  # the parent's one vCPU is the bottleneck
    assert per_msg[False] > 15 * per_msg[True]
    tput = {lro: float(r.summary["throughput_rps"].iloc[0]) for lro, r in res.items()}
    assert tput[True] == pytest.approx(5000, rel=0.05)
    assert tput[False] < 0.85 * tput[True]


DUPLEX = """
name: duplex
host: {cores: 8}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: c
    vcpus: 2
    io_path: native
    device: nic
    streams:
      - {op: send, size: 64KiB, rate: 40.7k}
      - {op: receive, size: 64KiB, rate: 40.7k}
run: {duration: 50ms, warmup: 10ms, seed: 5}
"""


def test_send_and_receive_share_vcpus_not_the_wire() -> None:
    """Send and receive each at 90 % of line rate both go through (full duplex: a shared
    wire would be 180 % busy), and the child's CPU is the sum of the two alone."""
    both = loads(DUPLEX)
    res = run(both)
    window_s = 0.040
    for op in ("send", "receive"):
        d = done(res, op)
        d = d[d["in_window"]]
        assert len(d) / window_s == pytest.approx(40_700, rel=0.08), op
    # the send side alone on its wire: an M/D/1 at 0.9 waits about 0.9 S / (2 × 0.1)
    wire = (65536 + 44 * 78) * 8 / 25_000
    assert done(res, "send")["device_queue_us"].mean() < 3 * 0.9 * wire / 0.2
    send_only = loads(DUPLEX, overrides={"children[c].streams[1].rate": "1"})
    recv_only = loads(DUPLEX, overrides={"children[c].streams[0].rate": "1"})
    busy = [cpu(simulate(s, 0, s.run.seed), "c") for s in (both, send_only, recv_only)]
    assert busy[0] == pytest.approx(busy[1] + busy[2], rel=0.03)


def test_closed_loop_receive_is_refused() -> None:
    """A receive stream must be open loop: the wire decides when messages arrive."""
    with pytest.raises(ScenarioError, match=r"streams\[0\]\.op: 'receive' needs an open-loop"):
        rx(**{"children[c].streams[0].rate": None, "children[c].streams[0].outstanding": 4})


def test_emulated_receive_is_refused() -> None:
    """The emulated path has no receive model: a clear one-line error naming the field."""
    with pytest.raises(ScenarioError) as err:
        rx("emulated")
    text = str(err.value)
    assert "\n" not in text
    assert "streams[0].op: 'receive' is not modelled on the emulated path" in text


def test_receive_on_a_drive_is_refused() -> None:
    """NVMe has no receive op."""
    text = RX.replace("{name: nic, type: nic, vfs: 2}", "{name: nic, type: nvme}")
    with pytest.raises(ScenarioError, match="'receive' is not an operation of nvme"):
        loads(text)
