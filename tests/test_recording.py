"""Recording in columns (sim.model.records.RequestLog) and ``run.requests``: sample N and
none give the same summary statistics as the whole table (latency statistics, percentiles,
counts and throughput exactly; component means to rounding), keep an exact conservation
check, and a sample drawn uniformly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import bare_vcpus
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.experiment.run import replicate, run
from sim.model.env import SimEnv
from sim.model.metrics import COMPONENT_COLUMNS, COMPONENTS
from sim.model.records import RequestLog
from sim.model.request import ConservationError, Request
from sim.results.tables import (
    PEER_COLUMNS,
    _groups,
    _requests,
    mark_window,
    requests_frame,
    warmup_frame,
)
from sim.scenario import Scenario, ScenarioError, loads

TWO = """
name: two
host: {cores: 8}
parent: {vcpus: 2}
devices:
  - {name: nic, type: nic, vfs: 2}
  - {name: ssd, type: nvme}
children:
  - name: web
    vcpus: 2
    io_path: routed
    device: nic
    streams:
      - {op: send, size: 1500B, rate: 20k}
      - op: send
        size: 200B
        rate: 5k
        peer: {remote: {switch_latency: 2us, response: {dist: exponential, mean: 10us}}}
  - name: db
    count: 2
    vcpus: 1
    io_path: direct
    device: ssd
    streams: [{op: {read: 3, write: 1}, size: 4KiB, outstanding: 4}]
