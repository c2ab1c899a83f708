"""Peers of a stream (sim.scenario.workload.Peer): a remote peer across the wire adds the
switch, the peer's port, its response time and the reply on the receive wire to the round
trip; a routed pair on one host goes through the parent's virtual switch, two channel
hops each way; a direct pair hairpins in the NIC; a mixed pair takes one channel hop and
a hairpin each way; pairs with other paths are refused as not built."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.analysis import analytic
from sim.experiment.run import run
from sim.results.tables import PEER_COLUMNS
from sim.scenario import Scenario, ScenarioError, loads, work_estimate

# one child, one request in flight, constant costs: each round trip is exactly the same
RR = """
name: rr
host: {cores: 8}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: c
    vcpus: 1
    io_path: native
    device: nic
    streams: [{op: send, size: 200B, outstanding: 1}]
run: {duration: 10ms, warmup: 1ms, seed: 3}
"""
PEER = {"remote": {"switch_latency": "3us", "response": "20us", "reply_size": "1500B"}}


def scn(**overrides: Any) -> Scenario:
    return loads(RR, overrides=overrides)


def completed(s: Scenario) -> pd.DataFrame:
    req = run(s).requests
    return req[req["in_window"]]


@pytest.mark.parametrize("path", ["native", "direct", "routed", "emulated", "hypervisor"])
def test_a_remote_peer_adds_switch_wire_and_response_to_the_round_trip(path: str) -> None:
    """The round trip is the host's own time plus both switch crossings, the request on
    the peer's port, the response time and the reply on both ports; one-way ends at the
    peer's port; the components, network and peer add up to the latency."""
    base = scn(**{"children[c].io_path": path})
    peered = scn(**{"children[c].io_path": path, "children[c].streams[0].peer": PEER})
    a, b = completed(base), completed(peered)
    assert len(a) > 50
    assert len(b) > 50
    nic = base.device("nic")
    extra = 2 * 3.0 + nic.wire_time(200) + 20.0 + 2 * nic.wire_time(1500)
    assert b["latency_us"].mean() == pytest.approx(a["latency_us"].mean() + extra, rel=1e-9)
    assert b["peer_us"].to_numpy() == pytest.approx(np.full(len(b), 20.0))
    assert b["network_us"].to_numpy() == pytest.approx(
        np.full(len(b), 2 * 3.0 + nic.wire_time(200) + 2 * nic.wire_time(1500))
    )
    # out: everything up to the child's port sending (its last completion steps are on
    # the reply's side), then the switch and the peer's port
    assert (b["one_way_us"] < b["latency_us"] - 20.0).all()
    assert (b["one_way_us"] > 3.0 + nic.wire_time(200)).all()
    from sim.model.metrics import COMPONENT_COLUMNS

    total = b[list(COMPONENT_COLUMNS)].sum(axis=1) + b["network_us"] + b["peer_us"]
    assert total.to_numpy() == pytest.approx(b["latency_us"].to_numpy(), rel=1e-9)
    # the summary carries the round trip and its parts
    row = run(peered).summary.iloc[0]
    assert row["round_trip_us"] == pytest.approx(row["mean_us"])
    for col in PEER_COLUMNS:
        assert row[col] == pytest.approx(b[col].mean(), rel=1e-9)


def test_without_a_peer_no_peer_columns() -> None:
    res = run(scn())
    for col in PEER_COLUMNS:
        assert col not in res.requests.columns
        assert f"{col}_us" not in res.summary.columns
    assert "round_trip_us" not in res.summary.columns


def test_the_peer_response_time_is_drawn_from_its_distribution() -> None:
    """Exponential responses, mean 50 µs: over several seeds, each run's mean response
    lies within 4.5 standard errors (the exponential's sd is its mean)."""
    peer = {"remote": {"switch_latency": "1us", "response": {"dist": "exponential",
                                                              "mean": "50us"}}}  # fmt: skip
    means = []
    for seed in (1, 2, 3, 4):
        b = completed(scn(**{"children[c].streams[0].peer": peer, "run.seed": seed}))
        n = len(b)
        assert n > 100
        assert abs(b["peer_us"].mean() - 50.0) < 4.5 * 50.0 / np.sqrt(n)
        means.append(b["peer_us"].mean())
    assert len(set(means)) == 4  # each seed its own draws


