"""Parse the unit strings of scenario files into internal units, and format them back.

Scenario files write quantities with units ("30ms", "4KiB", "25Gbps"); the loader converts
each one exactly once with the ``parse_*`` functions below, and the simulator never sees a
unit string again.  Internal units are:

* time: MICROSECONDS (float)
* size: BYTES (int)
* bit rate: BITS PER SECOND (float)
* frequency: HZ (float)
* event rate: EVENTS PER SECOND (float)

Accepted forms (a non-negative decimal number, optionally with exponent such as ``1e3``,
then at most one space, then the unit; surrounding whitespace is ignored):

* time: ``ns``, ``us``, ``µs`` (U+00B5 or U+03BC), ``ms``, ``s``, ``min``; CPU cycles as
  ``cycles``, ``cycle`` or ``cyc`` when the host clock is given (``clock_ghz``).  A bare
  number is accepted only if it is zero.
* size: ``B``, ``kB``/``KB`` (1000), ``KiB`` (1024), ``MB``, ``MiB``, ``GB``, ``GiB``,
  ``TB``, ``TiB``; a bare number means bytes.  The result must be a whole number of bytes.
* bit rate: ``bps``, ``kbps``/``Kbps``, ``Mbps``, ``Gbps``, ``Tbps``, the same with
  ``bit/s`` (``Gbit/s``), and byte rates ``B/s``, ``kB/s``, ``MB/s``, ``GiB/s`` ... (x 8).
* frequency: ``Hz``, ``kHz``/``KHz``, ``MHz``, ``GHz``.
* event rate: a bare number (per second), optionally with a ``k``/``K``, ``M`` or ``G``
  multiplier and a ``/s``, ``/ms``, ``/us``, ``/µs`` or ``/min`` suffix, or ``Hz``:
  ``20000``, ``20k``, ``2.5M``, ``20k/s``, ``5/ms``, ``100/min``, ``20kHz``.

Zero is allowed everywhere (a bare ``0`` needs no unit).  NaN, infinities, negative values,
booleans, empty strings and other types are rejected with :class:`UnitError`, whose message
is one short line quoting the offending value and saying what was expected.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = [
    "UnitError",
    "exact_bitrate",
    "exact_frequency",
    "exact_rate",
    "exact_size",
    "exact_time",
    "format_bitrate",
    "format_rate",
    "format_size",
    "format_time",
    "parse_bitrate",
    "parse_frequency",
    "parse_rate",
    "parse_size",
    "parse_time",
    "show",
]

_MICRO_SIGN = "\u00b5"  # µ MICRO SIGN
_GREEK_MU = "\u03bc"  # μ GREEK SMALL LETTER MU


class UnitError(ValueError):
    """A quantity in a scenario file has a missing, unknown or invalid unit or value."""


# ---------------------------------------------------------------------------------------------
# Unit tables: unit text -> factor to the internal unit.

_TIME_US: dict[str, float] = {
    "ns": 1e-3,
    "us": 1.0,
    f"{_MICRO_SIGN}s": 1.0,
    f"{_GREEK_MU}s": 1.0,
    "ms": 1e3,
    "s": 1e6,
    "min": 60e6,
}
_CYCLE_UNITS = frozenset({"cycles", "cycle", "cyc"})

_SIZE_BYTES: dict[str, int] = {
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "kiB": 1024,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
    "TB": 1000**4,
    "TiB": 1024**4,
}

_DECIMAL_PREFIX: dict[str, float] = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

_BITRATE_BPS: dict[str, float] = {
    **{f"{p}bps": f for p, f in _DECIMAL_PREFIX.items()},
    **{f"{p}bit/s": f for p, f in _DECIMAL_PREFIX.items()},
    **{f"{u}/s": 8.0 * n for u, n in _SIZE_BYTES.items()},
}

_FREQUENCY_HZ: dict[str, float] = {"Hz": 1.0, "kHz": 1e3, "KHz": 1e3, "MHz": 1e6, "GHz": 1e9}

_RATE_PREFIX: dict[str, float] = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_RATE_PER: dict[str, float] = {
    "": 1.0,
    "/s": 1.0,
    "/ms": 1e3,
    "/us": 1e6,
    f"/{_MICRO_SIGN}s": 1e6,
    f"/{_GREEK_MU}s": 1e6,
    "/min": 1.0 / 60.0,
    "Hz": 1.0,
}
_RATE_PER_S: dict[str, float] = {
    p + s: pf * sf
    for p, pf in _RATE_PREFIX.items()
    for s, sf in _RATE_PER.items()
    if p + s  # the empty unit is the bare number
}

# ---------------------------------------------------------------------------------------------
# One compiled regular expression per kind: number, at most one space, optional unit.

_NUMBER = r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
_SPACE = "[ \u00a0\u202f]?"  # one optional (possibly non-breaking) space


def _compile(units: Iterable[str]) -> re.Pattern[str]:
    """Compile the pattern 'number [space] [unit]' for the given unit texts."""
    names = sorted(units, key=len, reverse=True)
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"{_NUMBER}(?:{_SPACE}(?P<unit>{alternatives}))?")


_TIME_RE = _compile([*_TIME_US, *_CYCLE_UNITS])
_SIZE_RE = _compile(_SIZE_BYTES)
_BITRATE_RE = _compile(_BITRATE_BPS)
_FREQUENCY_RE = _compile(_FREQUENCY_HZ)
_RATE_RE = _compile(_RATE_PER_S)


@dataclass(frozen=True)
class _Kind:
    """What a parser expects, for error messages."""

    noun: str  # "a time"
    hint: str  # "use a number with ... (e.g. '30ms')"
    pattern: re.Pattern[str]


_TIME = _Kind(
    "a time",
    f"use a number with ns, us, {_MICRO_SIGN}s, ms, s or min (e.g. '30ms')",
    _TIME_RE,
)
_SIZE = _Kind(
    "a size",
    "use a number of bytes with B, kB, KiB, MB, MiB, GB, GiB, TB or TiB (e.g. '4KiB')",
    _SIZE_RE,
)
_BITRATE = _Kind(
    "a bit rate",
    "use a number with bps, Kbps, Mbps, Gbps, Tbps, bit/s or bytes like MB/s (e.g. '25Gbps')",
    _BITRATE_RE,
)
_FREQUENCY = _Kind(
    "a frequency",
    "use a number with Hz, kHz, MHz or GHz (e.g. '2.5GHz')",
    _FREQUENCY_RE,
)
_RATE = _Kind(
    "an event rate",
    "use events per second, e.g. '20000', '20k', '2.5M', '20k/s', '5/ms', '100/min', '20kHz'",
    _RATE_RE,
)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 60, 60
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 4


def show(value: object, limit: int = 40) -> str:
    """Quote a value for an error message, on one line of at most ``limit`` characters.

    Containers are shown in part (a YAML alias can make a list of lists whose full repr()
    would never end)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # e.g. an int with more digits than repr() allows
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: object) -> str:
    return show(value)


