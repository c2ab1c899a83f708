"""Tests of sim.scenario: one-line errors for bad input, overrides, round trips and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sim import cli
from sim.experiment.study import load_sweep
from sim.experiment.validate import load_case
from sim.scenario import (
    ScenarioError,
    apply_override,
    from_dict,
    load,
    loads,
    parse_assignment,
    replace,
)

ROOT = Path(__file__).resolve().parents[1]
MARKER = "hvsim-marker"  # a shell command smuggled into YAML would create this file

# A minimal valid scenario: one NVMe device with 2 VFs, a routed child (open loop) and a
# direct child (closed loop), one stream each, a 20 ms run. Line numbers matter: the table
# below refers to them.
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
  replications: 1
"""


def mutate(*pairs: tuple[str, str]) -> str:
    """MINI with each (old, new) replacement applied in turn; each old text must be unique."""
    text = MINI
    for old, new in pairs:
        assert text.count(old) == 1, f"{old!r} is not unique in the scenario"
        text = text.replace(old, new)
    return text


UNSAFE = f'!!python/object/apply:os.system ["echo hi > {MARKER}"]'
APP_STREAM = "    streams:\n      - {op: write, size: 4KiB, outstanding: 2}\n"
STREAM0 = "streams[0]"

# (id, scenario text, field path, line or None, distinctive part of the message)
BAD: list[tuple[str, str, str, int | None, str]] = [
    ("unknown-top-level-key", MINI + "bogus: 1\n", "bogus", 28, "unknown key 'bogus'"),
    (
        "unknown-nested-key-suggests",
        mutate(("parent:\n  vcpus: 2", "parent:\n  vcpu: 2")),
        "parent.vcpu",
        5,
        "unknown key 'vcpu'; did you mean 'vcpus'?",
    ),
    (
        "unknown-device-key-suggests",
        mutate(("    vfs: 2\n", "    vfs: 2\n    channel: 4\n")),
        "devices[ssd].channel",
        10,
        "did you mean 'channels'?",
    ),
    (
        "unknown-stream-key-suggests",
        mutate(("rate: 2k}", "rate: 2k, sise: 4KiB}")),
        f"children[db].{STREAM0}.sise",
        16,
        "did you mean 'size'?",
    ),
    (
        "string-where-int",
        mutate(("cores: 4", "cores: four")),
        "host.cores",
        3,
        "valid integer",
    ),
    (
        "float-where-int",
        mutate(("cores: 4", "cores: 4.5")),
        "host.cores",
        3,
        "valid integer",
    ),
    (
        "boolean-where-int",
        mutate(("cores: 4", "cores: true")),
        "host.cores",
        3,
        "valid integer",
    ),
    (
        "boolean-where-vf-count",
        mutate(("vfs: 2", "vfs: false")),
        "devices[ssd].vfs",
        9,
        "valid integer",
    ),
    (
        "cores-zero",
        mutate(("cores: 4", "cores: 0")),
        "host.cores",
        3,
        "greater than or equal to 1",
    ),
    (
        "negative-rate",
        mutate(("rate: 2k", "rate: -5")),
        f"children[db].{STREAM0}.rate",
        16,
        "negative",
    ),
    (
        "zero-rate",
        mutate(("rate: 2k", "rate: 0")),
        f"children[db].{STREAM0}.rate",
        16,
        "greater than 0",
    ),
    (
        "rate-not-a-rate",
        mutate(("rate: 2k", "rate: lots")),
        f"children[db].{STREAM0}.rate",
        16,
        "'lots' is not an event rate",
    ),
    (
        "replications-zero",
        mutate(("replications: 1", "replications: 0")),
        "run.replications",
        27,
        "greater than or equal to 1",
    ),
    (
        "negative-seed",
        mutate(("seed: 7", "seed: -1")),
        "run.seed",
        26,
        "greater than or equal to 0",
    ),
    (
        "bad-time-unit",
        mutate(("duration: 20ms", "duration: 30 parsecs")),
        "run.duration",
        24,
        "'30 parsecs' is not a time",
    ),
    (
        "time-without-unit",
        mutate(("duration: 20ms", "duration: 30")),
        "run.duration",
        24,
        "needs a time unit",
    ),
    (
        "fractional-bytes",
        mutate(("read, size: 4KiB", "read, size: 1.5B")),
        f"children[db].{STREAM0}.size",
        16,
        "not a whole number of bytes",
    ),
    (
        "bad-bitrate-on-nic",
        mutate(("devices:\n", "devices:\n  - {name: nic0, type: nic, line_rate: fast}\n")),
        "devices[nic0].line_rate",
        7,
        "'fast' is not a bit rate",
    ),
    (
        "unknown-device-type",
        mutate(("type: nvme", "type: gpu")),
        "devices[ssd].type",
        8,
        "'type' must be one of: nic, nvme",
    ),
    (
        "device-does-not-exist",
        mutate(
            (
                "    device: ssd\n    streams:\n      - {op: write",
                "    device: nic9\n    streams:\n      - {op: write",
            )
        ),
        "children[app].device",
        20,
        "no device named 'nic9' (devices: ssd)",
    ),
    (
        "streams-without-device",
        mutate(
            (
                "    device: ssd\n    streams:\n      - {op: write",
                "    streams:\n      - {op: write",
            )
        ),
        "children[app].device",
        17,
        "a child with streams needs a 'device'",
    ),
    (
        "op-not-on-device",
        mutate(("op: read", "op: send")),
        f"children[db].{STREAM0}.op",
        16,
        "'send' is not an operation of nvme device 'ssd' (use read, write)",
    ),
    (
        "vf-beyond-count",
        mutate(("    io_path: direct\n", "    io_path: direct\n    vf: 2\n")),
        "children[app].vf",
        20,
        "VF 2 does not exist: device 'ssd' has 2 VFs (0..1)",
    ),
    (
        "same-fixed-vf-twice",
        mutate(
            ("    io_path: direct\n", "    io_path: direct\n    vf: 1\n"),
            ("    io_path: routed\n", "    io_path: direct\n    vf: 1\n"),
        ),
        "children[app].vf",
        21,
        "VF 1 of 'ssd' already assigned to 'db'",
    ),
    (
        "vf-on-routed-child",
        mutate(("    io_path: routed\n", "    io_path: routed\n    vf: 0\n")),
        "children[db].vf",
        14,
        "a VF is assigned only with io_path: direct",
    ),
    (
        "vf-with-count",
        mutate(("    io_path: direct\n", "    io_path: direct\n    count: 2\n    vf: 0\n")),
        "children[app].vf",
        21,
        "a fixed VF index needs count: 1",
    ),
    (
        "irq-vcpu-beyond-vcpus",
        mutate(("    io_path: direct\n", "    io_path: direct\n    irq_vcpu: 2\n")),
        "children[app].irq_vcpu",
        20,
        "vCPU 2 does not exist (2 vCPUs)",
    ),
    (
        "stream-vcpu-beyond-vcpus",
        mutate(("rate: 2k}", "rate: 2k, vcpu: 5}")),
        f"children[db].{STREAM0}.vcpu",
        16,
        "vCPU 5 does not exist (2 vCPUs)",
    ),
    (
        "warmup-equals-duration",
        mutate(("warmup: 0us", "warmup: 20ms")),
        "run.warmup",
        25,
        "warm-up must be shorter than the duration",
    ),
    (
        "warmup-exceeds-duration",
        mutate(("warmup: 0us", "warmup: 1s")),
        "run.warmup",
        25,
        "warm-up must be shorter than the duration",
    ),
    (
        "duplicate-key",
        mutate(("  cores: 4\n", "  cores: 4\n  cores: 8\n")),
        "host.cores",
        4,
        "duplicate key",
    ),
    (
        "duplicate-key-in-named-item",
        mutate(("  - name: db\n    vcpus: 2\n", "  - name: db\n    vcpus: 2\n    vcpus: 3\n")),
        "children[db].vcpus",
        13,
        "duplicate key",
    ),
    (
        "duplicate-child-name",
        mutate(("name: app", "name: db")),
        "children[db].name",
        17,
        "child name 'db' used twice",
    ),
    (
        "duplicate-device-name",
        mutate(("    vfs: 2\n", "    vfs: 2\n  - {name: ssd, type: nic}\n")),
        "devices[ssd].name",
        10,
        "device name 'ssd' used twice",
    ),
    (
        "rate-and-outstanding",
        mutate(("rate: 2k}", "rate: 2k, outstanding: 4}")),
        f"children[db].{STREAM0}",
        16,
        "give either 'rate' (open loop) or 'outstanding' (closed loop)",
    ),
    (
        "neither-rate-nor-outstanding",
        mutate((", outstanding: 2}", "}")),
        f"children[app].{STREAM0}",
        22,
        "give either 'rate' (open loop) or 'outstanding' (closed loop)",
    ),
    (
        "empty-streams",
        mutate((APP_STREAM, "    streams: []\n")),
        "children[app].streams",
        21,
        "a child needs I/O 'streams' or a 'cpu_load'",
    ),
    (
        "yaml-syntax-error",
        mutate(("  cores: 4\n", "  cores: 4: 5\n")),
        "",
        3,
        "YAML: mapping values are not allowed here",
    ),
    (
        "yaml-tab-indent",
        mutate(("  cores: 4\n", "\tcores: 4\n")),
        "",
        3,
        "YAML: found character '\\t' that cannot start any token",
    ),
    ("empty-file", "", "", None, "file is empty"),
    ("whitespace-only-file", "  \n\t\n   \n", "", None, "file is empty"),
    ("top-level-list", "- a\n- b\n", "", 1, "a scenario must be a mapping"),
    ("top-level-scalar", "just some text\n", "", 1, "a scenario must be a mapping"),
    (
        "unsafe-python-tag",
        MINI + f"x: {UNSAFE}\n",
        "",
        28,
        "!!python/object/apply:os.system' is not allowed (scenario files are plain data)",
    ),
    (
        "unsafe-python-tag-whole-file",
        UNSAFE + "\n",
        "",
        1,
        "!!python/object/apply:os.system' is not allowed",
    ),
    (
        "custom-tag",
        mutate(("cores: 4", "cores: !foo 4")),
        "",
        3,
        "YAML tag '!foo' is not allowed",
    ),
    (
        "smt-threads-not-dividing-the-lps",
        mutate(("  cores: 4\n", "  cores: 4\n  threads_per_core: 3\n")),
        "host",
        2,
        "cores (4 LPs) must be a multiple of threads_per_core (3)",
    ),
    (
        "unknown-io-path",
        mutate(("io_path: routed", "io_path: warp")),
        "children[db].io_path",
        13,
        "must be 'routed', 'direct', 'native', 'hypervisor' or 'emulated' (got 'warp')",
    ),
    (
        "receive-on-a-drive",
        mutate(("op: read", "op: receive")),
        f"children[db].{STREAM0}.op",
        16,
        "'receive' is not an operation of nvme device 'ssd' (use read, write)",
    ),
    (
        "removed-iotlb-miss-ratio",
        mutate(("  cores: 4\n", "  cores: 4\n  iommu: {iotlb_miss_ratio: 0.05}\n")),
        "host.iommu.iotlb_miss_ratio",
        4,
        "unknown key 'iotlb_miss_ratio'",
    ),
    (
        "gamma-without-cv",
        mutate(("    vfs: 2\n", "    vfs: 2\n    read: {dist: gamma, mean: 10us}\n")),
        "devices[ssd].read",
        10,
        "gamma needs cv",
    ),
    (
        "unknown-distribution",
        mutate(("    vfs: 2\n", "    vfs: 2\n    read: {dist: nope}\n")),
        "devices[ssd].read",
        10,
        "'dist' must be one of constant, exponential, gamma",
    ),
]
BAD_BY_ID = {case[0]: case for case in BAD}


