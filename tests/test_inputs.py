"""Hostile inputs: files that are not files (devices, pipes, directories, link loops,
/proc), files too large, paths that lead out of a sweep's folder, values beyond physics,
names too long, a closed stdout and labels that matplotlib would read as math. Each is
refused with one line and exit status 2, quickly, or works as it should."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
import yaml

import sim
from sim.cli import main
from sim.experiment.study import load_sweep
from sim.scenario import ScenarioError, reader

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
TINY = ["--set", "run.duration=20ms", "--set", "run.warmup=2ms"]
CASE = ROOT / "scenarios" / "validation" / "utilization.yaml"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

# every command that reads an input file, with the arguments it needs besides the file
COMMANDS: dict[str, list[str]] = {
    "run": ["run", "{file}", "--out", "{out}"],
    "compare": ["compare", "{file}", "--out", "{out}"],
    "capacity": ["capacity", "{file}", "--slo", "p99<=1ms", "--out", "{out}"],
    "validate": ["validate", "{file}"],
    "sweep": ["sweep", "{file}", "--out", "{out}"],
}


def argv(command: str, file: str | Path, out: Path) -> list[str]:
    return [a.format(file=file, out=out) for a in COMMANDS[command]]


def one_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run hvsim in this process; it must exit 2 with one line on stderr, nothing on
    stdout. Returns the line."""
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM also interrupts a blocking open of a FIFO)."""

    def expire(*_: Any) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _four_gib() -> None:  # a regression must not eat the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def hvsim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        preexec_fn=_four_gib,
    )


def tiny_scenario(folder: Path, name: str = "scenario.yaml") -> Path:
    """The baseline, shortened, written to ``folder/name``."""
    data = sim.load(BASELINE, {"run.duration": "20ms", "run.warmup": "2ms"}).to_dict()
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def sweep_file(folder: Path, scenario: str, name: str = "sweep.yaml", **extra: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = {"study": "s", "scenario": scenario, "grid": {"host.cores": [8]},
            "replications": 1, **extra}  # fmt: skip
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# 1. Files that are not (readable, regular) files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_device_file_is_refused_at_once(command: str, tmp_path: Path) -> None:
    """/dev/zero (size 0, endless): one line, exit 2, in seconds (was a MemoryError)."""
    t0 = time.monotonic()
    proc = hvsim(*argv(command, "/dev/zero", tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert "/dev/zero: not a regular file (a character device)" in proc.stderr
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "out").exists()


def test_fifo_without_writer_ends_within_20s(tmp_path: Path) -> None:
    """hvsim run FIFO with nothing writing to it: one line within 20 s (was a hang)."""
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    proc = hvsim("run", str(fifo), "--out", str(tmp_path / "out"), timeout=40)
    assert time.monotonic() - t0 < 20
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr == f"error: {fifo}: no data from pipe in 10 s (is anything writing to it?)\n"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "run"])
def test_fifo_without_writer_ends_for_every_command(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """The same for the other commands (with a shorter wait, in this process)."""
    monkeypatch.setattr(reader, "PIPE_WAIT_S", 0.3)
    fifo = tmp_path / "input.yaml"
    os.mkfifo(fifo)
    with time_limit(10):
        line = one_line(capsys, argv(command, fifo, tmp_path / "out"))
    assert line == f"error: {fifo}: no data from pipe in 0.3 s (is anything writing to it?)"


def test_fifo_whose_writer_never_closes_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """A writer that sends part of a file and keeps the pipe open: one line, no hang."""
    monkeypatch.setattr(reader, "PIPE_WAIT_S", 0.5)
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    done = threading.Event()

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as f:
            f.write("name: half\n")
            f.flush()
            done.wait(5)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        with time_limit(10):
            line = one_line(capsys, ["run", str(fifo), "--out", str(tmp_path / "out")])
    finally:
        done.set()
        writer.join(5)
    assert line == f"error: {fifo}: pipe not closed by its writer within 0.5 s"


def test_fifo_with_a_writer_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A named pipe with a writer is read to its end and the scenario runs."""
    fifo = tmp_path / "piped.yaml"
    os.mkfifo(fifo)
    text = BASELINE.read_text(encoding="utf-8")

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as f:  # waits for the reader
            f.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    out = tmp_path / "out"
    with time_limit(120):
        code = main(["run", str(fifo), "--out", str(out), "--quiet", *TINY])
    writer.join(5)
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.csv").is_file()


