"""The HTML report (sim.report.html, ``hvsim report``) and the occupancy trace behind its
last figure."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import sim
import sim.experiment.compare
from sim.cli import main
from sim.report import html as report
from sim.report.provenance import describe, provenance
from sim.results.result import load_comparison, load_result
from sim.scenario import units

BASE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
SHORT = {"run.duration": "120ms", "run.warmup": "20ms"}
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scn = sim.load(BASE, {**SHORT, "description": HOSTILE})
    out = tmp_path_factory.mktemp("report") / "run"
    sim.run(scn, replications=2).save(out)
    return out


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scn = sim.load(BASE, SHORT)
    out = tmp_path_factory.mktemp("report") / "cmp"
    sim.experiment.compare.compare(scn, ("routed", "direct"), replications=2).save(out)
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sim.experiment.study import make_sweep, run_sweep

    rate = "children[web-routed].streams[0].rate, children[web-direct].streams[0].rate"
    spec = {
        "study": "mini",
        "scenario": str(BASE),
        "set": SHORT,
        "grid": {rate: ["10k", "40k"]},
        "replications": 2,
    }
    sweep = make_sweep(spec)
    out = tmp_path_factory.mktemp("report") / "sweep"
    run_sweep(sweep, out, executor="serial", progress=False, command="hvsim sweep mini.yaml")
    return out


def _images(text: str) -> list[bytes]:
    uris = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', text)
    return [base64.b64decode(u) for u in uris]


# -- occupancy trace -----------------------------------------------------------------------
def test_occupancy_trace_means_agree_with_the_time_averaged_levels(run_dir: Path) -> None:
    res = load_result(run_dir)
    occ = res.occupancy
    assert set(occ["quantity"]) == {"bytes", "queue", "busy"}
    # 200 intervals per replication, the last one ends at the end of the run (not recorded)
    per_rep = occ.groupby(["replication", "resource", "quantity"]).size()
    assert (per_rep == 199).all()
    # the interval means in the window, averaged, are the level's own time average
    window = occ[occ["in_window"]]
    for _, r in res.resources.iterrows():
        qty = "bytes" if r["kind"] == "ring" else "busy"
        traced = window[(window["resource"] == r["resource"]) & (window["quantity"] == qty)]
        mean = traced["value"].mean()
        expected = r["mean_level"] if qty == "bytes" else r["utilization"]
        # the trace misses the last interval (0.5 % of the window): a few % of slack
        assert mean == pytest.approx(expected, rel=0.05, abs=1e-3), r["resource"]


def test_trace_interval_zero_turns_the_trace_off() -> None:
    scn = sim.load(BASE, {**SHORT, "run.trace_interval": "0us"})
    assert sim.run(scn).occupancy.empty


def test_trace_interval_is_checked() -> None:
    with pytest.raises(sim.ScenarioError, match=r"run\.trace_interval: .*at most 100000"):
        sim.load(BASE, {**SHORT, "run.trace_interval": "1ns"})


# -- provenance and description -------------------------------------------------------------
def test_provenance_names_source_and_who_set_each_value() -> None:
    scn = sim.load(BASE, {**SHORT, "parent.vsp.request_cost": "7us"})
    prov = provenance(scn).set_index("parameter")
    row = prov.loc["parent.vsp.request_cost"]
    assert (row["value"], row["set_by"], bool(row["assumed"])) == ("7us", "scenario", True)
    hyper = prov.loc["host.costs.hypercall"]
    assert hyper["set_by"] == "default"
    assert "Dall et al." in hyper["source"]
    assert not hyper["assumed"]
    # cycles are converted with the host clock: the default is still recognised as such
    fast = provenance(sim.load(BASE, {**SHORT, "host.clock": "3GHz"})).set_index("parameter")
    assert fast.loc["host.costs.hypercall", "set_by"] == "default"
    assert prov["source"].str.len().min() > 0


def test_describe_says_what_runs_where() -> None:
    text = dict(describe(sim.load(BASE, SHORT), replications=5, seed=9))
    assert "16 logical processors" in text["host"]
    assert "routed I/O to nic0" in text["web-routed"]
    assert "direct I/O to nvme0" in text["db-direct"]
    assert "5 replications, seed 9" in text["run"]


# -- the report ------------------------------------------------------------------------------
def test_run_report_has_every_part_and_escapes_scenario_text(run_dir: Path) -> None:
    out = report.build(run_dir)
    text = out.read_text(encoding="utf-8")
    assert out == run_dir / "report.html"
    for section in ("question", "headline", "warnings", "figures", "provenance", "reproduce"):
        assert f'id="{section}"' in text
    # scenario text is escaped: the hostile description appears only as text
    assert "<script>" not in text
    assert "onerror=alert" not in text.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in text
    # one headline row per child, with the twin ratio column
    res = load_result(run_dir)
    assert text.count("<tr><td>web-") + text.count("<tr><td>db-") >= len(res.summary)
    assert "same workload on" in text
    # three figures, each a real SVG with axes labelled in units; the rings stay nearly
    # empty at the baseline's load, so their occupancy is left to the resources table
    images = _images(text)
    assert len(images) == 3
    assert "occupancy over time" not in text
    assert all(b"<svg" in img and len(img) > 5000 for img in images)
    assert b"latency (\xc2\xb5s, log scale)" in images[0]
    # nothing fetched from the network
    assert not re.search(r'(src|href)="https?://', text)
    assert "<pre>hvsim run " in text


def test_headline_values_are_the_summary(run_dir: Path) -> None:
    res = load_result(run_dir)
    page = report.page(run_dir)
    rows = {r[0]: r for r in page.headline.rows}
    for _, s in res.summary.iterrows():
        row = rows[s["partition"]]
        assert row[4].main == units.format_time(s["mean_us"])
        assert row[5].main == units.format_time(s["p99_us"])
        half = (s["p99_us_ci_high"] - s["p99_us_ci_low"]) / 2
        assert row[5].ci == f"± {units.format_time(half)}"


def test_twin_ratio_is_the_paired_ratio(run_dir: Path) -> None:
    res = load_result(run_dir)
    reps = res.replications.set_index(["partition", "replication"])["mean_us"]
    ratios = reps["web-routed"] / reps["web-direct"]
    row = next(r for r in report.page(run_dir).headline.rows if r[0] == "web-routed")
    assert row[6] == "web-direct (direct)"
    assert row[7].main == f"{ratios.mean():.3g}×"


def test_comparison_report(compare_dir: Path) -> None:
    text = report.build(compare_dir).read_text(encoding="utf-8")
    cmp_ = load_comparison(compare_dir)
    assert "mean vs routed" in text
    assert text.count(">base<") == 2 * cmp_.table["partition"].nunique()
    # CDF, breakdown, CPU; the routed path's rings stay below a tenth full (no figure)
    assert len(_images(text)) == 3
    assert "Ring and device-queue occupancy (routed)" not in text


def test_occupancy_is_shown_when_it_matters() -> None:
    """The occupancy figure: when a ring's peak reached a tenth of its capacity or a
    device had a request waiting on average; not for a few bytes in a large ring."""
    import pandas as pd

    from sim.report.html import _occupancy_matters

    def frame(kind: str, util: float, mean: float, peak: float) -> pd.DataFrame:
        return pd.DataFrame([{"resource": "r", "kind": kind, "utilization": util,
                              "mean_level": mean, "max_level": peak}])  # fmt: skip

    ring = 512 * 1024
    assert not _occupancy_matters(frame("ring", 10 / ring, 10, 400))
    assert _occupancy_matters(frame("ring", 2000 / ring, 2000, 0.2 * ring))
    assert not _occupancy_matters(frame("nic", 0.3, 0.01, 4))
    assert _occupancy_matters(frame("nvme", 0.97, 12.0, 40))


def test_sweep_report(sweep_dir: Path) -> None:
    text = report.build(sweep_dir).read_text(encoding="utf-8")
    assert "sweep report" in text
    assert "hvsim sweep mini.yaml" in text
    # p99 and throughput against the one swept key
    assert len(_images(text)) == 2
    frame = sim.load_study(sweep_dir)
    rows = frame.groupby(["point_index", "partition", "io_path"]).ngroups
    assert text.count("<tr><td>10k</td>") + text.count("<tr><td>40k</td>") == rows


def test_report_of_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(report.ReportError, match="not an hvsim result"):
        report.build(tmp_path)
    with pytest.raises(report.ReportError, match="no such directory"):
        report.build(tmp_path / "nope")


def test_cli_report(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(target)]) == 0
    assert target.is_file()
    assert f"report: {target}" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_failed_report_keeps_the_previous_one(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous", encoding="utf-8")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("meta.json", "summary.csv"):
        (broken / f).write_text((run_dir / f).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(report.ReportError, match="incomplete or unreadable"):
        report.build(broken, target)
    assert target.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "report.html"]


def test_load_result_round_trips(run_dir: Path) -> None:
    res = load_result(run_dir)
    again = pd.read_csv(run_dir / "summary.csv")
    assert list(res.summary["partition"]) == list(again["partition"])
    assert res.scenario.name == "baseline"
    assert len(res.requests) == res.meta["requests_simulated"]
