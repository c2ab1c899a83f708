"""Hostile inputs: files that are not files (devices, pipes, directories, link loops,
/proc), files too large or not text. Each is refused with one line and exit status 2,
quickly, or works as it should."""

from __future__ import annotations

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

import pytest
import yaml

import sim
from sim.cli import main
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
