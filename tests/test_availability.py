"""Availability by design (sim.analysis.availability, sim.experiment.availability): the
failure/repair processes, the blast radius of each failure in the request-level model, and
the two-level estimate against closed form and against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import sim
from sim.analysis.availability import Instance, child_intervals, length, outages, schedule
from sim.experiment import availability as av
from sim.scenario import ScenarioError, loads, replace
from sim.scenario.reliability import COMPONENTS, Process

MIXED = """
name: mixed
host: {cores: 16}
parent: {vcpus: 4}
devices:
  - {name: nic0, type: nic, line_rate: 25Gbps, vfs: 8}
  - {name: nvme0, type: nvme, channels: 8, read: {dist: gamma, mean: 80us, cv: 0.5},
     write: {dist: gamma, mean: 20us, cv: 0.5}, vfs: 8}
children:
  - {name: r, vcpus: 2, io_path: routed, device: nic0, streams: [{op: send, size: 1500B,
     rate: 5k}]}
  - {name: d, vcpus: 2, io_path: direct, device: nic0, streams: [{op: send, size: 1500B,
     rate: 5k}]}
  - {name: d2, vcpus: 2, io_path: direct, device: nvme0, streams: [{op: read, size: 4KiB,
     rate: 5k}]}
  - {name: e, vcpus: 2, io_path: emulated, device: nic0, streams: [{op: send, size: 1500B,
     rate: 2k}]}
  - {name: h1, vcpus: 2, io_path: hypervisor, device: nic0, streams: [{op: send, size: 1500B,
     rate: 5k}]}
  - {name: h2, vcpus: 2, io_path: hypervisor, device: nvme0, streams: [{op: read, size: 4KiB,
     rate: 5k}]}
  - {name: h3, vcpus: 2, io_path: hypervisor, device: nvme0, streams: [{op: read, size: 4KiB,
     rate: 5k}]}