def test_replies_wait_behind_frames_arriving_on_the_same_port() -> None:
    """A Poisson receive stream loading the port's receive wire to ~75 % makes the replies
    queue there: the network part of the round trip grows by about the M/D/1 wait,
    rho S / (2 (1 - rho)) ~ 0.8 µs for 1500 B frames of 0.5 µs on 25 GbE."""
    rx = {"op": "receive", "size": "1500B", "rate": "1.5M", "arrival": "poisson"}
    quiet = completed(scn(**{"children[c].streams[0].peer": PEER}))
    busy_all = completed(
        scn(
            **{
                "children[c].vcpus": 2,
                "children[c].streams": [{"op": "send", "size": "200B", "outstanding": 1,
                                         "peer": PEER, "vcpu": 0}, {**rx, "vcpu": 1}],
            }
        )
    )  # fmt: skip
    busy = busy_all[busy_all["stream"] == 0]
    assert len(busy) > 50
    grown = busy["network_us"].mean() - quiet["network_us"].mean()
    assert 0.3 < grown < 2.0


def test_a_peer_is_the_same_run_for_the_same_seed() -> None:
    s = scn(**{"children[c].streams[0].peer": {"remote": {"response": {
        "dist": "exponential", "mean": "10us"}}}})  # fmt: skip
    pd.testing.assert_frame_equal(run(s).requests, run(s).requests)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"children[c].streams[0].peer": {"child": "d"}},
            "children[c].streams[0].peer.child: no child named 'd' (children: c)",
        ),
        (
            {"children[c].streams[0].peer": {}},
            "give one of 'remote' (another host) or 'child' (this host)",
        ),
        (
            {"children[c].streams[0].op": "receive", "children[c].streams[0].rate": "1k",
             "children[c].streams[0].outstanding": None,
             "children[c].streams[0].peer": PEER},
            "a 'peer' answers sends",
        ),
        (
            {"children[c].streams[0].peer": {"remote": {"switch_latency": "-1us"}}},
            "switch_latency",
        ),
    ],
)  # fmt: skip
def test_peers_that_are_not_built_or_make_no_sense_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        scn(**overrides)


def test_the_budget_counts_the_time_away_at_the_peer() -> None:
    """A closed loop waits for its replies: with a 1 ms response, one outstanding request
    makes about 1000 round trips a second, not the host's own rate."""
    s = scn(**{"children[c].streams[0].peer": {"remote": {"response": "1ms"}},
               "run.duration": "1s"})  # fmt: skip
    parts, problem = work_estimate(s)
    assert problem is None
    assert 900 < parts["requests"] < 1000


def test_the_estimate_says_it_leaves_the_peer_out() -> None:
    s = scn(**{"children[c].streams": [{"op": "send", "size": "200B", "rate": "1k",
                                         "peer": PEER}]})  # fmt: skip
    row = analytic.estimate(s).children.iloc[0]
    assert not row["holds"]
    assert "remote peer" in row["why_not"]


# two routed children on one host, one channel each on their own parent vCPU
PAIR = """
name: pair
host: {cores: 8}
parent: {vcpus: 2}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: a
    vcpus: 1
    io_path: routed
    device: nic
    streams: [{op: send, size: 200B, outstanding: 1, peer: {child: b, response: 10us}}]
  - name: b
    vcpus: 1
    io_path: routed
    device: nic
run: {duration: 10ms, warmup: 1ms, seed: 5}
"""


