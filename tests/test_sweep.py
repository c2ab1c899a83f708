"""Sweeps: executors agree, studies resume, failures and corrupt files are handled."""

from __future__ import annotations

import copy
import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import sim
import sim.experiment.run
import sim.experiment.study
from sim.cli import main
from sim.experiment.study import is_done, load_study, load_sweep, make_sweep, run_sweep
from sim.scenario import ScenarioError

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
TINY = {"run.duration": "40ms", "run.warmup": "5ms"}
ORDER = ["point_index", "replication", "partition"]
LINKED = "children[web-routed].streams[0].rate, children[web-direct].streams[0].rate"


@cache
def _tiny_base() -> dict[str, Any]:
    return sim.load(BASELINE, TINY).to_dict()


def tiny_base() -> dict[str, Any]:
    """The baseline scenario, shortened, as plain data (a fresh copy)."""
    return copy.deepcopy(_tiny_base())


def spec(grid: dict[str, list[Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A tiny sweep: the short baseline, two points by default, two replications."""
    return {
        "study": "tiny",
        "scenario": tiny_base(),
        "grid": grid if grid is not None else {"host.cores": [8, 16]},
        "replications": 2,
        **extra,
    }


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def sweep_file(tmp_path: Path, name: str = "sweep.yaml", **over: Any) -> Path:
    """A sweep file whose scenario is a shortened baseline written next to it."""
    write_yaml(tmp_path / "scenario.yaml", tiny_base())
    data = {"study": "tiny", "scenario": "scenario.yaml", "grid": {"host.cores": [8, 16]},
            "replications": 2, **over}  # fmt: skip
    return write_yaml(tmp_path / name, data)


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ORDER).reset_index(drop=True)


def temp_files(out: Path) -> list[Path]:
    return [f for f in out.rglob("*") if f.name.startswith(".") and ".tmp-" in f.name]


def stored_keys(out: Path) -> set[str]:
    return {f.stem for f in (out / "points").glob("*.json")}


@pytest.fixture(scope="module")
def serial_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny two-point sweep, run serially once for the module (do not modify it)."""
    out = tmp_path_factory.mktemp("studies") / "serial"
    report = run_sweep(make_sweep(spec()), out=out, executor="serial")
    assert len(report.computed) == 2
    assert not report.failed
    return out


@pytest.fixture
def study_copy(serial_study: Path, tmp_path: Path) -> Path:
    """A private copy of the serial study, free to modify."""
    return Path(shutil.copytree(serial_study, tmp_path / "study"))


def assert_same_study(a: Path, b: Path) -> None:
    fa, fb = load_study(a), load_study(b)
    assert len(fa) == 2 * 2 * 4  # points × replications × children
    pd.testing.assert_frame_equal(sorted_frame(fa), sorted_frame(fb))
    keys = stored_keys(a)
    assert keys == stored_keys(b)
    for key in keys:
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / "requests" / f"{key}.parquet"),
            pd.read_parquet(b / "requests" / f"{key}.parquet"),
        )


# ---------------------------------------------------------------------------------------
# 1. Every executor gives the same answers
# ---------------------------------------------------------------------------------------
# another Dask cluster on this machine may hold the default dashboard port: not our concern
@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_executors_give_identical_results(
    serial_study: Path, tmp_path: Path, executor: str
) -> None:
    """A process pool and a Dask LocalCluster of 2 workers store exactly what serial does."""
    report = run_sweep(make_sweep(spec()), out=tmp_path / executor, executor=executor, workers=2)
    assert report.executor == executor
    assert len(report.computed) == 2
    assert not report.failed
    assert_same_study(serial_study, tmp_path / executor)


def test_a_pool_runs_each_replication_as_a_task(serial_study: Path, tmp_path: Path) -> None:
    """On a process pool a point's replications are tasks of their own: one point of two
    replications keeps two workers busy, and its files are serial's."""
    one = spec({"host.cores": [8]})
    report = run_sweep(make_sweep(one), out=tmp_path / "one", executor="processes", workers=2)
    assert report.workers == min(2, sim.experiment.run.cores())
    assert len(report.computed) == 1
    key = report.computed[0]
    for rel in sim.experiment.study.POINT_FILES[:2]:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "one" / rel.format(key=key)),
            pd.read_parquet(serial_study / rel.format(key=key)),
        )


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="the failure is planted in this process, for workers forked from it",
)
def test_a_replication_that_fails_on_a_pool_fails_its_point_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replication that raises in a pool's worker fails its point, recorded once with
    its error; its other replication's records are dropped and the other points stored,
    as serial stores them."""
    original = sim.experiment.run.simulate

    def simulate(scenario: Any, replication: int, *args: Any) -> Any:
        if scenario.host.cores == 8 and replication == 1:
            raise RuntimeError("boom in replication 1")
        return original(scenario, replication, *args)

    monkeypatch.setattr(sim.experiment.run, "simulate", simulate)
    sw = make_sweep(spec({"host.cores": [8, 16, 12]}))
    bad = sw.points[0].key
    others = {p.key for p in sw.points[1:]}
    report = run_sweep(sw, tmp_path / "pool", executor="processes", workers=2)
    assert report.failed == [bad]
    assert set(report.computed) == others
    info = json.loads((tmp_path / "pool" / "failed" / f"{bad}.json").read_text())
    assert "RuntimeError: boom in replication 1" in info["error"]
    assert stored_keys(tmp_path / "pool") == others
    monkeypatch.undo()
    serial = run_sweep(make_sweep(spec({"host.cores": [16, 12]})), tmp_path / "serial",
                       executor="serial")  # fmt: skip
    assert set(serial.computed) == others
    pool, alone = (sorted_frame(load_study(tmp_path / d)) for d in ("pool", "serial"))
    pd.testing.assert_frame_equal(
        pool.drop(columns="point_index"), alone.drop(columns="point_index")
    )


@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
def test_a_local_dask_cluster_runs_each_replication_as_a_task(
    serial_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a Dask cluster too a point's replications are tasks of their own, in two
    workers for one point of two replications; its files are serial's."""
    original = sim.experiment.study.run_replication
    seen = tmp_path / "seen"
    seen.mkdir()

    def run_replication(scenario: dict[str, Any], seed: int, replication: int,
                        **where: Any) -> Any:  # fmt: skip
        import os

        (seen / f"{replication}-{os.getpid()}").touch()
        return original(scenario, seed, replication, **where)

    monkeypatch.setattr(sim.experiment.study, "run_replication", run_replication)
    one = spec({"host.cores": [8]})
    report = run_sweep(make_sweep(one), out=tmp_path / "one", executor="dask", workers=2)
    assert len(report.computed) == 1
    by = {int(f.name.split("-")[0]): f.name.split("-")[1] for f in seen.iterdir()}
    assert sorted(by) == [0, 1]
    if sim.experiment.run.cores() >= 2:
        assert report.workers == 2
        assert by[0] != by[1]  # two processes
    key = report.computed[0]
    for rel in sim.experiment.study.POINT_FILES[:2]:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "one" / rel.format(key=key)),
            pd.read_parquet(serial_study / rel.format(key=key)),
        )


