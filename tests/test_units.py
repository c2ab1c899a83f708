"""Tests of sim.scenario.units: parsing scenario unit strings into internal units and
formatting them."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.scenario.units import (
    UnitError,
    format_bitrate,
    format_rate,
    format_size,
    format_time,
    parse_bitrate,
    parse_frequency,
    parse_rate,
    parse_size,
    parse_time,
)

MICRO = "\u00b5"  # MICRO SIGN
MU = "\u03bc"  # GREEK SMALL LETTER MU

FAST = settings(max_examples=100, deadline=None)

# Independent copy of the time factors (unit -> microseconds) for the property tests.
TIME_FACTORS: dict[str, float] = {
    "ns": 1e-3,
    "us": 1.0,
    f"{MICRO}s": 1.0,
    f"{MU}s": 1.0,
    "ms": 1e3,
    "s": 1e6,
    "min": 60e6,
}

Parser = Callable[..., object]
PARSERS: list[Parser] = [
    parse_time,
    functools.partial(parse_time, clock_ghz=2.6),
    parse_size,
    parse_bitrate,
    parse_frequency,
    parse_rate,
]

# ---------------------------------------------------------------------------------------------
# Accepted forms.

TIME_CASES = [
    ("30ms", 30_000.0),
    ("1.5us", 1.5),
    (f"1.5{MICRO}s", 1.5),
    (f"1.5{MU}s", 1.5),
    ("1.5 us", 1.5),
    (f"1.5 {MICRO}s", 1.5),
    ("250ns", 0.25),
    ("2s", 2e6),
    ("1min", 60e6),
    ("1e3us", 1000.0),
    ("2.5E-3s", 2500.0),
    (".5ms", 500.0),
    ("  30ms\t\n", 30_000.0),
    ("30\u00a0ms", 30_000.0),
    ("0", 0.0),
    ("0.0", 0.0),
    (0, 0.0),
    (0.0, 0.0),
    ("0ms", 0.0),
    ("-0ms", 0.0),
]


@pytest.mark.parametrize(("value", "expected"), TIME_CASES)
def test_parse_time_accepts_listed_forms(value: str | int | float, expected: float) -> None:
    """parse_time converts every listed time form to microseconds."""
    result = parse_time(value)
    assert isinstance(result, float)
    assert math.isclose(result, expected, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2600cycles", 1.0),
        ("2600 cycles", 1.0),
        ("2600cyc", 1.0),
        ("1cycle", 1 / 2600),
        ("0cycles", 0.0),
        ("26e2 cycles", 1.0),
    ],
)
def test_parse_time_converts_cycles_with_clock(value: str, expected: float) -> None:
    """Cycles become cycles / (clock_ghz * 1000) microseconds when the clock is given."""
    assert math.isclose(parse_time(value, clock_ghz=2.6), expected, rel_tol=1e-12)


def test_parse_time_with_clock_still_accepts_plain_units() -> None:
    """Giving the clock does not change how ordinary time units parse."""
    assert parse_time("30ms", clock_ghz=2.6) == 30_000.0


SIZE_CASES = [
    ("4KiB", 4096),
    ("4KB", 4000),
    ("4kB", 4000),
    ("1MiB", 1024**2),
    ("1MB", 1000**2),
    ("1GiB", 1024**3),
    ("1GB", 1000**3),
    ("1TiB", 1024**4),
    ("1TB", 1000**4),
    ("64B", 64),
    ("64 B", 64),
    (" 64 B ", 64),
    ("1.5KiB", 1536),
    ("0.5KB", 500),
    ("4096", 4096),
    (4096, 4096),
    (4096.0, 4096),
    (0, 0),
    ("0B", 0),
    ("123456789012345678901234567890B", 123456789012345678901234567890),
]


@pytest.mark.parametrize(("value", "expected"), SIZE_CASES)
def test_parse_size_accepts_listed_forms(value: str | int | float, expected: int) -> None:
    """parse_size converts every listed size form to an exact int number of bytes."""
    result = parse_size(value)
    assert type(result) is int
    assert result == expected


BITRATE_CASES = [
    ("25Gbps", 25e9),
    ("1Gbit/s", 1e9),
    ("100Mbps", 100e6),
    ("10Kbps", 10e3),
    ("10kbps", 10e3),
    ("800bps", 800.0),
    ("2Tbps", 2e12),
    ("3GB/s", 24e9),
    ("3GiB/s", 3 * 8 * 1024**3),
    ("500MB/s", 4e9),
    ("500MiB/s", 500 * 8 * 1024**2),
    ("25 Gbps", 25e9),
    ("0bps", 0.0),
    (0, 0.0),
]


@pytest.mark.parametrize(("value", "expected"), BITRATE_CASES)
def test_parse_bitrate_accepts_listed_forms(value: str | int | float, expected: float) -> None:
    """parse_bitrate converts bit and byte rates to bits per second."""
    assert math.isclose(parse_bitrate(value), expected, rel_tol=1e-12)


FREQUENCY_CASES = [
    ("2.5GHz", 2.5e9),
    ("800MHz", 800e6),
    ("100kHz", 100e3),
    ("100KHz", 100e3),
    ("50Hz", 50.0),
    ("2.5 GHz", 2.5e9),
    ("0Hz", 0.0),
    (0, 0.0),
]


@pytest.mark.parametrize(("value", "expected"), FREQUENCY_CASES)
def test_parse_frequency_accepts_listed_forms(value: str | int | float, expected: float) -> None:
    """parse_frequency converts frequencies to hertz."""
    assert math.isclose(parse_frequency(value), expected, rel_tol=1e-12)


RATE_CASES = [
    (20000, 20000.0),
    (2.5, 2.5),
    ("20000", 20000.0),
    ("20k", 20000.0),
    ("20K", 20000.0),
    ("2.5M", 2.5e6),
    ("20k/s", 20000.0),
    ("20000/s", 20000.0),
    ("5/ms", 5000.0),
    ("5/us", 5e6),
    (f"5/{MICRO}s", 5e6),
    (f"5/{MU}s", 5e6),
    ("100/min", 100 / 60),
    ("20kHz", 20000.0),
    ("50Hz", 50.0),
    ("20 k/s", 20000.0),
    (0, 0.0),
    ("0/s", 0.0),
]


@pytest.mark.parametrize(("value", "expected"), RATE_CASES)
def test_parse_rate_accepts_listed_forms(value: str | int | float, expected: float) -> None:
    """parse_rate converts bare numbers and per-time forms to events per second."""
    result = parse_rate(value)
    assert isinstance(result, float)
    assert math.isclose(result, expected, rel_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# Rejected inputs: each message is one short line that quotes the value and says what to do.

REJECTED: list[tuple[Callable[..., object], object, list[str]]] = [
    (parse_time, "30 parsecs", ["'30 parsecs'", "is not a time", "ns, us", "'30ms'"]),
    (parse_time, "30", ["'30'", "needs a time unit", "'30us'"]),
    (parse_time, 30, ["30", "needs a time unit"]),
    (parse_time, 1.5, ["1.5", "needs a time unit"]),
    (parse_time, "2600cycles", ["'2600cycles'", "cycles need the host clock"]),
    (parse_time, "-5ms", ["'-5ms'", "negative"]),
    (parse_time, float("nan"), ["nan", "finite"]),
    (parse_time, float("inf"), ["inf", "finite"]),
    (parse_time, float("-inf"), ["-inf", "finite"]),
    (parse_time, "inf ms", ["'inf ms'", "is not a time"]),
    (parse_time, "nan", ["'nan'", "is not a time"]),
    (parse_time, "1e400ms", ["'1e400ms'", "too large"]),
    (parse_time, True, ["True", "bool"]),
    (parse_time, None, ["None", "NoneType"]),
    (parse_time, "", ["''", "is not a time"]),
    (parse_time, "   ", ["'   '", "is not a time"]),
    (parse_time, "30  ms", ["'30  ms'", "is not a time"]),
    (parse_time, "30MS", ["'30MS'", "is not a time"]),
    (parse_time, "30m", ["'30m'", "is not a time"]),
    (parse_time, "ms", ["'ms'", "is not a time"]),
    (parse_time, [30], ["[30]", "list"]),
    (parse_size, "0.1KiB", ["'0.1KiB'", "whole number of bytes"]),
    (parse_size, 1.5, ["1.5", "whole number of bytes"]),
    (parse_size, "5mb", ["'5mb'", "is not a size", "'4KiB'"]),
    (parse_size, "4kb", ["'4kb'", "is not a size"]),
    (parse_size, "-1B", ["'-1B'", "negative"]),
    (parse_size, False, ["False", "bool"]),
    (parse_size, "4 KiB/s", ["'4 KiB/s'", "is not a size"]),
    (parse_bitrate, "25", ["'25'", "needs a bit-rate unit"]),
    (parse_bitrate, 100, ["100", "needs a bit-rate unit"]),
    (parse_bitrate, "25gbps", ["'25gbps'", "is not a bit rate", "'25Gbps'"]),
    (parse_bitrate, "25 Gb", ["'25 Gb'", "is not a bit rate"]),
    (parse_frequency, "2.5", ["'2.5'", "needs a frequency unit"]),
    (parse_frequency, "2.5ghz", ["'2.5ghz'", "is not a frequency", "'2.5GHz'"]),
    (parse_frequency, "-1Hz", ["'-1Hz'", "negative"]),
    (parse_rate, "20 kIOPS", ["'20 kIOPS'", "is not an event rate"]),
    (parse_rate, "20m", ["'20m'", "is not an event rate"]),
    (parse_rate, -5, ["-5", "negative"]),
    (parse_rate, "5/h", ["'5/h'", "is not an event rate"]),
    (parse_rate, Decimal(5), ["Decimal('5')", "Decimal"]),
    (parse_rate, b"5", ["b'5'", "bytes"]),
    (parse_rate, 10**400, ["too large"]),
    (functools.partial(parse_time, clock_ghz=0.0), "1ms", ["clock_ghz", "0.0"]),
]


@pytest.mark.parametrize(("parse", "value", "fragments"), REJECTED)
def test_invalid_inputs_raise_unit_error_with_helpful_message(
    parse: Callable[..., object], value: object, fragments: list[str]
) -> None:
    """Invalid values raise UnitError whose one-line message quotes the value and the fix."""
    with pytest.raises(UnitError) as info:
        parse(value)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message
    assert len(message) <= 150


def test_unit_error_is_a_value_error() -> None:
    """UnitError can be caught as ValueError by generic validation code."""
    assert issubclass(UnitError, ValueError)


# ---------------------------------------------------------------------------------------------
# Formatting.

FORMAT_CASES: list[tuple[Callable[[float], str], float, str]] = [
    (format_time, 0.5, "500 ns"),
    (format_time, 12.34, f"12.3 {MICRO}s"),
    (format_time, 4500, "4.50 ms"),
    (format_time, 2.5e6, "2.50 s"),
    (format_time, 999.7, "1.00 ms"),
    (format_time, 1e-3, "1.00 ns"),
    (format_time, 1e9, "1000 s"),
    (format_time, 0, "0 s"),
    (format_time, -12.34, f"-12.3 {MICRO}s"),
    (format_size, 4096, "4 KiB"),
    (format_size, 1536, "1.5 KiB"),
    (format_size, 100, "100 B"),
    (format_size, 1024**2, "1 MiB"),
    (format_size, 0, "0 B"),
    (format_bitrate, 25e9, "25.0 Gbps"),
    (format_bitrate, 1.2e6, "1.20 Mbps"),
    (format_bitrate, 800, "800 bps"),
    (format_rate, 20000, "20.0k/s"),
    (format_rate, 2.5e6, "2.50M/s"),
    (format_rate, 12, "12.0/s"),
]


@pytest.mark.parametrize(("fmt", "value", "expected"), FORMAT_CASES)
def test_formatters_produce_readable_text(
    fmt: Callable[[float], str], value: float, expected: str
) -> None:
    """Each formatter picks a fitting prefix and the documented number of digits."""
    assert fmt(value) == expected


# ---------------------------------------------------------------------------------------------
# Properties.

finite_non_negative = st.floats(min_value=0.0, max_value=1e300, allow_nan=False)


@FAST
@given(x=finite_non_negative, unit=st.sampled_from(sorted(TIME_FACTORS)))
def test_parse_time_scales_any_number_by_unit_factor(x: float, unit: str) -> None:
    """parse_time(f'{x!r}{unit}') equals x times the unit's factor for any finite x >= 0."""
    assert math.isclose(parse_time(f"{x!r}{unit}"), x * TIME_FACTORS[unit], rel_tol=1e-12)


