"""NIC teaming (devices[].team): member ports each with their own wires at line rate;
hash keeps each stream (flow) on one member, round_robin spreads requests over all; the
host's own stack (routed through the parent, native) uses the team, a direct child bonds
a VF of each member in its guest, each VF with its own interrupt vectors."""

from __future__ import annotations

from typing import Any

import pytest

from sim.analysis import analytic
from sim.experiment.run import run
from sim.scenario import from_dict
from sim.scenario.hardware import Team

SEND = {"op": "send", "size": "1500B", "rate": "50k"}  # ~62 % of a 1 GbE wire each


def _scn(
    path: str, team: dict[str, Any] | None, streams: list[dict[str, Any]], **nic_keys: Any
) -> Any:
    nic: dict[str, Any] = {"name": "nic", "type": "nic", "line_rate": "1Gbps", **nic_keys}
    if team is not None:
        nic["team"] = team
    return from_dict(
        {
            "name": "team",
            "host": {"cores": 8},
            "parent": {"vcpus": 2},
            "devices": [nic],
            "children": [
                {"name": "c", "vcpus": 2, "io_path": path, "device": "nic", "streams": streams}
            ],
            "run": {"duration": "20ms", "warmup": "2ms", "seed": 3},
        }
    )


def _carried(scn: Any) -> tuple[float, dict[str, float]]:
    res = run(scn)
    done = res.requests["t_complete_us"]
    req = res.requests[(done >= scn.run.warmup) & (done <= scn.run.duration)]
    span = (scn.run.duration - scn.run.warmup) / 1e6  # completions per second
    ports = res.resources[res.resources["kind"] == "nic"].set_index("resource")["utilization"]
    return len(req) / span, ports.to_dict()


def test_the_flows_of_this_module_hash_onto_both_members() -> None:
    """The hash spreads c/0 and c/1 over the two members (what the next tests rely on),
    and is a pure function of the flow's name."""
    team = Team(ports=2, policy="hash")
    assert {team.port_of("c/0"), team.port_of("c/1")} == {0, 1}
    assert team.port_of("c/0") == Team(ports=2).port_of("c/0")


@pytest.mark.parametrize("path", ["routed", "native", "direct"])
@pytest.mark.parametrize("policy", ["hash", "round_robin"])
def test_two_members_carry_what_one_port_cannot(path: str, policy: str) -> None:
    """Two streams each offering ~62 % of a port: one port saturates at its line rate
    (~81 k frames/s), a team of two carries both (100 k/s), each member about 62 % busy."""
    one, _ = _carried(_scn(path, None, [SEND, SEND]))
    wire = _scn(path, None, [SEND]).device("nic").wire_time(1500)
    assert one == pytest.approx(1e6 / wire, rel=0.03)
    two, ports = _carried(_scn(path, {"ports": 2, "policy": policy}, [SEND, SEND]))
    assert two == pytest.approx(100_000, rel=0.04)
    assert set(ports) == {"nic", "nic.port[1]"}
    for busy in ports.values():
        assert busy == pytest.approx(50_000 * wire / 1e6, rel=0.08)


def test_a_single_flow_under_hash_stays_on_one_member() -> None:
    """One stream offering 1.2 ports' worth: under hash it sticks to one member (the
    other idle) and is carried at one port's rate; round robin spreads it over both."""
    heavy = {**SEND, "rate": "98k"}
    k = Team(ports=2).port_of("c/0")
    hashed, ports = _carried(_scn("native", {"ports": 2, "policy": "hash"}, [heavy]))
    wire = _scn("native", None, [SEND]).device("nic").wire_time(1500)
    assert hashed == pytest.approx(1e6 / wire, rel=0.03)
    busy = ports["nic" if k == 0 else "nic.port[1]"]
    idle = ports["nic.port[1]" if k == 0 else "nic"]
    assert busy > 0.99
    assert idle == 0.0
    spread, _ = _carried(_scn("native", {"ports": 2, "policy": "round_robin"}, [heavy]))
    assert spread == pytest.approx(98_000, rel=0.04)


def test_the_estimate_loads_each_member() -> None:
    """Hash: a station per member, each with its flows' load; round robin: one member
    standing for all at its share."""
    hashed = analytic.estimate(_scn("native", {"ports": 2, "policy": "hash"}, [SEND, SEND]))
    st = hashed.stations.set_index("station")
    wire = _scn("native", None, [SEND]).device("nic").wire_time(1500)
    for name in ("nic", "nic.port[1]"):
        assert st.loc[name, "utilization"] == pytest.approx(50_000 * wire / 1e6, rel=1e-6)
    rr = analytic.estimate(_scn("native", {"ports": 2, "policy": "round_robin"}, [SEND, SEND]))
    assert rr.stations.set_index("station").loc["nic", "utilization"] == pytest.approx(
        50_000 * wire / 1e6, rel=1e-6
    )
    assert rr.children.iloc[0]["throughput_rps"] == pytest.approx(100_000)


def test_a_direct_child_bonds_a_vf_of_each_member_with_its_own_vectors() -> None:
    """A direct child on a team sends through its VF on each member port (hash: its two
    streams, one on each member). Under timer moderation (an interrupt 100 µs after the
    first completion pending on a vector) each VF's vectors raise their own: at the same
    total rate, about twice the interrupts of the child on one port (a little less: a
    vector that sees half the completions waits longer for the first after each
    interrupt), split evenly over the members."""
    moderation = {"usecs": "100us", "frames": 0}
    send = {**SEND, "rate": "20k"}  # two streams: ~4 completions per 100 µs in all

    def counted(team: dict[str, Any] | None) -> tuple[Any, dict[str, float]]:
        res = run(_scn("direct", team, [send, send], interrupt_moderation=moderation))
        c = res.counters.set_index("counter")["count"]
        return res, {k: v for k, v in c.items() if str(k).endswith(".interrupts")}

    _, one = counted(None)
    two_res, two = counted({"ports": 2, "policy": "hash"})
    assert list(one) == ["nic.vf[0].interrupts"]
    assert sorted(two) == ["nic.port[1].vf[0].interrupts", "nic.vf[0].interrupts"]
    assert 1.4 * one["nic.vf[0].interrupts"] < sum(two.values()) <= 2 * one["nic.vf[0].interrupts"]
    a, b = two.values()
    assert a == pytest.approx(b, rel=0.1)
    ports = two_res.resources[two_res.resources["kind"] == "nic"].set_index("resource")
    assert ports.loc["nic", "utilization"] == pytest.approx(
        ports.loc["nic.port[1]", "utilization"], rel=0.05
    )
