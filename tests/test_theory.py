"""The model against queueing theory: every case under scenarios/validation/."""

from __future__ import annotations

import glob

import pytest

from sim.experiment.validate import format_table, load_case, run_case, validate

CASES = sorted(glob.glob("scenarios/validation/*.yaml"))


def test_there_are_theory_cases() -> None:
    """The validation suite has the cases the design names."""
    theories = {load_case(f)["theory"] for f in CASES}
    assert {"pk", "mm1_p", "mmc", "tandem", "little", "utilization"} <= theories
    assert {"wakeup_rr", "share", "cap", "bound"} <= theories


@pytest.mark.parametrize("file", CASES, ids=lambda f: f.split("/")[-1].removesuffix(".yaml"))
def test_case_agrees_with_theory(file: str) -> None:
    """The simulated value is within the variance-derived tolerance of theory, and that
    tolerance is tight: a model 6 % off would fail (bounds: the interval clears them)."""
    row = run_case(load_case(file), file)
    assert row["pass"], row
    if row["theory"] != "bound":
        assert row["tolerance"] < 0.06 * abs(row["expected"]), row


def test_a_wrong_expectation_fails() -> None:
    """The pass rule rejects a case whose theory does not match the model."""
    row = run_case(load_case("scenarios/validation/mm1-mean.yaml"), "mm1", replications=5)
    assert row["pass"]
    # the same simulation held against the theory of a 10 % slower device
    assert abs(row["simulated"] - 1.1 * row["expected"]) > row["tolerance"]


def test_validate_table_and_format() -> None:
    """validate() returns one row per case with the table's columns."""
    table = validate(["scenarios/validation/utilization.yaml"], replications=3)
    assert list(table.columns[:6]) == ["case", "theory", "metric", "expected", "simulated", "ci"]
    assert len(table) == 1
    assert format_table(table).rstrip().endswith(f"{int(table['pass'].sum())} of 1 cases pass")
