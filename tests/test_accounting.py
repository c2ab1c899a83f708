"""Property tests of the vCPU scheduler's and the model's CPU accounting invariants.

Random small scenarios (1-4 LPs, every scheduler policy, caps, pins, minroot, background
load and routed / direct / native I/O) are simulated, and the records and the scheduler's
internal state are checked against invariants that must hold for any input.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model.env import SimEnv
from sim.model.host import Host, simulate
from sim.model.hypervisor import RUNNABLE, RUNNING, Hypervisor, VCpu
from sim.model.records import RunData
from sim.results.tables import cpu_frame
from sim.scenario import Scenario, from_dict

# Largest CPU time one work item holds an LP for, with the default costs (2.5 GHz clock,
# constant cost distributions): guest submit / complete 2 us each; the parent's request
# item: VSP 4 us + a 4 KiB copy at 80 Gbps (0.41 us) + driver 1.5 us (+ 1.66 us of
# interrupt and EOI exits when not posted) = 7.6 us; its completion item: driver 1.5 +
# VSP 2 (+ 1.66) us, then a signalling hypercall of 1.04 us. The largest is under 10 us;
# 50 us leaves room for world-switch debt carried over a few dispatches.
MAX_ITEM_US = 50.0
REL = 1e-9
ACCOUNTING_PERIOD_US = 30_000.0  # the scheduler's default accounting_period (30 ms)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,  # no example database: every run draws fresh examples, writes nothing
)


# ---------------------------------------------------------------------------------------
# Scenario strategy
# ---------------------------------------------------------------------------------------
@st.composite
def scenario_dicts(
    draw: st.DrawFn, policy: str | None = None, capped: bool = False
) -> dict[str, Any]:
    """A valid random small scenario as plain data (``capped``: the first child has a cap)."""
    cores = draw(st.integers(1, 4))
    pol = policy or draw(st.sampled_from(["credit", "fair", "pinned"]))
    minroot = draw(st.sampled_from([0, 1])) if cores >= 2 else 0
    parent_vcpus = draw(st.integers(1, 1 if minroot else min(2, cores)))
    child_lps = list(range(minroot, cores))
    scheduler: dict[str, Any] = {"policy": pol, "load_balance": draw(st.booleans())}
    if pol == "credit":  # BOOST exists under the credit scheduler only
        scheduler["boost"] = draw(st.booleans())
    if minroot:
        scheduler["minroot"] = minroot
    host = {
        "cores": cores,
        "scheduler": scheduler,
        "costs": {"vcpu_dispatch": f"{draw(st.integers(0, 2000))}ns"},
    }
    children = []
    for i in range(draw(st.integers(1, 4))):
        vcpus = draw(st.integers(1, 3))
        child: dict[str, Any] = {"name": f"c{i}", "vcpus": vcpus}
        # weights and caps exist under the credit scheduler only
        if pol == "credit" and draw(st.booleans()):
            child["weight"] = draw(st.integers(1, 1000))
        if pol == "credit" and capped and i == 0:
            child["cap"] = draw(st.integers(10, 150))
        elif pol == "credit" and draw(st.booleans()):
            child["cap"] = draw(st.sampled_from([0, *range(10, 151)]))
        if pol == "pinned" or draw(st.booleans()):
            child["pin"] = draw(
                st.lists(st.sampled_from(child_lps), min_size=vcpus, max_size=vcpus)
            )
        kind = draw(st.sampled_from(["cpu", "io", "both"]))
        if kind != "io":
            if draw(st.booleans()):
                child["cpu_load"] = {}  # always runnable
            else:
                busy = draw(st.integers(100, 5000))
                idle = draw(st.integers(100, 5000))
                child["cpu_load"] = {
                    "busy": {"dist": "exponential", "mean": f"{busy}us"},
                    "idle": {"dist": "exponential", "mean": f"{idle}us"},
                }
        if kind != "cpu":
            child["io_path"] = draw(st.sampled_from(["routed", "direct", "native"]))
            child["device"] = "ssd"
            if draw(st.booleans()):
                stream: dict[str, Any] = {
                    "op": "read",
                    "size": "4KiB",
                    "rate": draw(st.integers(1000, 20_000)),
                }
            else:
                stream = {"op": "read", "outstanding": draw(st.integers(1, 4))}
            child["streams"] = [stream]
        children.append(child)
    return {
        "name": "prop",
        "host": host,
        "parent": {"vcpus": parent_vcpus},
        "devices": [{"name": "ssd", "type": "nvme", "channels": 4, "vfs": 2}],
        "children": children,
        "run": {
            "duration": f"{draw(st.integers(20, 60))}ms",
            "warmup": f"{draw(st.integers(0, 5000))}us",
            "seed": draw(st.integers(0, 2**32 - 1)),
        },
    }


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
def window(scn: Scenario) -> float:
    """The measurement window in µs."""
    return scn.run.duration - scn.run.warmup


def charges(data: RunData) -> dict[str, float]:
    """Total charged µs per vCPU name (every category)."""
    out: dict[str, float] = defaultdict(float)
    for _part, vcpu, _cat, us in data.cpu:
        out[vcpu] += us
    return out


def build_host(
    scn: Scenario, seed: int, checkpoints: int = 0
) -> tuple[Host, list[tuple[VCpu, int]]]:
    """Run ``scn`` on a Host built here; also returns every (vCPU, LP index) dispatch.

    With ``checkpoints``, the run stops that many times on the way and the scheduler's
    invariants are checked at each stop."""
    env = SimEnv(scn, seed)
    host = Host(env)
    hv = host.hv
    log: list[tuple[VCpu, int]] = []
    hv.dispatch_log = log
    host.start()
    end = scn.run.duration
    for k in range(1, checkpoints + 1):
        env.run(until=end * k / (checkpoints + 1) + 0.123)
        check_scheduler_state(hv)
    env.run(until=end)
    hv.flush()
    return host, log


def check_scheduler_state(hv: Hypervisor) -> None:
    """The run queues, idle list, LP and vCPU states agree with each other."""
    for p in range(3):
        assert hv.queued[p] == sum(len(lp.runq[p]) for lp in hv.lps), (p, hv.queued)
    queued = [v for lp in hv.lps for q in lp.runq for v in q]
    assert len(queued) == len({id(v) for v in queued}), "a vCPU is queued twice"
    for lp in hv.lps:
        for p, q in enumerate(lp.runq):
            for v in q:
                assert v.state == RUNNABLE, (v.name, v.state)
                assert v.pri == p, (v.name, v.pri, p)
                assert v.affinity is None or lp.index in v.affinity, (v.name, lp.index)
    queued_ids = {id(v) for v in queued}
    for v in hv.vcpus:
        if v.state == RUNNABLE:
            assert id(v) in queued_ids, f"{v.name} is RUNNABLE but in no run queue"
    for lp in hv.lps:
        if lp.current is None:
            assert not any(lp.runq), f"LP {lp.index} is idle with vCPUs in its own queue"
    idle_ids = {id(lp) for lp in hv.idle}  # an ordered dict: no LP in it twice
    for lp in hv.lps:
        assert (lp.current is None) == (id(lp) in idle_ids), (lp.index, lp.current)
        assert lp.idle == (id(lp) in idle_ids), lp.index
    for v in hv.vcpus:
        if v.state == RUNNING:
            assert v.lp is not None, v.name
            assert v.lp.current is v, v.name
            assert id(v) not in queued_ids, v.name
        else:
            assert v.lp is None, v.name
        if v.affinity is not None:
            assert v.last_lp in v.affinity, (v.name, v.last_lp, v.affinity)


def scenario(data: dict[str, Any]) -> Scenario:
    """Validate a drawn dict (a rejection is a bug of the strategy)."""
    return from_dict(data)


# ---------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(scenario_dicts())
def test_cpu_rows_add_up_to_lps_times_window(d: dict[str, Any]) -> None:
    """The cpu table's busy rows plus its idle row add up to LPs × window."""
    scn = scenario(d)
    data = simulate(scn, 0, scn.run.seed)
    frame = cpu_frame([data])
    total = float(frame["busy_us"].sum())
    expected = scn.host.cores * window(scn)
    assert (frame["busy_us"] >= 0).all()
    assert len(frame[frame["category"] == "idle"]) == 1
    assert total == pytest.approx(expected, rel=REL), (total, expected)


