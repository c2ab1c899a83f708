"""Several devices per child (streams[i].device): each device the child's streams name gets
a path of its own from the plan (routed: its own channels; direct: a VF of that device),
its requests go to that device, the estimate follows them, and what is not built is
refused with a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from sim.analysis import analytic
from sim.experiment.run import run
from sim.report.provenance import deployment
from sim.scenario import ScenarioError, from_dict
from sim.scenario.plan import plan

NIC = {"name": "nic", "type": "nic", "vfs": 2}
SSD = {"name": "ssd", "type": "nvme", "vfs": 2}
STREAMS = [
    {"op": "send", "size": "1500B", "rate": "20k"},
    {"op": "read", "size": "4KiB", "rate": "20k", "device": "ssd"},
]


def _scn(path: str = "routed", devices: list[dict[str, Any]] | None = None, **child: Any) -> Any:
    spec = {"name": "c", "vcpus": 2, "io_path": path, "device": "nic", "streams": STREAMS}
    return from_dict(
        {
            "name": "md",
            "host": {"cores": 8},
            "parent": {"vcpus": 2},
            "devices": devices if devices is not None else [NIC, SSD],
            "children": [{**spec, **child}],
            "run": {"duration": "20ms", "warmup": "2ms", "seed": 3},
        }
    )


def test_each_device_gets_its_own_channels_or_vf() -> None:
    """Routed: a channel to each device, served by the parent vCPUs in turn; direct: a VF
    of each device; the child's own placement is on its own device."""
    p = plan(_scn("routed"))
    routes = p.routes()
    assert [(r.name, r.device, r.path) for r in routes] == [
        ("c", "nic", "routed"),
        ("c", "ssd", "routed"),
    ]
    assert [c.name for r in routes for c in r.channels] == ["vmbus.c.nic", "vmbus.c.ssd"]
    assert [c.parent_vcpu for c in p.channels()] == [0, 1]
    assert [j for j, _ in routes[0].streams()] == [0]
    assert [j for j, _ in routes[1].streams()] == [1]
    d = plan(_scn("direct")).routes()
    assert [r.function for r in d] == ["nic.vf[0]", "ssd.vf[0]"]
    assert deployment(_scn("direct")) == [
        ("c: I/O", "direct, VF 0 of nic; and direct, VF 0 of ssd")
    ]


def test_one_device_plans_as_before() -> None:
    """A child whose streams all use its own device has no other placement."""
    scn = _scn("routed", streams=[STREAMS[0], {**STREAMS[0], "device": "nic"}])
    (only,) = plan(scn).routes()
    assert only.others == ()
    assert [j for j, _ in only.streams()] == [0, 1]


@pytest.mark.parametrize("path", ["routed", "direct", "native", "hypervisor"])
def test_each_stream_reaches_its_own_device(path: str) -> None:
    """Every request of a stream is served by the stream's device and recorded with it;
    the estimate carries both streams at their offered rate."""
    res = run(_scn(path))
    req = res.requests[res.requests["in_window"]]
    by = req.groupby("stream")["device"].unique()
    assert list(by[0]) == ["nic"]
    assert list(by[1]) == ["ssd"]
    assert set(req["io_path"]) == {path}
    res_dev = res.resources.set_index("resource")
    assert res_dev.loc["nic", "utilization"] > 0
    assert res_dev.loc["ssd", "utilization"] > 0
    est = analytic.estimate(_scn(path)).children.iloc[0]
    assert est["throughput_rps"] == pytest.approx(40_000, rel=1e-9)
    sim = req.groupby("stream").size()
    assert abs(sim[0] - sim[1]) < 0.2 * sim.mean()


def test_a_device_without_vfs_left_falls_back_to_routed_alone() -> None:
    """A direct child on a NIC with VFs and a drive without: the drive's streams go routed
    (with the reason), the NIC's stay direct."""
    scn = _scn("direct", devices=[NIC, {**SSD, "vfs": 0}])
    nic, ssd = plan(scn).routes()
    assert (nic.path, ssd.path, ssd.fallback) == ("direct", "routed", "ssd has no VFs")
    req = run(scn).requests
    assert set(req[req["stream"] == 0]["io_path"]) == {"direct"}
    assert set(req[req["stream"] == 1]["io_path"]) == {"routed"}


def test_two_ports_carry_twice_what_one_wire_does() -> None:
    """Two send streams, each offering ~62 % of a 1 GbE wire: on one port they saturate it
    (the port's ~81 k frames/s at most), on two ports (a stream each) both are carried."""
    nic = {**NIC, "line_rate": "1Gbps"}
    sends = [{"op": "send", "size": "1500B", "rate": "50k"}] * 2
    one = _scn("direct", devices=[nic], streams=sends)
    two = _scn(
        "direct",
        devices=[nic, {**nic, "name": "nic2"}],
        streams=[sends[0], {**sends[1], "device": "nic2"}],
    )
    wire = one.device("nic").wire_time(1500)  # µs per frame
    cap = 1e6 / wire
    thr = {}
    for name, scn in (("one", one), ("two", two)):
        s = run(scn).summary.iloc[0]
        thr[name] = s["throughput_rps"]
    assert thr["one"] == pytest.approx(cap, rel=0.03)
    assert thr["two"] == pytest.approx(100_000, rel=0.05)


@pytest.mark.parametrize(
    ("child", "message"),
    [
        ({"streams": [{**STREAMS[0], "device": "disk9"}]}, "no device named 'disk9'"),
        ({"streams": [{**STREAMS[1], "op": "send"}]}, "is not an operation of nvme device"),
        ({"io_path": "emulated"}, "an emulated child on several devices"),
        (
            {"streams": [{**STREAMS[1], "op": "send", "device": "nic2", "peer": {"remote": {}}}]},
            "a peer on another device",
        ),
    ],
)
def test_what_is_not_possible_or_not_built_is_refused(child: dict, message: str) -> None:
    devices = [NIC, SSD, {**NIC, "name": "nic2"}]
    with pytest.raises(ScenarioError, match=message):
        _scn(devices=devices, **child)


def test_revoking_a_vf_of_a_child_on_several_devices_is_refused() -> None:
    spec = _scn("direct").to_dict()
    spec["faults"] = [{"kind": "vf_revoke", "target": "c", "at": "5ms", "duration": "1ms"}]
    with pytest.raises(ScenarioError, match="uses several devices"):
        from_dict(spec)
