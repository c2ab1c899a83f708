"""Fault injection: each kind does what it says, requests are conserved, others isolated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.experiment.run import run
from sim.model.env import SimEnv
from sim.model.host import Host, simulate
from sim.model.metrics import COMPONENT_COLUMNS
from sim.model.request import ConservationError
from sim.results.faults import completion_gaps
from sim.results.tables import requests_frame
from sim.scenario import Scenario, ScenarioError, loads, replace

MS = 1000.0

# ---------------------------------------------------------------------------------------
# The shared check: every request issued ends in exactly one state, in every test's run
# ---------------------------------------------------------------------------------------
STATES = {"completed", "failed", "in_flight"}


def assert_conserved(res: sim.Result) -> None:
    """Completed + failed + in flight = issued for every stream (ids 0..n-1 once each);
    a failed request says why, no other does; completed requests' components add up."""
    req = res.requests
    assert set(req["state"]) <= STATES
    for key, g in req.groupby(["replication", "partition", "stream"]):
        ids = np.sort(g["id"].to_numpy())
        assert np.array_equal(ids, np.arange(len(ids))), key
    failed = req["state"] == "failed"
    assert (req.loc[failed, "failure"] != "").all()
    assert (req.loc[~failed, "failure"] == "").all()
    assert (req["attempts"] >= 1).all()
    assert req.loc[req["state"] == "in_flight", "t_complete_us"].isna().all()
    done = req[req["state"] == "completed"]
    total = done[list(COMPONENT_COLUMNS)].sum(axis=1)
    np.testing.assert_allclose(total, done["latency_us"], rtol=1e-9, atol=1e-6)
    assert (done[list(COMPONENT_COLUMNS)] >= -1e-9).all().all()
    # the summary's counts are the requests frame's
    if "failed" in res.summary.columns:
        inw = req[req["t_submit_us"] >= res.scenario.run.warmup]
        assert res.summary["failed"].sum() == (inw["state"] == "failed").sum()
        assert res.summary["retried"].sum() == (inw["attempts"] > 1).sum()


@pytest.fixture
def conserved() -> Callable[[sim.Result], sim.Result]:
    """The conservation check as a fixture: ``conserved(run(...))`` returns the result."""

    def check(res: sim.Result) -> sim.Result:
        assert_conserved(res)
        return res

    return check


def faulted(text: str, faults: str, **overrides: Any) -> Scenario:
    return loads(text + f"faults: {faults}\n", overrides=overrides)


def of(res: sim.Result, child: str) -> pd.DataFrame:
    r = res.requests
    return r[r["partition"] == child]


def stall(res: sim.Result, child: str, start: float, end: float) -> float:
    """The longest gap between ``child``'s completions that overlaps [start, end]."""
    done = of(res, child)
    done = done[done["state"] == "completed"]
    s, g = completion_gaps(done["t_complete_us"].to_numpy(), 0.0, res.scenario.run.duration)
    over = (s < end) & (s + g > start)
    return float(g[over].max())


def row(res: sim.Result, child: str, path: str | None = None) -> pd.Series:
    s = res.summary
    sel = s["partition"] == child
    if path is not None:
        sel &= s["io_path"] == path
    return s[sel].iloc[0]


def counter(res: sim.Result, name: str) -> float:
    c = res.counters.set_index("counter")["count"]
    return float(c.get(name, 0.0))


# ---------------------------------------------------------------------------------------
# Parent crash
# ---------------------------------------------------------------------------------------
HOST = """
name: faults
host: {cores: 16}
parent: {vcpus: 4}
devices:
  - {name: ssd, type: nvme, channels: 8, vfs: 4}
  - {name: ssd2, type: nvme, channels: 8, vfs: 4}
"""