run: {duration: 60ms, warmup: 10ms, seed: 5, replications: 2}
"""
SUMMED = {*COMPONENT_COLUMNS, *PEER_COLUMNS}


def scn(**overrides: Any) -> Scenario:
    return loads(TWO, overrides=overrides)


@pytest.fixture(scope="module")
def whole() -> Any:
    return run(scn())


@pytest.mark.parametrize("mode", ["none", "sample 300"])
def test_lean_modes_give_the_whole_tables_statistics(whole: Any, mode: str) -> None:
    """Per replication, every statistic is the same as from the whole table (components
    and trip times summed in another order: to rounding)."""
    lean = run(scn(**{"run.requests": mode}))
    a, b = whole.replications, lean.replications
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if col in SUMMED:
            assert np.allclose(a[col], b[col], rtol=1e-12, equal_nan=True), col
        else:
            pd.testing.assert_series_equal(a[col], b[col], check_exact=True)
    assert lean.meta["requests_simulated"] == len(whole.requests)
    assert lean.meta["requests_kept"] == mode


def test_a_sample_is_rows_of_the_whole_table(whole: Any) -> None:
    """sample N keeps at most N completed requests per stream and replication, each row as
    the whole table has it."""
    lean = run(scn(**{"run.requests": "sample 300"}))
    req = lean.requests
    assert (req["state"] == "completed").all()
    assert req.groupby(["replication", "partition", "stream"]).size().max() == 300
    keys = ["replication", "partition", "stream", "id"]
    both = req.merge(whole.requests, on=keys, suffixes=("", "_all"))
    assert len(both) == len(req)
    for col in ["t_submit_us", "t_complete_us", "size_bytes", "in_window", *COMPONENT_COLUMNS]:
        assert (both[col] == both[f"{col}_all"]).all(), col
    peer = both[both["one_way_us"].notna()]
    assert len(peer)
    assert (peer["one_way_us"] == peer["one_way_us_all"]).all()
    again = run(scn(**{"run.requests": "sample 300"})).requests
    pd.testing.assert_frame_equal(req, again)  # same seed, same sample


def test_none_keeps_no_table() -> None:
    """none: an empty requests table with the usual columns, the statistics all there."""
    res = run(scn(**{"run.requests": "none"}))
    assert res.requests.empty
    assert "latency_us" in res.requests.columns
    assert res.summary["p99_us"].notna().all()


def _log(keep: int | str, n: int, chunk: int, seed: int = 0) -> RequestLog:
    (v,) = bare_vcpus(SimEnv(scn(), seed=1))
    log = RequestLog(keep, warmup=10.0, rng=np.random.default_rng(seed))
    log._chunk = chunk * log.width
    for i in range(n):
        req = Request(i, 0, 100, float(i), v, v, lambda: 0.0)
        req.c = [1.0] * len(COMPONENTS)
        log.add(req, i + 2.0)
    log.close()
    return log


def test_the_sample_does_not_depend_on_the_chunks() -> None:
    """Folded in chunks of any size, the same requests are kept and summed."""
    one, many = _log(50, 5000, 10**6), _log(50, 5000, 37)
    assert np.array_equal(one.sample, many.sample)
    assert one.summed == many.summed == 4990
    assert np.array_equal(one.sums, many.sums)


def test_the_sample_is_uniform() -> None:
    """Each request is kept with probability N / n: the mean position of the kept ones is
    n / 2 within 4 standard errors, for every seed; none twice."""
    n, keep = 20_000, 400
    se = n / np.sqrt(12 * keep)
    for seed in range(5):
        ids = _log(keep, n, 1000, seed).sample[:, 0]
        assert len(np.unique(ids)) == keep
        assert abs(ids.mean() - (n - 1) / 2) < 4 * se, seed


def test_a_lost_or_doubled_request_is_caught() -> None:
    """The marks of completed ids make the conservation check exact in the lean modes."""
    res_runs = __import__("sim.experiment.run", fromlist=["replicate"]).replicate(
        scn(**{"run.requests": "none", "run.replications": 1}), 1, 5
    )
    s = res_runs[0].streams[0]
    requests_frame(res_runs, sample=True)  # as recorded: conserved
    s.seen[3] = 2  # counted twice ...
    with pytest.raises(ConservationError):
        requests_frame(res_runs, sample=True)
    s.seen[3] = 0  # ... or lost
    with pytest.raises(ConservationError):
        requests_frame(res_runs, sample=True)


@pytest.mark.parametrize(
    ("value", "read"), [("sample 10k", "sample 10000"), (" none ", "none"), ("all", "all")]
)
def test_requests_is_read(value: str, read: str) -> None:
    """all, none, sample N (a count, with k or an exponent)."""
    assert scn(**{"run.requests": value}).run.requests == read


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"run.requests": "some"}, "write all, none or sample N"),
        ({"run.requests": "sample 0"}, "whole number from 1"),
        ({"run.requests": "sample 1.5"}, "whole number from 1"),
        ({"run.requests": "none", "run.warmup_method": "mser5"}, "warmup_method: fixed"),
        (
            {
                "run.requests": "none",
                "faults": [{"kind": "parent_hang", "at": "20ms", "duration": "1ms"}],
            },
            "faults",
        ),
    ],
)
def test_what_the_lean_modes_cannot_do_is_refused(overrides: dict[str, Any], says: str) -> None:
    """Bad values and the cases needing every request: one message at run.requests."""
    with pytest.raises(ScenarioError) as exc:
        scn(**overrides)
    assert says in str(exc.value)
    assert "requests" in str(exc.value)


def test_the_cli_refuses_a_bad_mode_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad run.requests from --set: exit 2, one line naming the field."""
    from sim.cli import main

    code = main(["run", "scenarios/baseline.yaml", "--set", "run.requests=sample many",
                 "--out", "/nonexistent/x"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "run.requests" in err


def test_string_columns_from_codes_are_what_pandas_makes_of_the_strings() -> None:
    """The request table's string columns, gathered as codes stream by stream, equal the
    column pandas makes of the same strings: values, order and dtype."""
    from sim.results.tables import _Strings

    col = _Strings()
    col.same("web", 3)
    col.of(["send", "receive"], np.array([1, 0, 1]))
    col.each(["", "timeout", "web"])
    col.same("", 0)
    expected = ["web"] * 3 + ["receive", "send", "receive"] + ["", "timeout", "web"]
    pd.testing.assert_series_equal(pd.Series(col.column()), pd.Series(expected))


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_row_groups_are_pandas_groupby_indices(pairs: list[tuple[int, int]]) -> None:
    """The request table's groups by integer keys: pandas' ``groupby(sort=False).indices``,
    group for group (first-appearance order) and row for row (ascending)."""
    a, b = (np.array(col, dtype=np.int64) for col in zip(*pairs, strict=True))
    want = pd.DataFrame({"a": a, "b": b}).groupby(["a", "b"], sort=False).indices
    got = _groups(a, b)
    assert [x.tolist() for x in want.values()] == [g.tolist() for g in got]


def test_row_keys_decode_to_the_table_and_mark_its_window() -> None:
    """With faults (requests timed out and failed, others retried) and an MSER-5 warm-up,
    the keys the table's groups read are its string columns, row for row, and
    ``in_window`` is what its definition says: completed, submitted after the warm-up
    of its replication and child (from 0 where none is known), completed by the end."""
    scn = sim.load(
        "scenarios/parent-failure.yaml",
        {
            "run.duration": "300ms",
            "run.warmup": "20ms",
            "run.warmup_method": "mser5",
            "faults[0].at": "100ms",
            "faults[0].duration": "50ms",
            "children[web-routed].io_policy": {"timeout": "10ms", "retries": 1},
        },
    )
    runs = replicate(scn, 2, 7)
    table, rows = _requests(runs, sample=False)
    assert table["io_path"].nunique() > 1
    assert rows.failed.any()
    for c in ("partition", "requested_path", "io_path"):
        names = np.array(rows.text[c].names(), dtype=object)
        assert (names[rows.codes(c)] == table[c].to_numpy(dtype=object)).all()
    assert (rows.replication == table["replication"].to_numpy()).all()
    assert (rows.completed == (table["state"] == "completed").to_numpy()).all()
    warm = warmup_frame(table, scn, rows)
    mark_window(table, warm, scn.run.duration, rows)
    cut = table.merge(warm, on=["replication", "partition"], how="left")["warmup_us"].fillna(0.0)
    want = (
        (table["state"] == "completed")
        & (table["t_submit_us"] >= cut.to_numpy())
        & (table["t_complete_us"] <= scn.run.duration)
    )
    assert (table["in_window"] == want).all()
    assert want.any()
    assert not want.all()
