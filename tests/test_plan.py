"""The deployment plan (sim.scenario.plan): VFs, fallbacks and why, channels and the parent
vCPUs serving them, standby channels of revoked VFs; and the physics written once on the
specs, which the model and the analytic estimate both read."""

from __future__ import annotations

import math

import pytest

from sim.model.env import SimEnv
from sim.model.host import Host
from sim.scenario import from_dict, load
from sim.scenario.plan import plan

NIC = {"name": "nic0", "type": "nic", "vfs": 2}
SEND = [{"op": "send", "rate": "1k"}]


def _scn(children: list[dict], **extra: object) -> object:
    return from_dict(
        {"name": "p", "parent": {"vcpus": 2}, "devices": [NIC], "children": children, **extra}
    )


def test_fixed_vfs_first_then_lowest_free_then_fallback_with_reason() -> None:
    """A fixed VF is kept; the others take the lowest free VF in order; the one that finds
    none left runs routed, and the plan says why."""
    scn = _scn(
        [
            {"name": "a", "io_path": "direct", "device": "nic0", "streams": SEND},
            {"name": "b", "io_path": "direct", "device": "nic0", "vf": 0, "streams": SEND},
            {"name": "c", "io_path": "direct", "device": "nic0", "streams": SEND},
        ]
    )
    p = plan(scn)
    assert [(x.name, x.path, x.vf, x.function) for x in p.children] == [
        ("a", "direct", 1, "nic0.vf[1]"),
        ("b", "direct", 0, "nic0.vf[0]"),
        ("c", "routed", None, "nic0.pf"),
    ]
    assert p["c"].fallback == "all 2 VFs of nic0 are taken"
    assert p["c"].requested_path == "direct"
    assert p.fallbacks == 1
    assert len(p["c"].channels) == 1


def test_channels_round_robin_over_parent_vcpus_in_child_order() -> None:
    """Channels and an emulated child's device model take the parent's vCPUs in turn."""
    scn = _scn(
        [
            {"name": "r", "vcpus": 8, "io_path": "routed", "device": "nic0", "streams": SEND},
            {"name": "e", "io_path": "emulated", "device": "nic0", "streams": SEND},
            {"name": "cpu", "cpu_load": {}},
        ]
    )
    p = plan(scn)
    assert [c.name for c in p["r"].channels] == ["vmbus.r.nic0", "vmbus.r.nic0[1]"]
    assert p["r"].parent_vcpus == [0, 1]
    assert p["e"].parent_vcpus == [0]
    assert p["cpu"].path == "none"
    assert p["cpu"].function == ""


def test_standby_channels_open_after_every_other_childs() -> None:
    """A revoked VF's routed channels come last, so no other child's placement moves."""
    children = [
        {"name": "d", "io_path": "direct", "device": "nic0", "streams": SEND},
        {"name": "r", "io_path": "routed", "device": "nic0", "streams": SEND},
    ]
    quiet = plan(_scn(children))
    fault = {"kind": "vf_revoke", "at": "10ms", "duration": "5ms", "target": "d"}
    revoked = plan(_scn(children, faults=[fault]))
    assert revoked["r"].channels == quiet["r"].channels
    assert [c.parent_vcpu for c in revoked["d"].standby] == [1]
    assert revoked.channels()[-1] == revoked["d"].standby[0]


def test_the_host_builds_what_the_plan_says() -> None:
    """The model's VFs, paths and channel vCPUs are the plan's, for the baseline."""
    scn = load("scenarios/baseline.yaml")
    host = Host(SimEnv(scn, 1, 0))
    p = plan(scn)
    for child in host.children:
        assert (child.io_path, child.vf) == (p[child.name].path, p[child.name].vf)
    assert [c.name for c in host.channels] == [c.name for c in p.channels()]


@pytest.mark.parametrize("size", [1, 1499, 1500, 1501, 65536])
def test_nic_physics(size: int) -> None:
    """Frames are one per MTU (at least one); wire time adds each frame's overhead."""
    nic = _scn([{"name": "a", "cpu_load": {}}]).devices[0]
    frames = max(1, math.ceil(size / nic.mtu))
    assert nic.frames(size) == frames
    expected = (size + frames * nic.frame_overhead) * 8e6 / nic.line_rate
    assert nic.wire_time(size) == pytest.approx(expected, rel=1e-12)


