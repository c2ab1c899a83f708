"""Hostile scenario files: generated and mutated, every one either runs or ends with exit
status 2 and one clear line naming the file; never a traceback, a hang, or a half-written
result directory."""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sim import cli
from sim.scenario import (
    DEFAULT_REQUEST_BUDGET,
    MAX_ALIASED,
    ScenarioError,
    load,
    loads,
    parse_assignment,
    units,
    work_estimate,
)

ROOT = Path(__file__).resolve().parents[1]
MARKER = "hvsim-fuzz-marker"  # a YAML tag that ran a command would create this file

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")

# Reproducible in CI: the same examples on every run, no example database.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOAD_SECONDS = 10.0  # per case: reading and checking a file, unclamped
RUN_SECONDS = 20.0  # per case: hvsim run of a clamped scenario, tables and files included
RUN_DURATION = "2ms"  # what the harness clamps run.duration to before running

# ---------------------------------------------------------------------------------------
# Valid scenarios to start from
# ---------------------------------------------------------------------------------------
MINI = """\
name: mini
host:
  cores: 4
parent:
  vcpus: 2
devices:
  - name: ssd
    type: nvme
    vfs: 2
children:
  - name: db
    vcpus: 2
    io_path: routed
    device: ssd
    streams:
      - {op: read, size: 4KiB, rate: 2k}
  - name: app
    vcpus: 2
    io_path: direct
    device: ssd
    streams:
      - {op: write, size: 4KiB, outstanding: 2}
run:
  duration: 20ms
  warmup: 0us
  seed: 7
"""

# every I/O path, both device types, distributions, a CPU load, the strict IOMMU
EVERY_PATH = """\
name: every-path
host:
  cores: 4
  iommu: {mode: strict}
  scheduler: {time_slice: 1ms}
parent:
  vcpus: 2
devices:
  - {name: nic0, type: nic, vfs: 1}
  - name: ssd
    type: nvme
    vfs: 2
    read: {dist: lognormal, mean: 80us, cv: 1.2}
    write: {dist: scipy, name: weibull_min, params: {c: 1.5}, scale: 20us}
children:
  - name: r
    vcpus: 2
    io_path: routed
    device: ssd
    streams:
      - {op: {read: 0.7, write: 0.3}, size: 4KiB, rate: 2k}
  - name: d
    io_path: direct
    device: nic0
    irq_vcpu: 1
    streams:
      - op: send
        size: {dist: empirical, values: [256B, 9000B], weights: [0.5, 0.5]}
        outstanding: 2
        think: {dist: exponential, mean: 10us}
  - name: d2
    io_path: direct
    device: nic0
    streams: [{op: send, size: 1500B, rate: 1k}]
  - name: h
    io_path: hypervisor
    device: nic0
    streams: [{op: send, size: {dist: uniform, low: 64B, high: 1500B}, rate: 1k}]
  - name: e
    io_path: emulated
    device: ssd
    streams: [{op: write, size: 64KiB, outstanding: 1, vcpu: 1}]
  - name: n
    io_path: native
    device: ssd
    streams: [{op: read, size: 4KiB, rate: 1k, arrival: deterministic}]
  - name: b
    count: 2
    vcpus: 1
    cpu_load: {busy: {dist: gamma, mean: 1ms, cv: 0.5}, idle: 1ms}
run: {duration: 5ms, warmup: 1ms, seed: 3, trace_interval: 500us}
"""

PRESET = """\
name: old-host
preset: hyperv-2008
host: {cores: 8}
devices:
  - {name: nic0, mtu: 9000B}
  - {name: nvme1, type: nvme, vfs: 1}
children:
  - {name: web, io_path: direct, device: nic0, streams: [{op: send, size: 1500B, rate: 20k}]}
  - {name: db, io_path: direct, device: nvme1, vf: 0, streams: [{op: read, rate: 5k}]}
run: {duration: 5ms, warmup: 1ms}
"""

BASES = {
    "baseline": (ROOT / "scenarios" / "baseline.yaml").read_text(encoding="utf-8"),
    "mini": MINI,
    "every-path": EVERY_PATH,
    "preset": PRESET,
}


def test_bases_are_valid() -> None:
    """Every scenario the fuzzer starts from loads, so what it finds is due to mutations."""
    for name, text in BASES.items():
        assert loads(text, file=f"{name}.yaml").name


# ---------------------------------------------------------------------------------------
# Hostile values
# ---------------------------------------------------------------------------------------
def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for k in range(depth):
        value = [value] if k % 2 else {"k": value}
    return value


