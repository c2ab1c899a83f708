"""The work budget counts what a run costs, not only its requests (MMPP state switches,
slow sampler draws)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    replication): refused within seconds, the message naming the sampler and its cost."""
    (tmp_path / "slow.yaml").write_text(SLOW, encoding="utf-8")
    code, _, err, took = hvsim("run", "slow.yaml", "--out", "out", cwd=tmp_path, timeout=60)
    line = one_line(err)
    assert code == 2
    assert "requests' worth of sampler draws (budget 1e7" in line
    assert "scipy.stats.studentized_range takes about " in line
    assert " a draw, as long as " in line
    assert took < 10
    assert not (tmp_path / "out").exists()


def test_sampler_draws_are_counted_in_blocks_and_only_when_slow() -> None:
    """Draws come in blocks (sim.scenario.distributions.BLOCK); a draw counts in requests'
    time only when it is grossly slow, so fast samplers never move the estimate."""
    from sim.analysis.analytic import SIZE_POINTS
    from sim.scenario import budget, distributions

    assert budget.ANALYTIC_QUANTILES == SIZE_POINTS
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
    sorted((REPO / "scenarios").glob("*.yaml")),
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