CRASH = (
    HOST
    + """
children:
  - name: r-timeout
    io_path: routed
    device: ssd
    io_policy: {timeout: 8ms, retries: 5}
    streams: [{op: read, size: 4KiB, rate: 10k}]
  - name: r-exhaust
    io_path: routed
    device: ssd
    io_policy: {timeout: 4ms, retries: 2}
    streams: [{op: read, size: 4KiB, rate: 10k}]
  - name: r-wait
    io_path: routed
    device: ssd
    io_policy: {on_parent_failure: wait}
    streams: [{op: read, size: 4KiB, rate: 10k}]
  - name: d
    io_path: direct
    device: ssd2
    streams: [{op: read, size: 4KiB, rate: 10k}]
run: {duration: 120ms, warmup: 10ms, seed: 5}
"""
)
CRASH_AT, CRASH_FOR = 40 * MS, 20 * MS


@pytest.fixture(scope="module")
def crash() -> sim.Result:
    return run(faulted(CRASH, "[{kind: parent_crash, at: 40ms, duration: 20ms}]"))


def test_parent_crash_stalls_routed_children_for_its_duration(crash: sim.Result) -> None:
    """Every routed child completes nothing for the crash's duration; direct carries on."""
    assert_conserved(crash)
    for child in ("r-timeout", "r-exhaust", "r-wait"):
        gap = stall(crash, child, CRASH_AT, CRASH_AT + CRASH_FOR)
        assert gap == pytest.approx(CRASH_FOR, abs=0.5 * MS), child
    assert stall(crash, "d", CRASH_AT, CRASH_AT + CRASH_FOR) < 2 * MS


def test_availability_under_a_parent_crash(crash: sim.Result) -> None:
    """Availability ≈ 1 − duration/window for routed children, exactly 1 for direct ones."""
    window = crash.scenario.run.duration - crash.scenario.run.warmup
    for child in ("r-timeout", "r-exhaust", "r-wait"):
        r = row(crash, child)
        assert r["availability"] == pytest.approx(1 - CRASH_FOR / window, abs=0.01), child
        assert r["longest_stall_us"] == pytest.approx(CRASH_FOR, abs=0.5 * MS)
    d = row(crash, "d")
    assert d["availability"] == 1.0
    assert d["failed"] == 0
    assert d["retried"] == 0


def test_crashed_parent_loses_requests_and_guests_retry_them(crash: sim.Result) -> None:
    """With a timer, what the crash lost times out and is retried (attempt k+1 sent
    ``timeout`` after attempt k) until it completes after the restart."""
    r = of(crash, "r-timeout")
    hit = r[(r["t_submit_us"] < CRASH_AT + CRASH_FOR) & (r["t_complete_us"] > CRASH_AT + MS)]
    assert len(hit) > 100
    assert (hit["state"] == "completed").all()
    assert (hit["attempts"] >= 2).all()
    # sent, lost, retried every 8 ms: the retry that completes is the first after restart
    first_try_after = hit["t_submit_us"] + 8 * MS * (hit["attempts"] - 1)
    assert (first_try_after >= CRASH_AT + CRASH_FOR).all()
    assert (first_try_after - 8 * MS < CRASH_AT + CRASH_FOR).all()
    assert np.allclose(hit["retry_us"], 8 * MS * (hit["attempts"] - 1), atol=1.0)
    assert (r[r["t_submit_us"] > CRASH_AT + CRASH_FOR + MS]["attempts"] == 1).all()


def test_retries_run_out_while_the_parent_is_down(crash: sim.Result) -> None:
    """Three 4 ms attempts that all fall in a 20 ms crash fail for good."""
    r = of(crash, "r-exhaust")
    failed = r[r["state"] == "failed"]
    assert len(failed) > 50
    assert set(failed["failure"]) == {"retries exhausted"}
    assert (failed["attempts"] == 3).all()
    # failed 3 × 4 ms after submission, all of it while the parent was down
    assert np.allclose(failed["latency_us"], 12 * MS, atol=1.0)
    assert (failed["t_submit_us"] + 8 * MS < CRASH_AT + CRASH_FOR).all()  # all 3 lost
    sent = r["t_submit_us"]
    survivors = r[(sent + 8 * MS > CRASH_AT + CRASH_FOR + 0.1 * MS) & (sent < CRASH_AT + CRASH_FOR)]
    assert len(survivors) > 20
    assert (survivors["state"] == "completed").all()


