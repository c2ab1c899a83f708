"""The work budget counts what a run costs, not only its requests (MMPP state switches,
slow sampler draws), and ``hvsim sweep`` takes only sensible workers and schedulers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sim.scenario import Scenario, load, loads, work_estimate
from sim.scenario.budget import budget_problem

REPO = Path(__file__).resolve().parents[1]

BURSTY = """\
name: bursty
host: {cores: 4}
parent: {vcpus: 2}
devices:
  - {name: ssd, type: nvme, vfs: 2}
children:
  - name: db
    vcpus: 2
    device: ssd
    streams:
      - {op: write, size: 4KiB, rate: 2k, arrival: mmpp, burst: {length: 1ns, between: 1ns}}
run: {duration: 50ms, warmup: 0us, seed: 7}
"""

SLOW_SIZE = "{dist: scipy, name: studentized_range, params: {k: 3, df: 10}, scale: 1KiB}"
SLOW = f"""\
name: slow-sizes
host: {{cores: 4}}
parent: {{vcpus: 2}}
devices:
  - {{name: ssd, type: nvme, vfs: 2}}
children:
  - name: db
    count: 16
    vcpus: 2
    device: ssd
    streams:
      - {{op: write, size: {SLOW_SIZE}, rate: 2k}}
run: {{duration: 50ms, warmup: 0us, seed: 7, replications: 3}}
"""


def unbudgeted(text: str, file: str = "x.yaml") -> Scenario:
    """The scenario of ``text`` with a budget nothing exceeds (to read its estimate)."""
    return loads(text.replace("seed: 7", "seed: 7, request_budget: 1e300"), file=file)


def hvsim(*argv: str, cwd: Path, timeout: float = 120) -> tuple[int, str, str, float]:
    """``hvsim ARGV`` in a process of its own: (status, stdout, stderr, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0


def one_line(err: str) -> str:
    """The single ``error: ...`` line a refusal prints."""
    assert err.startswith("error: "), err[-2000:]
    assert err.count("\n") == 1, err[-2000:]
    assert err.endswith("\n")
    assert "Traceback" not in err
    return err.strip()


# ---------------------------------------------------------------------------------------
# MMPP state switches
# ---------------------------------------------------------------------------------------
def test_mmpp_switches_are_counted() -> None:
    """A state switch every nanosecond or so: 2·duration/(length + between) per stream and
    child instance, counted with the requests."""
    parts, problem = work_estimate(unbudgeted(BURSTY))
    assert problem is None
    assert parts["MMPP state switches"] == pytest.approx(2 * 50e3 / 2e-3)
    assert parts["occupancy samples"] == 200  # one per trace interval (duration / 200)
    three = BURSTY.replace("- name: db", "- name: db\n    count: 3")
    assert work_estimate(unbudgeted(three))[0]["MMPP state switches"] == pytest.approx(
        3 * 2 * 50e3 / 2e-3
    )
    usual = BURSTY.replace("length: 1ns, between: 1ns", "length: 10ms, between: 90ms")
    assert work_estimate(loads(usual, file="b.yaml"))[0]["MMPP state switches"] == 1.0


def test_mmpp_of_nanosecond_bursts_is_refused_up_front(tmp_path: Path) -> None:
    """The 1 ns MMPP over 50 ms (48 s of switching before) is refused at once, naming the
    switches, with nothing written."""
    (tmp_path / "bursty.yaml").write_text(BURSTY, encoding="utf-8")
    code, _, err, took = hvsim("run", "bursty.yaml", "--out", "out", cwd=tmp_path, timeout=60)
    line = one_line(err)
    assert code == 2
    assert "would simulate about 5e7 MMPP state switches (budget 1e7" in line
    assert took < 10
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# Slow samplers
# ---------------------------------------------------------------------------------------
def test_slow_sampler_is_refused_up_front_quickly(tmp_path: Path) -> None:
    """scipy's studentized_range takes some 50 ms a draw (a block of 1024 per sampler and
    replication: some 40 minutes of draws here): refused within seconds (timing a draw
    included; under 30 s even on a loaded 2-core machine), the message naming the sampler
    and its cost."""
    (tmp_path / "slow.yaml").write_text(SLOW, encoding="utf-8")
    code, _, err, took = hvsim("run", "slow.yaml", "--out", "out", cwd=tmp_path, timeout=60)
    line = one_line(err)
    assert code == 2
    assert "requests' worth of sampler draws (budget 1e7" in line
    assert "scipy.stats.studentized_range takes about " in line
    assert " a draw, as long as " in line
    assert took < 30
    assert not (tmp_path / "out").exists()


def test_sampler_draws_are_counted_in_blocks_and_only_when_slow() -> None:
    """Draws come in blocks (sim.scenario.distributions.BLOCK); a draw counts in requests'
    time only when it is grossly slow, so fast samplers never move the estimate."""
    from sim.analysis.queueing import SIZE_POINTS
    from sim.scenario import budget, distributions

    assert distributions.QUANTILE_POINTS == SIZE_POINTS
    slow = unbudgeted(SLOW)
    parts, _ = work_estimate(slow)
    per_draw = distributions.draw_seconds(slow.children[0].streams[0].size)
    assert per_draw > budget.SLOW_DRAW_SECONDS
    # 16 children × one block each, and per replication a third of the analytic quantiles
    draws = 16 * distributions.BLOCK
    assert parts["requests' worth of sampler draws"] >= draws * per_draw / budget.REQUEST_SECONDS
    fast = SLOW.replace(
        SLOW_SIZE, "{dist: scipy, name: weibull_min, params: {c: 1.5}, scale: 4KiB}"
    )
    assert work_estimate(loads(fast, file="fast.yaml"))[0]["requests' worth of sampler draws"] == 0
    assert (
        work_estimate(loads(fast.replace("count: 16", "count: 1"), file="f.yaml"))[0][
            "requests' worth of sampler draws"
        ]
        == 0
    )


def test_draw_cost_is_measured_once_within_a_cap() -> None:
    """A distribution's draw is timed once per process (cached by its spec), on a generator
    of its own: the measurement never touches a simulation's random numbers."""
    from sim.scenario import distributions

    d = distributions.parse(
        {"dist": "scipy", "name": "weibull_min", "params": {"c": 1.5}, "scale": "20us"}, "time"
    )
    first = distributions.draw_seconds(d)
    assert 0 < first < distributions.MEASURE_CAP
    t0 = time.perf_counter()
    assert distributions.draw_seconds(d) == first
    assert time.perf_counter() - t0 < 0.01
    builtin = distributions.parse({"dist": "gamma", "mean": "80us", "cv": 0.5}, "time")
    assert distributions.draw_seconds(builtin) == 0.0


# ---------------------------------------------------------------------------------------
# No false alarm
# ---------------------------------------------------------------------------------------
def readme_scenarios() -> list[str]:
    """The README's YAML examples that are whole scenarios."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.startswith("name:") and "children:" in b]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (REPO / "scenarios").glob("*.yaml") if not p.name.endswith("-sweep.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_scenarios_are_not_refused(path: Path) -> None:
    """Every shipped scenario fits its budget as before."""
    scn = load(path)
    assert budget_problem(scn) is None
    assert work_estimate(scn)[0]["requests' worth of sampler draws"] == 0


def test_readme_examples_and_usual_mmpp_and_scipy_are_not_refused() -> None:
    """The README's scenario, an MMPP of 10 ms bursts and scipy samplers of the usual kind:
    not refused, no sampler cost counted."""
    found = readme_scenarios()
    assert found
    for text in found:
        scn = loads(text, file="README.md")
        assert budget_problem(scn) is None
    usual = BURSTY.replace("length: 1ns, between: 1ns", "length: 1ms, between: 9ms").replace(
        "size: 4KiB", "size: {dist: scipy, name: gamma, params: {a: 2}, scale: 2KiB}"
    )
    usual = usual.replace("duration: 50ms", "duration: 60s")
    scn = loads(usual, file="usual.yaml")
    parts, _ = work_estimate(scn)
    assert parts["requests' worth of sampler draws"] == 0
    assert parts["MMPP state switches"] == pytest.approx(2 * 60e6 / 10e3)
    assert budget_problem(scn) is None


# ---------------------------------------------------------------------------------------
# hvsim sweep: workers and the scheduler
# ---------------------------------------------------------------------------------------
def sweep_dir(tmp_path: Path) -> Path:
    """A 2-point sweep beside a copy of the baseline scenario."""
    shutil.copy(REPO / "scenarios" / "baseline.yaml", tmp_path / "baseline.yaml")
    sweep = {
        "study": "two",
        "scenario": "baseline.yaml",
        "set": {"run.duration": "20ms", "run.warmup": "2ms", "run.replications": 1},
        "grid": {"host.cores": [8, 16]},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep), encoding="utf-8")
    return tmp_path


def test_ten_thousand_workers_are_capped(tmp_path: Path) -> None:
    """--workers 10000 on 2 points: at most 2 processes, and the run says so."""
    d = sweep_dir(tmp_path)
    argv = ["sweep", "sweep.yaml", "--out", "out", "--executor", "processes", "--workers", "10000"]
    code, out, err, _ = hvsim(*argv, cwd=d, timeout=180)
    assert code == 0, err[-2000:]
    first = out.splitlines()[0]
    assert "(2 computed" in first
    assert "on processes (2 of the 10000 workers asked) in " in first
    info = json.loads((d / "out" / "study.json").read_text(encoding="utf-8"))
    assert info["last_run"]["workers"] <= 2


def test_workers_are_capped_by_tasks_and_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool (and a LocalCluster) gets min(workers, tasks, cores): the tasks are the
    replications to simulate."""
    from sim.experiment import run, study

    monkeypatch.setattr(run, "cores", lambda: 2)
    assert study.pool_size(10_000, 2) == 2
    assert study.pool_size(10_000, 50) == 2
    assert study.pool_size(1, 50) == 1
    monkeypatch.setattr(run, "cores", lambda: 64)
    assert study.pool_size(10_000, 5) == 5
    assert study.pool_size(3, 5) == 3


@pytest.mark.parametrize(
    "address",
    ["notaurl", "", "tcp://", "tcp://host", "tcp://host:0", "tcp://host:99999", "http://h:1",
     "tcp://host:8786/x", "tcp://ho st:1"],
)  # fmt: skip
def test_scheduler_that_is_not_an_address_is_rejected(tmp_path: Path, address: str) -> None:
    """--scheduler notaurl: status 2 and one line, before anything runs or is written."""
    d = sweep_dir(tmp_path)
    code, _, err, took = hvsim(
        "sweep", "sweep.yaml", "--out", "out", "--scheduler", address, cwd=d, timeout=60
    )
    line = one_line(err)
    assert code == 2
    assert line.startswith("error: --scheduler: ")
    assert took < 20
    assert not (d / "out").exists()


def test_scheduler_addresses_dask_takes_are_accepted() -> None:
    """The forms Dask connects to pass the check (nothing is contacted)."""
    from sim.experiment.study import check_scheduler

    for ok in ("tcp://127.0.0.1:8786", "tcp://node-3.example.org:8786", "tls://h:8786",
               "tcp://[::1]:8786", "127.0.0.1:8786", "ws://h:80", "wss://h:443"):  # fmt: skip
        assert check_scheduler(ok) == ok


def test_unreachable_scheduler_is_one_line_within_seconds(tmp_path: Path) -> None:
    """Nothing listens at tcp://127.0.0.1:1: status 1, one line, in bounded time (it took a
    47-line traceback, or one after 30 s), and no study written."""
    d = sweep_dir(tmp_path)
    code, _, err, took = hvsim(
        "sweep", "sweep.yaml", "--out", "out", "--scheduler", "tcp://127.0.0.1:1", cwd=d,
        timeout=90,
    )  # fmt: skip
    line = one_line(err)
    assert code == 1
    assert "tcp://127.0.0.1:1" in line
    assert took < 30
    assert not (d / "out").exists()


@pytest.mark.parametrize(
    ("extra", "starts"),
    [
        (["--workers", "-3"], "error: --workers: "),
        (["--workers", "0"], "error: --workers: "),
        (["--workers", "many"], "error: argument --workers: "),
        (["--executor", "threads"], "error: argument --executor: "),
        (["--executor", "serial", "--scheduler", "tcp://h:8786"], "error: --scheduler: "),
    ],
)
def test_bad_sweep_options_are_one_line(tmp_path: Path, extra: list[str], starts: str) -> None:
    """Bad workers, executors, or a scheduler with a local executor: status 2, one line."""
    d = sweep_dir(tmp_path)
    code, _, err, _ = hvsim("sweep", "sweep.yaml", "--out", "out", *extra, cwd=d, timeout=60)
    line = one_line(err)
    assert code == 2
    assert line.startswith(starts), line
    assert not (d / "out").exists()
