"""The analytic estimate (sim.analysis.analytic): theory where it is exact, the simulation where it
should hold, and the flag where it does not agree."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import sim
from sim.analysis import analytic
from sim.experiment.compare import on_path
from sim.experiment.validate import THEORIES, load_case
from sim.model.env import SimEnv
from sim.model.host import Host
from sim.model.iopaths import EmulatedPath, RoutedPath
from sim.scenario import from_dict, replace
from sim.scenario.plan import plan

BASE = "scenarios/baseline.yaml"


def _case(name: str) -> tuple[dict, sim.Scenario]:
    case = load_case(f"scenarios/validation/{name}.yaml")
    return case, from_dict(case["scenario"])


def test_mm1_is_pollaczek_khinchine_exactly() -> None:
    """On the reduced M/M/1 case (a native child with no CPU costs, one device channel)
    the estimate is the closed form hvsim validate holds the model to."""
    case, scn = _case("mm1-mean")
    est = analytic.estimate(scn).children.iloc[0]
    assert est["mean_us"] == pytest.approx(THEORIES["pk"](scn, case), rel=1e-12)
    assert est["holds"], est["why_not"]


def test_tandem_is_jackson() -> None:
    """On the tandem case (vCPU → device → vCPU, exponential) the estimate is Jackson's
    sum of M/M/1 stations, up to the device's 1-byte transfer, which makes its service
    exponential plus a constant δ: Pollaczek–Khinchine then differs from the M/M/1 form
    by λ(E_exp[S²] − E[S²]) / (2(1−ρ)) = λ(m² − σ²) / (2(1−ρ)), a few 1e-4 µs."""
    case, scn = _case("tandem-mean")
    est = analytic.estimate(scn).children.iloc[0]
    expected = THEORIES["tandem"](scn, case)
    dev = scn.device("ssd")
    lam = scn.children[0].streams[0].rate / 1e6
    mean = dev.read.mean + 1 * 8e6 * dev.channels / dev.bandwidth
    bound = lam * (mean**2 - dev.read.variance) / (2 * (1 - lam * mean))
    assert abs(est["mean_us"] - expected) <= bound + 1e-9
    assert 0 < bound < 1e-3
    assert est["holds"], est["why_not"]


@pytest.fixture(scope="module")
def baseline() -> sim.Result:
    scn = sim.load(BASE, {"run.duration": "300ms", "run.warmup": "50ms"})
    return sim.run(scn, replications=3)


def test_baseline_agrees_within_the_stated_tolerance(baseline: sim.Result) -> None:
    """On the baseline, every station below 60 % busy, each child's simulated mean is
    within the tolerance of the estimate: its waits (the part resting on Poisson-arrival
    approximations; scheduling waits are left out), the simulation's 95 % half-width,
    and 1 % for the finite horizon; and no disagreement is flagged."""
    s = baseline.summary
    assert s["analytic_holds"].all()
    assert (s["analytic_utilization"] <= analytic.HOLDS_BELOW).all()
    for _, r in s.iterrows():
        half = (r["mean_us_ci_high"] - r["mean_us_ci_low"]) / 2
        tol = analytic.tolerance(r["analytic_mean_us"], r["analytic_wait_us"], half)
        assert abs(r["mean_us"] - r["analytic_mean_us"]) <= tol, r["partition"]
        assert "analytic:" not in r["warnings"]
        # the tolerance is of the order of the waits, not of the whole latency
        assert tol < 0.3 * r["analytic_mean_us"], r["partition"]


def test_components_add_up_and_follow_the_simulation(baseline: sim.Result) -> None:
    """The estimate's components add up to its mean, and each service component (exact
    means of the scenario's costs) is the simulated one within the simulation's noise."""
    est = analytic.estimate(baseline.scenario).children.set_index("partition")
    comps = [c for c in est.columns if c.endswith("_us") and c not in ("mean_us", "wait_us")]
    assert est[comps].sum(axis=1).to_numpy() == pytest.approx(est["mean_us"].to_numpy())
    sim_rows = baseline.summary.set_index("partition")
    for part in est.index:
        for comp in ("guest_cpu_us", "parent_cpu_us", "iommu_us"):
            assert est.loc[part, comp] == pytest.approx(sim_rows.loc[part, comp], abs=0.05)
        # device service: a mean over ~10⁴ gamma draws per replication, cv ≤ 0.6
        assert est.loc[part, "device_service_us"] == pytest.approx(
            sim_rows.loc[part, "device_service_us"], rel=0.02
        )


@pytest.mark.parametrize(
    ("override", "child"),
    [
        ({"children[web-direct].guest.submit_cost": "6us"}, "web-direct"),
        ({"devices[nvme0].read": {"dist": "gamma", "mean": "90us", "cv": 0.5}}, "db-direct"),
    ],
)
def test_a_wrong_model_is_flagged(baseline: sim.Result, override: dict, child: str) -> None:
    """The flag has power: the simulated means held against the estimate of a scenario
    that costs 4 µs more per request on the child's vCPU, or 7 µs more per NVMe command
    (both still below 60 % busy, where the estimate should hold), disagree for the child
    that pays it."""
    wrong = analytic.estimate(replace(baseline.scenario, override))
    cols = analytic.beside(baseline.summary, wrong)
    rows = pd.concat([baseline.summary.drop(columns=cols.columns), cols], axis=1)
    flagged = {r["partition"] for _, r in rows.iterrows() if analytic.disagreement(r)}
    assert child in flagged


def test_disagreement_only_where_the_estimate_holds() -> None:
    """No flag beyond the approximation or without an interval; a flag names the gap."""
    row = {"analytic_mean_us": 10.0, "analytic_wait_us": 1.0, "analytic_holds": True,
           "mean_us": 20.0, "mean_us_ci_low": 19.0, "mean_us_ci_high": 21.0}  # fmt: skip
    text = analytic.disagreement(row)
    assert "above the analytic 10 µs" in text
    assert analytic.disagreement({**row, "analytic_holds": False}) == ""
    assert analytic.disagreement({**row, "mean_us_ci_low": math.nan}) == ""
    assert analytic.disagreement({**row, "mean_us": 11.5}) == ""  # within 1 + 1 + 0.1


def test_saturation_factor_is_where_the_bottleneck_is_full() -> None:
    """Scaling every open-loop rate by the saturation factor brings the bottleneck's
    mandatory utilisation to exactly 1; routed baseline: a parent vCPU, direct: NVMe."""
    scn = sim.load(BASE)
    for path, resource in (("routed", "parent vCPUs"), ("direct", "device nvme0")):
        est = analytic.estimate(on_path(scn, path))
        assert est.resource == resource
        factor = est.saturation_factor
        rates = {
            f"children[{i}].streams[0].rate": c.streams[0].rate * factor
            for i, c in enumerate(scn.children)
        }
        full = analytic.estimate(replace(on_path(scn, path), rates)).stations
        row = full[full["station"] == est.bottleneck].iloc[0]
        assert row["bound_utilization"] == pytest.approx(1.0, rel=1e-9)
        children = analytic.estimate(replace(on_path(scn, path), rates)).children
        assert not children[children["bottleneck"] == est.bottleneck]["holds"].any()


def _placement(scn: sim.Scenario) -> dict[str, tuple[str, list[int]]]:
    host = Host(SimEnv(scn, scn.run.seed, 0))
    out = {}
    for s in host.streams:
        path = s.path
        if isinstance(path, RoutedPath):
            out[s.child.name] = ("routed", [v.index for v in path.parent_vcpus])
        elif isinstance(path, EmulatedPath):
            out[s.child.name] = ("emulated", [path.parent_vcpu.index])
        else:
            out[s.child.name] = (s.child.io_path, [])
    return out


def test_layout_is_the_models() -> None:
    """VF assignment, fallback and the channels' parent vCPUs are those the model builds:
    sub-channels, a VF fallback, an emulated child's device model."""
    scn = from_dict(
        {
            "name": "layout",
            "parent": {"vcpus": 3, "vmbus": {"vcpus_per_channel": 2}},
            "devices": [{"name": "nic0", "type": "nic", "vfs": 1}],
            "children": [
                {"name": "a", "vcpus": 5, "io_path": "routed", "device": "nic0",
                 "streams": [{"op": "send", "rate": "1k"}]},
                {"name": "b", "count": 2, "io_path": "direct", "device": "nic0",
                 "streams": [{"op": "send", "rate": "1k"}]},
                {"name": "e", "io_path": "emulated", "device": "nic0",
                 "streams": [{"op": "send", "rate": "1k"}]},
            ],
        }
    )  # fmt: skip
    ours = {p.name: (p.path, p.parent_vcpus) for p in plan(scn).children}
    assert ours == _placement(scn)
    assert ours["b-2"][0] == "routed"  # one VF: the second falls back
    assert len(ours["a"][1]) == 3  # a primary and two sub-channels


def test_summary_and_report_carry_the_estimate(baseline: sim.Result, tmp_path) -> None:
    """The run's summary has the estimate's columns; the report shows it beside the
    headline."""
    from sim.report import html

    assert {"analytic_mean_us", "analytic_wait_us", "analytic_utilization",
            "analytic_holds"} <= set(baseline.summary.columns)  # fmt: skip
    out = baseline.save(tmp_path / "run")
    text = html.build(out).read_text(encoding="utf-8")
    assert 'id="analytic"' in text
    assert text.count(">agrees<") == len(baseline.summary)
