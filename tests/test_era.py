"""Era platforms: CPU virtualization costs per operation, and a hypervisor-owned I/O stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.scenario import ScenarioError, from_dict
from sim.scenario.plan import plan

REPO = Path(__file__).resolve().parents[1]
RUN = {"duration": "40ms", "warmup": "5ms", "seed": 5, "replications": 1}
CLOCK_GHZ = 2.5


def one_child(host: dict[str, Any], **child: Any) -> dict[str, Any]:
    spec = {
        "name": "c",
        "vcpus": 1,
        "io_path": "direct",
        "device": "nic0",
        "streams": [{"op": "send", "size": "1KiB", "rate": "2k"}],
        **child,
    }
    return {
        "name": "era",
        # no world-switch cost: the only hypervisor time is CPU virtualization's
        "host": {"cores": 4, "clock": f"{CLOCK_GHZ}GHz", "costs": {"vcpu_dispatch": 0}, **host},
        "devices": [{"name": "nic0", "type": "nic", "vfs": 4}],
        "children": [spec],
        "run": RUN,
    }


def cpu_per_request(host: dict[str, Any], **child: Any) -> dict[str, float]:
    """The child's CPU per request by category."""
    res = sim.run(from_dict(one_child(host, **child), source="test"))
    n = int(res.summary["requests"].sum())
    cpu = res.cpu[res.cpu["partition"] == "c"].groupby("category")["busy_us"].sum()
    return {k: float(v) / n for k, v in cpu.items()}


def cycles(n: float) -> float:
    return n / (CLOCK_GHZ * 1e3)  # µs


FIRST_GEN_VTX = {  # hyperv-2008's values
    "paging": "shadow",
    "privileged_op": "3123cycles",
    "page_table_update": "12732cycles",
}
BINARY_TRANSLATION = {  # esx-3's, without the warm-up
    "mode": "binary_translation",
    "paging": "shadow",
    "syscall": "2066cycles",
    "privileged_op": "100cycles",
    "page_table_update": "390cycles",
}


def test_first_generation_vtx_and_binary_translation_cost_more_than_ept_era() -> None:
    """Per request, a child pays exactly its operations times their cost beyond the
    EPT-era default (which costs nothing): as exits under VT-x, as hypervisor time under
    binary translation; the same draws otherwise (paired runs)."""
    ept = cpu_per_request({})
    vtx = cpu_per_request({"cpu_virtualization": FIRST_GEN_VTX})
    bt = cpu_per_request({"cpu_virtualization": BINARY_TRANSLATION})
    # guest defaults: 1 system call, 2 privileged operations, 1 page-table write
    vtx_extra = cycles(2 * 3123 + 12732)
    bt_extra = cycles(2066 + 2 * 100 + 390)
    assert vtx.get("exit", 0.0) - ept.get("exit", 0.0) == pytest.approx(vtx_extra, rel=1e-9)
    assert vtx.get("hypervisor", 0.0) == pytest.approx(ept.get("hypervisor", 0.0), rel=1e-9)
    assert bt.get("hypervisor", 0.0) - ept.get("hypervisor", 0.0) == pytest.approx(
        bt_extra, rel=1e-9
    )
    assert bt.get("exit", 0.0) == pytest.approx(ept.get("exit", 0.0), rel=1e-9)
    assert vtx_extra > bt_extra > 0  # page-table and TPR writes: exits cost VT-x most
    native = cpu_per_request({"cpu_virtualization": FIRST_GEN_VTX}, io_path="native")
    assert "exit" not in native
    assert "hypervisor" not in native


def test_per_operation_costs_of_the_presets_order_the_eras() -> None:
    """Resolved presets: binary translation and first-generation VT-x cost more per
    privileged operation than EPT-era hyperv-2019, which costs nothing extra."""

    def virt(preset: str) -> Any:
        data = {"name": "p", "preset": preset, **{k: one_child({})[k] for k in ("children",)}}
        return from_dict(data, source="test").host.cpu_virtualization

    modern, esx, hv08 = virt("hyperv-2019"), virt("esx-3"), virt("hyperv-2008")
    assert (modern.mode, modern.paging, modern.privileged_op) == ("hardware", "nested", 0.0)
    assert esx.mode == "binary_translation"
    assert esx.privileged_op > modern.privileged_op
    assert hv08.privileged_op > esx.privileged_op  # an exit, not a callout
    assert hv08.page_table_update > esx.page_table_update > 0
    assert esx.syscall > hv08.syscall == 0


