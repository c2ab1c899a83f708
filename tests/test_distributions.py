"""Tests of sim.scenario.distributions: samples against stated moments, sampling, round
trip, errors."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.scenario import distributions
from sim.scenario.distributions import BLOCK, Distribution, Kind, parse

N = 200_000
SEEDS = (11, 22, 33)
Z = 4.5  # standard errors allowed: a correct distribution fails a check about once in 150,000

# One spec per distribution kind, some as times (µs) and some as sizes (bytes).
SPECS: list[tuple[str, Any, Kind]] = [
    ("constant", {"dist": "constant", "value": "5us"}, "time"),
    ("exponential", {"dist": "exponential", "mean": "80us"}, "time"),
    ("gamma", {"dist": "gamma", "mean": "80us", "cv": 0.5}, "time"),
    ("gamma-size-cv2", {"dist": "gamma", "mean": "64KiB", "cv": 2.0}, "size"),
    ("lognormal", {"dist": "lognormal", "mean": "50us", "cv": 0.5}, "time"),
    ("lognormal-size", {"dist": "lognormal", "mean": "4KiB", "cv": 1.2}, "size"),
    ("uniform", {"dist": "uniform", "low": "10us", "high": "30us"}, "time"),
    (
        "empirical",
        {"dist": "empirical", "values": ["512B", "4KiB", "64KiB"], "weights": [0.5, 0.3, 0.2]},
        "size",
    ),
    (
        "scipy-weibull",
        {"dist": "scipy", "name": "weibull_min", "params": {"c": 1.5}, "scale": "20us"},
        "time",
    ),
    (
        "scipy-gamma",
        {"dist": "scipy", "name": "gamma", "params": {"a": 0.5}, "scale": "10us"},
        "time",
    ),
]
RANDOM_SPECS = [s for s in SPECS if s[0] != "constant"]


def _params(specs: list[tuple[str, Any, Kind]]) -> list[Any]:
    return [pytest.param(spec, kind, id=name) for name, spec, kind in specs]


# ---------------------------------------------------------------------------------------
# Samples against the stated mean and variance
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("spec", "kind"), _params(RANDOM_SPECS))
def test_sample_moments_match_stated_moments(spec: Any, kind: Kind, seed: int) -> None:
    """200,000 draws have the stated mean and variance within 4.5 standard errors."""
    dist = parse(spec, kind)
    x = dist.draw(np.random.default_rng(seed), N)
    assert x.shape == (N,)
    assert np.all(x >= 0)

    mean, var = dist.mean, dist.variance
    se_mean = math.sqrt(var / N)
    assert abs(x.mean() - mean) <= Z * se_mean, (x.mean(), mean, se_mean)

    # The sample variance s² has standard error sqrt((μ4 − σ⁴)/n) for large n (the delta
    # method); μ4, the fourth central moment, is estimated from the same sample. Every
    # distribution above has a finite eighth moment, so this estimate is itself stable
    # at n = 200,000.
    s2 = x.var(ddof=1)
    m4 = float(np.mean((x - x.mean()) ** 4))
    se_var = math.sqrt(max(m4 - s2 * s2, 0.0) / N)
    assert abs(s2 - var) <= Z * se_var, (s2, var, se_var)


def test_constant_draws_are_exact() -> None:
    """A constant gives its value on every draw, with zero variance."""
    dist = parse({"dist": "constant", "value": "5us"}, "time")
    x = dist.draw(np.random.default_rng(1), 1000)
    assert np.all(x == 5.0)
    assert (dist.mean, dist.variance, dist.is_constant) == (5.0, 0.0, True)
    assert parse("5us", "time") == dist


def test_scipy_moments_include_scale() -> None:
    """A scipy distribution's mean and variance are the frozen ones times scale and scale²."""
    dist = parse(
        {"dist": "scipy", "name": "weibull_min", "params": {"c": 1.5}, "scale": "20us"}, "time"
    )
    assert dist.mean == pytest.approx(20 * math.gamma(1 + 1 / 1.5), rel=1e-12)
    var = 400 * (math.gamma(1 + 2 / 1.5) - math.gamma(1 + 1 / 1.5) ** 2)
    assert dist.variance == pytest.approx(var, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Sampler, sizes, round trip
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "kind"), _params(SPECS))
def test_sampler_is_draw_in_blocks(spec: Any, kind: Kind) -> None:
    """A sampler yields the same values as draw() on a same-seeded generator."""
    dist = parse(spec, kind)
    n = 2 * BLOCK + 300  # crosses two block refills
    sampler = dist.sampler(np.random.default_rng(7))
    one_by_one = np.array([sampler() for _ in range(n)])
    rng = np.random.default_rng(7)
    blocks = np.concatenate([dist.draw(rng, BLOCK) for _ in range(3)])[:n]
    np.testing.assert_array_equal(one_by_one, blocks)
    np.testing.assert_array_equal(one_by_one, dist.draw(np.random.default_rng(7), n))


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "exponential", "mean": "2B"},
        {"dist": "lognormal", "mean": "3B", "cv": 2.0},
        {"dist": "uniform", "low": "0B", "high": "3B"},
        {"dist": "scipy", "name": "poisson", "params": {"mu": 1.0}, "scale": "1B"},
        {"dist": "empirical", "values": ["1B", "1500B"]},
    ],
    ids=["exponential", "lognormal", "uniform", "scipy-poisson", "empirical"],
)
def test_sizes_are_whole_bytes_at_least_one(spec: Any) -> None:
    """Size draws are whole numbers of bytes, never below 1, even for tiny means."""
    x = parse(spec, "size").draw(np.random.default_rng(3), 20_000)
    assert np.all(x == np.rint(x))
    assert x.min() >= 1.0


