"""Hostile use of files and the command line: result directories that hold the user's
files, special files given as scenarios or sweeps (``/dev/zero``, FIFOs, directories,
symlink loops, ``/proc``), damaged sweep points, a full disk, runs that would never end,
paths that reach outside the study's folder, and malformed options.

Every case asserts the correct behaviour. Bad input or a refused action: exactly one line
on stderr starting with ``error:``, exit status 2, no traceback, nothing written or
deleted. An environment failure (disk full, unreachable scheduler): one ``error:`` line,
exit status 1, no traceback. A hang fails the test (every call has a timeout and its
processes are killed).

The program is exercised only through its command line (``python -m sim.cli``, cwd = the
repository root) and the public API (``import sim``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import sim

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
TINY = ["--set", "run.duration=20ms", "--set", "run.warmup=2ms", "--replications", "1"]
LONG_RUN = ["--set", "run.duration=30s", "--set", "run.warmup=2ms", "--budget", "1e12"]
"""A baseline run of minutes: a refusal that comes after simulating misses the deadline."""
MEMORY = 1536 * 2**20
"""Address space given to hvsim where it might read without end (``/dev/zero``)."""
COMMANDS = ("run", "compare", "capacity", "validate")
TINY_SWEEP = """\
study: tiny
scenario: baseline.yaml
set: {run.duration: 20ms, run.warmup: 2ms}
grid:
  "children[web-routed].streams[0].rate, children[web-direct].streams[0].rate": [20k, 40k]
replications: 1
seed: 7
"""


# ---------------------------------------------------------------------------------------
# Running hvsim
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one hvsim invocation did."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        """Exit status and the first line of stderr (or the exception of a traceback)."""
        if "Traceback" in self.stderr:
            last = self.stderr.strip().splitlines()[-1]
            shown = f"traceback: {last.split(':')[0]} ({last[:160]})"
        else:
            lines = self.stderr.strip().splitlines()
            shown = f"stderr: {lines[0][:200]!r}" if lines else "stderr empty"
        return f"`{self.command}` → exit {self.returncode} in {self.seconds:.1f} s; {shown}"


def _session(sid: int) -> list[int]:
    """The processes of session ``sid`` (hvsim and everything it started)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 3 and fields[3] == str(sid):
            pids.append(int(entry.name))
    return pids


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session we started (by id)."""
    for pid in _session(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _limit_memory(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def hvsim(
    *args: str | Path,
    cwd: Path = REPO,
    timeout: float = 60.0,
    memory: int | None = None,
    max_processes: int | None = None,
) -> Outcome:
    """Run ``python -m sim.cli ARGS`` in its own session; a run longer than ``timeout``
    (a hang) or one that starts more than ``max_processes`` processes is killed and
    fails the test."""
    argv = [str(a) for a in args]
    shown = " ".join(["hvsim", *argv])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_limit_memory(memory) if memory else None,
    )
    crowd: list[int] = []  # the process count that made the watchdog kill the session
    stop = threading.Event()

    def watch() -> None:
        while max_processes is not None and not stop.wait(0.1):
            members = _session(proc.pid)
            if len(members) > max_processes:
                crowd.append(len(members))
                _kill_session(proc.pid)
                return

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    hung = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        _kill_session(proc.pid)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop.set()
        watchdog.join()
        _kill_session(proc.pid)  # what it left running (a Dask worker)
    if hung:
        pytest.fail(f"`{shown}` gave no answer within {timeout:g} s: a hang (killed)")
    if crowd:
        pytest.fail(f"`{shown}` started {crowd[0]} processes (at most {max_processes}): killed")
    return Outcome(shown, proc.returncode, stdout, stderr, time.monotonic() - t0)


# ---------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------
def error_line(out: Outcome, status: int | Sequence[int], *mentions: str) -> str:
    """Assert ``out`` failed with ``status``, one ``error:`` line, no traceback, and that
    the line mentions each of ``mentions`` (case-insensitive); returns the line."""
    statuses = (status,) if isinstance(status, int) else tuple(status)
    assert "Traceback" not in out.stderr, f"traceback: {out}"
    assert out.returncode in statuses, f"expected exit {' or '.join(map(str, statuses))}: {out}"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {out}"
    assert lines[0].startswith("error:"), f"the line does not start with 'error:': {out}"
    for word in mentions:
        assert word.lower() in lines[0].lower(), f"the error does not mention {word!r}: {out}"
    return lines[0]


def refused(out: Outcome, *mentions: str) -> str:
    """Bad input or a refused action: exit 2, one ``error:`` line."""
    return error_line(out, 2, *mentions)


def env_failure(out: Outcome, *mentions: str) -> str:
    """A failure of the environment (disk, network): exit 1, one ``error:`` line."""
    return error_line(out, 1, *mentions)


def succeeded(out: Outcome) -> None:
    """Exit 0 and no traceback."""
    assert "Traceback" not in out.stderr, f"traceback: {out}"
    assert out.returncode == 0, f"expected success: {out}"


def snapshot(where: Path) -> dict[str, bytes]:
    """Every file under ``where`` (relative path → content)."""
    return {str(p.relative_to(where)): p.read_bytes() for p in where.rglob("*") if p.is_file()}


def assert_untouched(where: Path, before: dict[str, bytes], out: Outcome) -> None:
    """Nothing under ``where`` was written or deleted."""
    after = snapshot(where) if where.is_dir() else {}
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    added = sorted(set(after) - set(before))
    assert not gone, f"files deleted: {gone}; {out}"
    assert not changed, f"files changed: {changed}; {out}"
    assert not added, f"files written: {added}; {out}"


# ---------------------------------------------------------------------------------------
# Fixtures and builders
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def earlier_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A result directory written by an earlier ``hvsim run`` (copy it before use)."""
    out = tmp_path_factory.mktemp("earlier") / "res"
    succeeded(hvsim("run", BASELINE, *TINY, "--out", out, "--quiet"))
    return out