def test_translation_warmup_is_paid_once_per_vcpu() -> None:
    """The translation-cache warm-up is charged with each vCPU's first request only."""
    base = {**BINARY_TRANSLATION}
    warm = {**BINARY_TRANSLATION, "translation_warmup": "500000cycles"}
    runs = []
    for virt in (base, warm):
        data = one_child({"cpu_virtualization": virt}, vcpus=2)
        data["run"] = {**RUN, "warmup": "0ms"}
        res = sim.run(from_dict(data, source="test"))
        runs.append(float(res.cpu.query("category == 'hypervisor'")["busy_us"].sum()))
    assert runs[1] - runs[0] == pytest.approx(2 * cycles(500_000), rel=1e-6)


@pytest.mark.parametrize(
    ("virt", "message"),
    [
        ({"mode": "binary_translation"}, "paging shadow"),
        ({"page_table_update": "1000cycles"}, "needs paging shadow"),
        ({"translation_warmup": "1us", "paging": "shadow"}, "binary_translation"),
        ({"mode": "paravirtual", "paging": "shadow"}, "paging direct"),
    ],
)
def test_inconsistent_cpu_virtualization_is_refused(virt: dict[str, str], message: str) -> None:
    """Costs that the chosen mode or paging would not use are errors, not ignored."""
    with pytest.raises(ScenarioError, match=message):
        from_dict(one_child({"cpu_virtualization": virt}), source="test")


def baseline_children() -> list[dict[str, Any]]:
    """The baseline's children, the database tier on esx-3's disk at 100 requests/s."""
    data = yaml.safe_load((REPO / "scenarios" / "baseline.yaml").read_text(encoding="utf-8"))
    return [
        {**c, "device": "disk0", "streams": [{**c["streams"][0], "rate": "100"}]}
        if c["device"] == "nvme0"
        else c
        for c in data["children"]
    ]


def test_esx3_children_never_touch_a_parent() -> None:
    """Under esx-3 every child runs on the hypervisor path (routed and direct ones fall
    back to it, saying why; one naming no path takes it); the parent does no I/O work."""
    children = baseline_children()
    unnamed = {k: v for k, v in children[0].items() if k != "io_path"}
    unnamed["name"] = "web-default"
    data = {"name": "esx", "preset": "esx-3", "children": [*children, unnamed], "run": RUN}
    scn = from_dict(data, source="test")
    assert scn.children[-1].io_path == "hypervisor"
    res = sim.run(scn)
    s = res.summary.set_index("partition")
    assert (s["io_path"] == "hypervisor").all()
    assert (s["requests"] > 0).all()
    assert s.loc["web-routed", "fallback"]
    assert s.loc["web-direct", "fallback"]
    assert not s.loc["web-default", "fallback"]
    assert (s["parent_cpu_us"] == 0).all()
    assert (s["parent_queue_us"] == 0).all()
    parent = res.cpu[res.cpu["partition"] == "parent"]
    assert parent["busy_us"].sum() == 0
    children_cpu = res.cpu[res.cpu["partition"] != "parent"]
    assert children_cpu.query("category == 'hypervisor'")["busy_us"].sum() > 0


def test_a_vmkernel_device_fault_hits_every_child_on_the_device() -> None:
    """A device reset under esx-3 fails the in-flight requests of every child on it."""
    children = [
        {
            "name": f"db{i}",
            "device": "disk0",
            "streams": [{"op": "read", "size": "4KiB", "outstanding": 4}],
        }
        for i in range(3)
    ]
    faults = [{"kind": "device_reset", "target": "disk0", "at": "20ms", "duration": "1ms"}]
    data = {"name": "esx", "preset": "esx-3", "children": children, "faults": faults, "run": RUN}
    res = sim.run(from_dict(data, source="test"))
    hit = res.requests[res.requests["attempts"] > 1]["partition"].unique()
    assert sorted(hit) == ["db0", "db1", "db2"]


def test_a_hypervisor_io_stack_refuses_what_needs_a_parent() -> None:
    """Emulated children and VF revocation need a parent data path: errors at their field."""
    send = [{"op": "send", "rate": "1k"}]
    emulated = {
        "children": [{"name": "e", "io_path": "emulated", "device": "nic0", "streams": send}]
    }
    revoke = {
        "devices": [{"name": "nic0", "vfs": 2}],
        "children": [{"name": "d", "io_path": "direct", "device": "nic0", "streams": send}],
        "faults": [{"kind": "vf_revoke", "target": "d", "at": "10ms", "duration": "1ms"}],
    }
    for extra, where in ((emulated, "children[e].io_path"), (revoke, "faults[0].kind")):
        data = {"name": "t", "preset": "esx-3", "run": RUN, **extra}
        with pytest.raises(ScenarioError) as err:
            from_dict(data, source="test")
        assert err.value.path == where
        assert "io_stack: hypervisor" in err.value.message


