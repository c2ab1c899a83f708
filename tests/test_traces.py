"""Trace replay and rate profiles (sim.scenario.traces, sim.model.workloads): what a trace
holds is replayed exactly, bad traces are one line and exit 2, profiles shape any process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import sim
from sim.cli import main
from sim.scenario import traces
from sim.scenario.errors import ScenarioError

HEAD = """name: t
devices:
  - {name: nvme0, type: nvme, read: 20us, write: 10us}
children:
  - name: db
    device: nvme0
    io_path: native
    streams:
"""


def scenario(folder: Path, stream: str, run: str = "{duration: 100ms, warmup: 0s}") -> Path:
    p = folder / "s.yaml"
    p.write_text(HEAD + f"      - {stream}\nrun: {run}\n")
    return p


def write_trace(folder: Path, n: int = 500, seed: int = 3, name: str = "t.csv") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(100.0, n))  # µs
    df = pd.DataFrame(
        {
            "timestamp[us]": np.round(t, 3),
            "op": rng.choice(["read", "write"], n, p=[0.7, 0.3]),
            "size[B]": rng.choice([512, 4096, 65536], n, p=[0.2, 0.7, 0.1]),
        }
    )
    df.to_csv(folder / name, index=False)
    return df


def test_replay_reproduces_count_ops_and_sizes_exactly(tmp_path: Path) -> None:
    df = write_trace(tmp_path)
    scn = sim.load(scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}"))
    req = sim.run(scn).requests
    assert len(req) == len(df)
    assert req["op"].value_counts().to_dict() == df["op"].value_counts().to_dict()
    assert sorted(req["size_bytes"]) == sorted(df["size[B]"])
    got = req.sort_values("t_submit_us")
    assert np.allclose(got["t_submit_us"], df["timestamp[us]"] - df["timestamp[us]"].iloc[0])
    assert list(got["op"]) == list(df["op"])
    assert list(got["size_bytes"]) == list(df["size[B]"])


def test_parquet_same_as_csv(tmp_path: Path) -> None:
    df = write_trace(tmp_path)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    a = traces.read_trace(tmp_path / "t.csv")
    b = traces.read_trace(tmp_path / "t.parquet")
    assert np.array_equal(a.t_us, b.t_us)
    assert np.array_equal(a.size, b.size)
    assert [a.ops[i] for i in a.op] == [b.ops[i] for i in b.op]


def test_scale_loop_window_and_offsets(tmp_path: Path) -> None:
    write_trace(tmp_path, n=200)  # ~20 ms of trace
    data = traces.read_trace(tmp_path / "t.csv")
    once = sim.load(scenario(tmp_path, "{arrival: trace, trace: {file: t.csv, scale: 2}}"))
    t = sim.run(once).requests["t_submit_us"].sort_values().to_numpy()
    assert np.allclose(t, (data.t_us - data.t_us[0]) / 2)
    looped = sim.load(
        scenario(
            tmp_path,
            "{arrival: trace, trace: {file: t.csv, loop: true, start: 5ms, end: 15ms}}",
            "{duration: 100ms, warmup: 0s}",
        )
    )
    inside = int(((data.t_us - data.t_us[0] >= 5e3) & (data.t_us - data.t_us[0] < 15e3)).sum())
    assert len(sim.run(looped).requests) == 10 * inside
    assert sim.scenario.work_estimate(looped)[0]["requests"] == 10 * inside
    rnd = sim.load(
        scenario(
            tmp_path,
            "{arrival: trace, trace: {file: t.csv, loop: true, offset: random}}",
            "{duration: 50ms, warmup: 0s, replications: 2}",
        )
    )
    r = sim.run(rnd).requests
    first = r.groupby("replication")["t_submit_us"].min()
    assert first.iloc[0] != first.iloc[1]
    again = sim.run(rnd).requests  # same seed, same offsets
    assert r["t_submit_us"].equals(again["t_submit_us"])


def test_poisson_trace_replays_poisson_latency(tmp_path: Path) -> None:
    """A trace of an hvsim Poisson stream's arrivals, replayed, gives its latencies back
    (same arrivals, and the service draws are keyed by the stream, not its process)."""
    p = scenario(tmp_path, "{op: read, rate: 20k}", "{duration: 50ms, warmup: 0s, replications: 5}")
    base = sim.run(sim.load(p))
    req = base.requests[base.requests["replication"] == 0].sort_values("t_submit_us")
    pd.DataFrame({"timestamp[us]": req["t_submit_us"], "op": req["op"]}).to_csv(
        tmp_path / "p.csv", index=False
    )
    first = float(req["t_submit_us"].iloc[0])
    q = scenario(
        tmp_path,
        "{arrival: trace, trace: {file: p.csv}}",
        f"{{duration: {50_000 - first}us, warmup: 0s}}",
    )
    rep = sim.run(sim.load(q))
    assert len(rep.requests) == len(req)
    # the replay is one more replication: within the Poisson stream's 95 % prediction
    # interval, t(n-1) s sqrt(1 + 1/n), of the per-replication mean and p99
    per_rep = base.requests.groupby("replication")["latency_us"]
    for stat, got in (
        (per_rep.mean(), rep.requests["latency_us"].mean()),
        (per_rep.quantile(0.99), rep.requests["latency_us"].quantile(0.99)),
    ):
        n = len(stat)
        half = scipy.stats.t.ppf(0.975, n - 1) * stat.std(ddof=1) * np.sqrt(1 + 1 / n)
        assert abs(got - stat.mean()) <= half, (got, stat.tolist())
    # and the very arrivals of replication 0 give its latencies (service draws are keyed
    # by the stream, not its arrival process)
    assert rep.requests["latency_us"].mean() == pytest.approx(req["latency_us"].mean(), rel=0.02)


def test_budget_counts_trace_arrivals(tmp_path: Path) -> None:
    write_trace(tmp_path, n=300)
    p = scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}")
    est, _ = sim.scenario.work_estimate(sim.load(p))
    assert est["requests"] == 300
    p = scenario(tmp_path, "{arrival: trace, trace: {file: t.csv, loop: true}}",
                 "{duration: 10s, warmup: 0s, request_budget: 1000}")  # fmt: skip
    with pytest.raises(ScenarioError, match=r"budget|request"):
        sim.load(p)


BAD = {
    "missing column": ("time_s,op\n", "no 'timestamp' column"),
    "backwards": ("timestamp[s],op\n0.1,read\n0.05,read\n", "line 3: timestamp earlier"),
    "negative": ("timestamp[s],op\n-1,read\n", "line 2: negative timestamp"),
    "unknown op": (
        "timestamp[s],op\n0,read\n1,trim\n",
        "'trim' (in trace 't.csv') is not an operation",
    ),
    "empty": ("timestamp[s],op\n", "no requests"),
    "no unit": ("timestamp,op\n0,read\n", "unit of 'timestamp' is not given"),
    "ragged": ("timestamp[s],op\n0,read,1\n", "line 2: 3 fields"),
    "not a number": ("timestamp[s],op\nnoon,read\n", "line 2: timestamp 'noon' is not a number"),
    "two devices": (
        "timestamp[s],op,device\n0,read,sda\n1,read,sdb\n",
        "column 'device' names 2 devices (sda, sdb)",
    ),
}


def test_a_device_column_naming_one_device_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("timestamp[s],op,device\n0,read,sda\n0.5,write,sda\n")
    scn = sim.load(scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}"))
    assert len(scn.children[0].streams[0].trace.data) == 2


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_traces_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD[case]
    (tmp_path / "t.csv").write_text(text)
    p = scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}")
    assert main(["run", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert expected in err, err
    assert "children[db].streams[0]" in err
    assert not (tmp_path / "out").exists()


def test_binary_huge_and_outside_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 10)
    p = scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}")
    assert main(["run", str(p)]) == 2
    assert "binary file" in capsys.readouterr().err
    write_trace(tmp_path, n=50)
    monkeypatch.setattr(traces, "MAX_TRACE_BYTES", 100)
    assert main(["run", str(p)]) == 2
    assert "larger than 100 bytes, the most a trace file may be" in capsys.readouterr().err
    inner = tmp_path / "in"
    inner.mkdir()
    q = scenario(inner, "{arrival: trace, trace: {file: ../t.csv}}")
    assert main(["run", str(q)]) == 2
    assert "is outside the folder of this file" in capsys.readouterr().err
    q = scenario(inner, "{arrival: trace, trace: {file: nothere.csv}}")
    assert main(["run", str(q)]) == 2
    assert "nothere.csv: no such file" in capsys.readouterr().err


def test_ops_and_sizes_come_from_the_trace(tmp_path: Path) -> None:
    write_trace(tmp_path, n=50)
    p = scenario(tmp_path, "{arrival: trace, op: read, trace: {file: t.csv}}")
    with pytest.raises(ScenarioError, match="leave 'op' out"):
        sim.load(p)
    p = scenario(tmp_path, "{arrival: trace, size: 4KiB, trace: {file: t.csv}}")
    with pytest.raises(ScenarioError, match="leave 'size' out"):
        sim.load(p)
    p = scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}, rate: 1k}")
    with pytest.raises(ScenarioError, match="no 'rate'"):
        sim.load(p)
    scn = sim.load(scenario(tmp_path, "{arrival: trace, trace: {file: t.csv}}"))
    assert sim.load(scn, {"run.duration": "20ms"}).children[0].streams[0].trace is not None


@pytest.mark.parametrize("process", ["poisson", "deterministic", "mmpp"])
def test_profile_steps_any_process(tmp_path: Path, process: str) -> None:
    """Counts per step follow rate x factor: 10k/s then 30k/s then 0 then 20k/s."""
    prof = (
        "{points: [{at: 0s, factor: 1}, {at: 20ms, factor: 3}, {at: 40ms, factor: 0}, "
        "{at: 60ms, factor: 2}]}"
    )
    p = scenario(tmp_path, f"{{op: read, rate: 10k, arrival: {process}, profile: {prof}}}")
    t = sim.run(sim.load(p)).requests["t_submit_us"].to_numpy()
    counts = np.histogram(t, bins=[0, 20e3, 40e3, 60e3, 100e3])[0]
    expect = np.array([200, 600, 0, 800])
    tol = 5 * np.sqrt(expect) + 2 if process != "deterministic" else np.full(4, 2)
    if process == "mmpp":  # bursty: counts vary more than Poisson ones
        tol = tol * 3
    assert (np.abs(counts - expect) <= tol).all(), counts


def test_daily_profile_repeats(tmp_path: Path) -> None:
    day = [1.0] * 12 + [4.0] * 12
    p = scenario(tmp_path, f"{{op: read, rate: 10k, profile: {{daily: {day}, period: 20ms}}}}")
    t = sim.run(sim.load(p)).requests["t_submit_us"].to_numpy()
    night = ((t % 20e3) < 10e3).sum()
    busy = ((t % 20e3) >= 10e3).sum()
    assert abs(night - 500) < 5 * np.sqrt(500)
    assert abs(busy - 2000) < 5 * np.sqrt(2000)


# ---------------------------------------------------------------------------------------
# Fitting (sim.analysis.fit) and converters (sim.scenario.traces)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_recovers_poisson_rate_mix_and_lognormal_sizes(seed: int) -> None:
    """200k Poisson arrivals: the rate's standard error is 0.22 %, so 1 % is 4.5 of them;
    sizes lognormal (mean 10 KB, cv 1): the fitted family is lognormal, kept by the KS
    test at its level, with mean and cv within 3 % (their standard errors are ~0.5 %)."""
    rng = np.random.default_rng(seed)
    n = 200_000
    t = np.cumsum(rng.exponential(100.0, n))
    sigma2 = np.log(2.0)
    size = np.rint(rng.lognormal(np.log(10_000) - sigma2 / 2, np.sqrt(sigma2), n))
    op = (rng.random(n) < 0.3).astype(np.int32)
    f = sim.fit(traces.TraceData(t, ("read", "write"), op, size.astype(np.int64), ""))
    assert f.rate == pytest.approx(10_000, rel=0.01)
    assert f.ops["write"] == pytest.approx(0.3, abs=0.005)
    assert f.arrival == "poisson"
    assert f.size_family == "lognormal"
    assert f.size_params["mean"] == pytest.approx(10_000, rel=0.03)
    assert f.size_params["cv"] == pytest.approx(1.0, rel=0.03)
    assert "kept at 0.01" in f.size_test


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_finds_mmpp_bursts(seed: int) -> None:
    """Arrivals of hvsim's own MMPP (factor 10): Poisson is rejected and the burst ratio
    comes back within 10 %."""
    from sim.model.workloads import mmpp_gaps
    from sim.scenario.workload import Burst

    gap = mmpp_gaps(Burst(factor=10, length="10ms", between="90ms"), 10_000.0,
                    np.random.default_rng(seed))  # fmt: skip
    t = np.cumsum([gap() for _ in range(100_000)])
    f = sim.fit(traces.TraceData(t, (), None, None, ""))
    assert f.arrival == "mmpp"
    assert f.burst is not None
    assert f.burst["factor"] == pytest.approx(10, rel=0.1)
    # the fitted section loads as a stream
    scn = sim.scenario.from_dict(
        {
            "name": "f",
            "devices": [{"name": "d", "type": "nvme"}],
            "children": [{"name": "c", "device": "d", "streams": [{**f.stream(), "op": "read"}]}],
        }
    )
    assert scn.children[0].streams[0].burst is not None


def test_fit_command_prints_a_pastable_section_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_trace(tmp_path, n=2000)
    png = tmp_path / "fit.png"
    assert main(["fit", str(tmp_path / "t.csv"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert png.stat().st_size > 10_000
    import yaml

    stream = yaml.safe_load(out)[0]
    assert set(stream) == {"op", "size", "rate", "arrival"}
    p = scenario(tmp_path, yaml.safe_dump(stream, default_flow_style=True).strip())
    assert sim.load(p).children[0].streams[0].rate == pytest.approx(10_000, rel=0.1)
    (tmp_path / "bad.csv").write_text("timestamp[s]\n1\n0\n")
    assert main(["fit", str(tmp_path / "bad.csv")]) == 2
    assert "line 3: timestamp earlier" in capsys.readouterr().err


BLK = """  8,16   1        1    0.000100000   42  Q   R 100 + 8 [db]
  8,16   0        1    0.000050000   42  Q  WS 200 + 16 [db]
  8,16   1        2    0.000200000    0  C   R 100 + 8 [0]
  8,16   0        2    0.000300000   42  Q   D 300 + 8 [db]
  8,16   0        3    0.000400000   42  Q  FN 0 + 0 [db]
  8,16   1        3    0.000500000   42  Q  RA 400 + 256 [db]
