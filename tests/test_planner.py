"""What planners read: throughput under overload, percentiles, warnings carried into
studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.experiment.run import run
from sim.scenario import loads

# a routed NIC child offered far more than a 1-vCPU parent can carry
OVERLOAD = """
name: overload
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: web
    vcpus: 2
    io_path: routed
    device: nic
    streams:
      - {op: send, size: 1500B, rate: 400k}
run: {duration: 30ms, warmup: 5ms, seed: 3, replications: 2}
"""


@pytest.mark.parametrize("seed", [3, 4])
def test_throughput_is_completions_in_the_window(seed: int) -> None:
    scn = loads(OVERLOAD, overrides={"run.seed": seed})
    res = run(scn)
    req = res.requests
    reps = res.replications
    for _, row in reps.iterrows():
        mine = req[(req["replication"] == row["replication"]) & (req["partition"] == "web")]
        cut, end = float(row["warmup_us"]), scn.run.duration
        t = mine["t_complete_us"]
        done = mine[(mine["state"] == "completed") & (t >= cut) & (t <= end)]
        window_s = (end - cut) / 1e6
        assert row["throughput_rps"] == pytest.approx(len(done) / window_s, rel=1e-12)
        bits = float(done["size_bytes"].sum()) * 8
        assert row["throughput_bps"] == pytest.approx(bits / window_s, rel=1e-12)
        sub = mine[(mine["t_submit_us"] >= cut) & (mine["t_submit_us"] <= end)]
        assert row["offered_rps"] == pytest.approx(len(sub) / window_s, rel=1e-12)
        # overloaded: far fewer completions than submissions, and more completions than
        # the latency sample (requests submitted in the window and completed by the end)
        assert row["completion_share"] < 0.9
        assert len(done) > row["requests"]
    s = res.summary.iloc[0]
    assert s["throughput_rps"] == pytest.approx(reps["throughput_rps"].mean())
    assert "saturated" in s["warnings"]


def test_throughput_matches_offered_below_saturation() -> None:
    scn = loads(OVERLOAD, overrides={"children[web].streams[0].rate": "5k"})
    s = run(scn).summary.iloc[0]
    assert s["completion_share"] == pytest.approx(1.0, abs=0.02)
    assert s["throughput_rps"] == pytest.approx(s["offered_rps"], rel=0.03)
    assert np.isfinite(s["mean_us"])


def test_scenario_reference_is_up_to_date() -> None:
    """docs/scenario-reference.md is what the generator writes from today's schema
    (regenerate: make docs)."""
    from sim.report.reference import render
    from sim.scenario.schema import json_schema

    committed = (Path(__file__).parent.parent / "docs" / "scenario-reference.md").read_text(
        encoding="utf-8"
    )
    assert committed == render(), "docs/scenario-reference.md is stale: run make docs"
    schema = json_schema()
    for name, model in schema["$defs"].items():
        assert f"## {name}\n" in committed
        for field_name in model.get("properties", {}):
            assert f"| `{field_name}` |" in committed, (name, field_name)


def test_sweep_report_carries_a_saturated_points_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep with a saturated point: the study frame, the CLI table and the report all
    carry its warning; the point below saturation has none."""
    from sim.cli import main
    from sim.experiment.study import load_study

    (tmp_path / "base.yaml").write_text(OVERLOAD)
    (tmp_path / "sweep.yaml").write_text(
        "study: over\nscenario: base.yaml\ngrid:\n  children[web].streams[0].rate: [5k, 400k]\n"
    )
    out = tmp_path / "study"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--report"]) == 0
    printed = capsys.readouterr().out
    frame = load_study(out)
    low, high = (frame[frame["point_index"] == i]["warnings"].iloc[0] for i in (0, 1))
    assert "saturated" not in low
    assert "saturated: throughput" in high
    # the grid value as a number under a short name, and the point key in every table
    assert frame["rate"].tolist() == [5000.0] * 2 + [400000.0] * 2
    requests = load_point_requests(out)
    assert set(requests["point"]) == set(frame["point"])
    assert requests.groupby("point")["point_index"].nunique().eq(1).all()
    assert "warnings:" in printed
    assert "saturated: throughput" in printed.split("warnings:")[1]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "saturated: throughput" in html
    assert "Warnings: None" not in html
    # the report opens with its answer: the point that saturated, by name and value
    answer = html.split('<div id="answer"', 1)[1].split("</div>", 1)[0]
    assert "1 of 2 points are saturated (web at rate=400k)" in answer
    assert "no latency sample at the end" in answer
    assert "throughput 4.9" in answer