NUMBER_TEXT = ["", " ", "9" * 400, "1.2.3", "--1", "1,5", "1e", "5.", ".5", "e5", "1e5", "-0"]
NUMBER_TEXT += ["nan", "inf", "-inf", "+inf", "NaN", "1e309", "1e-309", "-5", "0", "1e300"]
NUMBER_TEXT += ["1e-300", "１２", "1_000", "0x10", "½", "٣"]  # fullwidth, hex, fraction, Arabic
UNITS = ["", "us us", "\u200bms", "%", "us", "µs", "μs", "ns", "ms", "s", "min", "h", "cycles"]
UNITS += ["parsecs", "B", "KiB", "kb", "GiB", "TiB", "Gbps", "GB/s", "k", "M", "/s", "/ms", "Hz"]
NAMES = ["\u202eevil", "\u05e9\u05dc\u05d5\u05dd", "😀"]  # right-to-left override, Hebrew
NAMES += ["web\u200b", "e\u0301", "ǅ", "x\ny", "\x07bell"]  # zero-width, combining, control
NAMES += ["a" * 64, "a" * 65, "a" * 100_000, "", " ", "-x", "x y", "null", "~", "<<", "*a"]
NAMES += ["!tag", "nic0", "ssd", "web-1"]
#: values every field refuses or holds without trouble: types, non-finite, out of range
ALWAYS: list[Any] = [None, True, False, [], {}, [[]], {"a": {"b": {}}}, "text", "", -1, -0.5]
ALWAYS += [math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**63, 2**64, 1.7e308, 5e-324]
ALWAYS += [-0.0, datetime.date(2001, 12, 14), b"\x00\xff", {1, 2}, _nested(20), _nested(70)]
#: valid numbers of every size: the loader must take or refuse each with one line
EXTREME: list[Any] = [0, 1, 2, 3, 7, 64, 1023, 1024, 1025, 4095, 4096, 4097, 65536, 10**6]
EXTREME += [2**31, 2**53 + 1, 2**63 - 1, 10**30, 0.5, 1.5, 1e-300, 1e-9, 1e300]
#: valid numbers of a size whose run stays short (for the runs the harness makes)
MODERATE: list[Any] = [0, 1, 2, 3, 7, 16, 0.5, 1.5, 1e-9]
DISTS = ["constant", "exponential", "gamma", "lognormal", "uniform", "empirical", "scipy"]
DISTS += ["normal", "", "__class__"]
DIST_KEYS = ["value", "mean", "cv", "low", "high", "values", "weights", "name", "params"]
DIST_KEYS += ["scale", "dist", "bogus"]
SCIPY = ["norm", "pareto", "levy", "cauchy", "weibull_min", "rv_continuous", "__class__", 5]


def unit_text() -> st.SearchStrategy[str]:
    """A number and a unit, both possibly hostile: 'nanus', 'infms', '1e309us', '-5 KiB'."""
    return st.builds(
        lambda n, sp, u: n + sp + u,
        st.sampled_from(NUMBER_TEXT),
        st.sampled_from(["", " ", "  ", "\u00a0", "\t"]),
        st.sampled_from(UNITS),
    )