def with_user_files(earlier: Path, where: Path, files: dict[str, str]) -> Path:
    """A copy of an earlier result at ``where`` with the user's ``files`` added."""
    shutil.copytree(earlier, where)
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text, encoding="utf-8")
    return where


def sweep_of(scenario: str) -> str:
    """The tiny sweep's text with another ``scenario:``."""
    return TINY_SWEEP.replace("scenario: baseline.yaml", f"scenario: {scenario}")


def tiny_sweep(folder: Path, text: str = TINY_SWEEP, name: str = "tiny.yaml") -> Path:
    """A sweep file in ``folder`` with a copy of the baseline beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BASELINE, folder / "baseline.yaml")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def scenario_args(command: str, scenario: str | Path, out: Path) -> list[str | Path]:
    """The arguments of ``command`` on ``scenario`` (tiny, writing to ``out``)."""
    if command == "validate":
        return ["validate", scenario]
    if command == "capacity":
        return ["capacity", scenario, "--slo", "p99<=1ms", "--out", out, *TINY[:4],
                "--replications", "2"]  # fmt: skip
    return [command, scenario, "--out", out, *TINY]


def dead_pid() -> int:
    """A process id no process has."""
    pid = 999_999
    while pid > 1:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
    raise AssertionError("no free process id")


def feed_fifo(path: Path, data: bytes, deadline: float) -> None:
    """Write ``data`` into the FIFO once a reader has opened it (gives up at ``deadline``)."""
    while time.monotonic() < deadline:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            time.sleep(0.05)
            continue
        try:
            os.set_blocking(fd, True)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)
        return


# ---------------------------------------------------------------------------------------
# 1. Result directories
# ---------------------------------------------------------------------------------------
def test_out_with_user_files_is_refused(earlier_result: Path, tmp_path: Path) -> None:
    """--out onto a result dir that also holds the user's files is refused (--force)."""
    out = with_user_files(
        earlier_result, tmp_path / "D", {"thesis.tex": "\\chapter{Mine}\n", "data/x.csv": "a\n1\n"}
    )
    before = snapshot(out)
    res = hvsim("run", BASELINE, *TINY, "--out", out)
    assert_untouched(out, before, res)
    refused(res, "--force")