def _bad(*ids: str) -> list[object]:
    return [pytest.param(*BAD_BY_ID[i][1:], id=i) for i in ids]


def _assert_one_error_line(stderr: str, *parts: str) -> None:
    """stderr is a single 'error: ...' line containing every part and no traceback."""
    assert stderr.endswith("\n"), repr(stderr)
    assert len(stderr.splitlines()) == 1, repr(stderr)
    assert stderr.startswith("error: "), repr(stderr)
    assert "Traceback" not in stderr
    for part in parts:
        assert part in stderr, f"{part!r} not in {stderr!r}"


# ---------------------------------------------------------------------------------------
# The valid baseline of the table
# ---------------------------------------------------------------------------------------
def test_mini_scenario_is_valid() -> None:
    """The unmutated minimal scenario loads, so every failure below is due to its mutation."""
    scn = loads(MINI, file="mini.yaml")
    assert [name for name, _ in scn.instances()] == ["db", "app"]
    assert scn.children[0].streams[0].rate == 2000.0
    assert scn.children[1].streams[0].outstanding == 2
    assert scn.run.duration == 20_000.0


# ---------------------------------------------------------------------------------------
# Bad input: one ScenarioError with file, field path, line and message
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "path", "line", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in BAD]
)
def test_bad_input_gives_one_precise_error(
    text: str,
    path: str,
    line: int | None,
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad scenario raises ScenarioError naming file, field path, line and the problem."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as info:
        loads(text, file="mini.yaml")
    err = info.value
    assert (err.file, err.path, err.line) == ("mini.yaml", path, line)
    assert fragment in err.message
    where = f"mini.yaml:{line}" if line else "mini.yaml"
    assert str(err) == (f"{where}: {path}: {err.message}" if path else f"{where}: {err.message}")
    assert "\n" not in str(err)
    assert not (tmp_path / MARKER).exists(), "a YAML tag executed a command"


def test_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is reported as 'no such file' with its name."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as info:
        load(missing)
    assert (info.value.file, info.value.path, info.value.line) == (str(missing), "", None)
    assert str(info.value) == f"{missing}: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    """A directory given as the scenario file is rejected with one line, not an OSError."""
    with pytest.raises(ScenarioError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a scenario file"


def test_override_with_unknown_child_name(write_scenario: Callable[..., Path]) -> None:
    """A --set override naming a child that does not exist says which item is missing."""
    path = write_scenario(MINI, "mini.yaml")
    with pytest.raises(ScenarioError) as info:
        load(path, {"children[web].streams[0].rate": "5k"})
    err = info.value
    assert (err.file, err.path, err.line) == ("--set", "children[web].streams[0].rate", None)
    assert str(err) == "--set: children[web].streams[0].rate: no item named 'web'"


def test_count_with_duplicate_expanded_name() -> None:
    """Names must stay unique after count expansion: web ×2 clashes with a child 'web-1'."""
    text = mutate(
        ("name: app", "name: web-1"),
        ("  - name: db\n", "  - name: web\n    count: 2\n"),
    )
    with pytest.raises(ScenarioError, match=r"child name 'web-1' used twice"):
        loads(text, file="mini.yaml")


# ---------------------------------------------------------------------------------------
# Overrides and cycles (these were bugs while the tests were written, fixed since)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"run.duration": 30}, "--set: run.duration: 30 needs a time unit, e.g. '30us'"),
        ({"host.bogus": 1}, "--set: host.bogus: unknown key 'bogus'"),
    ],
    ids=["bad-value", "unknown-key"],
)
def test_bad_override_is_blamed_on_set(
    override: dict[str, object], expected: str, write_scenario: Callable[..., Path]
) -> None:
    """An invalid --set value is reported as coming from --set, not from a line of the file."""
    with pytest.raises(ScenarioError) as info:
        load(write_scenario(MINI, "mini.yaml"), override)
    assert (info.value.file, info.value.line) == ("--set", None)
    assert str(info.value).startswith(expected)


@pytest.mark.parametrize(("clock", "expected"), [(None, 1.04), ("5GHz", 0.52)])
def test_cycles_inside_a_distribution_use_the_host_clock(
    clock: str | None, expected: float
) -> None:
    """Cycle counts inside a distribution mapping are converted with host.clock."""
    text = mutate(
        (
            "parent:\n  vcpus: 2\n",
            "parent:\n  vcpus: 2\n  vsp:\n"
            "    request_cost: {dist: gamma, mean: 2600cycles, cv: 0.5}\n",
        )
    )
    if clock:
        text = text.replace("  cores: 4\n", f"  cores: 4\n  clock: {clock}\n", 1)
    cost = loads(text, file="mini.yaml").parent.vsp.request_cost
    assert (cost.name, cost.params["cv"]) == ("gamma", 0.5)
    assert cost.mean == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------------------
# CLI: exit status 2, one line on stderr, nothing written
# ---------------------------------------------------------------------------------------
CLI_CASES = _bad(
    "unknown-nested-key-suggests",
    "bad-time-unit",
    "device-does-not-exist",
    "vf-beyond-count",
    "duplicate-key",
    "yaml-syntax-error",
    "empty-file",
    "top-level-list",
    "custom-tag",
    "unknown-io-path",
    "unknown-distribution",
    "rate-and-outstanding",
)


@pytest.mark.parametrize(("text", "path", "line", "fragment"), CLI_CASES)
def test_cli_run_bad_scenario_exits_2_with_one_line(
    text: str,
    path: str,
    line: int | None,
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """'hvsim run' on a bad scenario returns 2, prints one error line and writes nothing."""
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["run", str(scenario), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    where = f"{scenario}:{line}: " if line else f"{scenario}: "
    _assert_one_error_line(
        captured.err, "error: " + where + (f"{path}: " if path else ""), fragment
    )
    assert captured.out == ""
    assert not out.exists()


def test_cli_run_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'hvsim run' on a missing file returns 2 with one line naming the file."""
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "nope.yaml"), "--out", str(out)]) == 2
    _assert_one_error_line(capsys.readouterr().err, "nope.yaml: no such file")
    assert not out.exists()