def test_auto_is_the_process_pool_and_dask_only_with_a_scheduler() -> None:
    """auto: serial for one worker, the process pool for more, Dask for a scheduler."""
    choose = sim.experiment.study._choose
    assert choose("auto", 1, None) == "serial"
    assert choose("auto", 2, None) == "processes"
    assert choose("auto", 2, "tcp://127.0.0.1:8786") == "dask"
    assert choose("dask", 2, None) == "dask"
    with pytest.raises(ValueError, match="goes with the dask executor"):
        choose("processes", 2, "tcp://127.0.0.1:8786")


def test_a_local_worker_writes_its_point_files_and_ships_no_frame(tmp_path: Path) -> None:
    """Given the study directory, a point's worker writes its three files itself (each
    naming its point) and returns only their hashes and its grid columns, no frame;
    without one it returns the summary rows and the requests' Parquet bytes, whose
    tables are the same."""
    from sim.experiment.study import POINT_FILES, POINT_META, _where, run_point
    from sim.results.store import file_entry

    p = make_sweep(spec()).points[0]
    args = (p.scenario.to_dict(), p.seed, p.replications)
    local = run_point(
        *args, **_where(p), out=str(tmp_path), point=p.key, point_index=p.index, values=p.values
    )
    assert "requests_parquet" not in local
    assert not any(isinstance(v, pd.DataFrame) for v in local.values())
    rels = [f.format(key=p.key) for f in POINT_FILES]
    assert local["files"] == {r: file_entry(tmp_path / r) for r in rels}
    assert local["columns"] == {"host.cores": "cores"}
    path = tmp_path / "requests" / f"{p.key}.parquet"
    import pyarrow.parquet as pq

    assert pq.read_schema(path).metadata[POINT_META] == p.key.encode()
    written = pd.read_parquet(path)
    assert (written["point"] == p.key).all()
    assert (written["point_index"] == p.index).all()
    assert (tmp_path / rels[2]).read_text().startswith(f"# hvsim point {p.key}\n")
    remote = run_point(*args, **_where(p))
    assert "files" not in remote
    import io

    pd.testing.assert_frame_equal(
        written.drop(columns=["point", "point_index"]),
        pd.read_parquet(io.BytesIO(remote["requests_parquet"])),
    )
    summary = pd.read_parquet(tmp_path / rels[0])
    assert (summary["point"] == p.key).all()
    assert (summary["cores"] == p.scenario.host.cores).all()
    pd.testing.assert_frame_equal(
        summary.drop(columns=["point", "point_index", "cores"]), remote["replications"]
    )
    assert local["requests"] == remote["requests"] == len(written)