def test_process_substitution_runs(tmp_path: Path) -> None:
    """hvsim run <(cat scenario) reads the pipe bash hands it (/dev/fd/N)."""
    out = tmp_path / "out"
    script = f'"{sys.executable}" -m sim.cli run <(cat "{BASELINE}") --out "{out}" --quiet'
    script += " " + " ".join(TINY)
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "summary.csv").is_file()


@pytest.mark.parametrize("command", COMMANDS)
def test_directory_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory: one line (validate ended in an IsADirectoryError traceback)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    line = one_line(capsys, argv(command, folder, tmp_path / "out"))
    assert line.startswith(f"error: {folder}: is a directory, not a ")


@pytest.mark.parametrize("command", COMMANDS)
def test_symlink_loop_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A loop of symbolic links: one line (sweep ended in an OSError traceback)."""
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    line = one_line(capsys, argv(command, tmp_path / "a.yaml", tmp_path / "out"))
    assert line == f"error: {tmp_path / 'a.yaml'}: a loop of symbolic links"


@pytest.mark.parametrize("command", COMMANDS)
def test_unreadable_proc_file_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc/self/mem (a regular file of size 0 whose reads fail): one line."""
    line = one_line(capsys, argv(command, "/proc/self/mem", tmp_path / "out"))
    assert line.startswith("error: /proc/self/mem: cannot be read: ")


def test_large_sweep_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 5 MiB sweep file: refused by size, before it is parsed (40 MB were accepted)."""
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (5 * 2**20) + "\nstudy: s\n", encoding="utf-8")
    line = one_line(capsys, ["sweep", str(big), "--out", str(tmp_path / "out")])
    assert line == f"error: {big}: larger than 4 MiB, the most a sweep file may be"


@pytest.mark.parametrize("command", COMMANDS)
def test_text_that_is_not_utf8_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    line = one_line(capsys, argv(command, bad, tmp_path / "out"))
    assert line == f"error: {bad}: not a UTF-8 text file (byte 9 is not UTF-8)"


def test_read_text_reads_at_most_the_limit(tmp_path: Path) -> None:
    """The limit holds whatever the size says: /proc files report 0 bytes."""
    assert len(reader.read_text("/proc/self/status", limit=10**6)) > 0
    with pytest.raises(ScenarioError, match="larger than 100 bytes, the most a"):
        reader.read_text("/proc/self/maps", limit=100)
    exact = tmp_path / "exact.yaml"
    exact.write_text("x" * 100, encoding="utf-8")
    assert reader.read_text(exact, limit=100) == "x" * 100


# ---------------------------------------------------------------------------------------
# 2. A sweep file's paths and study name
# ---------------------------------------------------------------------------------------
def test_sweep_naming_a_system_file_does_not_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scenario: /etc/passwd is refused before it is read: nothing of it in the error."""
    file = sweep_file(tmp_path, "/etc/passwd")
    line = one_line(capsys, ["sweep", str(file), "--out", str(tmp_path / "out")])
    assert "root:" not in line
    assert line.startswith(f"error: {file}: scenario: '/etc/passwd' is outside the folder")
    assert "--allow-outside" in line


def test_sweep_path_climbing_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = sweep_file(tmp_path / "a" / "b", "../../../../etc/hostname")
    line = one_line(capsys, ["sweep", str(file), "--out", str(tmp_path / "out")])
    assert "scenario: '../../../../etc/hostname' is outside the folder" in line
    assert "--allow-outside" in line


def test_sweep_path_through_a_link_out_is_refused(tmp_path: Path) -> None:
    """A symbolic link inside the folder to a file outside it is outside too."""
    outside = tiny_scenario(tmp_path, "outside.yaml")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link.yaml").symlink_to(outside)
    file = sweep_file(tmp_path / "in", "link.yaml")
    with pytest.raises(ScenarioError, match=r"'link\.yaml' is outside the folder"):
        load_sweep(file)
    assert load_sweep(file, allow_outside=True).points


