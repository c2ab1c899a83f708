"""VMBus sub-channels: how many a routed child opens, where they run, what they buy."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from sim.analysis.stats import paired
from sim.experiment.run import run
from sim.model.env import SimEnv
from sim.model.host import Host
from sim.model.iopaths import RoutedPath
from sim.scenario import Scenario, ScenarioError, loads, replace
from sim.scenario.plan import channel_count

# A routed child whose closed-loop users spread their requests over its 4 vCPUs (round
# robin), with random sizes and think times so that replications differ. With one
# channel, one parent vCPU does all the VSP and driver work and saturates.
LOADED = """
name: subchannels
host: {cores: 12}
parent: {vcpus: 4}
devices:
  - {name: nic, type: nic, vfs: 0}
children:
  - name: web
    vcpus: 4
    io_path: routed
    device: nic
    streams:
      - op: send
        size: {dist: empirical, values: [256B, 1500B, 9000B], weights: [0.5, 0.3, 0.2]}
        outstanding: 32
        think: {dist: exponential, mean: 20us}
run: {duration: 20ms, warmup: 2ms, seed: 3}
"""

# several routed children with different vCPU counts, one of them two instances
MIXED = """
name: mixed
host: {cores: 16}
parent: {vcpus: 4}
devices:
  - {name: nic, type: nic, vfs: 0}
  - {name: ssd, type: nvme, vfs: 0}
children:
  - {name: one, vcpus: 1, io_path: routed, device: nic,
     streams: [{op: send, size: 1500B, rate: 5k}]}
  - {name: web, count: 2, vcpus: 3, io_path: routed, device: nic,
     streams: [{op: send, size: 1500B, rate: 5k}]}
  - {name: db, vcpus: 8, io_path: routed, device: ssd,
     streams: [{op: read, size: 4KiB, rate: 5k}]}