@pytest.mark.parametrize("file", sim.experiment.study.POINT_FILES)
def test_a_file_changed_after_its_worker_wrote_it_fails_the_point(
    file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driving process checks the worker's hashes before the point counts as done."""
    original = sim.experiment.study.run_point

    def run_point(*args: Any, **where: Any) -> dict[str, Any]:
        payload = original(*args, **where)
        path = Path(where["out"]) / file.format(key=where["point"])
        path.write_bytes(path.read_bytes()[:-9] + b"corrupted")
        return payload

    monkeypatch.setattr(sim.experiment.study, "run_point", run_point)
    sw = make_sweep(spec({"host.cores": [8]}))
    report = run_sweep(sw, tmp_path / "out", executor="serial")
    assert report.failed == [sw.points[0].key]
    assert not report.computed
    info = json.loads((tmp_path / "out" / "failed" / f"{sw.points[0].key}.json").read_text())
    assert "does not match the hash its worker gave" in info["error"]
    assert not stored_keys(tmp_path / "out")


@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
def test_external_dask_scheduler_gives_identical_results(
    serial_study: Path, tmp_path: Path
) -> None:
    """scheduler=ADDRESS runs the points on that Dask cluster with the serial results."""
    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, processes=True, dashboard_address=None)
    try:
        report = run_sweep(
            make_sweep(spec()), out=tmp_path / "ext", scheduler=cluster.scheduler_address
        )
    finally:
        cluster.close()
    assert report.executor == "dask"
    assert len(report.computed) == 2
    assert_same_study(serial_study, tmp_path / "ext")