def load_point_requests(out: Path) -> Any:
    import pandas as pd

    return pd.concat(pd.read_parquet(f) for f in sorted((out / "requests").glob("*.parquet")))


def test_short_grid_names() -> None:
    from sim.experiment.study import short_names

    keys = ["children[web].streams[0].rate", "host.cores", "run.replications"]
    assert short_names(keys, ["replications"]) == {
        "rate": keys[0], "cores": keys[1], "grid.replications": keys[2]
    }  # fmt: skip


def test_run_answer_gives_paired_differences_with_intervals() -> None:
    """Two children with the same workload, routed and direct: the run's answer names the
    slower, the paired difference of its mean and p99 with half-widths and percentages,
    and matches the paired statistics."""
    from sim.analysis.stats import paired
    from sim.report.answer import run_answer

    head = OVERLOAD.replace("rate: 400k", "rate: 10k").split("run:")[0]
    twin = (
        "  - {name: twin, vcpus: 2, io_path: direct, device: nic, "
        "streams: [{op: send, size: 1500B, rate: 10k}]}\n"
    )
    scn = loads(head + twin + "run: {duration: 30ms, warmup: 5ms, seed: 3, replications: 3}\n")
    res = run(scn)
    sentences = run_answer(res.summary, res.replications, {"web": ["twin"], "twin": ["web"]})
    reps = res.replications
    a = reps[reps["partition"] == "twin"].sort_values("replication")["mean_us"].to_numpy()
    b = reps[reps["partition"] == "web"].sort_values("replication")["mean_us"].to_numpy()
    p = paired(a, b)
    from sim.scenario import units

    assert sentences[0].startswith("web (routed) takes " + units.format_time(p["diff"]))
    assert f"{(p['ratio'] - 1) * 100:+.0f} %" in sentences[0]
    assert "(±" in sentences[0]
    assert sentences[-1].startswith("Every child completed")


@pytest.mark.parametrize(
    ("name", "canonical", "value"),
    [("p95", "p95", 95.0), ("p99.9", "p999", 99.9), ("p999", "p999", 99.9),
     ("p99.99", "p9999", 99.99), ("P99.5", "p995", 99.5), ("p5", "p5", 5.0)],
)  # fmt: skip
def test_percentile_names(name: str, canonical: str, value: float) -> None:
    from sim.scenario.columns import parse_percentile

    assert parse_percentile(name) == (canonical, value)


@pytest.mark.parametrize("bad", ["p100", "p0", "p1.5", "q95", "p", "p99..9"])
def test_bad_percentile_names(bad: str) -> None:
    from sim.scenario.columns import parse_percentile

    with pytest.raises(ValueError, match="percentile"):
        parse_percentile(bad)


