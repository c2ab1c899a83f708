"""The result store (sim.results.store): hvsim never loses a user's files, checks --out
before simulating, writes whole directories or nothing, and trusts a sweep's points
only when their files verify."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import sim
from sim.cli import main
from sim.experiment import study
from sim.experiment.study import load_study, load_sweep, run_sweep, verify_point
from sim.results import store

REPO = Path(__file__).resolve().parents[1]
BASELINE = str(REPO / "scenarios" / "baseline.yaml")
TINY = ["--set", "run.duration=20ms", "--set", "run.warmup=2ms", "--replications", "1"]


def run(out: Path | str, *extra: str) -> int:
    return main(["run", BASELINE, "--out", str(out), "--quiet", *TINY, *extra])


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (relative path → content)."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}


def manifest_files(d: Path) -> set[str]:
    return set(json.loads((d / "manifest.json").read_text())["files"])


def temporaries(d: Path) -> list[Path]:
    return [p for p in d.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


# ---------------------------------------------------------------------------------------
# 1-2. The manifest, and a user's files
# ---------------------------------------------------------------------------------------
def test_manifest_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    """A run's manifest names its kind, the version and every file with SHA-256 and
    size; meta.json holds the kind, command, seeds and versions."""
    out = tmp_path / "r"
    assert run(out) == 0
    data = json.loads((out / "manifest.json").read_text())
    assert data["kind"] == "run"
    assert data["hvsim"] == sim.__version__
    on_disk = {p.name for p in out.iterdir()} - {"manifest.json"}
    assert set(data["files"]) == on_disk
    for name, entry in data["files"].items():
        assert entry == store.file_entry(out / name)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "run"
    assert meta["command"].startswith("hvsim ")
    assert {"seed", "replication_seeds", "versions"} <= set(meta)


def test_foreign_files_are_kept_and_the_run_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A meta.json next to a user's thesis.tex (no manifest) is not an hvsim result:
    refused in one line naming the directory and its entries, nothing touched."""
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("\\section{mine}")
    (out / "meta.json").write_text('{"mine": true}')
    before = snapshot(out)
    assert run(out) == 2
    line = one_line(capsys.readouterr().err)
    assert str(out) in line
    assert "thesis.tex" in line
    assert "meta.json" in line
    assert "--force" in line
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "thesis.tex"]
    # --force writes beside them, but never over the user's meta.json
    assert run(out, "--force") == 2
    assert "meta.json" in one_line(capsys.readouterr().err)
    assert snapshot(out) == before