def distribution(numbers: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A distribution mapping with hostile names, parameters and values."""
    param = st.one_of(st.sampled_from(numbers + ALWAYS), unit_text())
    kind, keys, scipy_name = (
        st.sampled_from(DISTS),
        st.sampled_from(DIST_KEYS),
        st.sampled_from(SCIPY),
    )
    return st.builds(
        lambda k, extra, name, vals, ws: (
            {"dist": k, **extra, "name": name}
            if k == "scipy"
            else {
                "dist": k,
                **extra,
                **({"values": vals, "weights": ws} if k == "empirical" else {}),
            }
        ),
        kind,
        st.dictionaries(keys, param, max_size=4),
        scipy_name,
        st.lists(st.one_of(unit_text(), st.sampled_from(numbers)), max_size=4),
        st.lists(st.sampled_from([*numbers, math.nan, -1, 1e308]), max_size=4),
    )


def hostile(numbers: list[Any]) -> st.SearchStrategy[Any]:
    """Any hostile value: wrong types, non-finite and extreme numbers, unit strings,
    distributions, unicode, deep nesting, references that resolve to nothing."""
    return st.one_of(
        st.sampled_from(ALWAYS),
        st.sampled_from(numbers),
        unit_text(),
        st.sampled_from(NAMES),
        distribution(numbers),
        st.lists(st.sampled_from(numbers), max_size=5),  # pins, cpu_load.vcpus
        st.text(max_size=20),
    )


WORDS = ["nic0", "ssd", "nvme0", "routed", "direct", "native", "hypervisor", "emulated", "read"]
WORDS += ["write", "send", "poisson", "deterministic", "credit", "fair", "pinned", "strict"]
WORDS += ["deferred", "static", "round_robin", "fifo", "mser5", "floating", True, False, None]
QUANTITIES = ["0", "1", "2", "3", "0.5", "16", "100", "1000", "1.5"]
UNITS_TAKEN = ["us", "ms", "ns", "s", "B", "KiB", "MiB", "Gbps", "GB/s", "k", "/s", "GHz"]


def valid_looking(numbers: list[Any]) -> st.SearchStrategy[Any]:
    """Values of a kind some field takes: small numbers, quantities with their units, the
    words of the schema, simple distributions, lists of small integers."""
    quantity = st.builds(str.__add__, st.sampled_from(QUANTITIES), st.sampled_from(UNITS_TAKEN))
    return st.one_of(
        st.sampled_from(numbers),
        quantity,
        st.sampled_from(WORDS),
        st.builds(lambda m: {"dist": "exponential", "mean": m}, quantity),
        st.lists(st.integers(0, 3), min_size=1, max_size=4),
    )


# ---------------------------------------------------------------------------------------
# Mutations of parsed scenarios
# ---------------------------------------------------------------------------------------
def _locations(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _locations(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _locations(v, (*path, i))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


KEYS = ["name", "count", "vcpus", "device", "vf", "irq_vcpu", "pin", "streams", "rate", "op"]
KEYS += ["outstanding", "size", "think", "duration", "warmup", "replications", "cores", "vcpu"]
KEYS += ["request_budget", "trace_interval", "preset", "bogus", "Rate", "cpu_load", "<<", "dist"]
KEYS += ["sweep", "sources", "type", "interrupt_moderation"]
#: fields that refer to something else or size the host: the usual targets of a reference
TARGETS = ["device", "vf", "irq_vcpu", "vcpu", "pin", "count", "vcpus", "preset", "mtu", "tick"]
TARGETS += ["line_rate", "bandwidth", "ring_size", "time_slice"]
OPS = ["replace", "replace", "replace", "delete", "add", "copy", "wrap", "reference"]


@st.composite
def mutated(draw: st.DrawFn, numbers: list[Any], plausible: bool = False) -> tuple[str, Any]:
    """A base scenario (parsed) with one to four mutations. ``plausible``: one or two, most
    of them on leaves, three in four of the values of a kind some field takes (so that more
    of the scenarios run)."""
    values = hostile(numbers)
    if plausible:
        values = st.one_of(*[valid_looking(numbers)] * 3, values)
    name = draw(st.sampled_from(sorted(BASES)))
    data = yaml.safe_load(BASES[name])
    for _ in range(draw(st.integers(1, 2 if plausible else 4))):
        places = list(_locations(data))
        if plausible and draw(st.integers(0, 3)):  # a leaf: a value rather than a section
            leaves = [p for p in places if p and not isinstance(_get(data, p), dict | list)]
            places = leaves or places
        path = draw(st.sampled_from(places))
        op = draw(st.sampled_from(OPS))
        value = copy.deepcopy(draw(values))  # the pools must not change
        if not path:  # the whole document
            if op in ("replace", "wrap"):
                data = value if op == "replace" else [data]
            elif isinstance(data, dict):
                data[draw(st.sampled_from(KEYS + NAMES))] = value
            continue
        parent, key = _get(data, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = value
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(KEYS + NAMES))] = value
        elif op == "add" and isinstance(parent[key], list):
            parent[key].append(value)
        elif op == "copy" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))  # duplicate names, VFs, devices
        elif op == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
        elif op == "reference":
            target = draw(st.sampled_from(TARGETS))
            holder = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(holder, dict):
                holder[target] = draw(
                    st.one_of(st.sampled_from(NAMES), st.sampled_from(numbers), unit_text())
                )
    return name, data


def dump(data: Any, style: int) -> str:
    """YAML text of ``data`` in one of several styles (flow, block, unicode or escaped)."""
    return yaml.safe_dump(
        data,
        sort_keys=False,
        allow_unicode=style % 2 == 0,
        default_flow_style=None if style < 2 else style == 2,
        width=1_000_000 if style == 3 else 80,
    )


def clamp(data: Any) -> Any:
    """The scenario with a short run, so that a valid one runs in well under a second."""
    run = data.get("run") if isinstance(data, dict) else None
    if isinstance(run, dict):
        run.update(duration=RUN_DURATION, warmup="0us", replications=1)
        run.pop("trace_interval", None)
    return data


# ---------------------------------------------------------------------------------------
# Mutations of the text
# ---------------------------------------------------------------------------------------
BOMB = "".join(
    [
        'x-lol: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n',
        *(f"x-lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)),
    ]
)
TAGS = [
    f'!!python/object/apply:os.system ["echo hi > {MARKER}"]',
    "!!python/name:os.system",
    "!!python/object/new:builtins.exec [\"open('x', 'w')\"]",
    "!<tag:example.com,2000:x> 1",
    "!!int 0x" + "f" * 4000,
]
TAGS += ["!custom 4", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [{a: 1}]", "!!str 4", "&anchor"]
TAGS += ["!!timestamp 2001-12-14", "!!float 1e309", "*undefined"]
JUNK = ["\x00", "\x01", "\x7f", "\x85", "\ufeff", "\ufffe", "\u2028", "\t", "\r", "\U0001f600"]
JUNK += ["\u202e", "%YAML 1.1", "---", "...", "? ", ": ", "- ", "{", "[", '"', "'", "|", ">", "#"]
JUNK += ["&a", "*a", "@", "`", "\\", "%", "!"]
EMPTY = [
    "",
    " ",
    "\n\n",
    "# nothing\n",
    "---\n",
    "...\n",
    "---\n...\n",
    "~\n",
    "[]\n",
    "{}\n",
    "0\n",
]
ANCHORS = ["x: &a {k: 1}\n", "y: *a\n", "<<: *a\n", "<<: {bogus: 1}\n", "&a x: 1\n"]


@st.composite
def hostile_text(draw: st.DrawFn) -> bytes:
    """A base scenario's text (run clamped) with text-level damage, as bytes."""
    name = draw(st.sampled_from(sorted(BASES)))
    text = dump(clamp(yaml.safe_load(BASES[name])), 1)
    lines = text.splitlines(keepends=True)
    how = draw(st.integers(0, 13))
    at = draw(st.integers(0, len(lines)))
    if how == 0:  # a tag in front of a value
        i = draw(st.sampled_from([k for k, line in enumerate(lines) if ": " in line]))
        key, _, _ = lines[i].partition(": ")
        lines[i] = f"{key}: {draw(st.sampled_from(TAGS))}\n"
    elif how == 1:  # billion laughs, placed where a value is expected
        where = draw(st.sampled_from(["description", "sources", "bogus", "children", "preset"]))
        lines = [BOMB, *(line for line in lines if not line.startswith(f"{where}:"))]
        lines.append(f"{where}: *a8\n")
    elif how == 2:  # a line twice: duplicate key (or a second list item)
        lines.insert(at, lines[min(at, len(lines) - 1)])
    elif how == 3:  # junk characters
        junk = "".join(draw(st.lists(st.sampled_from(JUNK), min_size=1, max_size=4)))
        pos = draw(st.integers(0, len(text)))
        return (text[:pos] + junk + text[pos:]).encode("utf-8", "surrogatepass")
    elif how == 4:  # random bytes
        pos = draw(st.integers(0, len(text)))
        raw = text.encode()
        return raw[:pos] + draw(st.binary(min_size=1, max_size=64)) + raw[pos:]
    elif how == 5:  # cut short
        return text.encode()[: draw(st.integers(0, len(text)))]
    elif how == 6:  # empty, blank, comments, document markers
        return draw(st.sampled_from(EMPTY)).encode()
    elif how == 7:  # more than one document
        sep = draw(st.sampled_from(["---\n", "...\n---\n", "--- !custom\n"]))
        return (text + sep + text).encode()
    elif how == 8:  # an extremely long line
        n = draw(st.sampled_from([10_000, 300_000]))  # PyYAML reads ~1 MB/s
        key = draw(st.sampled_from(["description", "bogus", "x" * 1000]))
        lines.insert(1, f"{key}: {'a' * n}\n")
    elif how == 9:  # deep nesting in flow style
        n = draw(st.sampled_from([63, 64, 65, 200, 2000, 20_000]))
        lines.append(f"sources: {'[' * n}{']' * n}\n")
    elif how == 10:  # deep nesting in block style
        n = draw(st.sampled_from([30, 70, 400]))
        lines.append("".join(f"{'  ' * k}k{k}:\n" for k in range(n)) + "  " * n + "x: 1\n")
    elif how == 11:  # anchors and aliases that are fine, or point to nothing
        lines.insert(at, draw(st.sampled_from(ANCHORS)))
    elif how == 12:  # a byte-order mark, CRLF line ends, tabs for indentation
        variant = draw(st.integers(0, 2))
        if variant == 0:
            return ("\ufeff" + text).encode()
        if variant == 1:
            return text.replace("\n", "\r\n").encode()
        return text.replace("  ", "\t").encode()
    else:  # a file over the size limit
        return (text + "# " + "x" * (4 * 2**20) + "\n").encode()
    return "".join(lines).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------
class Hang(BaseException):
    """A case ran past its time limit (BaseException: no handler in sim may swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(_signum: int, _frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cli(argv: list[str], seconds: float = RUN_SECONDS) -> tuple[int, str, str]:
    """``hvsim ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(seconds):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_one_line(text: str, file: str) -> None:
    """``text`` is one short, printable line that names ``file``."""
    assert "\n" not in text.rstrip("\n"), repr(text)
    line = text.rstrip("\n")
    assert line.startswith(file), f"{line[:300]!r} does not name {file}"
    assert line.isprintable(), repr(line[:300])
    assert "Traceback" not in line
    assert len(line) <= len(file) + 400, f"{len(line)} characters: {line[:300]!r}"


def assert_outcome(code: int, err: str, scenario: Path, out: Path) -> None:
    """Runs (a whole result directory) or exit 2 with one line naming the file (nothing)."""
    if currently_in_test_context():  # statistics: --hypothesis-show-statistics
        event(f"exit status {code}")
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, f"temporary directories left behind: {leftovers}"
    assert "Traceback" not in err, err[-2000:]
    if code == 0:
        assert (out / "meta.json").is_file()
        assert (out / "summary.csv").is_file()
        assert not [line for line in err.splitlines() if line.startswith("error")], err
        return
    assert code == 2, f"exit status {code}: {err[-2000:]}"
    assert err.startswith("error: "), repr(err[:300])
    assert err.endswith("\n"), repr(err[-300:])
    assert_one_line(err[len("error: ") :], str(scenario))
    assert not out.exists(), "a refused scenario wrote a result directory"


def assert_loads_or_refuses(path: Path) -> None:
    """``load`` (unclamped) returns a scenario whose resolved form loads back as is and
    fits its budget, or raises one ScenarioError line that names the file."""
    try:
        with time_limit(LOAD_SECONDS):
            scn = load(path)
    except ScenarioError as exc:
        assert_one_line(str(exc), str(path))
        return
    resolved = yaml.safe_dump(scn.to_dict(), sort_keys=False, allow_unicode=True)
    with time_limit(LOAD_SECONDS):
        again = loads(resolved, file="resolved.yaml")
    assert again.to_dict() == scn.to_dict()
    parts, problem = work_estimate(scn)
    assert problem is None
    assert sum(parts.values()) * scn.run.replications <= scn.run.request_budget


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A fresh directory per example (hypothesis reruns a test body many times)."""
    with tempfile.TemporaryDirectory(prefix="hvsim-fuzz-") as d:
        yield Path(d)


# ---------------------------------------------------------------------------------------
# The fuzz tests
# ---------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=250)
@given(case=mutated(EXTREME), style=st.integers(0, 3))
def test_loader_on_mutated_scenarios(case: tuple[str, Any], style: int) -> None:
    """The loader, unclamped, takes or refuses any mutation of a valid scenario with one line."""
    with workdir() as d:
        path = d / f"{case[0]}.yaml"
        path.write_text(dump(case[1], style), encoding="utf-8")
        assert_loads_or_refuses(path)


@settings(FUZZ, max_examples=100)
@given(raw=hostile_text())
def test_loader_on_damaged_text(raw: bytes) -> None:
    """Tags, aliases, junk, deep nesting, long lines: refused in one line, nothing run."""
    with workdir() as d:
        path = d / "damaged.yaml"
        path.write_bytes(raw)
        old = Path.cwd()
        os.chdir(d)  # a tag that ran a command would write its marker here
        try:
            assert_loads_or_refuses(path)
        finally:
            os.chdir(old)
        assert not (d / MARKER).exists(), "a YAML tag ran a command"


@settings(FUZZ, max_examples=70)
@given(case=mutated(MODERATE, plausible=True), style=st.integers(0, 3))
def test_run_on_mutated_scenarios(case: tuple[str, Any], style: int) -> None:
    """hvsim run (2 ms) writes a whole result or exits 2 with one line, writing nothing."""
    with workdir() as d:
        path = d / f"{case[0]}.yaml"
        path.write_text(dump(clamp(case[1]), style), encoding="utf-8")
        out = d / "out"
        code, _, err = run_cli(["run", str(path), "--out", str(out), "--quiet"])
        assert_outcome(code, err, path, out)


@settings(FUZZ, max_examples=40)
@given(raw=hostile_text())
def test_run_on_damaged_text(raw: bytes) -> None:
    """hvsim run on damaged text exits 2 with one line naming the file, or runs (2 ms)."""
    with workdir() as d:
        path = d / "damaged.yaml"
        path.write_bytes(raw)
        out = d / "out"
        code, _, err = run_cli(["run", str(path), "--out", str(out), "--quiet"])
        assert_outcome(code, err, path, out)


SET_PATHS = ["run.duration", "children[db].vcpus", "children[9]", "host", "children[²].vcpus"]
SET_PATHS += ["children[" + "9" * 5000 + "]", "x..y", "devices[ssd].read", "preset"]
SET_PATHS += ["run.request_budget", "run.replications", "children[app].vf"]


@settings(FUZZ, max_examples=40)
@given(
    field=st.sampled_from(SET_PATHS),
    value=st.one_of(unit_text(), st.sampled_from(TAGS + JUNK + ["[" * 2000, "9" * 5000])),
)
def test_set_overrides(field: str, value: str) -> None:
    """--set with hostile paths and values: the run goes (2 ms) or one line, status 2."""
    with workdir() as d:
        path = d / "mini.yaml"
        path.write_text(MINI.replace("20ms", RUN_DURATION), encoding="utf-8")
        out = d / "out"
        code, _, err = run_cli(["run", str(path), "--out", str(out), "--set", f"{field}={value}"])
        if code == 2 and err.startswith("error: --set"):  # the override's own fault
            assert_one_line(err[len("error: ") :], "--set")
            assert not out.exists()
        else:
            assert_outcome(code, err, path, out)


# ---------------------------------------------------------------------------------------
# What the fuzzer found, one case each: a traceback, a hang, or not one clear line
# ---------------------------------------------------------------------------------------
def mini(*pairs: tuple[str, str]) -> str:
    text = MINI
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def ssd(*lines: str) -> str:
    """MINI with more fields on its NVMe drive."""
    return mini(("    vfs: 2\n", "    vfs: 2\n" + "".join(f"    {line}\n" for line in lines)))


def host(line: str) -> str:
    """MINI with one more line under host."""
    return mini(("  cores: 4\n", f"  cores: 4\n  {line}\n"))


def parent(line: str) -> str:
    """MINI with one more line under parent."""
    return mini(("  vcpus: 2\ndevices", f"  vcpus: 2\n  {line}\ndevices"))


def child(line: str, *more: tuple[str, str]) -> str:
    """MINI with one more child (a flow mapping) first."""
    return mini(("children:\n", f"children:\n  - {line}\n"), *more)


NIC_APP = (
    "device: ssd\n    streams:\n      - {op: write",
    "device: n\n    streams:\n      - {op: send",
)
CHAIN = "".join(f"x{i}: &a{i} {'[' * 20}*a{i - 1}{']' * 20}\n" for i in range(1, 20))
FOUND: list[tuple[str, str | bytes, str]] = [
    ("nul-byte", mini(("cores: 4", "cores: 4\x00")), "character U+0000 is not allowed"),
    ("int-5000-digits", mini(("cores: 4", "cores: " + "9" * 5000)), "integer with too many"),
    ("hex-int-5000-digits", mini(("cores: 4", "cores: 0x" + "f" * 5000)), "too many digits"),
    ("nested-10000-flow", "name: x\nbogus: " + "[" * 10_000 + "]" * 10_000, "nested more"),
    ("nested-5000-maps", "name: x\nhost: " + "{a: " * 5000 + "1" + "}" * 5000, "nested more"),
    ("alias-chain-depth", CHAIN.replace("*a0", "1"), "nested more than 64 levels"),
    ("billion-laughs-op", BOMB + mini(("op: read", "op: *a8")), f"more than {MAX_ALIASED}"),
    ("billion-laughs-size", BOMB + mini(("size: 4KiB, rate", "size: *a8, rate")), "aliases"),
    ("billion-laughs-preset", BOMB + mini(("name: mini", "name: mini\npreset: *a8")), "aliases"),
    ("op-weight-huge-int", mini(("op: read", "op: {read: " + "9" * 400 + "}")), "positive"),
    ("cv-huge-int", ssd("read: {dist: gamma, mean: 1us, cv: " + "9" * 400 + "}"), "positive"),
    ("cv-tiny", ssd("read: {dist: gamma, mean: 1us, cv: 1.0e-300}"), "'cv' must be between"),
    ("cv-huge", ssd("read: {dist: lognormal, mean: 1us, cv: 1.0e+300}"), "must be between"),
    ("cv-as-text", ssd("read: {dist: gamma, mean: 1us, cv: 1e-3}"), "YAML reads 1e-3 as text"),
    (
        "weights-overflow",
        ssd("read: {dist: empirical, values: [1us, 2us], weights: [1.0e+308, 1.0e+308]}"),
        "",
    ),
    ("mean-1e300s", ssd("read: {dist: lognormal, mean: 1e300s, cv: 1.0}"), "longer than 1e9s"),
    ("high-1e300s", ssd("read: {dist: uniform, low: 0us, high: 1e300s}"), "longer than 1e9s"),
    ("think-1e300s", mini(("outstanding: 2", "outstanding: 2, think: 1e300s")), "longer than"),
    ("bandwidth-0", ssd("bandwidth: 0"), "at least 1bps"),
    ("bandwidth-tiny", ssd("bandwidth: 1e-300bps"), "at least 1bps"),
    ("ring-0", parent("vmbus: {ring_size: 0}"), "greater than 0"),
    ("copy-bandwidth-0", parent("vsp: {copy_bandwidth: 0}"), "must be at least 1bps"),
    ("time-slice-0", host("scheduler: {time_slice: 0}"), "greater than 0"),
    ("tick-tiny", host("scheduler: {tick: 1e-300ms}"), "scheduler events"),
    ("duration-1e300s", mini(("duration: 20ms", "duration: 1e300s")), "longer than 1e9s"),
    ("duration-1e6s", mini(("duration: 20ms", "duration: 1e6s")), "requests (budget 1e7"),
    ("rate-1e300", mini(("rate: 2k", "rate: 1e300")), "must be at most 1G/s: no device"),
    ("rate-1G", mini(("rate: 2k", "rate: 1G")), "about 2e7 requests"),
    (
        "closed-loop-zero-time",
        ssd("read: 0", "write: 0")
        .replace("size: 4KiB, outstanding", "size: 0, outstanding")
        .replace(
            "  - name: app\n", "  - name: app\n    guest: {submit_cost: 0, complete_cost: 0}\n"
        ),
        "size: must be at least 1 B",  # a byte takes time on any device: time advances
    ),
    ("cpu-load-zero", child("{name: b, cpu_load: {busy: 0, idle: 0}}"), "busy and idle are both 0"),
    ("cpu-load-tiny", child("{name: b, cpu_load: {busy: 1e-300ns, idle: 0}}"), "CPU-load bursts"),
    ("request-1e30TiB", mini(("size: 4KiB, rate", "size: 1e30TiB, rate")), "at most 64 MiB"),
    ("page-size-1B", host("iommu: {page_size: 1B}"), "greater than or equal to 4096"),
    ("count-4097", mini(("  - name: db\n", "  - name: db\n    count: 4096\n")), "at most 4096"),
    ("vcpus-65k", child("{name: big, count: 65, vcpus: 1024, cpu_load: {}}"), "at most 65536"),
    (
        "mtu-0",
        ssd().replace("    vfs: 2\n", "    vfs: 2\n  - {name: n, type: nic, mtu: 0}\n"),
        "at least 68B",
    ),
    (
        "frame-overhead-1e300B",
        mini(
            ("    vfs: 2\n", "    vfs: 2\n  - {name: n, type: nic, frame_overhead: 1e300B}\n"),
            NIC_APP,
        ),
        "must be at most 1KiB: the headers",
    ),
    (
        "trace-values",
        mini(
            ("  - name: db\n", "  - name: db\n    count: 4000\n"),
            ("seed: 7", "trace_interval: 1us"),
        ),
        "occupancy trace would hold",
    ),
    (
        "unknown-key-1MB",
        mini(("name: mini", "name: mini\n? " + "k" * 1_000_000 + "\n: 1")),
        "unknown key 'kkk",
    ),
    ("rtl-child-name", mini(("name: db", "name: \u202eevil")), "children[0].name: a name is"),
    ("op-name-rtl", mini(("op: read", "op: \u202eread")), "is not an operation of nvme"),
    ("op-list-huge-int", mini(("op: read", "op: [1" + "0" * 400 + "]")), "op must be a name"),
    ("preset-huge-int", mini(("name: mini", "name: mini\npreset: 1" + "0" * 400)), "preset is"),
    ("dist-huge-int", ssd("read: {dist: 1" + "0" * 400 + "}"), "'dist' must be one of"),
    ("scipy-name-rtl", ssd("read: {dist: scipy, name: \u202eevil}"), "not a scipy.stats"),
    (
        "dist-keys-of-every-type",
        ssd("read: {dist: gamma, mean: 1us, cv: 0.5, 1: x, null: y, " + "k" * 1000 + ": z}"),
        "unknown: 1, None, 'kkk",
    ),
    (
        "preset-list",
        mini(("name: mini", "name: mini\npreset: [" + "1, " * 10_000 + "1]")),
        "preset is named",
    ),
]


FOUND_BY_ID = {c[0]: c[1] for c in FOUND}


@pytest.mark.parametrize(("text", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in FOUND])
def test_found_cases(text: str | bytes, fragment: str, tmp_path: Path) -> None:
    """Each input that once crashed or hung now loads or gets one line, within seconds."""
    path = tmp_path / "found.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    if not fragment:  # loads: it crashed in the run
        with time_limit(LOAD_SECONDS):
            load(path)
        return
    with pytest.raises(ScenarioError) as info, time_limit(LOAD_SECONDS):
        load(path)
    assert_one_line(str(info.value), str(path))
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(FOUND_BY_ID["weights-overflow"], id="weights-overflow"),
        pytest.param(mini(("size: 4KiB, rate: 2k", "size: 64MiB, rate: 5")), id="request-64MiB"),
        pytest.param(
            mini(("size: 4KiB, rate: 2k", "size: 64MiB, rate: 200")),
            id="request-64MiB-saturated",
        ),
        pytest.param(host("iommu: {page_size: 1GiB, mode: strict}"), id="page-1GiB"),
        pytest.param(ssd("bandwidth: 1bps"), id="bandwidth-1bps"),
        pytest.param(ssd("max_iops: 1.0e-9"), id="max-iops-tiny"),
        pytest.param(child("{name: b, cpu_load: {busy: 1ns, idle: 0}}"), id="cpu-load-1ns"),
    ],
)
def test_found_cases_that_run(text: str, tmp_path: Path) -> None:
    """Inputs at the edge of what is allowed run to the end and write their result."""
    path = tmp_path / "edge.yaml"
    path.write_text(text.replace("20ms", RUN_DURATION), encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(path), "--out", str(out), "--quiet"])
    assert code == 0, err
    assert_outcome(code, err, path, out)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x=" + "9" * 5000, "cannot read value"),
        ("x=" + "[" * 5000, "cannot read value"),
        ("x=a\x00b", "cannot read value"),
        ('x=!!python/object/apply:os.system ["true"]', "cannot read value"),
    ],
    ids=["int-5000-digits", "nested-5000", "nul", "python-tag"],
)
def test_found_set_values(text: str, fragment: str) -> None:
    """--set values are read as scenario files are: the same refusals, one line each."""
    with pytest.raises(ScenarioError) as info:
        parse_assignment(text)
    assert info.value.file == "--set"
    assert fragment in info.value.message
    assert len(str(info.value)) < 200


def test_found_set_index_with_superscript_digit() -> None:
    """children[²] (a digit to str.isdigit, not to int) is a name, not a crash."""
    with pytest.raises(ScenarioError, match=r"no item named '²'"):
        loads(MINI, file="mini.yaml", overrides={"children[²].vcpus": 3})


def test_resolved_size_past_float_precision_loads_back() -> None:
    """A size of more than 2**53 bytes is beyond every size's bound (it was once rounded to
    a float on the way back); the largest size a scenario may give is written back exactly."""

    def ring(size: str) -> str:
        return mini(("  vcpus: 2\ndevices", f"  vcpus: 2\n  vmbus: {{ring_size: {size}}}\ndevices"))

    with pytest.raises(ScenarioError, match=r"ring_size: must be at most 1GiB"):
        loads(ring("12345678901234567891B"), file="mini.yaml")
    scn = loads(ring("1073741823B"), file="mini.yaml")
    again = loads(yaml.safe_dump(scn.to_dict()), file="resolved.yaml")
    assert again.parent.vmbus.ring_size == 2**30 - 1


def test_resolved_empirical_weights_load_back() -> None:
    """Weights not adding up to 1 are written back as given, so they load back the same."""
    text = ssd("read: {dist: empirical, values: [1us, 2us, 3us], weights: [0.3, 0.2, 0.2]}")
    scn = loads(text, file="mini.yaml")
    assert scn.devices[0].read.to_spec()["weights"] == [0.3, 0.2, 0.2]
    again = loads(yaml.safe_dump(scn.to_dict()), file="resolved.yaml")
    assert again.to_dict() == scn.to_dict()
    assert again.devices[0].read == scn.devices[0].read


def test_show_is_bounded_for_aliased_data() -> None:
    """Messages quote a value in part: a list of lists of lists (YAML aliases) prints fast."""
    value: Any = ["lol"] * 9
    for _ in range(9):
        value = [value] * 9
    with time_limit(1.0):
        shown = units.show(value)
    assert len(shown) <= 40


# ---------------------------------------------------------------------------------------
# The request budget
# ---------------------------------------------------------------------------------------
def test_budget_message_names_the_estimate_and_how_to_raise_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run over its budget is refused before it starts, with the estimate and the fix."""
    path = tmp_path / "long.yaml"
    path.write_text(MINI.replace("duration: 20ms", "duration: 60min"), encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {path}:24: run.duration: this run would simulate about 2.2e8 requests "
        "(budget 1e7; raise it with --budget or run.request_budget)\n"
    )
    assert not out.exists()