def test_waiting_guests_resubmit_what_the_crash_lost(crash: sim.Result) -> None:
    """on_parent_failure: wait: nothing fails; the lost requests are resubmitted at the
    restart and complete just after it."""
    r = of(crash, "r-wait")
    assert (r["state"] != "failed").all()
    resent = r[r["attempts"] == 2]
    assert len(resent) > 100
    assert (resent["t_submit_us"] < CRASH_AT + CRASH_FOR).all()
    assert (resent["t_complete_us"] > CRASH_AT + CRASH_FOR).all()
    assert np.allclose(resent["t_submit_us"] + resent["retry_us"], CRASH_AT + CRASH_FOR)
    assert counter(crash, "attempts.resubmitted") == len(resent)


def test_direct_latency_does_not_move_during_a_parent_crash(crash: sim.Result) -> None:
    """The direct child's p99 during the crash is that outside it (faults.csv)."""
    f = crash.faults.set_index("partition")
    assert f.loc["d", "p99_us_during"] == pytest.approx(f.loc["d", "p99_us_outside"], rel=0.25)
    assert f.loc["d", "retried"] == 0
    assert f.loc["r-timeout", "p99_us_during"] > 5 * f.loc["r-timeout", "p99_us_outside"]


CLOSED = (
    HOST
    + """
children:
  - name: r
    io_path: routed
    device: ssd
    io_policy: {timeout: 30ms, retries: 0}
    streams: [{op: read, size: 4KiB, outstanding: 8}]
run: {duration: 100ms, warmup: 10ms, seed: 2}
"""
)


def test_failed_requests_are_those_in_flight_at_the_crash(conserved: Any) -> None:
    """Without retries every request the crash lost fails with "timeout", one timeout
    after it was sent: the 8 users' requests in flight at the crash (a user whose
    request was already on its way back sends one more, lost in turn)."""
    res = conserved(run(faulted(CLOSED, "[{kind: parent_crash, at: 40ms, duration: 20ms}]")))
    r = of(res, "r")
    failed = r[r["state"] == "failed"]
    assert set(failed["failure"]) == {"timeout"}
    assert len(failed) == 8
    at = CRASH_AT
    ended = r["t_complete_us"].fillna(np.inf)
    in_flight = r[(r["t_submit_us"] < at) & (ended > at + 0.1 * MS)]  # in the parent's hands
    sent_after = r[(r["t_submit_us"] > at) & (r["t_submit_us"] < at + 0.1 * MS)]
    assert len(in_flight) >= 4
    assert sorted(failed["id"]) == sorted([*in_flight["id"], *sent_after["id"]])
    assert np.allclose(failed["latency_us"], 30 * MS)
    # the users were blocked on them: the child stalled a timeout, not the crash
    assert stall(res, "r", at, at + CRASH_FOR) == pytest.approx(30 * MS, abs=0.5 * MS)


# ---------------------------------------------------------------------------------------
# Parent hang, VSP slowdown
# ---------------------------------------------------------------------------------------
def test_parent_hang_loses_nothing(conserved: Any) -> None:
    """A hang stalls routed I/O for its duration, then everything completes; a guest whose
    timer expires during it retries, and no request is counted twice."""
    res = conserved(run(faulted(CRASH, "[{kind: parent_hang, at: 40ms, duration: 20ms}]")))
    w = of(res, "r-wait")
    assert (w["attempts"] == 1).all()
    assert (w["state"] != "failed").all()
    # then the backlog the parent kept goes through (a crash drops it instead)
    assert stall(res, "r-wait", CRASH_AT, CRASH_AT + CRASH_FOR) == pytest.approx(
        CRASH_FOR, abs=3 * MS
    )
    # waiting in the parent was sched_wait (its vCPUs were off the LPs)
    held = w[(w["t_submit_us"] > CRASH_AT + MS) & (w["t_submit_us"] < CRASH_AT + CRASH_FOR)]
    assert (held["sched_wait_us"] > 0.5 * (CRASH_AT + CRASH_FOR - held["t_submit_us"])).all()
    t = of(res, "r-timeout")
    assert (t["attempts"] > 1).sum() > 50
    assert counter(res, "attempts.resubmitted") == 0