def test_out_with_user_files_and_force_keeps_them(earlier_result: Path, tmp_path: Path) -> None:
    """With --force the run replaces hvsim's files and leaves the user's untouched."""
    mine = {"thesis.tex": "\\chapter{Mine}\n", "data/x.csv": "a\n1\n"}
    out = with_user_files(earlier_result, tmp_path / "D", mine)
    res = hvsim("run", BASELINE, *TINY, "--out", out, "--force")
    succeeded(res)
    for name, text in mine.items():
        assert (out / name).read_text(encoding="utf-8") == text, f"{name} lost: {res}"
    for name in ("summary.csv", "requests.parquet", "meta.json", "scenario.resolved.yaml"):
        assert (out / name).is_file(), name
    assert "--force" in json.loads((out / "meta.json").read_text(encoding="utf-8"))["command"]


def test_rerun_into_result_with_notes_needs_force(earlier_result: Path, tmp_path: Path) -> None:
    """A result dir with the user's notes.txt: refused without --force; kept with it."""
    out = with_user_files(earlier_result, tmp_path / "res", {"notes.txt": "mine\n"})
    before = snapshot(out)
    res = hvsim("run", BASELINE, *TINY, "--out", out)
    assert_untouched(out, before, res)
    refused(res, "--force")
    forced = hvsim("run", BASELINE, *TINY, "--out", out, "--force")
    succeeded(forced)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine\n", f"lost: {forced}"


def test_rerun_into_own_result_needs_force(earlier_result: Path, tmp_path: Path) -> None:
    """A result dir holding only hvsim's own files is not replaced without --force (one
    line, untouched); with --force it is."""
    out = tmp_path / "res"
    shutil.copytree(earlier_result, out)
    before = snapshot(out)
    refused_res = hvsim("run", BASELINE, *TINY, "--out", out, "--seed", "3")
    assert_untouched(out, before, refused_res)
    refused(refused_res, "--force")
    res = hvsim("run", BASELINE, *TINY, "--out", out, "--seed", "3", "--force")
    succeeded(res)
    assert json.loads((out / "meta.json").read_text(encoding="utf-8"))["seed"] == 3


def test_out_is_the_working_directory(earlier_result: Path, tmp_path: Path) -> None:
    """--out ../prev/. from inside prev (holding the user's files) is refused; cwd kept."""
    prev = with_user_files(earlier_result, tmp_path / "prev", {"thesis.tex": "mine\n"})
    inode = prev.stat().st_ino
    before = snapshot(prev)
    res = hvsim("run", BASELINE, *TINY, "--out", "../prev/.", cwd=prev)
    assert prev.is_dir(), f"cwd deleted: {res}"
    assert prev.stat().st_ino == inode, f"cwd replaced by another directory: {res}"
    assert_untouched(prev, before, res)
    refused(res)


@pytest.mark.parametrize("where", ["under-a-file", "/proc/hvsim-x"])
def test_unwritable_out_fails_before_simulating(where: str, tmp_path: Path) -> None:
    """--out under a regular file or in /proc fails at once, before a long simulation."""
    if where == "under-a-file":
        (tmp_path / "file.txt").write_text("mine\n", encoding="utf-8")
        out = str(tmp_path / "file.txt" / "sub")
    else:
        out = where
    res = hvsim("run", BASELINE, *LONG_RUN, "--out", out, timeout=20)
    line = error_line(res, (1, 2))
    assert "--out" in line or out in line, f"names neither --out nor {out}: {line}"
    assert res.seconds < 20
    if where == "under-a-file":
        assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "mine\n"


def test_out_parents_are_created(tmp_path: Path) -> None:
    """--out a/b/c whose parents do not exist yet: created."""
    out = tmp_path / "a" / "b" / "c"
    succeeded(hvsim("run", BASELINE, *TINY, "--out", out, "--quiet"))
    assert (out / "summary.csv").is_file()