@FAST
@given(n=st.integers(min_value=0, max_value=10**30))
def test_parse_size_kib_is_exact_for_integers(n: int) -> None:
    """parse_size(f'{n}KiB') is exactly n * 1024 for any non-negative int."""
    assert parse_size(f"{n}KiB") == n * 1024


@FAST
@given(us=st.floats(min_value=1e-3, max_value=1e9))
def test_format_time_round_trips_within_half_percent(us: float) -> None:
    """parse_time(format_time(x)) is within 0.5 % of x for x in [1e-3, 1e9] us."""
    assert math.isclose(parse_time(format_time(us)), us, rel_tol=5e-3)


@FAST
@given(
    pair=st.sampled_from([(format_bitrate, parse_bitrate), (format_rate, parse_rate)]),
    x=st.floats(min_value=1e-3, max_value=1e15),
)
def test_format_bitrate_and_rate_round_trip(
    pair: tuple[Callable[[float], str], Callable[[str], float]], x: float
) -> None:
    """format_bitrate and format_rate output parses back within 0.5 %."""
    fmt, parse = pair
    assert math.isclose(parse(fmt(x)), x, rel_tol=5e-3)


ALL_UNITS = [
    *TIME_FACTORS,
    "cycles",
    "cyc",
    "B",
    "KiB",
    "kB",
    "MB",
    "Gbps",
    "bit/s",
    "GB/s",
    "GHz",
    "Hz",
    "k",
    "M",
    "/s",
    "/min",
    "m",
    "b",
    "",
]
number_like = st.builds(
    lambda number, space, unit: number + space + unit,
    st.from_regex(r"[+-]?[0-9.eE]{0,8}", fullmatch=True),
    st.sampled_from(["", " ", "  ", "\u00a0"]),
    st.sampled_from(ALL_UNITS),
)


@FAST
@given(parse=st.sampled_from(PARSERS), text=st.one_of(st.text(), number_like))
def test_parsers_raise_only_unit_error_on_any_text(parse: Parser, text: str) -> None:
    """Every parser either returns a value or raises UnitError for arbitrary text."""
    with contextlib.suppress(UnitError):
        parse(text)


arbitrary_objects = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.complex_numbers(),
    st.decimals(),
    st.fractions(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.just(object()),
    st.just(Fraction(1, 3)),
)


@FAST
@given(parse=st.sampled_from(PARSERS), value=arbitrary_objects)
def test_parsers_raise_only_unit_error_on_any_object(parse: Parser, value: object) -> None:
    """Every parser either returns a value or raises UnitError for arbitrary objects."""
    with contextlib.suppress(UnitError):
        parse(value)