@pytest.mark.parametrize(("spec", "kind"), _params(SPECS))
def test_to_spec_round_trips(spec: Any, kind: Kind) -> None:
    """parse(dist.to_spec()) rebuilds the same distribution."""
    dist = parse(spec, kind)
    assert parse(dist.to_spec(), kind) == dist


def test_to_spec_keeps_full_precision() -> None:
    """to_spec keeps values that need more than 6 significant digits."""
    dist = parse({"dist": "gamma", "mean": "1234567us", "cv": 0.3}, "time")
    again = parse(dist.to_spec(), "time")
    assert again.mean == 1234567.0
    assert again == dist


def test_parse_accepts_a_distribution() -> None:
    """parse() returns a Distribution given to it unchanged."""
    dist = parse({"dist": "exponential", "mean": "1ms"}, "time")
    assert parse(dist, "time") is dist
    assert dist.mean == 1000.0


# ---------------------------------------------------------------------------------------
# Invalid specs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        pytest.param(
            {"dist": "exponential", "mean": "-5us"}, "time", "is negative", id="negative-mean"
        ),
        pytest.param(
            {"dist": "gamma", "mean": -5, "cv": 1}, "time", "is negative", id="negative-number"
        ),
        pytest.param(
            {"dist": "exponential", "mean": "0us"}, "time", "needs a positive mean", id="zero-mean"
        ),
        pytest.param(
            {"dist": "gamma", "mean": "5us", "cv": 0},
            "time",
            "'cv' must be a positive finite number",
            id="cv-zero",
        ),
        pytest.param(
            {"dist": "lognormal", "mean": "5us", "cv": -0.5},
            "time",
            "'cv' must be a positive finite number",
            id="cv-negative",
        ),
        pytest.param(
            {"dist": "gamma", "mean": "5us", "cv": "0.5"},
            "time",
            "'cv' must be a number",
            id="cv-string",
        ),
        pytest.param({"dist": "gamma", "mean": "5us"}, "time", "gamma needs cv", id="missing-cv"),
        pytest.param(
            {"dist": "uniform", "low": "30us", "high": "10us"},
            "time",
            "uniform needs low <= high",
            id="uniform-low-above-high",
        ),
        pytest.param(
            {"dist": "empirical", "values": ["1KiB", "2KiB"], "weights": [1.0]},
            "size",
            "'weights' must be a list as long as 'values'",
            id="empirical-weights-length",
        ),
        pytest.param(
            {"dist": "empirical", "values": []},
            "size",
            "'values' must be a non-empty list",
            id="empirical-no-values",
        ),
        pytest.param(
            {"dist": "empirical", "values": ["1KiB", "2KiB"], "weights": [1.0, -1.0]},
            "size",
            "must be a positive finite number",
            id="empirical-negative-weight",
        ),
        pytest.param({"dist": "nope"}, "time", "'dist' must be one of", id="unknown-dist"),
        pytest.param({"mean": "5us"}, "time", "'dist' must be one of", id="no-dist"),
        pytest.param(
            {"dist": "exponential", "mean": "5us", "cv": 1.0},
            "time",
            "exponential takes mean; unknown: cv",
            id="unknown-key",
        ),
        pytest.param(
            {"dist": "exponential", "mean": "5 parsecs"}, "time", "is not a time", id="bad-unit"
        ),
        pytest.param(
            {"dist": "scipy", "name": "linregress", "scale": "1us"},
            "time",
            "'linregress' is not a scipy.stats distribution",
            id="scipy-not-a-distribution",
        ),
        pytest.param(
            {"dist": "scipy", "name": "nope", "scale": "1us"},
            "time",
            "'nope' is not a scipy.stats distribution",
            id="scipy-unknown-name",
        ),
        pytest.param(
            {"dist": "scipy", "name": "norm", "scale": "1us"},
            "time",
            "scipy.stats.norm with {} takes negative values",
            id="scipy-negative-support",
        ),
        pytest.param(
            {"dist": "scipy", "name": "pareto", "params": {"b": 0.5}, "scale": "1us"},
            "time",
            "has no finite non-negative mean",
            id="scipy-infinite-mean",
        ),
        pytest.param(
            {"dist": "scipy", "name": "weibull_min", "params": {"c": "x"}, "scale": "1us"},
            "time",
            "scipy parameter 'c' must be a finite number",
            id="scipy-param-not-number",
        ),
    ],
)
def test_invalid_spec_raises_clear_value_error(spec: Any, kind: Kind, message: str) -> None:
    """An invalid distribution spec raises ValueError with a message naming the problem."""
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse(spec, kind)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------
# Known bugs in sim/distributions.py
# ---------------------------------------------------------------------------------------
def test_scipy_time_without_scale_is_usable_or_says_scale() -> None:
    """A time-valued scipy spec without 'scale' works, or its error names 'scale'."""
    message = ""
    try:
        parse({"dist": "scipy", "name": "expon"}, "time")
    except ValueError as exc:
        message = str(exc)
    assert not message or "scale" in message, message