def test_stale_temporary_is_removed_live_one_kept(tmp_path: Path) -> None:
    """A .NAME.tmp-PID of a dead process is removed by the next run; a live PID's is kept."""
    stale = tmp_path / f".res.tmp-{dead_pid()}"
    live = tmp_path / f".res.tmp-{os.getpid()}"
    for d in (stale, live):
        d.mkdir()
        (d / "summary.csv").write_text("partial\n", encoding="utf-8")
    res = hvsim("run", BASELINE, *TINY, "--out", tmp_path / "res", "--quiet")
    succeeded(res)
    assert (live / "summary.csv").is_file(), f"the live run's temporary was deleted: {res}"
    assert not stale.exists(), f"stale temporary {stale.name} left in place: {res}"


# ---------------------------------------------------------------------------------------
# 2. Special files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_dev_zero_as_scenario(command: str, tmp_path: Path) -> None:
    """/dev/zero as the scenario: refused at once, without reading it into memory."""
    out = tmp_path / "out"
    res = hvsim(*scenario_args(command, "/dev/zero", out), timeout=20, memory=MEMORY)
    refused(res, "/dev/zero")
    assert not out.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_fifo_without_writer_as_scenario(command: str, tmp_path: Path) -> None:
    """A FIFO nobody writes to, as the scenario: refused within 20 s, not a hang."""
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    res = hvsim(*scenario_args(command, fifo, out), timeout=20)
    refused(res, str(fifo))
    assert not out.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_directory_as_scenario(command: str, tmp_path: Path) -> None:
    """A directory given as the scenario: refused, one line."""
    folder = tmp_path / "scenario.yaml"
    folder.mkdir()
    out = tmp_path / "out"
    res = hvsim(*scenario_args(command, folder, out), timeout=20)
    refused(res, str(folder))
    assert not out.exists()


def test_sweep_scenario_dev_zero(tmp_path: Path) -> None:
    """A sweep whose scenario: is /dev/zero is refused."""
    sweep = tiny_sweep(tmp_path, sweep_of("/dev/zero"))
    out = tmp_path / "out"
    refused(hvsim("sweep", sweep, "--out", out, timeout=20, memory=MEMORY))
    assert not out.exists()


def test_sweep_file_over_size_limit(tmp_path: Path) -> None:
    """A sweep file over 4 MiB is refused, naming the limit."""
    sweep = tiny_sweep(tmp_path, TINY_SWEEP + "# " + "x" * (4 * 2**20) + "\n")
    out = tmp_path / "out"
    line = refused(hvsim("sweep", sweep, "--out", out, timeout=30))
    assert "4 MiB" in line or "4194304" in line, line
    assert not out.exists()