@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
def test_a_local_dask_cluster_starts_warm_and_stops_its_workers() -> None:
    """A LocalCluster's workers are forked from a server that has imported the simulator
    (where the platform has one): they hold it before any point arrives; closing the
    cluster ends them."""
    import multiprocessing
    import os

    from sim.experiment.study import _dask_client

    def state() -> tuple[bool, int]:
        import os
        import sys

        return "sim.experiment.run" in sys.modules, os.getpid()

    client, cluster = _dask_client(2, None)
    try:
        seen = client.run(state)
    finally:
        client.close()
        cluster.close()
    assert len(seen) == 2
    if "forkserver" in multiprocessing.get_all_start_methods():
        assert all(warm for warm, _ in seen.values())
    for _, pid in seen.values():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {pid} still runs after the cluster closed")


@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
@pytest.mark.parametrize("task", ["point", "replication"])
def test_a_point_that_raises_on_a_local_dask_cluster_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    """On a LocalCluster as serially: the point that raises (in its tables' task, or in
    one of its replications) goes to failed/ with its error, once; the others are
    stored."""
    sw = make_sweep(spec({"host.cores": [8, 16]}))
    if task == "point":
        _failing_at_8_cores(monkeypatch)
    else:
        _failing_replication(monkeypatch)
    report = run_sweep(sw, tmp_path / "out", executor="dask", workers=2)
    assert report.failed == [sw.points[0].key]
    assert report.computed == [sw.points[1].key]
    info = json.loads((tmp_path / "out" / "failed" / f"{sw.points[0].key}.json").read_text())
    boom = "boom at 8 cores" if task == "point" else "boom in replication 1"
    assert f"RuntimeError: {boom}" in info["error"]
    assert stored_keys(tmp_path / "out") == {sw.points[1].key}