def test_any_percentile_in_the_summary_and_in_slos() -> None:
    from sim.experiment.capacity import _with_percentiles
    from sim.experiment.slo import parse_slo

    scn = loads(OVERLOAD, overrides={"children[web].streams[0].rate": "5k",
                                     "run.percentiles": ["p95", "p99.99", "p99"]})  # fmt: skip
    assert scn.run.percentiles == ["p95", "p9999"]
    res = run(scn)
    reps = res.replications
    assert (reps["p90_us"] <= reps["p95_us"]).all()
    assert (reps["p95_us"] <= reps["p99_us"]).all()
    assert (reps["p999_us"] <= reps["p9999_us"]).all()
    for rep, g in res.requests[res.requests["in_window"]].groupby("replication"):
        row = reps[reps["replication"] == rep].iloc[0]
        assert row["p95_us"] == pytest.approx(np.percentile(g["latency_us"], 95.0))
    s = res.summary.iloc[0]
    assert s["p95_us_ci_low"] <= s["p95_us"] <= s["p95_us_ci_high"]
    clauses = parse_slo("p95<=100us and p99.99<=2ms and mean<=50us")
    assert [c.metric for c in clauses] == ["p95_us", "p9999_us", "mean_us"]
    plain = loads(OVERLOAD)
    assert _with_percentiles(plain, clauses).run.percentiles == ["p95", "p9999"]
    assert _with_percentiles(plain, parse_slo("p99<=1ms")) is plain


def test_progress_leaves_results_unchanged() -> None:
    """A run reporting progress (simulated in slices) gives the same frames as one that
    does not, and reports replications × duration in all."""
    import pandas as pd

    scn = loads(OVERLOAD, overrides={"children[web].streams[0].rate": "20k"})
    done: list[float] = []
    quiet, shown = run(scn), run(scn, progress=done.append)
    for name in ("requests", "summary", "cpu"):
        pd.testing.assert_frame_equal(getattr(quiet, name), getattr(shown, name), check_exact=True)
    assert sum(done) == pytest.approx(scn.run.replications * scn.run.duration)


def _cli(args: list[str], terminal: bool) -> str:
    """Run hvsim with stdout and stderr on a pseudo-terminal (or on pipes); what it wrote."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "100"}
    cmd = [sys.executable, "-m", "sim.cli", *args]
    if not terminal:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, check=True)
        return proc.stdout + proc.stderr
    main_fd, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))  # 40 × 100
    proc = subprocess.Popen(cmd, stdout=side, stderr=side, env=env, cwd=repo)
    os.close(side)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(main_fd)
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(OVERLOAD.replace("rate: 400k", "rate: 20k"))
    args = ["run", str(tmp_path / "s.yaml"), "--set", "run.duration=30ms"]
    shown = _cli([*args, "--out", str(tmp_path / "a")], terminal=True)
    assert "overload: simulating" in shown
    assert "left" in shown
    piped = _cli([*args, "--out", str(tmp_path / "b")], terminal=False)
    assert "simulating" not in piped
    quiet = _cli([*args, "--out", str(tmp_path / "c"), "--quiet"], terminal=True)
    assert "simulating" not in quiet


def _overlaps(fig: Any) -> list[tuple[str, str]]:
    """Pairs of tick labels of one axis whose drawn boxes intersect."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            shown = [t for t in labels if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in shown]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    if boxes[i].overlaps(boxes[j]):
                        bad.append((shown[i].get_text(), shown[j].get_text()))
    return bad