CPU0 (sdb):
 Reads Queued:           2,        1KiB
"""


def test_blkparse_converter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.txt").write_text(BLK)
    assert main(["convert", "blkparse", str(tmp_path / "b.txt"), str(tmp_path / "b.csv")]) == 0
    got = pd.read_csv(tmp_path / "b.csv")
    assert list(got["op"]) == ["write", "read", "read"]  # in time order; discard, flush out
    assert list(got["size[B]"]) == [8192, 4096, 131072]
    assert list(got["timestamp[us]"]) == [0.0, 50.0, 450.0]
    assert main(["convert", "blkparse", str(tmp_path / "b.txt"), str(tmp_path / "b.csv")]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("hello\n")
    assert main(["convert", "blkparse", str(tmp_path / "x.txt"), str(tmp_path / "y.csv")]) == 2
    assert "no 'Q' read or write event" in capsys.readouterr().err
    assert not (tmp_path / "y.csv").exists()


def test_typeperf_converter_synthesises_the_counters(tmp_path: Path) -> None:
    disk = "\\\\H\\PhysicalDisk(0 C:)\\"
    counters = [
        "Disk Reads/sec",
        "Disk Writes/sec",
        "Avg. Disk Bytes/Read",
        "Avg. Disk Bytes/Write",
    ]
    head = ",".join(['"(PDH-CSV 4.0)"', *(f'"{disk}{c}"' for c in counters)])
    rows = [f'"01/01/2026 00:00:{s:02d}.000","1000","500","4096","65536"' for s in range(21)]
    (tmp_path / "c.csv").write_text("\n".join([head, *rows]) + "\n")
    data = traces.convert(tmp_path / "c.csv", "typeperf")
    n = len(data)  # 20 s at 1500/s: Poisson, sd ~173
    assert abs(n - 30_000) < 5 * np.sqrt(30_000)
    mix = data.op_mix()
    assert mix["read"] == pytest.approx(2 / 3, abs=0.02)
    assert set(data.size.tolist()) == {4096, 65536}
    assert data.span <= 20e6
    (tmp_path / "d.csv").write_text(head + "\n" + rows[0] + "\n")
    with pytest.raises(ScenarioError, match="two samples"):
        traces.convert(tmp_path / "d.csv", "typeperf")


def test_report_shows_load_over_time_and_the_busiest_hour(tmp_path: Path) -> None:
    """A daily curve peaking at hour 15: the per-hour arrivals follow the factors and the
    busiest hour is the 15th; the run's report carries the figure and the sentence."""
    from sim.report import html, overtime

    day = [0.5] * 24
    day[15] = 3.0
    p = scenario(
        tmp_path,
        f"{{op: read, rate: 10k, profile: {{daily: {day}, period: 240ms}}}}",
        "{duration: 240ms, warmup: 0s}",
    )
    res = sim.run(sim.load(p))
    ot = overtime.over_time(res)
    assert ot.hour_us == pytest.approx(10e3)
    assert int(ot.busiest.name) == 15
    expect = np.array(day) * 10_000
    assert (np.abs(ot.table["rate"] - expect) <= 5 * np.sqrt(expect * 0.01) / 0.01).all()
    assert (ot.table["util nvme0"].dropna() > 0).all()
    res.save(tmp_path / "out")
    text = html.render(tmp_path / "out")
    assert "Load over simulated time" in text
    assert "Busiest hour" in text
    assert "from 150 ms" in text