def test_allow_outside_lets_a_parent_scenario_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scenario: ../scenario.yaml is refused, and read with --allow-outside."""
    tiny_scenario(tmp_path)
    file = sweep_file(tmp_path / "sweeps", "../scenario.yaml")
    out = tmp_path / "out"
    line = one_line(capsys, ["sweep", str(file), "--out", str(out), "--quiet"])
    assert "--allow-outside" in line
    assert not out.exists()
    code = main(["sweep", str(file), "--out", str(out), "--quiet", "--allow-outside"])
    assert code == 0, capsys.readouterr().err
    assert (out / "study.json").is_file()
    assert load_sweep(file, allow_outside=True).points
    frame = sim.sweep(str(file), out=out, allow_outside=True)
    assert len(frame)


def test_sweep_scenario_beside_or_below_is_read(tmp_path: Path) -> None:
    tiny_scenario(tmp_path / "scenarios")
    assert load_sweep(sweep_file(tmp_path, "scenarios/scenario.yaml")).points
    assert load_sweep(sweep_file(tmp_path / "scenarios", "./scenario.yaml", "s2.yaml")).points


def test_sweep_scenario_that_is_a_device_is_refused(tmp_path: Path) -> None:
    """A sweep's scenario goes through the same reader (a link to /dev/zero inside)."""
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    file = sweep_file(tmp_path, "zero.yaml")
    with pytest.raises(ScenarioError, match="outside the folder"):
        load_sweep(file)
    proc = hvsim("sweep", str(file), "--allow-outside", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr == f"error: {tmp_path / 'zero.yaml'}: " + (
        "not a regular file (a character device); a scenario file is a regular file or a pipe\n"
    )


def test_shipped_sweep_is_inside_its_folder() -> None:
    """The repository's own sweep names a scenario beside it."""
    sweep = load_sweep(ROOT / "scenarios" / "load-sweep.yaml")
    assert sweep.study == "load"
    assert sweep.base.name == "baseline"


def test_study_name_of_300_characters_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_scenario(tmp_path)
    file = sweep_file(tmp_path, "scenario.yaml", study="s" * 300)
    line = one_line(capsys, ["sweep", str(file), "--out", str(tmp_path / "out")])
    assert line.startswith(f"error: {file}: study: a study is named by 1-64 letters")
    assert len(line) < 300


def test_default_study_name_follows_the_rule(tmp_path: Path) -> None:
    """A study named after its file (or its scenario) is cut to a valid name."""
    tiny_scenario(tmp_path)
    file = sweep_file(tmp_path, "scenario.yaml", name="my sweep (v2).yaml")
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    del data["study"]
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_sweep(file).study == "my-sweep--v2-"
    scn = yaml.safe_load((tmp_path / "scenario.yaml").read_text(encoding="utf-8"))
    scn["name"] = "n" * 64
    scn["sweep"] = {"grid": {"host.cores": [8]}}
    with_section = tmp_path / "with-section.yaml"
    with_section.write_text(yaml.safe_dump(scn), encoding="utf-8")
    assert load_sweep(with_section).study == "n" * 58 + "-sweep"


# ---------------------------------------------------------------------------------------
# 3. Values beyond physics
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("devices[nic0].mtu", "1e308", "must be at most 65535B: 68 B is the smallest IPv4 MTU"),
        ("devices[nic0].mtu", "67B", "must be at least 68B: 68 B is the smallest IPv4 MTU"),
        ("children[web-routed].streams[0].size", "0B", "must be at least 1 B: a request moves"),
        ("children[web-routed].streams[0].rate", "1e30", "must be at most 1G/s: no device"),
        ("devices[nic0].line_rate", "2Tbps", "must be at most 1.6Tbps: 1.6 Tb/s is the fastest"),
        ("host.clock", "20GHz", "must be at most 10GHz: server processors"),
        ("host.clock", "1MHz", "must be at least 0.1GHz: server processors"),
        ("parent.vsp.request_cost", "2s", "must be at most 1s: a CPU cost"),
        ("devices[nvme0].bandwidth", "2TB/s", "must be at most 1TB/s: above any PCIe link"),
        ("devices[nic0].frame_overhead", "1e300B", "must be at most 1KiB: the headers"),
        ("host.scheduler.minroot", 5000, "less than or equal to 1023"),
    ],
)
def test_value_beyond_physics_is_refused_with_its_reason(field: str, value: Any, says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        sim.load(BASELINE, {field: value})
    assert info.value.path == field
    assert says in info.value.message
    assert "\n" not in str(info.value)


def test_bounds_in_a_file_name_the_file_and_line(tmp_path: Path) -> None:
    text = BASELINE.read_text(encoding="utf-8").replace("mtu: 1500B", "mtu: 1e308")
    assert "mtu: 1e308" in text
    path = tmp_path / "big-mtu.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        sim.load(path)
    assert str(info.value).startswith(f"{path}:")
    assert "devices[nic0].mtu: must be at most 65535B" in str(info.value)


@pytest.mark.parametrize(
    "size",
    [{"dist": "empirical", "values": ["0B", "4KiB"]}, {"dist": "empirical", "values": ["0B"]}],
)
def test_a_size_distribution_that_gives_0_bytes_is_refused(size: Any) -> None:
    with pytest.raises(ScenarioError, match="must be at least 1 B"):
        sim.load(BASELINE, {"children[web-routed].streams[0].size": size})


def test_a_continuous_size_distribution_may_start_at_0() -> None:
    """Its draws are rounded to whole bytes, at least 1 B (documented on the field)."""
    size = {"dist": "uniform", "low": "0B", "high": "4KiB"}
    scn = sim.load(BASELINE, {"children[web-routed].streams[0].size": size})
    assert scn.children[0].streams[0].size.mean == 2048


def test_every_bound_is_in_the_schema() -> None:
    """hvsim schema shows each bound and its reason beside the field."""
    text = json.dumps(sim.scenario.json_schema())
    fragments = [
        "68B to 65535B: 68 B is the smallest IPv4 MTU",
        "at most 1G/s: no device",
        "1bps to 1.6Tbps",
        "0.1GHz to 10GHz",
        "1 B to 64 MiB",
        "at most 1s: a CPU",
    ]
    for fragment in fragments:
        assert fragment in text, fragment


def test_shipped_scenarios_and_presets_are_within_bounds() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        if not path.stem.endswith("-sweep"):
            sim.load(path)
    for name in sim.scenario.presets.names():  # every preset value checked against the schema
        child = {"name": "c", "cpu_load": {}}
        sim.scenario.from_dict({"name": "p", "preset": name, "children": [child]})


# ---------------------------------------------------------------------------------------
# 4. The command line
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["schema"], ["sweep", "--help"]], ids=["schema", "help"])
def test_closed_stdout_ends_quietly(command: list[str], tmp_path: Path) -> None:
    """hvsim schema | head -1: no BrokenPipeError traceback; status 141 under pipefail."""
    err = tmp_path / "stderr"
    cmd = " ".join([f'"{sys.executable}"', "-m", "sim.cli", *command])
    script = f'set -o pipefail; {cmd} 2>"{err}" | head -c 1'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV,
                          timeout=60)  # fmt: skip
    assert err.read_text() == ""
    assert len(proc.stdout) == 1
    assert proc.returncode in (0, 141)  # 0: everything fitted in the pipe before head left
    if command == ["schema"]:  # 94 KB: more than a pipe holds
        assert proc.returncode == 141


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sweep", "SWEEP", "--workers", "0"], "--workers: must be at least 1 (got 0)"),
        (["validate", str(CASE), "--replications", "-1"], "--replications: must be between 1"),
        (["run", "SCN", "--replications", "-1"], "--replications: must be between 1 and 1000"),
        (["run", "SCN", "--seed", "-1"], "--seed: must be between 0 and"),
        (["run", "SCN", "--budget", "nan"], "--budget: must be a positive number"),
        (["capacity", "SCN", "--slo", "p99<=1ms", "--resolution", "5"], "--resolution: must be"),
        (["capacity", "SCN", "--slo", "p99<=1ms", "--resolution", "nan"], "--resolution: "),
        (["capacity", "SCN", "--slo", "p99<=1ms", "--max-points", "0"], "--max-points: must be"),
        (["capacity", "SCN", "--slo", "p99<=1ms", "--max-points", "10000000"], "--max-points"),
        (["run", "SCN", "--replications", "x"], "--replications: invalid int value: 'x'"),
    ],
)
def test_bad_numbers_on_the_command_line_are_refused(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"SCN": str(BASELINE), "SWEEP": str(ROOT / "scenarios" / "load-sweep.yaml")}
    args = [files.get(a, a) for a in args]
    out = [] if args[0] == "validate" else ["--out", str(tmp_path / "out")]
    if says.endswith("invalid int value: 'x'"):  # argparse: not a number at all
        with pytest.raises(SystemExit, match=r"^2$"):
            main([*args, *out])
        line = capsys.readouterr().err.strip()
    else:
        line = one_line(capsys, [*args, *out])
    assert says in line, line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# 5. Labels in figures