def test_vsp_slowdown_multiplies_the_parents_costs(conserved: Any) -> None:
    """Requests served wholly inside a slowdown spend factor × the parent CPU."""
    scn = faulted(CRASH, "[{kind: vsp_slowdown, at: 40ms, duration: 20ms, factor: 10}]")
    res = conserved(run(scn))
    r = of(res, "r-wait")
    inside = r[(r["t_submit_us"] > CRASH_AT + MS) & (r["t_complete_us"] < 59 * MS)]
    outside = r[r["t_submit_us"] > 70 * MS]
    ratio = inside["parent_cpu_us"].median() / outside["parent_cpu_us"].median()
    assert ratio == pytest.approx(10.0, rel=1e-6)
    assert row(res, "r-wait")["availability"] == 1.0
    # the same draws: outside the slowdown, the run is the one without it
    plain = run(loads(CRASH))
    p = of(plain, "r-wait")
    assert np.array_equal(p[p["t_submit_us"] < 39 * MS]["latency_us"],
                          r[r["t_submit_us"] < 39 * MS]["latency_us"])  # fmt: skip


# ---------------------------------------------------------------------------------------
# VF revoke, child crash: isolation under common random numbers
# ---------------------------------------------------------------------------------------
PAIRS = """
name: pairs
host: {cores: 16, iommu: {iotlb_entries: 4096}}
parent: {vcpus: 2}
devices:
  - {name: ssd, type: nvme, channels: 8, vfs: 4}
  - {name: ssd2, type: nvme, channels: 8, vfs: 4}
children:
  - name: a
    io_path: direct
    device: ssd
    pin: [2, 3]
    streams: [{op: read, size: 4KiB, rate: 20k}]
  - name: twin
    io_path: routed
    device: ssd
    pin: [4, 5]
    streams: [{op: read, size: 4KiB, rate: 20k}]
  - name: b
    io_path: direct
    device: ssd2
    pin: [6, 7]
    streams: [{op: read, size: 4KiB, rate: 20k}]
run: {duration: 100ms, warmup: 10ms, seed: 9}
"""
WINDOW = (40 * MS, 70 * MS)


@pytest.fixture(scope="module")
def plain() -> sim.Result:
    return run(loads(PAIRS))


def test_vf_revoke_falls_back_to_routed_for_its_duration(plain: sim.Result) -> None:
    """Requests sent while the VF is revoked go routed, with about the routed twin's
    latency; those in flight on the VF at the revoke complete on it; after, direct again."""
    res = run(faulted(PAIRS, "[{kind: vf_revoke, at: 40ms, duration: 30ms, target: a}]"))
    assert_conserved(res)
    a = of(res, "a")
    sent = a["t_submit_us"]
    during = a[(sent >= WINDOW[0]) & (sent < WINDOW[1])]
    assert len(during) > 400
    assert (during["io_path"] == "routed").all()
    assert (a[sent < WINDOW[0]]["io_path"] == "direct").all()
    assert (a[sent >= WINDOW[1]]["io_path"] == "direct").all()
    assert (a["state"] != "failed").all()
    assert (a["attempts"] == 1).all()
    twin = of(res, "twin")
    twin = twin[(twin["t_submit_us"] >= WINDOW[0]) & (twin["t_submit_us"] < WINDOW[1])]
    assert during["latency_us"].mean() == pytest.approx(twin["latency_us"].mean(), rel=0.1)
    assert during["parent_cpu_us"].mean() == pytest.approx(twin["parent_cpu_us"].mean(), rel=0.05)
    direct = a[(sent < WINDOW[0]) & (sent > 10 * MS)]
    assert during["latency_us"].mean() > direct["latency_us"].mean() + 5.0
    assert counter(res, "vf_revoke_fallbacks") == 1
    assert set(res.summary[res.summary["partition"] == "a"]["io_path"]) == {"direct", "routed"}
    assert row(res, "a", "routed")["fallback"]
    # isolation: the other direct child's requests are exactly those of the run without
    assert of(res, "b").reset_index(drop=True).equals(of(plain, "b").reset_index(drop=True))