def test_budget_can_be_raised_in_the_file_or_on_the_command_line(tmp_path: Path) -> None:
    """run.request_budget (also as '2e8' or '200M') and --budget let a big run through."""
    long = MINI.replace("duration: 20ms", "duration: 60min")  # 2.2e8 requests
    assert loads(long + "  request_budget: 3e8\n", file="a.yaml").run.request_budget == 3e8
    assert loads(long + "  request_budget: 300M\n", file="a.yaml").run.request_budget == 3e8
    for bad in ("0", "-1", ".inf", ".nan", "lots", "true"):
        with pytest.raises(ScenarioError, match=r"run\.request_budget"):
            loads(long + f"  request_budget: {bad}\n", file="a.yaml")
    path = tmp_path / "long.yaml"
    path.write_text(long, encoding="utf-8")
    scn, _ = cli._load(cli._parser().parse_args(["run", str(path), "--budget", "3e8"]))
    assert scn.run.request_budget == 3e8
    code, _, err = run_cli(["run", str(path), "--budget", "0"])
    assert (code, err) == (2, "error: --budget: must be a positive number (got 0.0)\n")


def test_replications_and_compared_paths_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--replications multiplies the estimate before anything runs; so do compared paths."""
    path = tmp_path / "mini.yaml"
    path.write_text(MINI.replace("duration: 20ms", "duration: 10s"), encoding="utf-8")
    scn = load(path)
    per_run = sum(work_estimate(scn)[0].values())
    assert 5e5 < per_run < 1e6  # 2k/s open loop, 2 / 34 µs closed loop: 60k/s
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--replications", "20", "--out", str(out)]) == 2
    assert "about 1.2e7 requests (budget 1e7" in capsys.readouterr().err
    argv = ["compare", str(path), "--paths", "routed,direct,native", "--replications", "6"]
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "this comparison of 3 paths would simulate about 1.1e7 requests" in err
    assert err.startswith(f"error: {path}: run.duration: ")
    assert not out.exists()


def test_closed_loop_estimate_is_bounded_by_device_and_vcpus() -> None:
    """A closed loop counts outstanding / its least cycle, at most what its device carries."""
    text = mini(("outstanding: 2", "outstanding: 100000"), ("duration: 20ms", "duration: 10s"))
    parts, problem = work_estimate(loads(text, file="mini.yaml"))
    assert problem is None
    service = 20 + 4096 * 8e6 * 8 / 3.2e9 / 8  # µs: the write's mean, 4 KiB at 3.2 GB/s / 8
    closed = parts["requests"] - 2000 * 10  # less the open-loop stream (2k/s)
    assert closed == pytest.approx(8 / service * 1e6 * 10)
    two = work_estimate(loads(MINI, file="mini.yaml"))[0]["requests"] - 2000 * 0.02
    assert two == pytest.approx(2 / (4 + service) * 1e6 * 0.02)  # + the guest's 2 + 2 µs


def test_estimate_against_simulated_requests() -> None:
    """The estimate is of the order of what the simulation does (a bound, not a guess)."""
    from sim.experiment.run import run

    for text in (MINI, EVERY_PATH):
        scn = loads(text, file="x.yaml")
        parts, _ = work_estimate(scn)
        simulated = run(scn).meta["requests_simulated"]
        assert simulated <= parts["requests"] * 1.2 + 50
        assert parts["requests"] < 20 * simulated + 1000


def test_default_budget_is_documented() -> None:
    """The README states the default budget and how to raise it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{DEFAULT_REQUEST_BUDGET:.0e}".replace("+0", "") in readme
    assert "--budget" in readme