def test_force_writes_beside_foreign_files_and_keeps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force writes hvsim's files into a directory of the user's, keeps every foreign
    entry, and lists only its own files; a second --force run replaces only its own."""
    out = tmp_path / "project"
    (out / "data").mkdir(parents=True)
    (out / "thesis.tex").write_text("keep")
    (out / "data" / "x.csv").write_text("a,b\n1,2\n")
    assert run(out) == 2
    capsys.readouterr()
    assert run(out, "--force") == 0
    assert (out / "thesis.tex").read_text() == "keep"
    assert (out / "data" / "x.csv").read_text() == "a,b\n1,2\n"
    assert (out / "summary.csv").is_file()
    listed = manifest_files(out)
    assert "thesis.tex" not in listed
    assert not any(f.startswith("data") for f in listed)
    assert run(out, "--force", "--seed", "7") == 0
    assert (out / "thesis.tex").read_text() == "keep"
    assert (out / "data" / "x.csv").read_text() == "a,b\n1,2\n"
    assert json.loads((out / "meta.json").read_text())["seed"] == 7
    assert temporaries(tmp_path) == []


def test_rerun_into_own_directory_replaces_it_and_removes_old_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-running into an hvsim result is refused in one line without --force (nothing
    touched); with it, files of the old manifest the new result does not write (a path no
    longer compared, its report) are removed."""
    out = tmp_path / "cmp"
    args = ["compare", BASELINE, "--out", str(out), "--quiet", *TINY]
    assert main([*args, "--paths", "routed,direct,native", "--report"]) == 0
    assert (out / "native" / "summary.csv").is_file()
    assert (out / "report.html").is_file()
    assert "report.html" in manifest_files(out)
    capsys.readouterr()
    before = snapshot(out)
    assert main([*args, "--paths", "routed,direct"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "already holds an hvsim compare result" in line
    assert "--force" in line
    assert snapshot(out) == before
    assert main([*args, "--paths", "routed,direct", "--force"]) == 0
    capsys.readouterr()
    assert not (out / "native").exists()
    assert not (out / "report.html").exists()
    assert json.loads((out / "meta.json").read_text())["paths"] == ["routed", "direct"]
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == manifest_files(out) | {"manifest.json"}
    # a run replaces the comparison (both are whole results): nothing of it is left
    assert run(out, "--force") == 0
    assert not (out / "routed").exists()
    assert not (out / "comparison.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["kind"] == "run"


def test_notes_added_by_the_user_are_refused_then_kept_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notes.txt the user put into a result directory makes a rerun refuse (one line,
    the result untouched); with --force the rerun keeps it."""
    out = tmp_path / "r"
    assert run(out) == 0
    (out / "notes.txt").write_text("what I saw")
    before = snapshot(out)
    assert run(out, "--seed", "3") == 2
    line = one_line(capsys.readouterr().err)
    assert "notes.txt" in line
    assert "--force" in line
    assert snapshot(out) == before
    assert run(out, "--seed", "3", "--force") == 0
    assert (out / "notes.txt").read_text() == "what I saw"
    assert "notes.txt" not in manifest_files(out)
    assert json.loads((out / "meta.json").read_text())["seed"] == 3


def test_out_naming_the_working_directory_never_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out ../prev/.`` from inside prev writes into prev file by file: the working
    directory stays (same inode); a directory of the user's is refused outright."""
    prev = tmp_path / "prev"
    assert run(prev) == 0
    inode = prev.stat().st_ino
    monkeypatch.chdir(prev)
    assert run("../prev/.", "--seed", "9", "--force") == 0
    assert Path(os.getcwd()).stat().st_ino == inode
    assert prev.stat().st_ino == inode
    assert json.loads(Path("meta.json").read_text())["seed"] == 9
    assert temporaries(tmp_path) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "paper.md").write_text("draft")
    monkeypatch.chdir(mine)
    assert run("../mine/.") == 2
    assert "paper.md" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in mine.iterdir()) == ["paper.md"]
    assert Path(os.getcwd()) == mine


def test_manifest_naming_paths_outside_is_not_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest that lists ``../victim`` is not hvsim's: the directory is foreign and
    the file outside it is never removed."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "r"
    assert run(out) == 0
    data = json.loads((out / "manifest.json").read_text())
    data["files"]["../victim"] = store.file_entry(victim)
    (out / "manifest.json").write_text(json.dumps(data))
    assert store.read_manifest(out) is None
    assert run(out) == 2
    assert "manifest.json" in one_line(capsys.readouterr().err)
    assert run(out, "--force") == 2  # its manifest.json is not hvsim's: never replaced
    capsys.readouterr()
    assert victim.read_text() == "precious"


def test_a_run_does_not_replace_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A study directory is resumed by a sweep, never replaced by a run."""
    out = tmp_path / "study"
    out.mkdir()
    (out / "manifest.json").write_text(store._manifest_text("sweep", {}))
    assert run(out) == 2
    assert "sweep" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


# ---------------------------------------------------------------------------------------
# 3. --out checked before simulating
# ---------------------------------------------------------------------------------------
LONG = ["--set", "run.duration=30s", "--budget", "1e12"]


def _sweep_file(tmp_path: Path, duration: str, cores: str = "[8, 16]", reps: int = 1) -> Path:
    """A sweep file over host.cores, its scenario (the baseline) written beside it."""
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(sim.load(BASELINE).to_dict()))
    f = tmp_path / "sweep.yaml"
    f.write_text(
        f"study: s\nscenario: scenario.yaml\nset: {{run.duration: {duration}, run.warmup: 2ms, "
        f"run.request_budget: 1e12}}\ngrid: {{host.cores: {cores}}}\nreplications: {reps}\n"
    )
    return f


@pytest.mark.parametrize(
    ("command", "bad"),
    [
        ("run", "file.txt/sub"),
        ("run", "/proc/hvsim-x"),
        ("run", "/sys/hvsim-x"),
        ("run", "file.txt"),
        ("compare", "file.txt/sub"),
        ("capacity", "file.txt/sub"),
        ("sweep", "/proc/hvsim-x"),
    ],
)
def test_bad_out_is_refused_before_simulating(tmp_path: Path, command: str, bad: str) -> None:
    """An --out under a regular file, in /proc or /sys, or naming a file: exit 2, one
    line, at once (the scenario would simulate 30 s of a busy host)."""
    (tmp_path / "file.txt").write_text("a file")
    out = str(tmp_path / bad) if not bad.startswith("/") else bad
    if command == "sweep":
        args = ["sweep", str(_sweep_file(tmp_path, "30s")), "--executor", "serial"]
    elif command == "capacity":
        args = ["capacity", BASELINE, "--slo", "p99<=500us", "--replications", "2", *LONG]
    else:
        args = [command, BASELINE, "--replications", "1", *LONG]
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.getenv("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", *args, "--out", out],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env,
    )  # fmt: skip
    assert time.monotonic() - t0 < 20
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith("error: --out: ")
    assert (tmp_path / "file.txt").read_text() == "a file"
    inputs = {"sweep.yaml", "scenario.yaml"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in inputs) == ["file.txt"]


def test_missing_parents_are_created(tmp_path: Path) -> None:
    """--out a/b/c makes a and b, as mkdir -p does."""
    out = tmp_path / "a" / "b" / "c"
    assert run(out) == 0
    assert (out / "summary.csv").is_file()


def test_unwritable_out_is_refused_before_simulating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory where nothing can be created (the probe fails): exit 2, one line, and
    the simulation never starts."""
    import sim.experiment.run as experiment_run

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setattr(experiment_run, "run", lambda *a, **k: pytest.fail("simulated"))
    assert run(tmp_path / "r") == 2
    line = one_line(capsys.readouterr().err)
    assert "cannot write" in line
    assert "Permission denied" in line


# ---------------------------------------------------------------------------------------
# 4. Stale temporaries
# ---------------------------------------------------------------------------------------
def test_stale_temporaries_of_dead_processes_are_removed_of_live_ones_kept(
    tmp_path: Path,
) -> None:
    """Writing r removes .r.tmp-PID beside it (and .hvsim.tmp-PID inside it) whose
    process is gone, and keeps those of a live process."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        gone = dead_pid()
        out = tmp_path / "r"
        dead_beside = tmp_path / f".r.tmp-{gone}"
        live_beside = tmp_path / f".r.tmp-{live.pid}"
        for d in (dead_beside, live_beside):
            d.mkdir()
            (d / "summary.csv").write_text("half")
        assert run(out) == 0
        assert not dead_beside.exists()
        assert (live_beside / "summary.csv").read_text() == "half"
        dead_inside = out / f".hvsim.tmp-{gone}"
        live_inside = out / f".hvsim.tmp-{live.pid}"
        for d in (dead_inside, live_inside):
            d.mkdir()
        assert run(out, "--force") == 0  # temporaries are not foreign entries
        assert not dead_inside.exists()
        assert live_inside.is_dir()
    finally:
        live.kill()
        live.wait(timeout=30)


def test_sweep_removes_only_dead_temporaries(tmp_path: Path) -> None:
    """A resumed sweep removes the temporaries of a killed writer, not a live one's."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        sweep = load_sweep(_sweep_file(tmp_path, "20ms"))
        out = tmp_path / "study"
        assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--quiet"]) == 0
        key = sweep.points[0].key
        dead = out / "requests" / f".{key}.parquet.tmp-{dead_pid()}"
        alive = out / "requests" / f".{key}.parquet.tmp-{live.pid}"
        dead.write_bytes(b"PAR1 half")
        alive.write_bytes(b"PAR1 half")
        assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--quiet"]) == 0
        assert not dead.exists()
        assert alive.exists()
    finally:
        live.kill()
        live.wait(timeout=30)


# ---------------------------------------------------------------------------------------
# 7. A write that fails
# ---------------------------------------------------------------------------------------
def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)