def test_sweep_file_symlink_loop(tmp_path: Path) -> None:
    """A sweep file that is a symlink loop is refused."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    os.symlink(a, b)
    os.symlink(b, a)
    refused(hvsim("sweep", a, "--out", tmp_path / "out", timeout=20), str(a))


def test_sweep_file_proc_self_mem(tmp_path: Path) -> None:
    """/proc/self/mem as a sweep file is refused."""
    out = tmp_path / "out"
    refused(hvsim("sweep", "/proc/self/mem", "--out", out, timeout=20, memory=MEMORY))
    assert not out.exists()


def test_scenario_through_a_pipe_with_data_runs(tmp_path: Path) -> None:
    """A scenario read from a pipe that has data (like <(cat file)) still runs."""
    fifo = tmp_path / "piped.yaml"
    os.mkfifo(fifo)
    writer = threading.Thread(
        target=feed_fifo, args=(fifo, BASELINE.read_bytes(), time.monotonic() + 30), daemon=True
    )
    writer.start()
    try:
        res = hvsim("run", fifo, *TINY, "--out", tmp_path / "out", "--quiet", timeout=30)
    finally:
        writer.join(timeout=35)
    succeeded(res)
    assert (tmp_path / "out" / "summary.csv").is_file()


# ---------------------------------------------------------------------------------------
# 3. Damaged sweep points
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """A finished two-point study: its sweep file, its directory and its frame."""
    root = tmp_path_factory.mktemp("study")
    sweep = tiny_sweep(root)
    out = root / "clean"
    succeeded(hvsim("sweep", sweep, "--out", out))
    return sweep, out, sim.load_study(out)


def _point_files(out: Path, kind: str) -> list[Path]:
    files = sorted((out / kind).glob("*.parquet"))
    assert len(files) == 2, f"expected two {kind} files under {out}: {files}"
    return files


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped-requests", "swapped-summary"])
def test_damaged_point_is_recomputed(
    damage: str, clean_study: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    """A point whose files were damaged is recomputed (and said so); the frame is clean."""
    sweep, clean, frame = clean_study
    out = tmp_path / "study"
    shutil.copytree(clean, out)
    requests = _point_files(out, "requests")
    want_rows = len(pd.read_parquet(requests[0]))
    if damage == "flipped-requests":
        _flip_middle(requests[0])
    else:
        summaries = _point_files(out, "summary")
        shutil.copyfile(summaries[0], summaries[1])
    res = hvsim("sweep", sweep, "--out", out)
    succeeded(res)
    pd.testing.assert_frame_equal(sim.load_study(out), frame, obj=f"study after {damage}")
    try:  # any failure to read it is the finding
        rows: int | str = len(pd.read_parquet(requests[0]))
    except Exception as exc:
        rows = f"{type(exc).__name__}: {exc}"
    assert rows == want_rows, f"{requests[0].name} still damaged ({rows}); {res}"
    said = res.stdout + res.stderr
    count = r"\b1\b[^\n]{0,40}\b(damaged|recomputed)\b|\b(damaged|recomputed)\b[^\n]{0,40}\b1\b"
    first = said.strip().splitlines()[0] if said.strip() else ""
    assert re.search(count, said, re.IGNORECASE), f"no '1 damaged/recomputed'; said {first!r}"


# ---------------------------------------------------------------------------------------
# 4. Write failures
# ---------------------------------------------------------------------------------------
def test_disk_full_at_save(tmp_path: Path) -> None:
    """A full disk at save time: exit 1, one line, no partial directory left."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a 64 KiB tmpfs here: {mount.stderr.strip()}")
    try:
        res = hvsim("run", BASELINE, *TINY, "--out", mnt / "res")
        assert sorted(p.name for p in mnt.iterdir()) == [], f"left behind: {res}"
        env_failure(res)
    finally:
        if subprocess.run(["umount", str(mnt)], timeout=30, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], timeout=30, check=False)


# ---------------------------------------------------------------------------------------
# 5. Budget: runs that would never end
# ---------------------------------------------------------------------------------------
def test_mmpp_switching_every_nanosecond(tmp_path: Path) -> None:
    """An MMPP switching every 1 ns over 50 ms: refused up front (budget) or done in < 20 s."""
    res = hvsim(
        "run", BASELINE, "--set", "run.duration=50ms", "--set", "run.warmup=2ms",
        "--replications", "1", "--set", "children[web-routed].streams[0].arrival=mmpp",
        "--set", "children[web-routed].streams[0].burst={factor: 2, length: 1ns, between: 1ns}",
        "--out", tmp_path / "out", "--quiet", timeout=20,
    )  # fmt: skip
    if res.returncode == 2:
        refused(res, "budget")
    else:
        succeeded(res)


def test_studentized_range_sizes(tmp_path: Path) -> None:
    """Sizes drawn from scipy's studentized_range (some 50 ms a draw): its draws count in
    the budget, so a budget of 1e6 requests (some 30 s of simulation) refuses the run up
    front, naming the sampler, where it used to run for minutes unnoticed."""
    size = "{dist: scipy, name: studentized_range, params: {k: 3, df: 10}, scale: 1KiB}"
    res = hvsim(
        "run", BASELINE, "--set", "run.duration=50ms", "--set", "run.warmup=2ms",
        "--replications", "1", "--set", f"children[web-routed].streams[0].size={size}",
        "--set", "children[web-routed].streams[0].rate=5k", "--budget", "1e6",
        "--out", tmp_path / "out", "--quiet", timeout=30,
    )  # fmt: skip
    refused(res)
    assert "studentized_range" in res.stderr