def _failing_replication(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replication 1 of the point of 8 cores raises where it runs (a Dask worker takes
    the function by value)."""
    original = sim.experiment.study.run_replication

    def run_replication(scenario: dict[str, Any], seed: int, replication: int,
                        **where: Any) -> Any:  # fmt: skip
        if scenario["host"]["cores"] == 8 and replication == 1:
            raise RuntimeError("boom in replication 1")
        return original(scenario, seed, replication, **where)

    monkeypatch.setattr(sim.experiment.study, "run_replication", run_replication)


# ---------------------------------------------------------------------------------------
# 2. Resume after a kill
# ---------------------------------------------------------------------------------------
def test_resume_after_sigkill(tmp_path: Path) -> None:
    """A sweep killed with SIGKILL resumes: finished points are kept, only the rest run."""
    db = "children[db-routed].streams[0].rate, children[db-direct].streams[0].rate"
    file = sweep_file(
        tmp_path,
        study="resume",
        set={"run.duration": "100ms", "run.warmup": "5ms"},
        grid={"host.cores": [8, 16], db: ["5k", "10k", "20k"]},
    )
    out = tmp_path / "out"
    sw = load_sweep(file)
    assert len(sw.points) == 6
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "sweep", str(file), "--out", str(out),
             "--executor", "serial"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while len(list((out / "points").glob("*.json"))) < 2:
                assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
                assert time.monotonic() < deadline, "no two points finished in 120 s"
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = stored_keys(out)
    assert 2 <= len(done) < 6
    files = [out / sub / f"{k}.{ext}" for k in done
             for sub, ext in (("points", "json"), ("points", "yaml"), ("summary", "parquet"),
                              ("requests", "parquet"))]  # fmt: skip
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    report = run_sweep(load_sweep(file), out, executor="serial")
    assert set(report.skipped) == done
    assert set(report.computed) == {p.key for p in sw.points} - done
    assert not report.failed
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    assert temp_files(out) == []
    frame = load_study(out)
    assert len(frame) == 6 * 2 * 4
    assert sorted(frame["point_index"].unique()) == list(range(6))
    assert frame.groupby("point_index")["replication"].nunique().eq(2).all()

    again = run_sweep(load_sweep(file), out, executor="serial")
    assert again.computed == []
    assert len(again.skipped) == 6


def test_an_interrupted_pool_sweep_stops_and_keeps_its_points(tmp_path: Path) -> None:
    """Ctrl-C during a sweep on a process pool: the replications not started never start
    (a few tasks are queued at a time), the finished points are kept, the message says
    so (exit status 130), and the same command computes the rest."""
    file = sweep_file(
        tmp_path,
        study="stop",
        set={"run.duration": "100ms", "run.warmup": "5ms"},
        grid={"host.cores": [4, 6, 8, 10, 12, 14, 16, 18]},
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "sweep", str(file), "--out", str(out),
         "--executor", "processes", "--workers", "2"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list((out / "points").glob("*.json")):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no point finished in 120 s"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted; the points that finished are kept" in err
    assert "Traceback" not in err
    done = stored_keys(out)
    assert 1 <= len(done) < 8
    assert temp_files(out) == []
    report = run_sweep(load_sweep(file), out, executor="serial")
    assert set(report.skipped) == done
    assert len(report.computed) == 8 - len(done)


def test_resume_removes_temporary_files_of_a_killed_run(study_copy: Path) -> None:
    """A resumed run leaves no temporary file that a run killed mid-write left behind."""
    sw = make_sweep(spec())
    key = sw.points[1].key
    # the state SIGKILL leaves in the middle of _atomic_write for point 1's requests
    (study_copy / "points" / f"{key}.json").unlink()
    stale = study_copy / "requests" / f".{key}.parquet.tmp-4194000"
    stale.write_bytes(b"PAR1 half a table")
    report = run_sweep(sw, study_copy, executor="serial")
    assert report.computed == [key]
    assert temp_files(study_copy) == []


# ---------------------------------------------------------------------------------------
# 3. A point that raises
# ---------------------------------------------------------------------------------------
def _failing_at_8_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sim.experiment.study.run_point

    def run_point(
        scenario: dict[str, Any], seed: int, replications: int, **where: Any
    ) -> dict[str, Any]:
        if scenario["host"]["cores"] == 8:
            raise RuntimeError("boom at 8 cores")
        return original(scenario, seed, replications, **where)

    monkeypatch.setattr(sim.experiment.study, "run_point", run_point)


def test_failed_point_is_recorded_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A point that raises goes to failed/<key>.json, the others are stored; a rerun retries it."""
    sw = make_sweep(spec({"host.cores": [8, 16, 12]}))
    bad = sw.points[0].key
    others = {p.key for p in sw.points[1:]}
    out = tmp_path / "out"
    _failing_at_8_cores(monkeypatch)
    report = run_sweep(sw, out, executor="serial")
    assert report.failed == [bad]
    assert set(report.computed) == others
    info = json.loads((out / "failed" / f"{bad}.json").read_text())
    assert info["key"] == bad
    assert "RuntimeError: boom at 8 cores" in info["error"]
    assert "Traceback" in info["traceback"]
    assert "boom at 8 cores" in info["traceback"]
    assert stored_keys(out) == others
    assert set(load_study(out)["cores"]) == {16, 12}

    monkeypatch.undo()
    again = run_sweep(make_sweep(spec({"host.cores": [8, 16, 12]})), out, executor="serial")
    assert again.computed == [bad]
    assert set(again.skipped) == others
    assert again.failed == []
    assert not (out / "failed" / f"{bad}.json").exists()
    assert len(load_study(out)) == 3 * 2 * 4


def test_cli_sweep_with_a_failed_point_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """hvsim sweep exits with status 1 and names the failed point when one point raised."""
    file = sweep_file(tmp_path)
    bad = load_sweep(file).points[0].key
    _failing_at_8_cores(monkeypatch)
    out = tmp_path / "out"
    rc = main(["sweep", str(file), "--out", str(out), "--executor", "serial"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"failed: point {bad}" in err
    assert (out / "failed" / f"{bad}.json").is_file()


# ---------------------------------------------------------------------------------------
# 4. A corrupt result is not trusted
# ---------------------------------------------------------------------------------------
def _garbage_summary(f: Path) -> None:
    f.write_bytes(b"this is not parquet at all" * 10)


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


@pytest.mark.parametrize(
    ("table", "damage"), [("summary", _garbage_summary), ("requests", _truncate)]
)
def test_corrupt_point_is_recomputed(study_copy: Path, table: str, damage: Any) -> None:
    """A point with a garbage summary or truncated requests file is not done; a rerun redoes it."""
    sw = make_sweep(spec())
    good, broken = sw.points
    damage(study_copy / table / f"{broken.key}.parquet")
    assert is_done(study_copy, good)
    assert not is_done(study_copy, broken)
    report = run_sweep(sw, study_copy, executor="serial")
    assert report.computed == [broken.key]
    assert report.skipped == [good.key]
    assert is_done(study_copy, broken)
    assert len(load_study(study_copy)) == 2 * 2 * 4


# ---------------------------------------------------------------------------------------
# 5. Bad sweep input: status 2, one line, nothing written
# ---------------------------------------------------------------------------------------
def _bad_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, **over: Any) -> str:
    file = sweep_file(tmp_path, **over)
    out = tmp_path / "out"
    rc = main(["sweep", str(file), "--out", str(out), "--executor", "serial", *extra])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert not out.exists()
    return lines[0]


def test_unknown_top_level_key_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown top-level key in a sweep file: status 2, one error line naming the key."""
    line = _bad_sweep(tmp_path, capsys, replicatoins=3)
    assert line.startswith(f"error: {tmp_path / 'sweep.yaml'}: replicatoins: unknown key")


def test_grid_not_a_mapping_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A grid that is a list, not a mapping: status 2, one error line naming grid."""
    line = _bad_sweep(tmp_path, capsys, grid=[8, 16])
    assert line.startswith(f"error: {tmp_path / 'sweep.yaml'}: grid: ")


def test_empty_value_list_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A grid key with no values: status 2, one error line naming that key."""
    line = _bad_sweep(tmp_path, capsys, grid={"host.cores": [8], "parent.vcpus": []})
    assert line.startswith(f"error: {tmp_path / 'sweep.yaml'}: grid.parent.vcpus: ")


def test_invalid_point_is_rejected_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid value that makes a point invalid: the line names the point and the field."""
    line = _bad_sweep(tmp_path, capsys, grid={"host.cores": [4, 0]})
    assert line.startswith(f"error: {tmp_path / 'sweep.yaml'}: ")
    assert "host.cores=0" in line
    assert "host.cores:" in line.split("host.cores=0", 1)[1]


def test_missing_scenario_file_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep whose scenario file does not exist: status 2, one line naming that file."""
    line = _bad_sweep(tmp_path, capsys, scenario="no-such-scenario.yaml")
    assert line.startswith(f"error: {tmp_path}")
    assert "no-such-scenario.yaml" in line
    assert "no such file" in line


def test_zero_workers_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 0: status 2, one error line naming --workers."""
    line = _bad_sweep(tmp_path, capsys, "--workers", "0")
    assert line.startswith("error: --workers: ")


def test_missing_sweep_file_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep file that does not exist: status 2, one error line naming it."""
    file = tmp_path / "nope.yaml"
    assert main(["sweep", str(file), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {file}: no such file"]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# 6. A scenario file with a sweep: section
# ---------------------------------------------------------------------------------------
def test_scenario_with_sweep_section(tmp_path: Path) -> None:
    """hvsim run ignores a sweep: section; load_sweep uses the file as base, study <name>-sweep."""
    data = tiny_base()
    data["name"] = "tiny"
    data["sweep"] = {"grid": {"host.cores": [8, 12]}, "replications": 2}
    file = write_yaml(tmp_path / "with-sweep.yaml", data)

    out = tmp_path / "run"
    assert main(["run", str(file), "--out", str(out), "--replications", "1", "--quiet"]) == 0
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert "sweep" not in resolved
    assert resolved["host"]["cores"] == 16
    assert resolved["name"] == "tiny"
    assert set(pd.read_csv(out / "summary.csv")["partition"]) == {
        "web-routed", "web-direct", "db-routed", "db-direct"}  # fmt: skip

    sw = load_sweep(file)
    assert sw.study == "tiny-sweep"
    assert sw.base.to_dict() == sim.load(file).to_dict()
    assert [p.scenario.host.cores for p in sw.points] == [8, 12]
    assert all(p.replications == 2 for p in sw.points)

    del data["name"]
    assert load_sweep(write_yaml(tmp_path / "unnamed.yaml", data)).study == "unnamed-sweep"


# ---------------------------------------------------------------------------------------
# 7. Linked grid keys
# ---------------------------------------------------------------------------------------
def test_linked_grid_keys_set_every_path() -> None:
    """One grid key naming two paths sets both children's rate in every point."""
    sw = make_sweep(spec({LINKED: ["10k", "20k"]}))
    assert [p.values for p in sw.points] == [{LINKED: "10k"}, {LINKED: "20k"}]
    for p, rate in zip(sw.points, [10_000.0, 20_000.0], strict=True):
        rates = {c.name: c.streams[0].rate for c in p.scenario.children}
        assert rates == {"web-routed": rate, "web-direct": rate,
                         "db-routed": 20_000.0, "db-direct": 20_000.0}  # fmt: skip


def test_a_linked_key_is_one_numeric_column_under_its_short_name(tmp_path: Path) -> None:
    """The study frame has one column per swept parameter, numeric in requests/s and named
    ``rate``, never the comma-joined paths as text ('120k' < '20k'); labels keep the values
    as the sweep wrote them, and the text table and report show those."""
    from sim.experiment.study import study_grid
    from sim.report.html import render
    from sim.report.text import format_study

    out = tmp_path / "linked"
    run_sweep(make_sweep(spec({LINKED: ["20k", "120k"]}, replications=1)), out=out,
              executor="serial")  # fmt: skip
    frame = load_study(out)
    assert LINKED not in frame.columns
    assert not any("," in c or "[" in c for c in frame.columns)
    assert pd.api.types.is_numeric_dtype(frame["rate"])
    assert sorted(frame["rate"].unique()) == [20_000.0, 120_000.0]
    [grid] = study_grid(frame)
    assert (grid.key, grid.column) == (LINKED, "rate")
    assert [grid.show(v) for v in (20_000.0, 120_000.0)] == ["20k", "120k"]
    table = format_study(frame)
    assert table.splitlines()[0].split()[0] == "rate"
    assert "120k" in table
    assert "120000" not in table
    html = render(out)
    assert "120k" in html
    assert "against rate" in html


# ---------------------------------------------------------------------------------------
# 8. Points are keyed by their content
# ---------------------------------------------------------------------------------------
def test_point_keys_depend_on_content_only() -> None:
    """Same sweep → same keys; another seed → all keys new; a new grid value keeps old keys."""
    a = [p.key for p in make_sweep(spec()).points]
    assert a == [p.key for p in make_sweep(spec()).points]
    assert len(set(a)) == 2
    reseeded = [p.key for p in make_sweep(spec(seed=7)).points]
    assert not set(reseeded) & set(a)
    larger = make_sweep(spec({"host.cores": [8, 16, 12]}))
    assert [p.key for p in larger.points][:2] == a
    assert make_sweep(spec(study="other")).points[0].key == a[0]


def test_larger_sweep_reuses_finished_points(study_copy: Path) -> None:
    """A 3-point sweep into a 2-point study computes only the new point."""
    old = stored_keys(study_copy)
    sw = make_sweep(spec({"host.cores": [8, 16, 12]}))
    report = run_sweep(sw, study_copy, executor="serial")
    assert set(report.skipped) == old
    assert len(report.computed) == 1
    assert len(load_study(study_copy)) == 3 * 2 * 4


def test_reused_points_get_the_current_point_index(study_copy: Path) -> None:
    """After a value is added in front of the grid, load_study numbers points as the sweep does."""
    sw = make_sweep(spec({"host.cores": [12, 8, 16]}))
    run_sweep(sw, study_copy, executor="serial")
    frame = load_study(study_copy)
    index = frame.groupby("cores")["point_index"].unique().map(list).to_dict()
    assert index == {12: [0], 8: [1], 16: [2]}


def test_grid_over_run_seed_is_honoured_or_refused() -> None:
    """A grid over run.seed either is refused or simulates each point with its own seed."""
    try:
        sw = make_sweep(spec({"run.seed": [1, 2]}))
    except ScenarioError:
        return
    assert [p.seed for p in sw.points] == [1, 2]


def test_set_run_replications_is_honoured_or_refused() -> None:
    """set: {run.replications: 1} either is refused or the point runs 1 replication."""
    data = spec()
    del data["replications"]
    data["set"] = {"run.replications": 1}
    try:
        sw = make_sweep(data)
    except ScenarioError:
        return
    assert [p.replications for p in sw.points] == [1, 1]


# ---------------------------------------------------------------------------------------
# 9. The public API
# ---------------------------------------------------------------------------------------
def test_sim_sweep_returns_the_tidy_frame(serial_study: Path, tmp_path: Path) -> None:
    """sim.sweep(dict, out=DIR) returns the tidy frame, and sim.load_study(DIR) the same."""
    out = tmp_path / "api"
    frame = sim.sweep(spec(), out=out)
    need = ["cores", "point", "point_index", "replication", "partition", "requests",
            "throughput_rps", "mean_us", "p99_us"]  # fmt: skip
    assert set(need) <= set(frame.columns)
    assert list(frame.columns[:3]) == ["point", "point_index", "cores"]
    assert len(frame) == 2 * 2 * 4
    assert sorted(frame["cores"].unique()) == [8, 16]
    assert set(frame["point"]) == {p.key for p in make_sweep(spec()).points}
    assert (frame["throughput_rps"] > 0).all()
    pd.testing.assert_frame_equal(frame, sim.load_study(out))
    pd.testing.assert_frame_equal(frame, load_study(serial_study))


def test_sim_sweep_can_be_called_again(tmp_path: Path) -> None:
    """sim.sweep stays callable once the sim.sweep submodule is imported (e.g. by a first call)."""
    frame = sim.sweep(spec(), out=tmp_path / "again")
    assert len(frame) == 2 * 2 * 4


def test_a_grid_too_large_is_refused_before_anything_is_built() -> None:
    """A grid of more points than one sweep may hold is refused at once, with the count."""
    from sim.experiment.study import MAX_POINTS

    grid = {"host.cores": list(range(1, 101)), "run.seed": list(range(MAX_POINTS // 100 + 1))}
    with pytest.raises(ScenarioError, match=r"grid: 10,100 points; at most 10,000"):
        make_sweep({"study": "huge", "scenario": "scenarios/baseline.yaml", "grid": grid})


def test_workers_take_the_largest_points_first() -> None:
    """Pools and clusters get the points most work first (the budget's estimate times the
    replications): the last point to finish is a small one."""
    from sim.experiment.study import largest_first

    rate = "children[web-routed].streams[0].rate"
    points = make_sweep(spec({rate: ["10k", "40k", "20k", "30k"]})).points
    assert [p.index for p in largest_first(points)] == [1, 3, 2, 0]
    more = [copy.copy(p) for p in points]
    more[0].replications = 50  # 10k fifty times outweighs 40k twice
    assert [p.index for p in largest_first(more)] == [0, 1, 3, 2]
