"""The hvsim command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.model.metrics import COMPONENT_COLUMNS

SHORT = ["--set", "run.duration=60ms", "--set", "run.warmup=10ms"]


def hvsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "baseline"
    proc = hvsim("run", "scenarios/baseline.yaml", "--out", str(out), "--replications", "2", *SHORT)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_run_writes_every_file(baseline_run: tuple[Path, str]) -> None:
    """hvsim run writes summary, requests, cpu, resolved scenario and meta."""
    out, _ = baseline_run
    for name in ("summary.csv", "requests.parquet", "cpu.csv", "scenario.resolved.yaml",
                 "meta.json", "counters.csv", "resources.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(".baseline.tmp-*"))


def test_summary_columns_and_confidence_intervals(baseline_run: tuple[Path, str]) -> None:
    """summary.csv has one row per child, the latency columns and CI bounds."""
    out, _ = baseline_run
    s = pd.read_csv(out / "summary.csv")
    need = ["partition", "io_path", "requests", "throughput_rps", "throughput_bps", "mean_us",
            "p50_us", "p90_us", "p99_us", "p999_us"]  # fmt: skip
    assert set(need) <= set(s.columns)
    for m in ("throughput_rps", "mean_us", "p99_us"):
        assert (s[f"{m}_ci_low"] <= s[m]).all()
        assert (s[m] <= s[f"{m}_ci_high"]).all()
    assert list(s["partition"]) == ["web-routed", "web-direct", "db-routed", "db-direct"]


def test_requests_parquet_columns(baseline_run: tuple[Path, str]) -> None:
    """requests.parquet has identity, timestamps, state and every latency component."""
    out, _ = baseline_run
    r = pd.read_parquet(out / "requests.parquet")
    need = {"replication", "partition", "io_path", "op", "size_bytes", "t_submit_us",
            "t_complete_us", "latency_us", "state", *COMPONENT_COLUMNS}  # fmt: skip
    assert need <= set(r.columns)
    assert set(r["replication"]) == {0, 1}


def test_cpu_csv_columns(baseline_run: tuple[Path, str]) -> None:
    """cpu.csv has partition, vcpu, category, busy_us, utilization."""
    out, _ = baseline_run
    c = pd.read_csv(out / "cpu.csv")
    assert list(c.columns) == ["partition", "vcpu", "category", "busy_us", "utilization"]
    assert (c["utilization"].between(0, 1)).all()


def test_resolved_scenario_and_meta(baseline_run: tuple[Path, str]) -> None:
    """The resolved scenario loads back; meta records seeds, versions and wall time."""
    import sim

    out, _ = baseline_run
    resolved = sim.load(out / "scenario.resolved.yaml")
    assert resolved.run.duration == 60_000.0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 42
    assert meta["replications"] == 2
    assert len(meta["replication_seeds"]) == 2
    assert {"hvsim", "simpy", "numpy", "python", "model"} <= set(meta["versions"])
    assert meta["versions"]["model"] in ("compiled", "interpreted")
    assert meta["wall_s"] > 0


def test_printed_table_names_children_and_paths(baseline_run: tuple[Path, str]) -> None:
    """The printed summary is a table of children with throughput, mean and p99."""
    _, stdout = baseline_run
    for word in ("web-routed", "db-direct", "throughput", "p99", "results:"):
        assert word in stdout


def test_same_seed_same_files(tmp_path: Path) -> None:
    """Two runs with the same seed write identical summaries; --seed changes them."""
    outs = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        proc = hvsim("run", "scenarios/baseline.yaml", "--out", str(tmp_path / name),
                     "--seed", seed, "--replications", "1", "--quiet", *SHORT)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outs.append(pd.read_csv(tmp_path / name / "summary.csv"))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert not outs[0]["mean_us"].equals(outs[2]["mean_us"])


def test_rerun_replaces_result_and_refuses_foreign_directory(tmp_path: Path) -> None:
    """A second run is refused without --force and replaces the result directory with it
    (its manifest lists only hvsim's files); a directory of the user's is refused before
    anything runs and not touched."""
    out = tmp_path / "r"
    for seed, force in (("1", []), ("2", ["--force"])):
        args = ["run", "scenarios/baseline.yaml", "--out", str(out), "--quiet", "--seed", seed]
        assert main([*args, *SHORT, *force]) == 0
        if not force:
            assert main([*args, *SHORT, "--seed", "2"]) == 2
    assert json.loads((out / "meta.json").read_text())["seed"] == 2
    listed = set(json.loads((out / "manifest.json").read_text())["files"])
    assert {p.name for p in out.iterdir()} == listed | {"manifest.json"}
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    proc = hvsim("run", "scenarios/baseline.yaml", "--out", str(foreign), *SHORT)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert f"--out: {foreign} holds entries hvsim did not write (notes.txt" in proc.stderr
    assert "--force" in proc.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_bad_override_writes_nothing(tmp_path: Path) -> None:
    """An invalid --set ends with status 2, one line, and no result directory."""
    out = tmp_path / "x"
    proc = hvsim("run", "scenarios/baseline.yaml", "--out", str(out),
                 "--set", "children[web-routed].streams[0].rate=-5")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert proc.stderr.count("\n") == 1
    assert "children[web-routed].streams[0].rate" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_validate_command_exit_status(tmp_path: Path) -> None:
    """hvsim validate prints the table; a failing case makes the status 1."""
    ok = hvsim("validate", "scenarios/validation/utilization.yaml", "--replications", "3")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "case" in ok.stdout
    assert "pass" in ok.stdout
    case = yaml.safe_load(Path("scenarios/validation/mm1-mean.yaml").read_text())
    case["theory"] = "mm1_p"  # the mean held against the p99 formula: must fail
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(case))
    proc = hvsim("validate", str(wrong), "--replications", "3")
    assert proc.returncode == 1
    assert "0 of 1 cases pass" in proc.stdout
    case["theory"] = "pk"  # an M/M/4 held against the single-server formula: refused
    case["scenario"]["devices"][0]["channels"] = 4
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(case))
    proc = hvsim("validate", str(bad), "--replications", "2")
    assert proc.returncode == 2
    assert "single-channel" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_capacity_needs_an_slo() -> None:
    """hvsim capacity without --slo is an input error, in one line."""
    proc = hvsim("capacity", "scenarios/baseline.yaml")
    assert proc.returncode == 2
    assert "--slo" in proc.stderr
    assert proc.stderr.count("\n") == 1