def test_child_crash_fails_its_requests_and_changes_no_other_direct_child(
    plain: sim.Result, conserved: Any
) -> None:
    """A crashed child's requests in flight fail ("child crashed") and it issues nothing
    more; the other direct child's requests are identical (common random numbers)."""
    res = conserved(run(faulted(PAIRS, "[{kind: child_crash, at: 40ms, target: a}]")))
    a = of(res, "a")
    failed = a[a["state"] == "failed"]
    assert set(failed["failure"]) <= {"child crashed"}
    assert (failed["t_complete_us"] == 40 * MS).all()
    before = of(plain, "a")
    in_flight = before[(before["t_submit_us"] < 40 * MS) & (before["t_complete_us"] > 40 * MS)]
    assert sorted(failed["id"]) == sorted(in_flight["id"])
    assert a["t_submit_us"].max() < 40 * MS
    assert row(res, "a")["longest_stall_us"] >= 60 * MS - 1.0
    assert of(res, "b").reset_index(drop=True).equals(of(plain, "b").reset_index(drop=True))


def test_crashed_closed_loop_child_fails_every_user_request_and_reboots(conserved: Any) -> None:
    """Closed loop, no think time: at the crash every user has one request in flight,
    and each fails; after its reboot the child issues again."""
    text = PAIRS.replace(
        "streams: [{op: read, size: 4KiB, rate: 20k}]\n  - name: twin",
        "streams: [{op: read, size: 4KiB, outstanding: 16}]\n  - name: twin",
    )
    res = conserved(
        run(faulted(text, "[{kind: child_crash, at: 40ms, duration: 20ms, target: a}]"))
    )
    a = of(res, "a")
    failed = a[a["state"] == "failed"]
    assert len(failed) == 16
    assert set(failed["failure"]) == {"child crashed"}
    sent = a["t_submit_us"]
    assert not ((sent > 40 * MS) & (sent < 60 * MS)).any()
    assert (sent >= 60 * MS).sum() > 1000
    assert stall(res, "a", 40 * MS, 60 * MS) == pytest.approx(20 * MS, abs=0.5 * MS)


# ---------------------------------------------------------------------------------------
# Device reset
# ---------------------------------------------------------------------------------------
def test_device_reset_fails_and_retries_what_it_held(conserved: Any) -> None:
    """Requests in the device at the reset fail ("device reset") and are retried; the
    device completes nothing for the duration; other devices carry on."""
    text = PAIRS.replace(
        "streams: [{op: read, size: 4KiB, rate: 20k}]\n  - name: twin",
        "streams: [{op: read, size: 4KiB, outstanding: 16}]\n  - name: twin",
    )
    res = conserved(
        run(faulted(text, "[{kind: device_reset, at: 40ms, duration: 10ms, target: ssd}]"))
    )
    a, twin = of(res, "a"), of(res, "twin")
    retried = pd.concat([a, twin])
    retried = retried[retried["attempts"] > 1]
    assert counter(res, "attempts.failed.device_reset") == len(retried)
    assert len(a[a["attempts"] > 1]) >= 12  # nearly all 16 users' requests sit in the device
    assert (retried["attempts"] == 2).all()
    assert (retried["state"] == "completed").all()
    assert (retried["t_submit_us"] < 40 * MS).all()
    assert (retried["t_complete_us"] > 50 * MS).all()
    for r in (a, twin):
        done = r["t_complete_us"]
        assert not ((done > 40 * MS + 0.5 * MS) & (done < 50 * MS)).any()
    assert stall(res, "a", 40 * MS, 50 * MS) == pytest.approx(10 * MS, abs=0.5 * MS)
    assert stall(res, "b", 40 * MS, 50 * MS) < 2 * MS
    assert row(res, "b")["availability"] == 1.0


