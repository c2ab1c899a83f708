"""The README: at most 200 lines, and every command in it runs (shortened: a few
milliseconds of simulated time, 2 replications, a temporary --out)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from sim.cli import main

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
SHORT = ["--set", "run.duration=8ms", "--set", "run.warmup=1ms", "--replications", "2"]
CHEAP_CASE = "scenarios/validation/little.yaml"
"""``hvsim validate`` runs every case for minutes; the test runs one cheap case."""


def command_lines() -> list[str]:
    """The lines of the README's plain code blocks (fences without a language) that are
    commands (hvsim or make)."""
    lines, fence = [], None
    for line in README.splitlines():
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
        elif fence == "" and line.startswith(("hvsim ", ".venv/bin/hvsim ", "make ")):
            lines.append(line)
    return lines


def commands() -> list[list[str]]:
    """Every hvsim command of the README's code blocks (``make demo`` as the command its
    comment says it runs), as argument lists after ``hvsim``."""
    found = []
    for line in command_lines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["make", "demo"]:
            words = shlex.split(line.split("# =", 1)[1])
        if words and words[0] in ("hvsim", ".venv/bin/hvsim"):
            found.append(words[1:])
    return found


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 200


def test_readme_commands_are_the_same_in_bash_and_zsh() -> None:
    """No unquoted glob characters (zsh refuses an unmatched [ ] * ?)."""
    for line in command_lines():
        code = line.split(" #", 1)[0]
        unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", code)
        assert not re.search(r"[\[\]*?]", unquoted), line
    for inline in re.findall(r"`(--set [^`]*)`", README):
        assert not re.search(r"[\[\]*?]", re.sub(r"'[^']*'", "", inline)), inline


def test_make_demo_runs_what_the_readme_says() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*\n\t\$\(BIN\)/hvsim (.*)$", makefile, flags=re.M)
    assert recipe is not None
    said = next(line for line in README.splitlines() if line.startswith("make demo "))
    assert shlex.split(recipe[1]) == shlex.split(said.split("# = hvsim", 1)[1])
    install = re.search(r"^\$\(STAMP\):.*?(?=^\S)", makefile, flags=re.M | re.S)
    assert install is not None
    assert "-e ." in install[0]
    assert "[dev]" not in install[0]


def shortened(args: list[str], tmp: Path, n: int) -> list[str]:
    cmd, rest = args[0], args[1:]
    out = ["--out", str(tmp / f"out{n}"), "--quiet"]
    if cmd in ("run", "compare"):
        rest = [a for a in rest if a not in ("--out", "results/demo", "--force")]
        rest = [a for a in rest if a != "--replications" and a != "3"]
        return [cmd, *rest, *SHORT, *out]
    if cmd == "capacity":
        return [cmd, *rest, *SHORT, "--max-points", "2", *out]
    if cmd == "sweep":
        sweep = yaml.safe_load((REPO / rest[0]).read_text(encoding="utf-8"))
        sweep["set"] = {"run.duration": "8ms", "run.warmup": "1ms"}
        sweep["replications"] = 2
        sweep["grid"] = {k: v[:2] for k, v in sweep["grid"].items()}
        sweep["scenario"] = str((REPO / rest[0]).parent / sweep["scenario"])
        file = tmp / "sweep.yaml"
        file.write_text(yaml.safe_dump(sweep), encoding="utf-8")
        # one worker: a Dask cluster of two takes longer to start than the points to run
        before = ["", *rest[:-1]]
        rest = [("1" if b == "--workers" else a) for b, a in zip(before, rest, strict=True)]
        return [cmd, str(file), *rest[1:], "--allow-outside", *out]
    if cmd == "availability":
        return [cmd, *rest, *SHORT, "--runs", "20", *out]
    if cmd == "validate":
        return [cmd, CHEAP_CASE, "--replications", "2"]
    return args


def test_every_readme_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    found = commands()
    kinds = {c[0] for c in found}
    assert {"run", "compare", "sweep", "validate", "capacity", "presets"} <= kinds
    for n, args in enumerate(found):
        assert main(shortened(args, tmp_path, n)) == 0, args
        capsys.readouterr()