def test_vmbus_pages_and_vsp_transfer() -> None:
    """Small payloads are copied (no pages), large ones go by page list at a cost per
    page; an entry is a descriptor plus a page-list entry per page."""
    scn = _scn([{"name": "a", "cpu_load": {}}])
    vm, vsp = scn.parent.vmbus, scn.parent.vsp
    small, large = vm.copy_threshold, vm.copy_threshold + 1
    assert vm.pages(small) == 0
    assert vm.pages(large) == math.ceil(large / 4096)
    assert vm.entry_bytes(large) == vm.descriptor_size + vm.pages(large) * vm.page_entry_size
    assert vsp.transfer_cost(small, 0) == pytest.approx(small * 8e6 / vsp.copy_bandwidth)
    assert vsp.transfer_cost(large, 3) == pytest.approx(3 * vsp.page_cost)


@pytest.mark.parametrize(
    ("mode", "mapped", "unmapped"), [("static", False, False), ("deferred", True, False),
                                     ("strict", True, True)]
)  # fmt: skip
def test_iommu_costs_by_mode(mode: str, mapped: bool, unmapped: bool) -> None:
    """static maps nothing per request; deferred maps (its unmaps wait for the batch's
    flush); strict maps, and unmaps through the virtual IOMMU and invalidates each."""
    scn = _scn([{"name": "a", "cpu_load": {}}], host={"iommu": {"mode": mode}})
    io = scn.host.iommu
    trap = scn.host.costs.device_model_exit
    exits = io.unmap_costs(mode, 1500, trap)[1] > 0
    assert (sum(io.map_costs(mode, 1500, trap)) > 0, exits) == (mapped, unmapped)
    assert (io.host_invalidation(mode) > 0) == unmapped
    assert io.pages(1) == 1
    assert io.pages(io.page_size + 1) == 2


def test_the_report_describes_the_plan() -> None:
    """The scenario description in the report says where each child's I/O runs and why
    a direct child fell back."""
    from sim.report.provenance import describe

    scn = _scn(
        [
            {"name": "a", "count": 3, "io_path": "direct", "device": "nic0", "streams": SEND},
            {"name": "r", "vcpus": 8, "io_path": "routed", "device": "nic0", "streams": SEND},
        ]
    )
    rows = dict(describe(scn))
    assert rows["a-1: I/O"] == "direct, VF 0 of nic0"
    assert "all 2 VFs of nic0 are taken" in rows["a-3: I/O"]
    assert rows["r: I/O"].endswith("over 2 VMBus channels served by parent vCPUs 1, 0")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("devices: [{name: nic0, type: nic}]\nchildren: [{name: nic0, cpu_load: {}}]",
         "children[nic0].name: 'nic0' is also a device's name"),
        ("children: [{name: parent, cpu_load: {}}]",
         "children[parent].name: 'parent' is reserved for the parent partition"),
        ("devices: [{name: vmbus, type: nic}]\nchildren: [{name: a, cpu_load: {}}]",
         "devices[vmbus].name: 'vmbus' is reserved for VMBus channels"),
    ],
)  # fmt: skip
def test_component_names_cannot_collide(text: str, message: str) -> None:
    """Children, devices and the scheme's own scopes name components: no two alike."""
    from sim.scenario import ScenarioError, loads

    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        loads("name: x\n" + text)


def test_component_names_follow_one_scheme() -> None:
    """vCPUs, functions, channels, rings and counters are dotted paths of one tree."""
    from sim.scenario import names

    assert names.vcpu("web-1", 2) == "web-1.vcpu[2]"
    assert names.function("nic0", None) == "nic0.pf"
    assert names.metric(names.function("nic0", 3), "completions") == "nic0.vf[3].completions"
    assert names.ring(names.channel("web", "nic0", 1), True) == "vmbus.web.nic0[1].out"
    assert names.rng_key(names.child_scope("web"), "stream.0", "arrivals") == (
        "child.web/stream.0/arrivals"
    )
