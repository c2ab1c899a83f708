"""Per-VM and per-vCPU costs (timer ticks, halt exits, housekeeping, per-VF interrupt
vectors) and the parent's own background load."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim.analysis.analytic import estimate
from sim.model.host import simulate
from sim.model.records import RunData
from sim.results.tables import tabulate
from sim.scenario import Scenario, ScenarioError, loads, replace
from sim.scenario.budget import work_estimate

IDLE = """
name: idle
host: {cores: 8}
parent: {vcpus: 1}
children:
  - name: vm
    count: 3
    vcpus: 2
    timer: {mode: periodic, hz: 1000, handler_cost: 1us}
run: {duration: 50ms, warmup: 10ms, seed: 3}
"""
WINDOW = 40_000.0


def busy(data: RunData, category: str, partition: str | None = None) -> float:
    """µs charged to ``category`` (of ``partition``, or of every partition)."""
    return sum(
        r.busy_us
        for r in data.cpu
        if r.category == category and (partition is None or r.partition == partition)
    )


def host_busy(data: RunData) -> float:
    return sum(r.busy_us for r in data.cpu if r.category != "idle")


def test_periodic_ticks_every_vcpu_at_hz_with_their_exits() -> None:
    """Periodic: hz ticks a second on every vCPU, idle or not, each its handler and exits."""
    scn = loads(IDLE)
    data = simulate(scn, 0)
    ticks = data.counters["timer_ticks"]
    assert ticks == pytest.approx(6 * 1000 * WINDOW / 1e6, abs=6)
    assert busy(data, "timer") == pytest.approx(ticks * 1.0)
    arm = 2600 / 2500  # host.costs.timer_arm_exit at the default 2.5 GHz, posted interrupts
    assert busy(data, "timer_exit") == pytest.approx(ticks * arm)
    # each tick woke its idle vCPU: a dispatch's world switch each
    assert busy(data, "hypervisor") == pytest.approx(ticks * 1600 / 2500, rel=0.01)
    unposted = simulate(replace(scn, {"host.posted_interrupts": False}), 0)
    per_tick = busy(unposted, "timer_exit") / unposted.counters["timer_ticks"]
    assert per_tick == pytest.approx((2600 + 2600 + 1550) / 2500)
    assert unposted.counters["exits.eoi"] == unposted.counters["timer_ticks"]


def test_tickless_idle_vcpus_take_no_ticks_busy_ones_do() -> None:
    """Tickless: an idle vCPU takes no tick; a vCPU with work still ticks at hz."""
    scn = replace(loads(IDLE), {"children[vm].timer.mode": "tickless"})
    data = simulate(scn, 0)
    assert data.counters.get("timer_ticks", 0) == 0
    assert busy(data, "timer") == 0.0
    loaded = replace(scn, {"children[vm].cpu_load": {"vcpus": [0]}})
    data = simulate(loaded, 0)
    assert data.counters["timer_ticks"] == pytest.approx(3 * 1000 * WINDOW / 1e6, abs=3)


def test_halt_exits_are_charged_per_block() -> None:
    """halt_exit: every time a vCPU blocks it owes one, charged as 'halt'."""
    scn = replace(loads(IDLE), {"host.costs.halt_exit": "2500cycles"})
    data = simulate(scn, 0)
    vm = [r for r in data.sched if r.partition.startswith("vm-")]
    wakeups = sum(r.wakeups for r in vm)
    assert busy(data, "halt") == pytest.approx(wakeups * 1.0, abs=6.0)
    assert busy(simulate(loads(IDLE), 0), "halt") == 0.0


def test_housekeeping_rounds_per_vm_on_the_parent() -> None:
    """Housekeeping: one round per VM per interval, charged to the parent."""
    scn = replace(loads(IDLE), {"host.housekeeping": {"interval": "1ms", "cost": "5us"}})
    data = simulate(scn, 0)
    rounds = data.counters["housekeeping_rounds"]
    assert rounds == pytest.approx(3 * WINDOW / 1000, abs=3)
    assert busy(data, "housekeeping", "parent") == pytest.approx(rounds * 5.0)
    assert busy(data, "housekeeping") == busy(data, "housekeeping", "parent")


# a fixed total packet rate split over N direct children, one VF each, per-VF moderation
SPLIT = """
name: split
host: {cores: 16, posted_interrupts: false}
parent: {vcpus: 1}
devices:
  - name: nic
    type: nic
    vfs: 16
    interrupt_moderation: {usecs: 200us, frames: 0}