@SETTINGS
@given(scenario_dicts())
def test_vcpu_charges_match_lp_busy_time(d: dict[str, Any]) -> None:
    """All vCPU charges together equal the LPs' measured busy time, to rounding."""
    scn = scenario(d)
    data = simulate(scn, 0, scn.run.seed)
    charged = sum(us for *_, us in data.cpu)
    busy = sum(data.lp_busy_us)
    # work items in progress at the warm-up and at the end are split at those instants,
    # so the two measurements agree to rounding
    assert charged == pytest.approx(busy, rel=REL, abs=1e-6), (charged, busy)


@SETTINGS
@given(scenario_dicts())
def test_no_vcpu_or_lp_busier_than_the_window(d: dict[str, Any]) -> None:
    """No vCPU is charged, and no LP is busy, for more than the measurement window."""
    scn = scenario(d)
    data = simulate(scn, 0, scn.run.seed)
    w = window(scn)
    for name, us in charges(data).items():
        assert us <= w * (1 + REL) + 1e-6, (name, us, w)
    for i, us in enumerate(data.lp_busy_us):
        assert -1e-9 <= us <= w * (1 + REL), (i, us, w)
    for *_, cat, us in data.cpu:
        assert us >= 0.0, (cat, us)


@SETTINGS
@given(scenario_dicts(policy="credit", capped=True))
def test_caps_hold_under_credit(d: dict[str, Any]) -> None:
    """Under policy credit a capped child gets no more CPU than its cap allows."""
    scn = scenario(d)
    data = simulate(scn, 0, scn.run.seed)
    used = charges(data)
    warm, end = scn.run.warmup, scn.run.duration
    period = scn.host.scheduler.accounting_period
    assert period == ACCOUNTING_PERIOD_US
    cores, minroot = scn.host.cores, scn.host.scheduler.minroot
    for c in scn.children:
        if not c.cap:
            continue
        total = sum(us for name, us in used.items() if name.startswith(f"{c.name}.vcpu["))
        allowance = c.cap / 100.0 * period
        lanes = min(c.vcpus, len(set(c.pin)) if c.pin else cores - minroot)
        # The cap is enforced per accounting period (periods start at t = 0), and the
        # window [warm-up, end) is not aligned with them: the period in progress at the
        # warm-up can have its whole allowance left for after it, and the last period can
        # be cut short by the end. So the allowance is counted per period the window
        # overlaps, at most what the child's vCPUs could run in that overlap; this is at
        # most cap × window plus one allowance for each cut period (the brief's "one
        # period's worth" of slack is not enough when both ends cut a period).
        bound = 0.0
        k = int(warm // period)
        while k * period < end:
            overlap = min(end, (k + 1) * period) - max(warm, k * period)
            bound += min(allowance * 1.02, overlap * lanes)
            k += 1
        # A vCPU running a work item when its partition is parked stops at the item's end
        # (one item per vCPU per period, with its world switch), and one more per vCPU for
        # the item in progress at the warm-up.
        periods = k - int(warm // period)
        bound += (periods + 1) * c.vcpus * (MAX_ITEM_US + scn.host.costs.vcpu_dispatch)
        linear = c.cap / 100.0 * window(scn) * 1.02 + 2 * allowance
        assert total <= bound, (c.name, total, bound)
        assert total <= linear + (periods + 1) * c.vcpus * MAX_ITEM_US, (c.name, total, linear)


@SETTINGS
@given(scenario_dicts())
def test_requests_are_conserved_and_components_add_up(d: dict[str, Any]) -> None:
    """Completed plus in-flight requests are exactly those issued; components sum to latency."""
    scn = scenario(d)
    host, _ = build_host(scn, scn.run.seed)
    data = host.collect(0, 0.0)
    for s, stream in zip(data.streams, host.streams, strict=True):
        # issued = the next id the stream's counter would hand out
        issued = int(repr(stream._ids).removeprefix("count(").removesuffix(")"))
        ids = sorted([r[0] for r in s.done] + [r[0] for r in s.in_flight])
        assert ids == list(range(issued)), (s.partition, s.stream, issued)
        for rec in s.done:
            latency = rec[5] - rec[4]
            assert latency >= 0.0, rec
            assert all(x >= -1e-9 for x in rec[6:]), rec  # float rounding only
            assert abs(sum(rec[6:]) - latency) <= 1e-6, rec


@SETTINGS
@given(scenario_dicts())
def test_scheduler_state_is_consistent(d: dict[str, Any]) -> None:
    """Run queues, idle list and vCPU states agree; pinned vCPUs only run on their LPs."""
    scn = scenario(d)
    host, log = build_host(scn, scn.run.seed, checkpoints=3)
    check_scheduler_state(host.hv)
    for v, lp in log:
        assert v.affinity is None or lp in v.affinity, (v.name, lp, v.affinity)


@SETTINGS
@given(scenario_dicts())
def test_same_scenario_same_requests(d: dict[str, Any]) -> None:
    """Simulating the same scenario twice gives identical completed requests."""
    scn = scenario(d)
    data = simulate(scn, 0, scn.run.seed)
    host, _ = build_host(scn, scn.run.seed)
    for s, h in zip(data.streams, host.streams, strict=True):
        assert np.array_equal(s.done, h.done.whole())
    again = simulate(scn, 0, scn.run.seed)
    for s, t in zip(data.streams, again.streams, strict=True):
        assert np.array_equal(s.done, t.done)
    assert data.cpu == again.cpu


def test_strategy_produces_valid_scenarios() -> None:
    """Every scenario dict the strategy draws is accepted by from_dict."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(scenario_dicts())
    def check(d: dict[str, Any]) -> None:
        from_dict(d)

    check()


# ---------------------------------------------------------------------------------------
# Plain tests
# ---------------------------------------------------------------------------------------
def _cpu_child(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "vcpus": 1, "cpu_load": {}, **extra}


def test_equal_weights_share_one_lp_equally() -> None:
    """On one LP under credit, two always-runnable children of equal weight get half each."""
    scn = from_dict(
        {
            "name": "share",
            "host": {"cores": 1, "scheduler": {"policy": "credit"}},
            "parent": {"vcpus": 1},
            "children": [_cpu_child("a"), _cpu_child("b")],
            "run": {"duration": "3s", "warmup": "0ms", "seed": 1},
        }
    )
    data = simulate(scn, 0, 1)
    used = charges(data)
    w = window(scn)
    for name in ("a.vcpu[0]", "b.vcpu[0]"):
        assert used[name] / w == pytest.approx(0.5, abs=0.01), used


def test_pinned_child_never_runs_on_another_lp() -> None:
    """Under policy pinned a child pinned to LP 1 never runs, nor is charged, on LP 0."""
    scn = from_dict(
        {
            "name": "pins",
            "host": {"cores": 2, "scheduler": {"policy": "pinned"}},
            "parent": {"vcpus": 1},
            "children": [
                _cpu_child("a", pin=[1]),
                _cpu_child("b", pin=[0]),
            ],
            "run": {"duration": "50ms", "warmup": "0ms", "seed": 2},
        }
    )
    host, log = build_host(scn, 2)
    a = next(v for v in host.hv.vcpus if v.partition == "a")
    assert a.affinity == frozenset({1})
    assert a.last_lp == 1
    assert {lp for v, lp in log if v is a} == {1}
    data = host.collect(0, 0.0)
    used = charges(data)
    lp0, lp1 = data.lp_busy_us
    # LP 0 runs the parent (idle here) and b; LP 1 runs a only
    assert lp0 == pytest.approx(used["b.vcpu[0]"] + used.get("parent.vcpu[0]", 0.0), rel=1e-9)
    assert lp1 == pytest.approx(used["a.vcpu[0]"], rel=1e-9)
    assert used["a.vcpu[0]"] == pytest.approx(window(scn), rel=1e-9)


def test_minroot_parent_wakes_without_delay() -> None:
    """With minroot 1 on 2 LPs the parent's vCPU wakes at once, despite a busy child."""
    scn = from_dict(
        {
            "name": "minroot",
            "host": {"cores": 2, "scheduler": {"policy": "credit", "minroot": 1}},
            "parent": {"vcpus": 1},
            "devices": [{"name": "ssd", "type": "nvme", "channels": 4, "vfs": 2}],
            "children": [
                {
                    "name": "busy",
                    "vcpus": 1,
                    "cpu_load": {},
                    "io_path": "routed",
                    "device": "ssd",
                    "streams": [{"op": "read", "size": "4KiB", "rate": 10_000}],
                }
            ],
            "run": {"duration": "50ms", "warmup": "5ms", "seed": 3},
        }
    )
    data = simulate(scn, 0, 3)
    rows = {row[1]: row for row in data.sched}
    _, _, wakeups, wake_total, wake_max, dispatches, _, _ = rows["parent.vcpu[0]"]
    assert wakeups > 0
    assert dispatches > 0
    assert wake_total == 0.0
    assert wake_max == 0.0


# ---------------------------------------------------------------------------------------
# Regressions: work items in progress at the warm-up and at the end (fixed in sim/)
# ---------------------------------------------------------------------------------------
def _saturated_native(duration: str, warmup: str) -> Scenario:
    """One LP, kept 100 % busy by one always-runnable native child that also does I/O."""
    return from_dict(
        {
            "name": "saturated",
            "host": {"cores": 1},
            "parent": {"vcpus": 1},
            "devices": [{"name": "ssd", "type": "nvme", "channels": 4, "vfs": 2}],
            "children": [
                {
                    "name": "c",
                    "vcpus": 1,
                    "cpu_load": {},
                    "io_path": "native",
                    "device": "ssd",
                    "streams": [{"op": "read", "outstanding": 1}],
                }
            ],
            "run": {"duration": duration, "warmup": warmup, "seed": 0},
        }
    )


def test_warmup_item_not_charged_twice() -> None:
    """A work item running across the warm-up is charged only for its part in the window."""
    scn = _saturated_native("20ms", "1us")
    data = simulate(scn, 0, 0)
    w = window(scn)
    assert data.lp_busy_us == [pytest.approx(w)]
    assert charges(data)["c.vcpu[0]"] <= w * (1 + REL)
    total = float(cpu_frame([data])["busy_us"].sum())
    assert total == pytest.approx(scn.host.cores * w, rel=REL)


def test_item_running_at_the_end_is_not_idle() -> None:
    """An LP running a work item at the end of the run is not counted as idle."""
    scn = _saturated_native("1084us", "0us")
    data = simulate(scn, 0, 0)
    w = window(scn)
    assert data.lp_busy_us == [pytest.approx(w)]
    frame = cpu_frame([data])
    idle = float(frame.loc[frame["category"] == "idle", "busy_us"].sum())
    assert idle == pytest.approx(scn.host.cores * w - sum(data.lp_busy_us), abs=1e-6)