# ---------------------------------------------------------------------------------------
# LP offline
# ---------------------------------------------------------------------------------------
def test_lp_offline_moves_work_to_the_other_lps(conserved: Any) -> None:
    """Two always-busy vCPUs on two LPs share the one left while the other is offline;
    the offline time counts as idle."""
    text = """
name: lps
host: {cores: 2, scheduler: {policy: fair, time_slice: 1ms}}
parent: {vcpus: 1}
children:
  - {name: x, vcpus: 1, cpu_load: {}}
  - {name: y, vcpus: 1, cpu_load: {}}
run: {duration: 100ms, warmup: 10ms, seed: 4}
"""
    res = run(faulted(text, "[{kind: lp_offline, at: 30ms, duration: 40ms, target: 1}]"))
    window = 90 * MS
    cpu = res.cpu.groupby("partition")["busy_us"].sum()
    assert cpu["host"] == pytest.approx(40 * MS, rel=0.01)  # LP 1's offline time
    assert cpu["x"] + cpu["y"] == pytest.approx(2 * window - 40 * MS, rel=0.01)
    assert cpu["x"] == pytest.approx(cpu["y"], rel=0.05)  # both ran, sharing LP 0
    assert cpu["x"] > window - 40 * MS + 10 * MS


def test_lp_offline_pinned_vcpus_wait(conserved: Any) -> None:
    """The parent's vCPU pinned to an offline LP waits: routed I/O stalls for the
    duration; a direct child's vCPUs run elsewhere and it carries on."""
    text = (
        HOST.replace("cores: 16}\nparent: {vcpus: 4}", "cores: 4}\nparent: {vcpus: 1}")
        + """
children:
  - {name: r, io_path: routed, device: ssd, io_policy: {on_parent_failure: wait},
     streams: [{op: read, rate: 5k}]}
  - {name: d, io_path: direct, device: ssd2, streams: [{op: read, rate: 5k}]}
run: {duration: 100ms, warmup: 10ms, seed: 4}
"""
    )
    res = conserved(run(faulted(text, "[{kind: lp_offline, at: 30ms, duration: 40ms, target: 0}]")))
    assert res.scenario.parent.vcpus == 1
    assert res.scenario.host.cores == 4
    assert stall(res, "r", 30 * MS, 70 * MS) == pytest.approx(40 * MS, abs=1 * MS)
    assert stall(res, "d", 30 * MS, 70 * MS) < 3 * MS
    r = of(res, "r")
    held = r[(r["t_submit_us"] > 31 * MS) & (r["t_submit_us"] < 69 * MS)]
    assert (held["sched_wait_us"] > 0.9 * (70 * MS - held["t_submit_us"])).all()


# ---------------------------------------------------------------------------------------
# Without faults, results, schema, conservation check
# ---------------------------------------------------------------------------------------
def test_no_faults_changes_nothing(plain: sim.Result) -> None:
    """Without faults: one attempt each, no failures, no fault columns or table, and the
    same requests whatever the guests' policy (its timer cannot expire in the run)."""
    assert_conserved(plain)
    assert (plain.requests["attempts"] == 1).all()
    assert (plain.requests["failure"] == "").all()
    assert "availability" not in plain.summary.columns
    assert plain.faults.empty
    other = run(loads(PAIRS, overrides={"children[a].io_policy.on_parent_failure": "wait"}))
    assert other.requests.equals(plain.requests)