children:
  - name: vm
    count: 1
    vcpus: 1
    io_path: direct
    device: nic
    timer: {mode: periodic, hz: 1000}
    streams: [{op: send, size: 1500B, rate: 100k}]
run: {duration: 30ms, warmup: 5ms, seed: 11}
"""


def split(n: int, **extra: Any) -> Scenario:
    return replace(
        loads(SPLIT),
        {
            "children[vm].count": n,
            "children[vm].streams": [{"op": "send", "size": "1500B", "rate": f"{100 / n:g}k"}],
            **extra,
        },
    )


def test_n_vfs_raise_n_times_the_interrupts_at_the_same_packet_rate() -> None:
    """Per-VF vectors with their own timers: 4 VFs raise ~4x the interrupts of 1 VF."""
    ratios = []
    for rep in range(4):
        one, four = simulate(split(1), rep), simulate(split(4), rep)
        ints = [
            sum(
                v
                for k, v in d.counters.items()
                if k.startswith("nic.vf[") and k.endswith(".interrupts")
            )
            for d in (one, four)
        ]
        done = [
            sum(v for k, v in d.counters.items() if k.endswith(".completions")) for d in (one, four)
        ]
        assert done[1] == pytest.approx(done[0], rel=0.05)  # same packet rate
        # the timer is a vector's only trigger: at most one interrupt per 200 µs each
        assert ints[0] <= 25_000 / 200 + 1
        assert ints[1] <= 4 * (25_000 / 200 + 1)
        ratios.append(ints[1] / ints[0])
    # with frames 0 a vector raises its interrupt 200 µs after its first pending
    # completion, and its next first completion comes a gap later: one interrupt per
    # 200 µs + gap per VF. The ratio lies between 4 (gaps negligible against the timer)
    # and 4 · (200 + 10) / (200 + 40) = 3.5 (Poisson gaps of 1/λ at the VF: 10 µs at one
    # VF's 100k/s, 40 µs at 25k/s each); the single VF's vCPU, busy with the completions
    # each interrupt brings, lengthens its gaps and moves the ratio towards 4.
    m = float(np.mean(ratios))
    assert 3.5 - 0.1 <= m <= 4.0 + 0.05
    assert max(ratios) <= 4.0 * 1.05


def test_host_cpu_grows_with_the_number_of_vms_at_a_fixed_total_load() -> None:
    """Same total rate over 1 and 8 VMs: host CPU grows with each VM's ticks, vectors and
    wake-ups; the ticks and the per-VF vectors add at least their own cost per VM on top of
    what spreading the load alone adds (more, shorter busy periods: more wake-ups)."""
    flat = {
        "children[vm].timer.mode": "off",
        "devices[nic].interrupt_moderation": {"usecs": "0us", "frames": 1},
    }

    def cpu(n: int, **extra: Any) -> float:
        return float(np.mean([host_busy(simulate(split(n, **extra), r)) for r in range(2)]))

    on = {n: cpu(n) for n in (1, 4, 8)}
    assert on[1] < on[4] < on[8]
    off = {n: cpu(n, **flat) for n in (1, 8)}
    # each added VM costs at least its own ticks (1000/s · its handler and exits)
    per_tick = 1.0 + 2600 / 2500 + (2600 + 1550) / 2500
    ticks = 1000 * 25_000 / 1e6 * per_tick
    assert (on[8] - on[1]) - (off[8] - off[1]) >= 7 * ticks


# a routed and a direct child on one host; the parent has one vCPU
# the parent's 2 vCPUs share LP 0: vCPU 0 serves the routed channel, vCPU 1 runs the
# parent's own work; each child has an LP of its own
PARENT = """
name: busy-parent
host: {cores: 4}
parent: {vcpus: 2, pin: [0, 0]}
devices:
  - {name: nic, type: nic, vfs: 4}