def test_sampler_of_zero_size_constant_matches_draw() -> None:
    """A constant size of 0 B samples like draw(): rounded up to 1 byte."""
    dist = parse(0, "size")
    assert dist.sampler(np.random.default_rng(1))() == dist.draw(np.random.default_rng(1), 1)[0]


def test_scipy_unknown_parameter_message_names_the_parameter_plainly() -> None:
    """An unknown scipy parameter is reported without scipy-internal function names."""
    with pytest.raises(ValueError, match="'q'") as info:
        parse(
            {"dist": "scipy", "name": "weibull_min", "params": {"q": 1.0}, "scale": "1us"}, "time"
        )
    assert "_parse_args" not in str(info.value)


# ---------------------------------------------------------------------------------------
# Property: gamma and lognormal keep the mean and cv they are given
# ---------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["gamma", "lognormal"]),
    mean=st.floats(min_value=0.1, max_value=1e6, allow_nan=False, allow_infinity=False),
    cv=st.floats(min_value=0.05, max_value=5.0, allow_nan=False, allow_infinity=False),
)
def test_gamma_lognormal_keep_mean_and_cv(name: str, mean: float, cv: float) -> None:
    """For any valid gamma/lognormal, .mean is the given mean and .variance is (cv·mean)²."""
    dist = parse({"dist": name, "mean": f"{mean!r}us", "cv": cv}, "time")
    assert isinstance(dist, Distribution)
    assert dist.mean == pytest.approx(mean, rel=1e-9)
    assert dist.variance == pytest.approx((cv * mean) ** 2, rel=1e-9)
    assert dist.scv == pytest.approx(cv * cv, rel=1e-9)


def test_json_schema_lists_every_kind() -> None:
    """The distribution JSON schema offers every distribution name."""
    schema = distributions.json_schema("time")
    assert schema["oneOf"][1]["properties"]["dist"]["enum"] == [
        "constant",
        "exponential",
        "gamma",
        "lognormal",
        "uniform",
        "empirical",
        "scipy",
    ]


@pytest.mark.parametrize(("spec", "kind"), [("5us", "time"), ("4KiB", "size"), (0.0, "time")])
def test_constant_sampler_is_its_value(spec: Any, kind: Kind) -> None:
    """A constant's sampler gives its value (a size rounded as draw() rounds it) as a
    float, and draws nothing more."""
    dist = parse(spec, kind)
    rng = np.random.default_rng(3)
    fast = dist.sampler(rng)
    expected = float(dist.draw(np.random.default_rng(3), 1)[0]) if kind == "size" else dist.mean
    assert [fast() for _ in range(3)] == [expected] * 3
    state = rng.bit_generator.state
    fast()
    assert rng.bit_generator.state == state
    assert type(fast()) is float