def test_a_routed_vm_to_vm_pair_costs_the_parent_two_channel_hops_each_way() -> None:
    """Each message is the sender's outbound hop (VSP per packet and the payload taken
    from the sender) and the receiver's inbound hop (VSP per packet and the copy into its
    buffer): a round trip is four hops, no physical driver and no NIC."""
    s = loads(PAIR)
    res = run(s)
    req = res.requests[res.requests["in_window"]]
    assert len(req) > 100
    vsp = s.parent.vsp
    hop = vsp.request_cost.mean
    # payloads this small go through the send/receive buffer: copied both ways
    expected = 4 * hop + 2 * vsp.transfer_cost(200, 0) + 2 * vsp.transfer_cost(1, 0)
    assert req["parent_cpu_us"].to_numpy() == pytest.approx(np.full(len(req), expected))
    cpu = res.cpu
    parent = cpu[cpu["partition"] == "parent"]
    assert "driver" not in set(parent["category"])
    assert (req["device_service_us"] == 0).all()
    assert (req["device_queue_us"] == 0).all()
    # the peer's guest takes the request in and sends the reply: its VSC's CPU
    g = s.children[1].guest
    b = cpu[(cpu["partition"] == "b") & (cpu["category"] == "vsc")]["busy_us"].sum()
    a = cpu[(cpu["partition"] == "a") & (cpu["category"] == "vsc")]["busy_us"].sum()
    assert b == pytest.approx(a, rel=0.02)  # one in and one out on each side
    assert g.submit_cost.mean + g.complete_cost.mean > 0
    # the round trip: one-way to the peer's guest, its response, the reply back
    assert (req["peer_us"] == 10.0).all()
    assert (req["network_us"] == 0.0).all()
    assert (req["one_way_us"] < req["latency_us"] - 10.0).all()
    from sim.model.metrics import COMPONENT_COLUMNS

    total = req[list(COMPONENT_COLUMNS)].sum(axis=1) + req["peer_us"]
    assert total.to_numpy() == pytest.approx(req["latency_us"].to_numpy(), rel=1e-9)


def test_a_vm_to_vm_pair_is_cheaper_for_the_parent_than_the_wire() -> None:
    """The same sends to the wire cost the parent its VSP, the physical driver and the
    completion; to a child on the host no driver, but two hops per message."""
    alone = PAIR.split("  - name: b")[0] + "run: {duration: 10ms, warmup: 1ms, seed: 5}\n"
    wire = run(loads(alone, overrides={"children[a].streams[0].peer": None}))
    pair = run(loads(PAIR))
    drv = wire.cpu[(wire.cpu["partition"] == "parent") & (wire.cpu["category"] == "driver")]
    assert drv["busy_us"].sum() > 0
    w = wire.requests[wire.requests["in_window"]]
    p = pair.requests[pair.requests["in_window"]]
    assert p["parent_cpu_us"].mean() > w["parent_cpu_us"].mean()  # four hops against one


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"children[b].io_path": "emulated"},
            "a VM-to-VM pair of routed 'a' and emulated 'b' is not built",
        ),
        (
            {"children[a].io_path": "native", "children[b].io_path": "native"},
            "a VM-to-VM pair of native 'a' and native 'b' is not built",
        ),
        ({"children[a].streams[0].peer.child": "a"}, "the peer 'a' is the child itself"),
        ({"children[a].streams[0].peer.child": "z"}, "no child named 'z' (children: a, b)"),
        (
            {"children[a].streams[0].peer": {"remote": {}, "response": "1us"}},
            "a remote peer's 'response' and 'reply_size' go under 'remote'",
        ),
    ],
)  # fmt: skip
def test_vm_to_vm_pairs_that_are_not_built_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        loads(PAIR, overrides=overrides)


def test_the_budget_and_the_estimate_know_a_peer_child() -> None:
    """A 1 ms response bounds the loop at about 1000 round trips a second; the estimate
    says it leaves the virtual switch's hops out."""
    s = loads(PAIR, overrides={"children[a].streams[0].peer.response": "1ms",
                               "run.duration": "1s"})  # fmt: skip
    parts, problem = work_estimate(s)
    assert problem is None
    assert 900 < parts["requests"] < 1000
    row = analytic.estimate(s).children.set_index("partition").loc["a"]
    assert not row["holds"]
    assert "peer child on this host" in row["why_not"]