# ---------------------------------------------------------------------------------------
MATH = ["$\\alpha$", "$\\frac$", "cost $5"]  # math, broken math, one dollar


def _svg(fig: Any) -> str:
    """The figure drawn as SVG with its texts as text (broken math raised here)."""
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    return buf.getvalue().decode()


def test_names_with_dollars_render_literally() -> None:
    """Every figure of the report on frames whose names hold $...$ draws, as written."""
    from sim.report import plots

    rows = []
    for i, name in enumerate(MATH):
        for k in range(50):
            rows.append({"partition": name, "io_path": "routed", "in_window": True,
                         "latency_us": 10.0 + k + i, "state": "completed",
                         "requested_path": "routed", "t_submit_us": 100.0 * k})  # fmt: skip
    requests = pd.DataFrame(rows)
    summary = pd.DataFrame([{"partition": n, "io_path": "routed", **{f"{c}_us": 1.0 for c in
                            plots.COMPONENTS}} for n in MATH])  # fmt: skip
    cpu = pd.DataFrame([{"partition": n, "category": "guest", "busy_us": 5.0} for n in MATH])
    trace = pd.DataFrame([{"quantity": "queue", "resource": n, "time_us": 0.0, "value": 1.0}
                          for n in MATH])  # fmt: skip
    faults = pd.DataFrame([{"fault": 0, "kind": "child_crash", "target": MATH[1],
                            "at_us": 1000.0, "duration_us": 500.0}])  # fmt: skip
    figures = [
        plots.latency_cdf(requests),
        plots.latency_breakdown(summary),
        plots.cpu_breakdown(cpu),
        plots.occupancy(trace),
        plots.latency_over_time(requests, faults),
    ]
    for fig in figures:
        svg = _svg(fig)
        assert any(name in svg for name in MATH)  # as written, not as math


def test_sweep_grid_over_a_text_with_dollars_renders() -> None:
    """metric_vs_load on a grid over description = $...$ values and a $ in the grid key."""
    from sim.report import plots

    key = "description"
    frame = pd.DataFrame([{"point_index": i, key: v, "partition": "web", "io_path": "routed",
                           "replication": r, "p99_us": 10.0 + i + r}
                          for i, v in enumerate(MATH) for r in range(2)])  # fmt: skip
    fig = plots.metric_vs_load(frame, key, "p99_us", xlabel="$x$ axis")
    svg = _svg(fig)
    for text in [*MATH, "$x$ axis"]:
        assert f">{text}<" in svg, text


def test_literal_keeps_text_as_written() -> None:
    from matplotlib.figure import Figure

    from sim.report.plots import literal

    for text in [*MATH, "\\$", "$$", "a $b$ c $d$", "plain"]:
        fig = Figure()
        fig.add_subplot().set_title(literal(text))
        assert f">{text}<" in _svg(fig), text