def test_ten_thousand_workers(tmp_path: Path) -> None:
    """--workers 10000 on a two-point sweep starts no more workers than points."""
    sweep = tiny_sweep(tmp_path)
    res = hvsim("sweep", sweep, "--workers", "10000", "--out", tmp_path / "out",
                timeout=60, max_processes=12)  # fmt: skip
    succeeded(res)
    for n in re.findall(r"\((\d+) of the \d+ workers asked\)", res.stdout + res.stderr):
        assert int(n) <= 2, f"said it used {n} workers: {res}"


# ---------------------------------------------------------------------------------------
# 6. Reaching outside
# ---------------------------------------------------------------------------------------
def test_sweep_scenario_etc_passwd(tmp_path: Path) -> None:
    """scenario: /etc/passwd is refused, and none of its content is shown."""
    sweep = tiny_sweep(tmp_path / "sub", sweep_of("/etc/passwd"))
    res = hvsim("sweep", sweep, "--out", tmp_path / "out", timeout=20)
    refused(res)
    secrets = [x for x in Path("/etc/passwd").read_text(encoding="utf-8").splitlines() if x]
    assert "root:" not in res.stderr
    assert not [x for x in secrets if x in res.stderr + res.stdout], f"content shown: {res}"


def test_sweep_scenario_dotdot_etc_hostname(tmp_path: Path) -> None:
    """scenario: ../../../../../../etc/hostname is refused."""
    sweep = tiny_sweep(tmp_path / "sub", sweep_of("../../../../../../etc/hostname"))
    out = tmp_path / "out"
    refused(hvsim("sweep", sweep, "--out", out, timeout=20))
    assert not out.exists()


def test_sweep_scenario_one_folder_up_needs_allow_outside(tmp_path: Path) -> None:
    """scenario: ../baseline.yaml is refused (naming --allow-outside) unless allowed."""
    sweep = tiny_sweep(tmp_path / "sub", sweep_of("../baseline.yaml"))
    shutil.copyfile(BASELINE, tmp_path / "baseline.yaml")
    out = tmp_path / "out"
    refused(hvsim("sweep", sweep, "--out", out), "--allow-outside")
    assert not out.exists()
    succeeded(hvsim("sweep", sweep, "--out", out, "--allow-outside"))
    assert (out / "study.json").is_file()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A comparison directory of routed and direct (copy it before use)."""
    out = tmp_path_factory.mktemp("comparison") / "cmp"
    succeeded(hvsim("compare", BASELINE, "--paths", "routed,direct", *TINY, "--out", out,
                    "--quiet"))  # fmt: skip
    return out


@pytest.mark.parametrize("pointer", ["absolute", "relative"])
def test_report_of_comparison_pointing_outside(
    pointer: str, comparison: Path, tmp_path: Path
) -> None:
    """hvsim report on a comparison whose meta.json points outside DIR is refused."""
    cmp_dir = tmp_path / "cmp"
    shutil.copytree(comparison, cmp_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(cmp_dir / "direct", outside / "direct")
    meta_file = cmp_dir / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    target = str(outside / "direct") if pointer == "absolute" else "../outside/direct"
    meta["paths"] = [target if p == "direct" else p for p in meta["paths"]]
    meta_file.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    before = snapshot(tmp_path)
    res = hvsim("report", cmp_dir, timeout=30)
    assert_untouched(tmp_path, before, res)
    refused(res)


# ---------------------------------------------------------------------------------------
# 7. Smaller things
# ---------------------------------------------------------------------------------------
def test_sweep_of_mathtext_like_descriptions_reports(tmp_path: Path) -> None:
    """Grid values with $\\alpha$-like text (and unbalanced $) still give a report."""
    text = TINY_SWEEP.replace(
        '"children[web-routed].streams[0].rate, children[web-direct].streams[0].rate": [20k, 40k]',
        'description: ["$\\\\alpha$ load", "cost $5 and $\\\\frac{1}{ x^"]',
    )
    sweep = tiny_sweep(tmp_path, text)
    out = tmp_path / "out"
    succeeded(hvsim("sweep", sweep, "--out", out, "--report"))
    assert (out / "report.html").is_file()


def test_study_name_of_300_characters(tmp_path: Path) -> None:
    """A 300-character study name is refused, one line."""
    sweep = tiny_sweep(tmp_path, TINY_SWEEP.replace("study: tiny", "study: " + "s" * 300))
    out = tmp_path / "out"
    refused(hvsim("sweep", sweep, "--out", out, timeout=30), "study")
    assert not out.exists()


def test_scheduler_not_an_address(tmp_path: Path) -> None:
    """--scheduler notaurl is refused, one line, nothing written."""
    out = tmp_path / "out"
    refused(hvsim("sweep", tiny_sweep(tmp_path), "--out", out, "--scheduler", "notaurl"),
            "--scheduler")  # fmt: skip
    assert not out.exists()


def test_scheduler_nobody_listening(tmp_path: Path) -> None:
    """--scheduler tcp://127.0.0.1:1 (nothing there): exit 1, one line, within 30 s."""
    res = hvsim("sweep", tiny_sweep(tmp_path), "--out", tmp_path / "out",
                "--scheduler", "tcp://127.0.0.1:1", timeout=30)  # fmt: skip
    env_failure(res, "127.0.0.1:1")