def test_save_that_fails_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills while the result is written: exit 1, one line naming the
    directory and the reason, no traceback, no directory (nor its new parents)."""
    out = tmp_path / "a" / "b" / "r"
    _disk_full(monkeypatch)
    assert run(out) == 1
    line = one_line(capsys.readouterr().err)
    assert line == f"error: cannot write {out}: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_rerun_that_fails_keeps_the_previous_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun whose write fails leaves the previous result as it was, and no temporary."""
    out = tmp_path / "r"
    assert run(out) == 0
    before = snapshot(out)
    _disk_full(monkeypatch)
    assert run(out, "--seed", "5", "--force") == 1
    assert "No space left on device" in one_line(capsys.readouterr().err)
    assert snapshot(out) == before
    assert temporaries(tmp_path) == []


def test_report_write_that_fails_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """hvsim report on a full disk: exit 1, one line, the result untouched."""
    out = tmp_path / "r"
    assert run(out) == 0
    before = snapshot(out)

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    assert main(["report", str(out)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"error: cannot write {out}: No space left on device"
    )
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------------
# 5. Sweep points verified
# ---------------------------------------------------------------------------------------
def _flip(f: Path) -> None:
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def test_damaged_sweep_points_are_recomputed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flipped bytes in one point's requests and another point's summary copied over a
    third's: neither point is done nor read; the sweep recomputes both, says so, and
    the study then reads back exactly as a clean one."""
    file = _sweep_file(tmp_path, "20ms", "[8, 12, 16]", reps=2)
    keys = [p.key for p in load_sweep(file).points]
    clean, damaged = tmp_path / "clean", tmp_path / "damaged"
    for out in (clean, damaged):
        assert main(["sweep", str(file), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    _flip(damaged / "requests" / f"{keys[0]}.parquet")
    shutil.copyfile(damaged / "summary" / f"{keys[1]}.parquet",
                    damaged / "summary" / f"{keys[2]}.parquet")  # fmt: skip
    assert verify_point(damaged, keys[0]).startswith("requests/")
    assert verify_point(damaged, keys[1]) == ""
    assert verify_point(damaged, keys[2]).startswith("summary/")
    assert set(load_study(damaged)["point"]) == {keys[1]}  # only verified points

    assert main(["sweep", str(file), "--out", str(damaged)]) == 0
    stdout = capsys.readouterr().out
    assert "(2 computed, 1 already done, 0 failed)" in stdout
    assert "recomputed 2 damaged points" in stdout
    last = json.loads((damaged / "study.json").read_text())["last_run"]
    assert sorted(last["damaged"]) == sorted([keys[0], keys[2]])
    pd.testing.assert_frame_equal(load_study(damaged), load_study(clean))
    assert all(verify_point(damaged, k) == "" for k in keys)


def test_point_files_copied_with_their_record_are_not_another_point(tmp_path: Path) -> None:
    """Every file names its point: one point's four files copied under another point's
    names (hashes and all) do not pass for it."""
    file = _sweep_file(tmp_path, "20ms")
    a, b = (p.key for p in load_sweep(file).points)
    out = tmp_path / "study"
    assert main(["sweep", str(file), "--out", str(out), "--quiet"]) == 0
    for sub, ext in (("summary", "parquet"), ("requests", "parquet"), ("points", "yaml")):
        shutil.copyfile(out / sub / f"{a}.{ext}", out / sub / f"{b}.{ext}")
    info = json.loads((out / "points" / f"{a}.json").read_text())
    info["key"] = b
    info["files"] = {k.replace(a, b): v for k, v in info["files"].items()}
    (out / "points" / f"{b}.json").write_text(json.dumps(info))
    assert verify_point(out, b) == f"summary/{b}.parquet is another point's"
    assert verify_point(out, a) == ""


# ---------------------------------------------------------------------------------------
# 6. hvsim report reads only DIR, and opens every kind
# ---------------------------------------------------------------------------------------
def test_report_refuses_a_comparison_naming_paths_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comparison whose meta.json names ``../../x`` is refused (exit 2, one line),
    before anything outside the directory is read; nothing is written."""
    outside = tmp_path / "x"
    assert run(outside) == 0  # a readable result, where the path would lead
    cmp_ = tmp_path / "a" / "b"
    cmp_.mkdir(parents=True)
    (cmp_ / "comparison.csv").write_text("partition,path,metric,value\n")
    (cmp_ / "meta.json").write_text(json.dumps({"paths": ["../../x"], "base": "../../x"}))
    assert main(["report", str(cmp_)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "../../x" in line
    assert "inside" in line
    assert not (cmp_ / "report.html").exists()
    assert not (outside / "report.html").exists()


def test_report_refuses_a_link_out_of_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A result whose summary.csv is a link to a file elsewhere is refused."""
    out = tmp_path / "r"
    assert run(out) == 0
    elsewhere = tmp_path / "elsewhere.csv"
    shutil.move(out / "summary.csv", elsewhere)
    (out / "summary.csv").symlink_to(elsewhere)
    assert main(["report", str(out)]) == 2
    assert "summary.csv links to" in one_line(capsys.readouterr().err)


def test_report_of_a_capacity_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hvsim capacity --report writes report.html with the capacity table (path,
    capacity, bracket, binding resource), its figure and how to reproduce it; hvsim report
    on the directory writes it again, listed in the manifest."""
    out = tmp_path / "cap"
    args = ["capacity", BASELINE, "--slo", "mean<=1ms", "--replications", "2",
            "--max-points", "2", "--resolution", "0.5", "--paths", "routed",
            "--set", "run.duration=20ms", "--set", "run.warmup=2ms", "--out", str(out),
            "--quiet", "--report"]  # fmt: skip
    assert main(args) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    text = (out / "report.html").read_text(encoding="utf-8")
    table = pd.read_csv(out / "capacity.csv")
    for word in ("capacity report", "binding resource", "bracket", "analytic saturation",
                 "mean&lt;=1ms", "How to reproduce"):  # fmt: skip
        assert word in text, word
    binding = str(table["binding_resource"].iloc[0])
    assert binding in text
    assert text.count('<img src="data:image/svg+xml;base64,') == 1
    assert "report.html" in manifest_files(out)
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert store.matches(out / "report.html", json.loads(
        (out / "manifest.json").read_text())["files"]["report.html"])  # fmt: skip


def test_report_never_replaces_a_file_hvsim_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report.html of the user's in a result directory, or an --out file that is not
    an hvsim report, is kept: exit 2, one line."""
    out = tmp_path / "r"
    assert run(out) == 0
    mine = tmp_path / "mine.html"
    mine.write_text("<p>my page</p>")
    assert main(["report", str(out), "--out", str(mine)]) == 2
    assert "not a report hvsim wrote" in one_line(capsys.readouterr().err)
    assert mine.read_text() == "<p>my page</p>"
    (out / "report.html").write_text("<p>my notes</p>")
    assert main(["report", str(out)]) == 2
    assert "hvsim did not write it" in one_line(capsys.readouterr().err)
    assert (out / "report.html").read_text() == "<p>my notes</p>"


def test_a_sweep_reads_back_the_points_it_verified_without_hashing_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The points a sweep computed or found done are read back as they are, not verified
    again (:attr:`SweepReport.verified`); the same frame as a study read cold, and a point
    the sweep did not verify is still checked."""
    file = _sweep_file(tmp_path, "20ms", "[8, 12]", reps=2)
    sweep = load_sweep(file)
    report = run_sweep(sweep, tmp_path / "out")
    assert sorted(report.verified) == sorted(p.key for p in sweep.points)
    cold = load_study(report.out)
    checked: list[str] = []
    real = study.verify_point
    monkeypatch.setattr(
        study, "verify_point", lambda out, key: checked.append(key) or real(out, key)
    )
    pd.testing.assert_frame_equal(load_study(report.out, report.verified), cold)
    assert checked == []  # nothing read and hashed again
    monkeypatch.undo()
    _flip(report.out / "requests" / f"{sweep.points[0].key}.parquet")
    only = [sweep.points[1].key]
    assert set(load_study(report.out, only)["point"]) == set(only)
    again = run_sweep(sweep, report.out)  # recomputed: the damaged point is not trusted
    assert again.computed == [sweep.points[0].key]
    assert again.skipped == only
    pd.testing.assert_frame_equal(load_study(again.out, again.verified), cold)
