"""Replications in a process pool (sim.experiment.run.replicate): the same result as a
serial run, for run, compare and the command line."""

from __future__ import annotations

import dataclasses
import multiprocessing

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import sim
from sim.cli import main
from sim.experiment.run import cores, replicate

SHORT = {"run.duration": "15ms", "run.warmup": "3ms"}


def test_run_on_two_workers_is_the_serial_run() -> None:
    """Every frame of the result, exactly (the pool may finish replications in any
    order; they are put together in replication order)."""
    scn = sim.load("scenarios/baseline.yaml", SHORT)
    serial = sim.run(scn, replications=3, seed=7)
    pooled = sim.run(scn, replications=3, seed=7, workers=2)
    for f in dataclasses.fields(serial):
        a, b = getattr(serial, f.name), getattr(pooled, f.name)
        if isinstance(a, pd.DataFrame):
            assert_frame_equal(a, b, check_exact=True, obj=f.name)
    assert len(serial.requests) > 1000


def test_compare_on_two_workers_is_the_serial_compare() -> None:
    scn = sim.load("scenarios/baseline.yaml", SHORT)
    serial = sim.compare(scn, replications=2, seed=3)
    pooled = sim.compare(scn, replications=2, seed=3, workers=2)
    assert_frame_equal(serial, pooled, check_exact=True)


def test_workers_are_checked() -> None:
    scn = sim.load("scenarios/baseline.yaml", SHORT)
    with pytest.raises(ValueError, match="workers"):
        replicate(scn, 2, 1, workers=0)
    assert cores() >= 1


def test_cli_refuses_no_workers(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = main(["run", "scenarios/baseline.yaml", "--workers", "0", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --workers: must be at least 1 (got 0)"]
    assert not (tmp_path / "r").exists()


def test_capacity_on_two_workers_is_the_serial_search() -> None:
    """The M/M/1 capacity case (tests/test_capacity.py) at 3 points, two a round: same
    table and points, whether the rounds' replications run serially or on two workers."""
    from sim.experiment.capacity import search
    from sim.experiment.validate import load_case
    from sim.scenario import from_dict

    data = load_case("scenarios/validation/mm1-mean.yaml")["scenario"]
    data["children"][0]["streams"][0]["rate"] = "5k"
    data["run"] = {"duration": "100ms", "warmup": "10ms", "seed": 3}
    scn = from_dict(data)
    kw = {"paths": ["native"], "replications": 3, "resolution": 0.2, "max_points": 3,
          "per_round": 2}  # fmt: skip
    serial = search(scn, "mean<=100us", **kw)
    pooled = search(scn, "mean<=100us", workers=2, **kw)
    drop = ["wall_s"]
    assert_frame_equal(serial.table.drop(columns=drop), pooled.table.drop(columns=drop))
    assert_frame_equal(serial.points.drop(columns=drop), pooled.points.drop(columns=drop))


@pytest.mark.parametrize("first", ["usable", "gone"])
def test_the_spool_hands_back_the_records_bit_for_bit_and_leaves_nothing(first: str) -> None:
    """A replication's records through a spool's file are the worker's, array for array
    (dtype, shape, every bit), and the file and then the folders are gone; when the
    first folder cannot take the file (here: removed; in a container, a full
    ``/dev/shm``), the next one does."""
    import os
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from sim.experiment.run import Spool
    from sim.model.host import simulate

    scn = sim.load("scenarios/baseline.yaml", SHORT)
    direct = simulate(scn, 1, 5)
    with Spool() as spool, ThreadPoolExecutor(1) as pool:
        folders = list(spool.folders)
        assert len(folders) == 2 or not os.path.isdir("/dev/shm")
        if first == "gone" and len(folders) < 2:
            pytest.skip("no /dev/shm here: the spool has one folder, on disk")
        if first == "gone":
            shutil.rmtree(folders[0])
        used = folders[0] if first == "usable" else folders[1]
        parcel = spool.submit(pool, scn, 1, 5).result()
        assert os.listdir(used) == [os.path.basename(parcel[1])]
        got = spool.receive(parcel)
        assert os.listdir(used) == []
    assert not any(os.path.exists(f) for f in folders)
    assert len(direct.streams) == len(got.streams) > 0
    for a, b in zip(direct.streams, got.streams, strict=True):
        for name in ("done", "failed", "in_flight"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype
            assert x.shape == y.shape
            assert x.tobytes() == y.tobytes()
        assert a.done.size > 0
    assert dataclasses.replace(got, streams=[], wall_s=0) == dataclasses.replace(
        direct, streams=[], wall_s=0
    )


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork" or cores() < 2,
    reason="counts replications in workers forked from this process; needs 2 cores",
)
def test_an_interrupted_pool_starts_no_more_replications(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while replications run on a pool (here: from the progress callback, as
    the first ends): the ones not yet handed to a worker never start, and nothing is
    left in the spool."""
    import sim.experiment.run as run_module

    started = tmp_path / "started"
    original = run_module.simulate

    def simulate(scenario, replication, *args):  # type: ignore[no-untyped-def]
        with started.open("a") as f:
            f.write(f"{replication}\n")
        return original(scenario, replication, *args)

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "simulate", simulate)
    scn = sim.load("scenarios/baseline.yaml", {"run.duration": "30ms", "run.warmup": "3ms"})
    with pytest.raises(KeyboardInterrupt):
        replicate(scn, 40, 1, workers=2, progress=interrupt)
    assert 1 <= len(started.read_text().split()) < 40
