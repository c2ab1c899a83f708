"""The platform's guest protocol stack (host.guest_stack): children that price no stack
of their own take it, exactly as if they had set it themselves; a child's own wins."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import sim
from sim.analysis.analytic import estimate
from sim.scenario import ScenarioError, loads
from sim.scenario.plan import plan

# One child sending 1460 B messages open loop, well below saturation.
SEND = """
name: guest-stack
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, line_rate: 10Gbps, vfs: 2}
children:
  - name: c
    vcpus: 1
    io_path: native
    device: nic
    streams:
      - {op: send, size: 1460B, rate: 20k}
run: {duration: 20ms, warmup: 2ms, seed: 9}
"""

HOST = {"host.guest_stack.packet_cost": "1.5us", "host.guest_stack.copy_bandwidth": "16Gbps"}
CHILD = {"children[c].guest.packet_cost": "1.5us", "children[c].guest.copy_bandwidth": "16Gbps"}


def requests(over: dict[str, Any]) -> pd.DataFrame:
    return sim.run(loads(SEND, overrides=over)).requests


def guest_cpu(req: pd.DataFrame) -> float:
    """Mean guest CPU of the requests completed in the window (every cost is constant)."""
    done = req[(req["state"] == "completed") & req["in_window"]]
    return float(done["guest_cpu_us"].mean())


@pytest.mark.parametrize("path", ["native", "direct", "routed"])
def test_the_platform_stack_is_the_childs_own_when_it_prices_none(path: str) -> None:
    """A child without a stack of its own under host.guest_stack runs exactly as the same
    stack written on the child: same requests, same estimate."""
    where = {"children[c].io_path": path}
    from_host = requests({**where, **HOST})
    from_child = requests({**where, **CHILD})
    pd.testing.assert_frame_equal(from_host, from_child, check_exact=True)
    more = guest_cpu(from_host) - guest_cpu(requests(where))
    assert more == pytest.approx(1.5 + 1460 * 8e6 / 16e9, rel=1e-9)
    a = estimate(loads(SEND, overrides={**where, **HOST})).children.iloc[0]
    b = estimate(loads(SEND, overrides={**where, **CHILD})).children.iloc[0]
    assert a["guest_cpu_us"] == b["guest_cpu_us"]


def test_a_childs_own_stack_wins_both_fields_together() -> None:
    """A child that prices its stack keeps it whole: the platform's copy rate is not
    added to a child that set only a per-packet cost."""
    own = {"children[c].guest.packet_cost": "1us"}
    scn = loads(SEND, overrides={**HOST, **own})
    g = plan(scn).children[0].spec.guest
    assert g.packet_cost.mean == 1.0
    assert g.copy_bandwidth is None
    more = guest_cpu(requests({**HOST, **own})) - guest_cpu(requests({}))
    assert more == pytest.approx(1.0, rel=1e-9)


def test_without_a_platform_stack_the_plan_keeps_the_childs_spec() -> None:
    """Default host.guest_stack prices nothing and leaves every child's spec as written."""
    scn = loads(SEND)
    assert not scn.host.guest_stack.has_stack
    assert plan(scn).children[0].spec is scn.children[0]


def test_a_bad_platform_stack_names_its_field() -> None:
    """A zero copy rate is refused against host.guest_stack.copy_bandwidth."""
    with pytest.raises(ScenarioError, match=r"host\.guest_stack\.copy_bandwidth"):
        loads(SEND, overrides={"host.guest_stack.copy_bandwidth": 0})


def test_xen3_prices_its_guests_stack_with_a_source() -> None:
    """The xen-3 preset gives its guests a stack (one cycle per bit at its clock) and the
    resolved scenario names the source; a child of its own stack keeps it."""
    text = SEND.replace("name: guest-stack", "name: guest-stack\npreset: xen-3")
    text = text.replace("{name: nic, type: nic, line_rate: 10Gbps, vfs: 2}", "{name: nic0}")
    text = text.replace("device: nic\n", "device: nic0\n")
    scn = loads(text)
    assert scn.host.guest_stack.copy_bandwidth == pytest.approx(scn.host.clock)
    assert "Foong" in scn.sources["host.guest_stack.copy_bandwidth"]
    assert plan(scn).children[0].spec.guest.copy_bandwidth == pytest.approx(scn.host.clock)