@pytest.mark.parametrize("flag", ["0", "-3", "1001"])
def test_cli_run_bad_replications_exits_2(
    flag: str, write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """'hvsim run --replications' outside 1..1000 returns 2 with one line and writes nothing."""
    out = tmp_path / "out"
    assert (
        cli.main(["run", str(write_scenario(MINI)), "--replications", flag, "--out", str(out)]) == 2
    )
    _assert_one_error_line(capsys.readouterr().err, "--replications")
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["run", "x.yaml", "--bogus"], ["run"], ["run", "x.yaml", "--seed", "abc"]],
    ids=["unknown-subcommand", "unknown-flag", "missing-argument", "bad-int"],
)
def test_cli_usage_error_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown subcommands or flags end with status 2 and a single error line (no usage dump)."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    _assert_one_error_line(captured.err, "--help)")
    assert "hvsim hvsim" not in captured.err
    assert captured.out == ""


def test_cli_override_with_unknown_child_exits_2(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'hvsim run --set' naming an unknown child returns 2 with one '--set' line."""
    out = tmp_path / "out"
    argv = ["run", str(write_scenario(MINI)), "--set", "children[web].vcpus=3", "--out", str(out)]
    assert cli.main(argv) == 2
    _assert_one_error_line(
        capsys.readouterr().err, "error: --set: children[web].vcpus: no item named 'web'"
    )
    assert not out.exists()


@pytest.fixture(scope="module")
def cli_processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, Path]]:
    """Real 'python -m sim.cli' processes on bad input, started in parallel (imports are slow)."""
    base = tmp_path_factory.mktemp("cli")
    (base / "unsafe.yaml").write_text(BAD_BY_ID["unsafe-python-tag"][1], encoding="utf-8")
    (base / "syntax.yaml").write_text(BAD_BY_ID["yaml-syntax-error"][1], encoding="utf-8")
    (base / "mini.yaml").write_text(MINI, encoding="utf-8")
    runs = {
        "unsafe-tag": ["run", "unsafe.yaml"],
        "yaml-syntax": ["run", "syntax.yaml"],
        "replications-0": ["run", "mini.yaml", "--replications", "0"],
        "unknown-subcommand": ["frobnicate"],
    }
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", "sim.cli", *args, "--out", str(base / f"out-{key}")]
            if args[0] == "run"
            else [sys.executable, "-m", "sim.cli", *args],
            cwd=base,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, args in runs.items()
    }
    results = {}
    for key, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        results[key] = (proc.returncode, err, base)
    return results


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("unsafe-tag", ["unsafe.yaml:28: ", "is not allowed"]),
        ("yaml-syntax", ["syntax.yaml:3: ", "YAML: mapping values are not allowed here"]),
        ("replications-0", ["--replications: must be between 1 and 1000 (got 0)"]),
        ("unknown-subcommand", ["invalid choice: 'frobnicate'"]),
    ],
)
def test_cli_process_exits_2_without_traceback(
    key: str, parts: list[str], cli_processes: dict[str, tuple[int, str, Path]]
) -> None:
    """A real hvsim process on bad input exits 2, prints one line, runs nothing, writes nothing."""
    returncode, stderr, base = cli_processes[key]
    assert returncode == 2, stderr
    _assert_one_error_line(stderr, *parts)
    assert not (base / f"out-{key}").exists()
    assert not (base / "results").exists()
    assert not (base / MARKER).exists(), "a YAML tag executed a command"


def test_cli_runs_the_mini_scenario(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The valid mini scenario runs (20 ms) with exit status 0 and writes its result files."""
    out = tmp_path / "out"
    assert cli.main(["run", str(write_scenario(MINI)), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.strip() == str(out)
    assert (out / "scenario.resolved.yaml").exists()


# ---------------------------------------------------------------------------------------
# hvsim schema
# ---------------------------------------------------------------------------------------
def test_schema_is_json_with_sections_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """'hvsim schema' prints a JSON Schema with every section and its defaults."""
    assert cli.main(["schema"]) == 0
    text = capsys.readouterr().out
    schema = json.loads(text)
    assert {"host", "parent", "devices", "children", "run"} <= set(schema["properties"])
    assert schema["$defs"]["Scheduler"]["properties"]["time_slice"]["default"] == "30ms"
    assert schema["$defs"]["Costs"]["properties"]["hypercall"]["default"] == "2600cycles"
    assert '"30ms"' in text


# ---------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------
def test_override_sets_rate_by_child_name(write_scenario: Callable[..., Path]) -> None:
    """load(path, {'children[db].streams[0].rate': '5k'}) sets that stream's rate to 5000/s."""
    scn = load(write_scenario(MINI), {"children[db].streams[0].rate": "5k"})
    assert scn.children[0].streams[0].rate == 5000.0
    assert scn.children[1].streams[0].outstanding == 2


def test_parse_assignment_splits_path_and_value(write_scenario: Callable[..., Path]) -> None:
    """parse_assignment splits FIELD.PATH=VALUE and reads the value as YAML."""
    assert parse_assignment("run.duration=50ms") == ("run.duration", "50ms")
    assert parse_assignment("children[db].vcpus=3") == ("children[db].vcpus", 3)
    assert parse_assignment("host.posted_interrupts=false") == ("host.posted_interrupts", False)
    scn = load(write_scenario(MINI), dict([parse_assignment("run.duration=50ms")]))
    assert scn.run.duration == 50_000.0


@pytest.mark.parametrize("text", ["run.duration", "x=[1, 2"], ids=["no-equals", "bad-yaml"])
def test_parse_assignment_rejects_malformed_text(text: str) -> None:
    """An assignment without '=' or with unreadable YAML raises ScenarioError from --set."""
    with pytest.raises(ScenarioError) as info:
        parse_assignment(text)
    assert info.value.file == "--set"


def test_replace_returns_validated_copy() -> None:
    """Scenario.replace returns a changed, validated copy and leaves the original as it was."""
    scn = loads(MINI, file="mini.yaml")
    before = scn.to_dict()
    new = replace(scn, {"children[app].vcpus": 4, "run.duration": "50ms"})
    assert new.children[1].vcpus == 4
    assert new.run.duration == 50_000.0
    assert scn.to_dict() == before
    assert scn.children[1].vcpus == 2
    with pytest.raises(ScenarioError) as info:
        replace(scn, {"run.warmup": "1s"})
    assert (info.value.path, info.value.file) == ("run.warmup", "--set")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("children[db.vcpus", "not a field path"),
        ("[0].vcpus", "not a field path"),
        ("children..vcpus", "not a field path"),
        ("children[db]vcpus x", "not a field path"),
        ("children[9].vcpus", "index 9 is past the end (2 items)"),
        ("run.duration[0]", "an index [..] must follow a list"),
        ("run.duration.value", "'value' is not inside a mapping"),
    ],
)
def test_bad_override_path_raises(path: str, fragment: str) -> None:
    """A malformed or impossible override path raises ScenarioError naming the path."""
    data = loads(MINI, file="mini.yaml").to_dict()
    with pytest.raises(ScenarioError) as info:
        apply_override(data, path, 1, "--set")
    assert info.value.path == path
    assert fragment in info.value.message


# ---------------------------------------------------------------------------------------
# Round trip, cycles, count
# ---------------------------------------------------------------------------------------
def test_baseline_round_trips_through_to_dict() -> None:
    """from_dict(to_dict()) of baseline.yaml gives back the same scenario."""
    scn = load(ROOT / "scenarios" / "baseline.yaml")
    again = from_dict(scn.to_dict())
    assert again.to_dict() == scn.to_dict()
    assert again == scn


def test_round_trip_is_exact_for_any_value() -> None:
    """from_dict(to_dict()) and replace() keep every value exactly (3 GHz cycles, 1234567us)."""
    scn = loads(
        mutate(("  cores: 4\n", "  cores: 4\n  clock: 3GHz\n"), ("20ms", "1234567us")),
        file="mini.yaml",
    )
    assert from_dict(scn.to_dict()) == scn
    assert replace(scn, {"run.seed": 8}).host.costs.hypercall == scn.host.costs.hypercall


@pytest.mark.parametrize(("clock", "expected"), [(None, 1.04), ("5GHz", 0.52), ("2.6GHz", 1.0)])
def test_cycle_costs_use_host_clock(clock: str | None, expected: float) -> None:
    """The 2600-cycle hypercall default is converted to µs with host.clock (2.5 GHz default)."""
    text = MINI if clock is None else mutate(("  cores: 4\n", f"  cores: 4\n  clock: {clock}\n"))
    scn = loads(text, file="mini.yaml")
    assert scn.host.costs.hypercall == pytest.approx(expected, rel=1e-12)


def test_count_expands_instances() -> None:
    """count: 3 on a child gives three instances NAME-1..NAME-3 sharing one spec."""
    scn = loads(mutate(("  - name: app\n", "  - name: app\n    count: 3\n")), file="mini.yaml")
    instances = list(scn.instances())
    assert [name for name, _ in instances] == ["db", "app-1", "app-2", "app-3"]
    assert all(spec is scn.children[1] for _, spec in instances[1:])


# ---------------------------------------------------------------------------------------
# Shipped scenarios
# ---------------------------------------------------------------------------------------
SWEEP_FILES = sorted((ROOT / "scenarios").glob("*-sweep.yaml"))  # sweeps beside their scenarios
SCENARIO_FILES = sorted(set((ROOT / "scenarios").glob("*.yaml")) - set(SWEEP_FILES))
CASE_FILES = sorted((ROOT / "scenarios" / "validation").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.name for p in SCENARIO_FILES])
def test_shipped_scenario_loads(path: Path) -> None:
    """Every scenarios/*.yaml file loads and survives a to_dict round trip."""
    scn = load(path)
    assert from_dict(scn.to_dict(), base=path.parent).to_dict() == scn.to_dict()


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.name for p in SWEEP_FILES])
def test_shipped_sweep_loads(path: Path) -> None:
    """Every scenarios/*-sweep.yaml file is a valid sweep whose scenario is beside it."""
    assert load_sweep(path).points


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.name for p in CASE_FILES])
def test_validation_case_scenario_loads(path: Path) -> None:
    """Every scenarios/validation/*.yaml case holds a valid scenario."""
    case = load_case(str(path))
    scn = from_dict(case["scenario"], source=str(path))
    assert scn.children
    assert scn.devices or all(c.cpu_load is not None for c in scn.children)