@pytest.mark.parametrize("children", [2, 12, 40])
def test_bar_chart_labels_never_overlap(children: int) -> None:
    import pandas as pd

    from sim.model.metrics import CATEGORIES, COMPONENTS
    from sim.report import plots

    names = [f"a-rather-long-child-name-{i}" for i in range(children)]
    summary = pd.DataFrame(
        {"partition": names, "io_path": ["routed", "direct"] * (children // 2),
         **{f"{c}_us": np.linspace(1, 5, children) for c in COMPONENTS}}
    )  # fmt: skip
    cpu = pd.DataFrame(
        [(n, "vcpu[0]", cat, 100.0) for n in names for cat in CATEGORIES],
        columns=["partition", "vcpu", "category", "busy_us"],
    )
    for fig in (plots.latency_breakdown(summary), plots.cpu_breakdown(cpu)):
        assert _overlaps(fig) == []


def test_a_category_keeps_its_colour_in_every_figure() -> None:
    import pandas as pd
    from matplotlib.colors import to_hex

    from sim.report import plots
    from sim.report.palette import CATEGORY_COLORS

    def colours(categories: list[str]) -> dict[str, str]:
        cpu = pd.DataFrame([("c", "vcpu[0]", k, 10.0) for k in categories],
                           columns=["partition", "vcpu", "category", "busy_us"])  # fmt: skip
        ax = plots.cpu_breakdown(cpu).axes[0]
        return {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers}

    one, two = colours(["guest", "vsp", "exit"]), colours(["exit", "driver", "idle"])
    assert one["exit"] == two["exit"] == CATEGORY_COLORS["exit"].lower()
    assert len(set(CATEGORY_COLORS.values())) == len(CATEGORY_COLORS)


def test_validation_table_keeps_whole_case_names() -> None:
    import pandas as pd

    from sim.experiment.validate import format_table

    name = "A case with a very long name that used to be cut at sixty-six characters, here"
    table = pd.DataFrame([{"case": name, "expected_text": "1–2", "simulated": 1.5, "ci": 0.1,
                           "tolerance": 0.0, "pass": True, "known_gap": ""}])  # fmt: skip
    text = format_table(table)
    assert name in text
    assert len({len(line) for line in text.splitlines()[:2]}) == 1  # rule under the head


def test_capacity_tables_carry_every_points_warnings() -> None:
    """The capacity report and CLI table list each simulated point's warnings."""
    from types import SimpleNamespace

    import pandas as pd

    from sim.report.text import capacity_warnings

    points = pd.DataFrame(
        [("routed", 1.0, "web", ""), ("routed", 2.3, "web", "saturated: parent.vcpu[0] busy"),
         ("direct", 11.0, "web", float("nan"))],
        columns=["path", "load_factor", "partition", "warnings"],
    )  # fmt: skip
    cap = SimpleNamespace(points=points, vary="load", axis="load factor")
    assert capacity_warnings(cap) == ["routed, factor 2.3, web: saturated: parent.vcpu[0] busy"]


def test_parameters_the_file_sets_are_not_called_defaults() -> None:
    """A value the scenario writes is 'set by: scenario' even when it equals the default;
    one it leaves out is 'default'; the list recorded with a CLI result says which."""
    from sim.report.provenance import provenance
    from sim.scenario.explicit import explicit_paths
    from sim.scenario.schema import Host, Parent

    cores, vcpus = Host.model_fields["cores"].default, Parent.model_fields["vcpus"].default
    text = OVERLOAD.replace("host: {cores: 4}", f"host: {{cores: {cores}}}").replace(
        "parent: {vcpus: 1}", f"parent: {{vcpus: {vcpus}}}"
    )
    scn = loads(text)
    given = explicit_paths(scn)
    assert {"host.cores", "parent.vcpus", "children[web].vcpus"} <= set(given)
    table = provenance(scn, given).set_index("parameter")["set_by"]
    assert table["host.cores"] == table["parent.vcpus"] == "scenario"
    assert table["host.clock"] == "default"
    assert provenance(scn).set_index("parameter")["set_by"]["host.cores"] == "default"


def test_a_saturated_parent_vcpu_warns_only_the_children_it_serves() -> None:
    """web-routed's channel is on parent vCPU 0, db-routed's on vCPU 1: overloading web
    saturates vCPU 0 and warns web-routed, not db-routed (nor the direct children)."""
    import sim

    scn = sim.load(
        "scenarios/baseline.yaml",
        {
            "run.duration": "20ms",
            "run.warmup": "4ms",
            "children[web-routed].streams[0].rate": "300k",
        },
    )
    from sim.scenario.plan import plan

    placed = plan(scn)
    assert (placed["web-routed"].parent_vcpus, placed["db-routed"].parent_vcpus) == ([0], [1])
    notes = sim.run(scn, replications=2).summary.set_index("partition")["warnings"]
    assert "saturated: parent.vcpu[0] busy" in notes["web-routed"]
    assert "parent.vcpu" not in notes["db-routed"]
    assert "parent.vcpu" not in notes["web-direct"] + notes["db-direct"]