run: {duration: 5ms, warmup: 1ms, seed: 1}
"""

REPLICATIONS = 5


def _host(scn: Scenario) -> Host:
    return Host(SimEnv(scn, seed=1))


def _paths(host: Host) -> dict[str, RoutedPath]:
    """The routed path of each child (its streams share it)."""
    return {s.child.name: s.path for s in host.streams if isinstance(s.path, RoutedPath)}


def _throughputs(scn: Scenario) -> tuple[np.ndarray, Any]:
    res = run(scn, replications=REPLICATIONS)
    reps = res.replications.sort_values("replication")
    return reps["throughput_rps"].to_numpy(), res


def test_channel_count_follows_storvsc_and_the_cap() -> None:
    """One channel per 4 vCPUs (the primary plus (vCPUs - 1) // 4 sub-channels), capped."""
    assert [channel_count(v, 4, 64) for v in (1, 2, 4, 5, 8, 9, 16)] == [1, 1, 1, 2, 2, 3, 4]
    assert [channel_count(v, 1, 64) for v in (1, 2, 8, 100)] == [1, 2, 8, 64]
    assert channel_count(8, 1, 3) == 3
    assert channel_count(1024, 2048, 64) == 1  # a ratio above the vCPUs: the primary alone


def test_one_vcpu_child_has_exactly_one_channel() -> None:
    """A child with one vCPU has the primary channel alone, however channels are counted."""
    for per in (1, 4):
        host = _host(loads(MIXED, overrides={"parent.vmbus.vcpus_per_channel": per}))
        chans = _paths(host)["one"].channels
        assert [c.name for c in chans] == ["vmbus.one.nic"]


def test_default_keeps_one_channel_per_child_up_to_four_vcpus() -> None:
    """Default rule: children with ≤ 4 vCPUs keep the single channel they had, named as
    before and placed as before (the k-th routed child on parent vCPU k mod vCPUs); the
    8-vCPU child opens a primary and one sub-channel."""
    host = _host(loads(MIXED))
    paths = _paths(host)
    names = {c: [ch.name for ch in p.channels] for c, p in paths.items()}
    assert names == {
        "one": ["vmbus.one.nic"],
        "web-1": ["vmbus.web-1.nic"],
        "web-2": ["vmbus.web-2.nic"],
        "db": ["vmbus.db.ssd", "vmbus.db.ssd[1]"],
    }
    placed = {c: [v.index for v in p.parent_vcpus] for c, p in paths.items()}
    assert placed == {"one": [0], "web-1": [1], "web-2": [2], "db": [3, 0]}
    assert [ch.index for ch in paths["db"].channels] == [0, 1]


def test_placement_spreads_channels_over_parent_vcpus() -> None:
    """Round robin over all channels of all children: a child's channels land on distinct
    parent vCPUs, and the parent vCPUs' channel counts differ by at most one."""
    host = _host(loads(MIXED, overrides={"parent.vmbus.vcpus_per_channel": 1}))
    paths = _paths(host)
    # 1 + 3 + 3 + 8 channels over 4 parent vCPUs
    for p in paths.values():
        served = [v.index for v in p.parent_vcpus]
        assert len(set(served)) == min(len(served), 4)
    load = Counter(v.index for p in paths.values() for v in p.parent_vcpus)
    assert sum(load.values()) == 15
    assert max(load.values()) - min(load.values()) <= 1
    # each child starts where the previous one stopped: 1 + 2 + 4 channels on 4 vCPUs
    scn = loads(
        MIXED,
        overrides={"parent.vmbus.vcpus_per_channel": 2, "children[web].count": 1},
    )
    paths = _paths(_host(scn))
    assert [v.index for v in paths["web"].parent_vcpus] == [1, 2]
    assert [v.index for v in paths["db"].parent_vcpus] == [3, 0, 1, 2]


def test_request_uses_the_channel_of_its_issuing_vcpu() -> None:
    """Child vCPU i sends on channel i mod channels; a stream pinned to one vCPU loads only
    that channel's rings and that channel's parent vCPU."""
    host = _host(loads(MIXED, overrides={"parent.vmbus.vcpus_per_channel": 3}))
    db = _paths(host)["db"]  # 8 vCPUs, 3 channels
    assert [db.channel_of(v).index for v in db.child.vcpus] == [0, 1, 2, 0, 1, 2, 0, 1]
    scn = loads(
        LOADED,
        overrides={
            "parent.vmbus.vcpus_per_channel": 1,
            "children[web].streams[0].vcpu": 2,
            "run.duration": "5ms",
        },
    )
    res = run(scn)
    rings = res.resources[res.resources["kind"] == "ring"].set_index("resource")
    used = sorted(rings.index[rings["max_level"] > 0])
    assert used == ["vmbus.web.nic[2].in", "vmbus.web.nic[2].out"]
    parent = res.cpu[res.cpu["partition"] == "parent"].groupby("vcpu")["busy_us"].sum()
    assert list(parent[parent > 0].index) == ["parent.vcpu[2]"]


def test_ring_names_are_unique_and_all_reported() -> None:
    """Every ring of every channel appears once in the resources and in the trace."""
    scn = loads(MIXED, overrides={"parent.vmbus.vcpus_per_channel": 1})
    host = _host(scn)
    names = [r.name for ch in host.channels for r in (ch.outbound, ch.inbound)]
    assert len(names) == len(set(names)) == 2 * 15
    res = run(scn)
    rings = res.resources[res.resources["kind"] == "ring"]["resource"]
    assert sorted(rings) == sorted(names)
    traced = res.occupancy[res.occupancy["kind"] == "ring"]
    assert set(traced["resource"]) == set(names)


def test_more_subchannels_raise_routed_throughput_when_the_parent_has_vcpus_to_spare() -> None:
    """4 parent vCPUs: 4 channels carry significantly more than 1 (paired over common
    random numbers), and the parent work moves from one vCPU onto all four."""
    one, res1 = _throughputs(loads(LOADED))  # default: 4 vCPUs, one channel
    four, res4 = _throughputs(loads(LOADED, overrides={"parent.vmbus.vcpus_per_channel": 1}))
    d = paired(one, four)
    assert d["diff_ci_low"] > 0, d
    assert d["ratio_ci_low"] > 1, d

    def parent_busy(res: Any) -> dict[str, float]:
        cpu = res.cpu[res.cpu["partition"] == "parent"]
        return cpu.groupby("vcpu")["busy_us"].sum().to_dict()

    busy1, busy4 = parent_busy(res1), parent_busy(res4)
    assert set(busy1) == {"parent.vcpu[0]"}  # the others idle: nothing routed to them
    assert len(busy4) == 4
    assert min(busy4.values()) > 0


def test_more_subchannels_do_not_raise_throughput_with_one_parent_vcpu() -> None:
    """1 parent vCPU: every channel lands on it; 4 channels carry no more than 1."""
    base = loads(LOADED, overrides={"parent.vcpus": 1})
    one, _ = _throughputs(base)
    four, _ = _throughputs(replace(base, {"parent.vmbus.vcpus_per_channel": 1}))
    d = paired(one, four)
    assert d["diff_ci_low"] <= 0, d


@pytest.mark.parametrize("field", ["vcpus_per_channel", "max_channels"])
def test_channel_settings_must_be_positive(field: str) -> None:
    """Zero vCPUs per channel or a cap of zero channels is invalid input."""
    with pytest.raises(ScenarioError, match=field):
        loads(MIXED, overrides={f"parent.vmbus.{field}": 0})