def test_there_are_scenarios_to_check() -> None:
    """The shipped-scenario tests are not vacuous: the globs find files."""
    assert SCENARIO_FILES
    assert SWEEP_FILES
    assert CASE_FILES


def test_weights_and_caps_need_the_credit_scheduler() -> None:
    """A weight or cap under a policy that has none is an error, not silently ignored."""
    for key, value in (("children[batch].cap", 50), ("parent.weight", 512)):
        with pytest.raises(ScenarioError, match=r"needs host\.scheduler\.policy: credit"):
            load("scenarios/overcommit.yaml", {"host.scheduler.policy": "fair", key: value})
    assert load("scenarios/overcommit.yaml", {"children[batch].cap": 50}).children[4].cap == 50


def test_credit_knobs_need_the_credit_scheduler() -> None:
    """BOOST, ratelimit, tick and accounting period changed under fair are refused;
    a resolved fair scenario (every field written out) still loads back."""
    for key, value in (("boost", False), ("ratelimit", "2ms"), ("tick", "5ms"),
                       ("accounting_period", "60ms")):  # fmt: skip
        with pytest.raises(ScenarioError, match=rf"{key} needs policy: credit"):
            load("scenarios/baseline.yaml",
                 {"host.scheduler.policy": "fair", f"host.scheduler.{key}": value})  # fmt: skip
    fair = load("scenarios/baseline.yaml", {"host.scheduler.policy": "fair"})
    assert from_dict(fair.to_dict()).to_dict() == fair.to_dict()


@pytest.mark.parametrize(("doc", "least"), [("README.md", 2), ("docs/design.md", 1)])
def test_the_documented_scenario_examples_load(doc: str, least: int) -> None:
    """Every whole scenario shown in the README and the design document (a block that
    starts with its name) loads as it is written there."""
    import re

    text = (Path(__file__).resolve().parent.parent / doc).read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("name:")]
    assert len(blocks) >= least
    for block in blocks:
        assert loads(block, doc).children