def test_a_command_timer_without_faults_retries_slow_requests(conserved: Any) -> None:
    """A timeout shorter than the device's service makes requests time out and retry
    even without faults; retries exhausted ends them failed."""
    text = PAIRS.replace(
        "device: ssd2\n", "device: ssd2\n    io_policy: {timeout: 60us, retries: 1}\n"
    )
    res = conserved(run(loads(text)))
    b = of(res, "b")
    assert (b["attempts"] == 2).sum() > 100
    assert set(b.loc[b["state"] == "failed", "failure"]) == {"retries exhausted"}
    assert (of(res, "a")["attempts"] == 1).all()
    assert row(res, "b")["retried"] > 100  # the summary counts them
    assert "retried" in res.summary.loc[res.summary["partition"] == "b", "warnings"].iloc[0]


def test_faults_csv_and_report(crash: sim.Result, tmp_path: Path) -> None:
    """Result.save writes faults.csv (a row per fault and child) and load_result reads it;
    the report shows the latency-over-time figure and the fault columns."""
    from sim.report import html
    from sim.results.result import load_result

    out = crash.save(tmp_path / "crash")
    f = pd.read_csv(out / "faults.csv")
    assert set(f["partition"]) == {"r-timeout", "r-exhaust", "r-wait", "d"}
    assert set(f["kind"]) == {"parent_crash"}
    assert {"failed", "retried", "p99_us_during", "p99_us_outside", "longest_stall_us"} <= set(
        f.columns
    )
    back = load_result(out)
    assert len(back.faults) == 4
    page = html.render(out)
    assert "Latency over time around the faults" in page
    assert "availability" in page
    assert "parent crash at 40.0 ms" in page


def test_fault_schema_errors() -> None:
    """Faults are checked like the rest: kind, duration, factor, target, overlap."""
    base = (
        HOST
        + """
children:
  - {name: c, io_path: direct, device: ssd, streams: [{op: read, rate: 1k}]}
  - {name: r, device: ssd, streams: [{op: read, rate: 1k}]}
run: {duration: 100ms, warmup: 10ms}
faults: """
    )
    bad = {
        "[{kind: parent_crash, at: 1ms}]": "needs a 'duration'",
        "[{kind: vsp_slowdown, at: 1ms, duration: 1ms}]": "needs a 'factor'",
        "[{kind: parent_hang, at: 1ms, duration: 1ms, factor: 2}]": "vsp_slowdown only",
        "[{kind: vf_revoke, at: 1ms, duration: 1ms, target: x}]": "no child named 'x'",
        "[{kind: device_reset, at: 1ms, duration: 1ms, target: nic}]": "no device named",
        "[{kind: lp_offline, at: 1ms, duration: 1ms, target: 16}]": "LP 16 does not exist",
        "[{kind: child_crash, at: 1s, target: c}]": "not before the end of the run",
        "[{kind: parent_crash, at: 1ms, duration: 5ms}, {kind: parent_crash, at: 3ms, "
        "duration: 1ms}]": "overlaps faults[0]",
    }
    for faults, message in bad.items():
        with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("(", r"\(")):
            loads(base + faults + "\n")
    ok = loads(base + "[{kind: parent_crash, at: 1ms, duration: 5ms}]\n")
    assert ok.faults[0].target == "parent"
    assert replace(loads(base + "[]\n"), {}).faults == []
    assert loads(yaml.safe_dump(ok.to_dict())).faults == ok.faults


def test_conservation_check_catches_a_lost_request() -> None:
    """The check that runs in every run raises when a request is missing or doubled."""
    data = simulate(loads(PAIRS, overrides={"run.duration": "20ms", "run.warmup": "1ms"}))
    s = data.streams[0]
    requests_frame([data])  # as simulated: fine
    s.done = s.done[:-1]
    with pytest.raises(ConservationError):
        requests_frame([data])
    s.done = np.concatenate([s.done, s.done[:1]])
    with pytest.raises(ConservationError):
        requests_frame([data])
    env = SimEnv(loads(PAIRS), 1)
    host = Host(env)
    host.start()
    env.run(until=5 * MS)
    host.streams[0].live.clear()  # a request vanishes
    with pytest.raises(ConservationError):
        host.collect(0, 0.0)