def test_a_direct_vm_to_vm_pair_hairpins_in_the_nic_without_the_parent() -> None:
    """Two direct children: each message goes from the sender's VF through the NIC's
    embedded switch into the receiver's VF: the NIC's fetch and write (its latency
    twice), no wire, no parent; the receiver takes an interrupt on its own VF and
    receives as from the wire."""
    s = loads(PAIR, overrides={"children[a].io_path": "direct", "children[b].io_path": "direct"})
    res = run(s)
    req = res.requests[res.requests["in_window"]]
    assert len(req) > 100
    assert set(res.cpu["partition"]) == {"a", "b", "host"}  # the parent does nothing
    assert (req["parent_cpu_us"] == 0).all()
    assert (req["ring_wait_us"] == 0).all()
    assert (req["device_queue_us"] == 0).all()  # neither direction of the port is taken
    nic = s.device("nic")
    assert req["device_service_us"].to_numpy() == pytest.approx(
        np.full(len(req), 4 * nic.latency.mean)
    )  # two messages, each fetched and written
    counters = res.counters.set_index("counter")["count"]
    assert counters["nic.vf[0].completions"] > 100  # the reply into a's VF
    assert counters["nic.vf[1].completions"] > 100  # the request into b's VF
    assert (req["peer_us"] == 10.0).all()
    from sim.model.metrics import COMPONENT_COLUMNS

    total = req[list(COMPONENT_COLUMNS)].sum(axis=1) + req["peer_us"]
    assert total.to_numpy() == pytest.approx(req["latency_us"].to_numpy(), rel=1e-9)
    # against the routed pair: no parent hops, so a shorter round trip
    routed = run(loads(PAIR)).requests
    assert req["latency_us"].mean() < routed[routed["in_window"]]["latency_us"].mean()


@pytest.mark.parametrize(("a", "b"), [("routed", "direct"), ("direct", "routed")])
def test_a_mixed_pair_costs_one_channel_hop_and_a_hairpin_each_way(a: str, b: str) -> None:
    """A routed child and a direct one: each message takes the routed side's channel hop
    with the parent's physical driver (outbound: VSP, payload, driver; inbound: ISR,
    driver, VSP, copy) and a hairpin in the NIC between the PF and the VF (the port's
    latency twice, no wire); the parent's CPU per round trip lies between the direct
    pair's (none) and the routed pair's (four hops)."""
    s = loads(PAIR, overrides={"children[a].io_path": a, "children[b].io_path": b})
    res = run(s)
    req = res.requests[res.requests["in_window"]]
    assert len(req) > 100
    vsp, drv = s.parent.vsp, s.parent.driver
    hops = 2 * vsp.request_cost.mean + 2 * drv.request_cost.mean + drv.interrupt_cost.mean
    # the routed side's payload taken out (its send) and copied in (its receive): the
    # request one way, the reply the other
    copies = vsp.transfer_cost(200, 0) + vsp.transfer_cost(1, 0)
    assert req["parent_cpu_us"].to_numpy() == pytest.approx(np.full(len(req), hops + copies))
    nic = s.device("nic")
    assert req["device_service_us"].to_numpy() == pytest.approx(
        np.full(len(req), 4 * nic.latency.mean)
    )  # two hairpins, each fetched and written
    assert (req["device_queue_us"] == 0).all()  # neither direction of the wire is taken
    counters = res.counters.set_index("counter")["count"]
    assert counters["nic.pf.completions"] > 100  # the direct side's messages into the PF
    assert counters["nic.vf[0].completions"] > 100  # the routed side's into the VF
    parent = res.cpu[res.cpu["partition"] == "parent"].set_index("category")["busy_us"]
    assert parent["driver"] > 0
    assert (req["peer_us"] == 10.0).all()
    from sim.model.metrics import COMPONENT_COLUMNS

    total = req[list(COMPONENT_COLUMNS)].sum(axis=1) + req["peer_us"]
    assert total.to_numpy() == pytest.approx(req["latency_us"].to_numpy(), rel=1e-9)
    # between the pairs: the direct pair costs the parent nothing, the routed one 4 hops
    routed = run(loads(PAIR)).requests
    mean = req["parent_cpu_us"].mean()
    assert 0.0 < mean < routed[routed["in_window"]]["parent_cpu_us"].mean()