def test_no_false_saturation_warning_under_a_profile(tmp_path: Path) -> None:
    """Throughput is held against the load the profile offers in the window, not the
    stream's base rate: at half the rate, no 'saturated: throughput' warning."""
    prof = "{points: [{at: 0s, factor: 0.5}]}"
    p = scenario(tmp_path, f"{{op: read, rate: 10k, profile: {prof}}}", "{duration: 150ms}")
    res = sim.run(sim.load(p))
    assert res.summary["throughput_rps"].iloc[0] == pytest.approx(5000, rel=0.15)
    assert "saturated" not in str(res.summary["warnings"].iloc[0])


def test_sweep_over_a_trace_scale(tmp_path: Path) -> None:
    """A sweep's points read the trace from the folder of the scenario that names it."""
    write_trace(tmp_path, n=300)
    scenario(tmp_path, "{arrival: trace, trace: {file: t.csv, loop: true}}",
             "{duration: 60ms, warmup: 0s}")  # fmt: skip
    (tmp_path / "x-sweep.yaml").write_text(
        "study: x\nscenario: s.yaml\ngrid:\n  children[db].streams[0].trace.scale: [1, 2]\n"
    )
    frame = sim.sweep(tmp_path / "x-sweep.yaml", out=tmp_path / "study")
    got = frame.groupby("scale")["requests"].sum()
    assert got.loc[2] == pytest.approx(2 * got.loc[1], rel=0.05)