def _split(value: object, kind: _Kind) -> tuple[str, float, str]:
    """Return (number text, finite non-negative number, unit text or '') of a raw value."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(
            f"{_show(value)} is not {kind.noun}: expected a string or number, "
            f"got {type(value).__name__}"
        )
    if isinstance(value, str):
        match = kind.pattern.fullmatch(value.strip())
        if match is None:
            raise UnitError(f"{_show(value)} is not {kind.noun}: {kind.hint}")
        text, unit = match["num"], match["unit"] or ""
    else:
        try:
            # the base-class repr, so that subclasses such as numpy.float64 print plain digits
            text = float.__repr__(value) if isinstance(value, float) else int.__repr__(value)
        except ValueError:  # an int with more digits than str() allows
            raise UnitError(f"{_show(value)} is too large for {kind.noun}") from None
        unit = ""
    number = float(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"{_show(value)} is not {kind.noun}: the number must be finite")
    if not math.isfinite(number):
        raise UnitError(f"{_show(value)} is too large for {kind.noun}")
    if number < 0:
        raise UnitError(f"{_show(value)} is negative: {kind.noun} must be >= 0")
    return text, number + 0.0, unit  # + 0.0 turns -0.0 into 0.0


def _finite(result: float, value: object, kind: _Kind) -> float:
    """Return result, or raise if the conversion overflowed."""
    if not math.isfinite(result):
        raise UnitError(f"{_show(value)} is too large for {kind.noun}")
    return result


# ---------------------------------------------------------------------------------------------
# Parsers.


def parse_time(value: str | int | float, *, clock_ghz: float | None = None) -> float:
    """Convert a time such as '30ms', '1.5us' or '2600cycles' to microseconds."""
    if clock_ghz is not None and (
        isinstance(clock_ghz, bool)
        or not isinstance(clock_ghz, (int, float))
        or not math.isfinite(clock_ghz)
        or clock_ghz <= 0
    ):
        raise UnitError(f"clock_ghz must be a positive number of GHz, got {_show(clock_ghz)}")
    text, number, unit = _split(value, _TIME)
    if unit == "":
        if number == 0:
            return 0.0
        raise UnitError(f"{_show(value)} needs a time unit, e.g. '{text.lstrip('+')}us'")
    if unit in _CYCLE_UNITS:
        if clock_ghz is None:
            raise UnitError(f"{_show(value)} is in cycles: cycles need the host clock (clock_ghz)")
        return _finite(number / (clock_ghz * 1000.0), value, _TIME)
    return _finite(number * _TIME_US[unit], value, _TIME)


def parse_size(value: str | int | float) -> int:
    """Convert a size such as '4KiB', '1.5MB' or 4096 to a whole number of bytes."""
    text, number, unit = _split(value, _SIZE)
    if number == 0:
        if any(digit in "123456789" for digit in re.split("[eE]", text)[0]):
            raise UnitError(f"{_show(value)} is not a whole number of bytes")
        return 0
    try:
        exact = Fraction(text) * _SIZE_BYTES[unit or "B"]
    except (ValueError, ZeroDivisionError):  # e.g. too many digits for int()
        raise UnitError(f"{_show(value)} is not {_SIZE.noun}: {_SIZE.hint}") from None
    if exact.denominator != 1:
        raise UnitError(f"{_show(value)} is not a whole number of bytes ({float(exact):.6g} B)")
    return exact.numerator


def parse_bitrate(value: str | int | float) -> float:
    """Convert a bit rate such as '25Gbps' or a byte rate such as '3GB/s' to bits per second."""
    _, number, unit = _split(value, _BITRATE)
    if unit == "":
        if number == 0:
            return 0.0
        raise UnitError(f"{_show(value)} needs a bit-rate unit, e.g. '25Gbps' or '3GB/s'")
    return _finite(number * _BITRATE_BPS[unit], value, _BITRATE)


def parse_frequency(value: str | int | float) -> float:
    """Convert a frequency such as '2.5GHz' to hertz."""
    _, number, unit = _split(value, _FREQUENCY)
    if unit == "":
        if number == 0:
            return 0.0
        raise UnitError(f"{_show(value)} needs a frequency unit, e.g. '2.5GHz'")
    return _finite(number * _FREQUENCY_HZ[unit], value, _FREQUENCY)


def parse_rate(value: str | int | float) -> float:
    """Convert an event rate such as 20000, '20k/s', '5/ms' or '20kHz' to events per second."""
    _, number, unit = _split(value, _RATE)
    if unit == "":
        return number
    return _finite(number * _RATE_PER_S[unit], value, _RATE)


# ---------------------------------------------------------------------------------------------
# Formatters (for reports and logs; their output parses back with the parsers above).


def _mantissa(value: float, *, strip_zeros: bool) -> str:
    """Format a positive number with 3 significant digits (more if it has more integer digits)."""
    exponent = int(f"{value:.2e}".split("e")[1])
    text = f"{value:.{max(0, 2 - exponent)}f}"
    if strip_zeros and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _format(
    value: float,
    units: tuple[tuple[float, str], ...],
    *,
    zero: str,
    sep: str,
    strip_zeros: bool = False,
) -> str:
    """Format value with the largest unit (ascending factor, name) it reaches."""
    if not math.isfinite(value):
        return f"{value}{sep}{zero}"
    if value == 0:
        return f"0{sep}{zero}"
    if value < 0:
        return "-" + _format(-value, units, zero=zero, sep=sep, strip_zeros=strip_zeros)
    index = 0
    for i, (factor, _) in enumerate(units):
        if value >= factor:
            index = i
    while True:
        factor, name = units[index]
        text = _mantissa(value / factor, strip_zeros=strip_zeros)
        # rounding may reach the next unit: 999.7 us -> "1000" -> "1.00 ms"
        if index + 1 < len(units) and float(text) * factor >= units[index + 1][0]:
            index += 1
            continue
        return f"{text}{sep}{name}"


_TIME_FORMAT = ((1e-3, "ns"), (1.0, f"{_MICRO_SIGN}s"), (1e3, "ms"), (1e6, "s"))
_SIZE_FORMAT = (
    (1.0, "B"),
    (1024.0, "KiB"),
    (1024.0**2, "MiB"),
    (1024.0**3, "GiB"),
    (1024.0**4, "TiB"),
)
_BITRATE_FORMAT = ((1.0, "bps"), (1e3, "kbps"), (1e6, "Mbps"), (1e9, "Gbps"), (1e12, "Tbps"))
_RATE_FORMAT = ((1.0, "/s"), (1e3, "k/s"), (1e6, "M/s"), (1e9, "G/s"))


def format_time(us: float) -> str:
    """Format microseconds with 3 significant digits, e.g. 4500 -> '4.50 ms'."""
    return _format(us, _TIME_FORMAT, zero="s", sep=" ")


def format_size(nbytes: float) -> str:
    """Format bytes with binary prefixes, e.g. 1536 -> '1.5 KiB'."""
    return _format(nbytes, _SIZE_FORMAT, zero="B", sep=" ", strip_zeros=True)


def format_bitrate(bps: float) -> str:
    """Format bits per second with decimal prefixes, e.g. 25e9 -> '25.0 Gbps'."""
    return _format(bps, _BITRATE_FORMAT, zero="bps", sep=" ")


def format_rate(per_s: float) -> str:
    """Format events per second, e.g. 20000 -> '20.0k/s'."""
    return _format(per_s, _RATE_FORMAT, zero="/s", sep="")


# -- exact forms, for files that must load back to the same value -----------------------
def _exact(value: float, units_: Sequence[tuple[float, str]], parse: Any) -> str:
    """The shortest ``number+unit`` string that parses back to exactly ``value``."""
    best = f"{value!r}{units_[0][1]}"
    for factor, unit in units_:
        scaled = value / factor
        if not math.isfinite(scaled):  # 1e306 us is past the largest float in ns
            continue
        text = f"{int(scaled)}{unit}" if scaled.is_integer() else f"{scaled!r}{unit}"
        if len(text) < len(best) and parse(text) == value:
            best = text
    return best


def exact_time(us: float) -> str:
    """``us`` as a time string that parses back exactly, e.g. 30000.0 → ``"30ms"``."""
    return _exact(float(us), ((1.0, "us"), (1e-3, "ns"), (1e3, "ms"), (1e6, "s")), parse_time)


def exact_size(nbytes: int) -> str:
    """``nbytes`` as a size string that parses back exactly, e.g. 4096 → ``"4KiB"``."""
    if isinstance(nbytes, int) and abs(nbytes) >= 2**53:  # past what a float holds exactly
        whole = [f"{nbytes // f}{u}" for f, u in _EXACT_SIZE if nbytes % f == 0]
        return min(whole, key=len)
    return _exact(
        float(nbytes),
        tuple((float(f), u) for f, u in _EXACT_SIZE),
        lambda s: float(parse_size(s)),
    )


_EXACT_SIZE: tuple[tuple[int, str], ...] = (
    (1, "B"),
    (1024, "KiB"),
    (1024**2, "MiB"),
    (1024**3, "GiB"),
    (1000, "KB"),
    (1000**2, "MB"),
    (1000**3, "GB"),
)


def exact_bitrate(bps: float) -> str:
    """``bps`` as a bit-rate string that parses back exactly, e.g. 2.5e10 → ``"25Gbps"``."""
    return _exact(
        float(bps), ((1.0, "bps"), (1e3, "Kbps"), (1e6, "Mbps"), (1e9, "Gbps")), parse_bitrate
    )


def exact_frequency(hz: float) -> str:
    """``hz`` as a frequency string that parses back exactly, e.g. 2.5e9 → ``"2.5GHz"``."""
    return _exact(
        float(hz), ((1.0, "Hz"), (1e3, "kHz"), (1e6, "MHz"), (1e9, "GHz")), parse_frequency
    )


def exact_rate(per_s: float) -> str:
    """``per_s`` as a rate string that parses back exactly, e.g. 20000.0 → ``"20k/s"``."""
    return _exact(float(per_s), ((1.0, "/s"), (1e3, "k/s"), (1e6, "M/s")), parse_rate)