def test_schema_into_a_closed_pipe(tmp_path: Path) -> None:
    """hvsim schema | head -1: the closed pipe shows no traceback."""
    err = tmp_path / "stderr.txt"
    script = (
        f"set -o pipefail; {sys.executable} -m sim.cli schema 2>{err} | head -1; "
        'echo "status ${PIPESTATUS[0]}" >&2'
    )
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("hvsim schema | head -1 gave no answer within 60 s: a hang")
    assert proc.stdout.strip() == "{"
    said = err.read_text(encoding="utf-8")
    status = proc.stderr.strip()
    assert "Traceback" not in said, f"{status}; traceback: {said.strip().splitlines()[-1]}"
    assert "Exception ignored" not in said, f"{status}; {said.strip()[:200]}"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("devices[nic0].mtu=1e308", "mtu"),
        ("children[web-routed].streams[0].size=0B", "size"),
        ("children[web-routed].streams[0].rate=1e30", ""),
    ],
)
def test_absurd_values_are_refused(override: str, field: str, tmp_path: Path) -> None:
    """An MTU of 1e308, a 0 B request, a rate of 1e30/s: refused with a reason."""
    out = tmp_path / "out"
    line = refused(hvsim("run", BASELINE, *TINY, "--set", override, "--out", out), field)
    assert len(line.split(":")) >= 3, f"no reason given: {line}"
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "SWEEP", "--workers", "0"],
        ["run", str(BASELINE), "--replications", "-1"],
        ["compare", str(BASELINE), "--replications", "-1"],
        ["capacity", str(BASELINE), "--slo", "p99<=1ms", "--replications", "-1"],
        ["validate", "scenarios/validation/little.yaml", "--replications", "-1"],
    ],
    ids=["sweep-workers-0", "run-reps-1", "compare-reps-1", "capacity-reps-1", "validate-reps-1"],
)
def test_nonpositive_counts_are_refused(args: list[str], tmp_path: Path) -> None:
    """--workers 0 and --replications -1 are refused, one line."""
    args = [str(tiny_sweep(tmp_path)) if a == "SWEEP" else a for a in args]
    out = [] if args[0] == "validate" else ["--out", str(tmp_path / "out")]
    refused(hvsim(*args, *out, timeout=60), args[-2])
    assert not (tmp_path / "out").exists()