def test_kvm_virtio_routes_through_vhost_and_assigns_vfs_with_posted_interrupts() -> None:
    """kvm-virtio: a routed child runs on one virtqueue pair per vCPU with the host
    kernel's CPU per request; a direct child gets a VF and takes no interrupt exits."""
    send = [{"op": "send", "size": "1KiB", "rate": "5k"}]
    children = [
        {"name": "pv", "vcpus": 2, "io_path": "routed", "device": "nic0", "streams": send},
        {"name": "vf", "vcpus": 2, "io_path": "direct", "device": "nic0", "streams": send},
    ]
    scn = from_dict(
        {"name": "k", "preset": "kvm-virtio", "children": children, "run": RUN}, source="t"
    )
    placed = {p.name: p for p in plan(scn).children}
    assert len(placed["pv"].channels) == 2  # a queue pair per vCPU
    assert placed["vf"].path == "direct"
    res = sim.run(scn)
    s = res.summary.set_index("partition")
    assert s.loc["pv", "parent_cpu_us"] > 0
    assert s.loc["vf", "parent_cpu_us"] == 0
    assert s.loc["vf", "interrupt_us"] == 0


def test_a_single_queue_nic_interrupts_parent_vcpu_0_for_every_channel() -> None:
    """Without VMQ every routed completion and received message is handled on parent vCPU
    0; with multi-queue each channel's parent vCPU handles its own. Sends are the same."""
    streams = [{"op": "send", "size": "1KiB", "rate": "4k"}, {"op": "receive", "rate": "4k"}]
    busy = {}
    for queues in ("multi", "single"):
        data = {
            "name": "q",
            "host": {"cores": 8},
            "parent": {"vcpus": 4, "vmbus": {"vcpus_per_channel": 1}},
            "devices": [{"name": "nic0", "type": "nic", "queues": queues}],
            "children": [
                {"name": "r", "vcpus": 4, "io_path": "routed", "device": "nic0", "streams": streams}
            ],
            "run": RUN,
        }
        res = sim.run(from_dict(data, source="test"))
        parent = res.cpu[res.cpu["partition"] == "parent"]
        busy[queues] = parent.groupby("vcpu")["busy_us"].sum()
    multi, single = busy["multi"], busy["single"]
    assert multi.max() < 1.5 * multi.min()  # four channels, four parent vCPUs, evenly
    others = single.drop("parent.vcpu[0]")
    assert single["parent.vcpu[0]"] > 3 * others.max()
    assert single.sum() == pytest.approx(multi.sum(), rel=0.05)


def test_esx_2_5_console_device_is_routed_the_vms_devices_stay_in_the_vmkernel() -> None:
    """esx-2.5: a child on the service console's NIC (owner parent) runs routed through the
    parent, with parent CPU; one on the vmkernel's NIC takes the hypervisor path, a routed
    request for it falls back there, and the console may have its own streams on its NIC
    only; owner parent needs host.io_stack hypervisor."""
    send = [{"op": "send", "size": "1500B", "rate": "2k"}]
    children = [
        {"name": "vm", "vcpus": 1, "device": "nic0", "streams": send},
        {"name": "con", "vcpus": 1, "device": "nic1", "streams": send},
        {"name": "asked", "vcpus": 1, "io_path": "routed", "device": "nic0", "streams": send},
    ]
    own = {"device": "nic1", "streams": [{"op": "send", "size": "1500B", "rate": "1k"}]}
    data = {"name": "e", "preset": "esx-2.5", "parent": own, "children": children, "run": RUN}
    res = sim.run(from_dict(data, source="t"))
    s = res.summary.set_index("partition")
    assert s.loc["vm", "io_path"] == "hypervisor"
    assert s.loc["vm", "parent_cpu_us"] == 0
    assert s.loc["con", "io_path"] == "routed"
    assert s.loc["con", "parent_cpu_us"] > 0
    assert s.loc["asked", "io_path"] == "hypervisor"
    assert bool(s.loc["asked", "fallback"])
    assert s.loc["parent", "requests"] > 0
    with pytest.raises(ScenarioError) as err:
        from_dict({**data, "parent": {**own, "device": "nic0"}}, source="t")
    assert err.value.path == "parent.streams"
    plain = {"name": "p", "devices": [{"name": "n", "type": "nic", "owner": "parent"}]}
    plain["children"] = [{"name": "c", "device": "n", "streams": send}]
    with pytest.raises(ScenarioError) as err:
        from_dict(plain, source="t")
    assert err.value.path == "devices[n].owner"
    assert "io_stack" in err.value.message