run: {duration: 150ms, warmup: 15ms, seed: 5}
"""
OFF = {f"reliability.{c}": {"mtbf": None, "every": None} for c in COMPONENTS}


@pytest.fixture(scope="module")
def mixed_states() -> av.StateRuns:
    """Level 2 on a host with children on every path (one replication per state)."""
    return av.measure_states(loads(MIXED), replications=1, seed=1)


def _touched(states: av.StateRuns, state: str) -> dict[str, str]:
    f = states.frame
    rows = f[(f["state"] == state) & (f["touched"] != "")]
    return dict(zip(rows["child"], rows["touched"], strict=True))


# -- the blast radius, by simulation ---------------------------------------------------------
def test_a_parent_failure_touches_every_routed_and_emulated_child_and_no_direct_one(
    mixed_states: av.StateRuns,
) -> None:
    for state in ("parent_crash parent", "parent_hang parent"):
        assert _touched(mixed_states, state) == {"r": "down", "e": "down"}, state


def test_a_hypervisor_driver_failure_touches_every_child_on_that_devices_hypervisor_path(
    mixed_states: av.StateRuns,
) -> None:
    assert _touched(mixed_states, "hv_driver_crash nvme0") == {"h2": "down", "h3": "down"}
    assert _touched(mixed_states, "hv_driver_crash nic0") == {"h1": "down"}


def test_a_vf_revoke_moves_exactly_one_child_to_routed_for_the_repair_time(
    mixed_states: av.StateRuns,
) -> None:
    assert _touched(mixed_states, "vf_revoke d") == {"d": "routed"}
    scn = loads(MIXED)
    at, dur = 50_000.0, 30_000.0
    fault = {"kind": "vf_revoke", "at": f"{at}us", "duration": f"{dur}us", "target": "d"}
    req = sim.run(replace(scn, {"faults": [fault]}), seed=2).requests
    moved = req[req["io_path"] != req["requested_path"]]
    assert set(moved["partition"]) == {"d"}
    assert set(moved["io_path"]) == {"routed"}
    d = req[(req["partition"] == "d") & (req["state"] == "completed")]
    inside = d[(d["t_submit_us"] >= at + 100) & (d["t_submit_us"] < at + dur - 100)]
    outside = d[(d["t_submit_us"] < at) | (d["t_submit_us"] >= at + dur + 100)]
    assert len(inside) > 50
    assert (inside["io_path"] == "routed").all()
    assert (outside["io_path"] == "direct").all()


def test_the_blast_table_is_the_rules_where_not_simulated(mixed_states: av.StateRuns) -> None:
    """Measured rows agree with the model's rules for the parent, drivers, devices, VFs;
    a child crash touches its own child only."""
    scn = loads(MIXED)
    measured = av.blast_table(scn, mixed_states).set_index("failure")
    ruled = av.blast_table(scn).set_index("failure")
    for failure in ("parent_crash", "hv_driver nic0", "hv_driver nvme0", "device nvme0", "vf d"):
        assert measured.loc[failure].to_dict() == ruled.loc[failure].to_dict(), failure
    assert {k for k, v in measured.loc["child h2"].items() if v} == {"h2"}


# -- level 1 -------------------------------------------------------------------------------
def test_one_exponential_component_recovers_mtbf_over_mtbf_plus_mttr() -> None:
    """Exponential failures and repairs of the parent alone: level 1's availability of a
    routed child is MTBF / (MTBF + MTTR) within its interval, across seeds."""
    scn = replace(
        sim.load("scenarios/baseline.yaml"),
        {**OFF, "reliability.parent_crash": {"mtbf": "30d", "mttr": "1d", "repair": "exponential"}},
    )
    effects = {("parent_crash", "web-routed"): av.StateEffect("down")}
    expected = 30.0 / 31.0
    hits = 0
    for seed in range(5):
        table = av.combine(scn, effects, 10 * 365 * 86400.0, 40, seed).set_index("child")
        row = table.loc["web-routed"]
        hits += abs(row["availability"] - expected) <= row["availability_hw"]
        assert table.loc["web-direct", "availability"] == 1.0
        assert abs(row["availability"] - expected) < 0.01
    assert hits >= 4  # 95 % intervals: 5 of 5 expected, 4 allowed


@pytest.mark.parametrize("failure", ["exponential", "weibull", "lognormal"])
def test_up_times_have_their_mean(failure: str) -> None:
    """The failure distributions are scaled to their mtbf (Weibull and lognormal by their
    shape), the maintenance windows come every period."""
    proc = Process(failure=failure, mtbf="100s", shape=0.7 if failure != "exponential" else None,
                   repair="fixed", mttr="1s")  # fmt: skip
    rng = np.random.default_rng(3)
    ivs = outages(proc, 200_000.0, rng)
    ups = np.diff([a for a, _ in ivs]) - 1.0
    assert abs(ups.mean() - 100.0) < 5 * ups.std() / math.sqrt(len(ups))
    win = Process(every="10s", window="1s", offset="2s")
    assert outages(win, 35.0, rng) == [(2.0, 3.0), (12.0, 13.0), (22.0, 23.0), (32.0, 33.0)]


def test_a_direct_child_on_its_fallback_is_down_while_the_parent_is() -> None:
    """The revoked VF's child runs routed: a parent outage inside the revoke takes it
    down for the overlap only."""
    scn = loads(MIXED)
    sched = schedule(replace(scn, OFF), 100.0, 1, 0)
    sched.down = {
        Instance("vf", "vf_revoke", "d"): [(10.0, 20.0)],
        Instance("parent_crash", "parent_crash", "parent"): [(15.0, 30.0)],
    }
    effects = {("vf d", "d"): av.StateEffect("routed"),
               ("parent_crash", "r"): av.StateEffect("down", 0.5, True)}  # fmt: skip
    ivs = child_intervals(scn, sched, effects)
    assert ivs["d"]["down"] == [(15.0, 20.0)]
    assert ivs["r"]["down"] == [(15.0, 30.5)]
    assert length(ivs["h1"]["down"]) == 0.0


def test_bad_reliability_input_is_one_line() -> None:
    with pytest.raises(ScenarioError, match=r"reliability\.child\.mtbf.*needs a unit"):
        replace(loads(MIXED), {"reliability.child.mtbf": 90})
    with pytest.raises(ScenarioError, match="needs a 'shape'"):
        replace(loads(MIXED), {"reliability.child": {"failure": "weibull", "mtbf": "9d"}})


# -- two levels against brute force -----------------------------------------------------------
def test_two_level_agrees_with_brute_force_on_a_short_horizon() -> None:
    """Inflated rates over a 270 ms window (parent crashes every 60 ms for 15 ms, the NIC
    fails every 150 ms for 12 ms, VFs revoked every 80 ms for 15 ms): per child, the
    two-level availability lies within the combined 95 % interval of brute-force runs with
    level-1 schedules scripted as faults (Bonferroni over the 4 children: each interval at
    1 - 0.05/4), and, paired, each brute-force run's availability is the two-level one of
    its own schedule within the interval of their differences."""
    scn = replace(sim.load("scenarios/baseline.yaml"), {
        **OFF, "run.duration": "300ms", "run.warmup": "30ms",
        "children[0].streams[0].rate": "6k", "children[1].streams[0].rate": "6k",
        "children[2].streams[0].rate": "4k", "children[3].streams[0].rate": "4k",
        "reliability.parent_crash": {"mtbf": "60ms", "mttr": "15ms", "repair": "fixed"},
        "reliability.device": {"mtbf": "150ms", "mttr": "12ms", "repair": "fixed"},
        "reliability.vf": {"mtbf": "80ms", "mttr": "15ms", "repair": "fixed"},
    })  # fmt: skip
    horizon = 0.27
    states = av.measure_states(scn, replications=3, seed=1, length_us=15_000.0)
    effects = av.effects_of(scn, states, math.inf)
    two = av.combine(scn, effects, horizon, 400, 7, states.floor_s).set_index("child")
    n = 10
    brute = av.brute_force(scn, n, 1)
    assert brute["faults"].min() > 0
    own = {
        k: child_intervals(scn, schedule(scn, horizon, 1, k), effects, states.floor_s)
        for k in range(n)
    }
    t = stats.t.ppf(1 - 0.05 / 8, n - 1)
    for child, g in brute.groupby("child"):
        x = g.sort_values("run")["availability"].to_numpy()
        hw = t * x.std(ddof=1) / math.sqrt(n)
        est, est_hw = two.loc[child, "availability"], two.loc[child, "availability_hw"]
        assert abs(x.mean() - est) <= math.hypot(hw, est_hw), (child, x.mean(), hw, est, est_hw)
        pred = np.array([1 - length(own[k][str(child)]["down"]) / horizon for k in range(n)])
        d = x - pred
        # the transients' uncertainty is common to the runs: it adds to the paired spread
        tol = math.hypot(t * d.std(ddof=1) / math.sqrt(n), two.loc[child, "transients_hw"])
        assert abs(d.mean()) <= tol, (child, d, tol)
    # routed children lose more than direct ones (the parent's outages)
    assert two.loc["web-routed", "availability"] < two.loc["web-direct", "availability"] - 0.05


# -- the command ---------------------------------------------------------------------------------
def test_hvsim_availability_writes_its_directory_and_report(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from sim.cli import main

    scn = Path(str(tmp_path)) / "mixed.yaml"
    scn.write_text(MIXED.replace("duration: 150ms", "duration: 60ms").replace("15ms", "6ms"))
    out = Path(str(tmp_path)) / "out"
    args = ["availability", str(scn), "--paths", "hypervisor", "--runs", "5",
            "--replications", "1", "--slo", "p99<=1ms", "--out", str(out), "--report"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "blast radius, hypervisor" in printed
    for name in ("availability.csv", "states.csv", "blast.csv", "meta.json", "report.html"):
        assert (out / name).is_file(), name
    table = av.load_availability(out).table
    assert set(table["child"]) == {"r", "d", "d2", "e", "h1", "h2", "h3"}
    assert (table["availability"] < 1).all()
    assert (table["availability"] > 0.99).all()
    assert "Blast radius: hypervisor" in (out / "report.html").read_text(encoding="utf-8")
    meta = av.load_availability(out).meta  # the report's "set by" knows what the file set
    assert "host.cores" in meta["set_in_scenario"]
    assert meta["command"].startswith("hvsim availability")
    bad = main(["availability", str(scn), "--slo", "mean<=1ms", "--out", str(out / "x")])
    err = capsys.readouterr().err.strip()
    assert bad == 2
    assert err.startswith("error: --slo: availability judges states by a p99 bound")
    assert not (out / "x").exists()