children:
  - name: r
    vcpus: 1
    pin: [1]
    io_path: routed
    device: nic
    streams: [{op: send, size: 1500B, rate: 20k}]
  - name: d
    vcpus: 1
    pin: [2]
    io_path: direct
    device: nic
    streams: [{op: send, size: 1500B, rate: 20k}]
run: {duration: 40ms, warmup: 5ms, seed: 5}
"""


def mean_latency(scn: Scenario, data: RunData, partition: str) -> float:
    res = tabulate(scn, [data], scn.run.seed, 0.0)
    return float(res.summary.set_index("partition").loc[partition, "mean_us"])


def test_busy_parent_slows_routed_children_not_direct_ones() -> None:
    """The parent's own CPU load delays the routed child's VSP work; the direct child's
    path does not cross the parent."""
    base = loads(PARENT)
    loaded = replace(base, {"parent.cpu_load": {"busy": "2ms", "idle": "2ms", "vcpus": [1]}})
    for rep in range(3):
        quiet, busy_ = simulate(base, rep), simulate(loaded, rep)
        r = [mean_latency(s, d, "r") for s, d in ((base, quiet), (loaded, busy_))]
        d = [mean_latency(s, x, "d") for s, x in ((base, quiet), (loaded, busy_))]
        assert r[1] > 1.5 * r[0]
        assert d[1] == pytest.approx(d[0], rel=0.02)
        share = busy(busy_, "guest", "parent") / 35_000
        assert 0.3 < share < 0.6  # half its time: 2 ms bursts every 2 ms idle


def test_parent_load_constant_and_bad_vcpu() -> None:
    """A constant parent load keeps its vCPU busy; a load on a missing vCPU is refused."""
    scn = replace(loads(PARENT), {"parent.cpu_load": {}})
    data = simulate(scn, 0)
    parent = sum(r.busy_us for r in data.cpu if r.partition == "parent")
    assert parent == pytest.approx(35_000.0, rel=0.01)  # its one LP, all the time
    with pytest.raises(ScenarioError, match=r"parent.cpu_load.vcpus.0.*vCPU 2 does not exist"):
        replace(loads(PARENT), {"parent.cpu_load": {"vcpus": [2]}})


def test_budget_counts_ticks_and_rounds_and_analytic_says_it_leaves_them_out() -> None:
    """The work budget counts every tick and round; the estimate names what it omits."""
    scn = replace(loads(SPLIT), {"host.housekeeping.cost": "1us"})
    parts, problem = work_estimate(scn)
    assert problem is None
    assert parts["timer ticks"] == pytest.approx(1000 * 30_000 / 1e6)
    assert parts["housekeeping rounds"] == pytest.approx(30_000 / 10_000)
    why = estimate(scn).children.set_index("partition")["why_not"]
    assert all("timer ticks" in str(w) for w in why)
    assert not math.isnan(parts["requests"])


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("children[vm].timer.hz", 0, r"children\[vm\]\.timer\.hz: must be greater than or equal"),
        ("children[vm].timer.mode", "sometimes", r"timer\.mode: must be 'off', 'periodic'"),
        ("host.housekeeping.interval", "0us", r"host\.housekeeping\.interval: must be greater"),
        ("parent.cpu_load", {"busy": "0us"}, r"parent\.cpu_load: busy and idle are both 0"),
    ],
)
def test_bad_settings_name_their_field(where: str, value: Any, message: str) -> None:
    """A bad timer, housekeeping or parent load setting is one error naming its field."""
    with pytest.raises(ScenarioError, match=message):
        replace(loads(IDLE), {where: value})