# ---------------------------------------------------------------------------------------
# Real processes: exit status, and no traceback on stderr
# ---------------------------------------------------------------------------------------
PROCESS_CASES: dict[str, str | bytes] = {
    "python-tag": mini(("cores: 4", f'cores: !!python/object/apply:os.system ["echo > {MARKER}"]')),
    "billion-laughs": FOUND_BY_ID["billion-laughs-op"],
    "over-budget": mini(("rate: 2k", "rate: 1G")),
    "nul-byte": FOUND_BY_ID["nul-byte"],
}


def test_processes_exit_2_without_traceback(tmp_path: Path) -> None:
    """Real processes: status 2 and one line, nothing written or run; a valid file runs."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    procs: dict[str, tuple[subprocess.Popen[str], Path, Path]] = {}
    for key, text in {**PROCESS_CASES, "valid": MINI.replace("20ms", RUN_DURATION)}.items():
        path = tmp_path / f"{key}.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        out = tmp_path / f"out-{key}"
        argv = [sys.executable, "-m", "sim.cli", "run", path.name, "--out", out.name, "--quiet"]
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        procs[key] = (proc, path, out)
    for key, (proc, path, out) in procs.items():
        _, err = proc.communicate(timeout=120)
        if key == "valid":
            assert proc.returncode == 0, err
            assert (out / "meta.json").is_file()
            assert (out / "summary.csv").is_file()
            continue
        assert proc.returncode == 2, (key, err[-2000:])
        assert "Traceback" not in err
        assert err.startswith("error: "), (key, err[:300])
        assert err.count("\n") == 1, (key, err[:300])
        assert_one_line(err[len("error: ") :], path.name)
        assert not out.exists()
    assert not (tmp_path / MARKER).exists(), "a YAML tag ran a command"
    assert not (tmp_path / "results").exists()
