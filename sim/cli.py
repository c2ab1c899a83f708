"""The ``hvsim`` command.

Exit status: 0 success, 2 invalid input (one line on stderr: ``error: FILE[:LINE]:
field.path: what is wrong``; nothing written), 1 anything else (a validation case that
fails, a write that failed: ``error: cannot write DIR: reason``, an unexpected error), 141
when the reader of the output went away (``hvsim schema | head -1``: the rest of the output
is dropped quietly, as by a command killed by SIGPIPE). The CLI is the only place that
prints. Every result directory is written by the result store (:mod:`sim.results.store`):
``--out`` is checked before anything is simulated: an existing result (run, comparison,
capacity search) is not replaced, and a directory holding files hvsim did not write is not
written into, unless ``--force`` (a sweep's directory is resumed, never replaced). ``hvsim presets``
lists the platform presets (:mod:`sim.scenario.presets`); ``hvsim presets NAME`` shows one, every
value with its source.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sim.results.store import OutError, WriteError, hvsim_version

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
EXIT_PIPE = 141
"""The reader of stdout went away (``hvsim schema | head -1``): hvsim stops quietly with
the status of a command killed by SIGPIPE (128 + 13), as a shell reports it."""

_PLANNED: dict[str, str] = {}  # commands of the design not built yet: name → what it does


class InputError(Exception):
    """A problem with what the user gave; the message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hvsim", description="Discrete-event simulator of a virtualized server.")
    p.add_argument("--version", action="version", version=f"hvsim {hvsim_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario → results/<name>/")
    r.add_argument("scenario", help="scenario file (YAML)")
    _common(r)

    c = sub.add_parser(
        "compare", help="the scenario on each I/O path, paired → results/<name>-compare/"
    )
    c.add_argument("scenario", help="scenario file (YAML)")
    c.add_argument("--paths", default="routed,direct", help="comma-separated, first is the base")
    _common(c)

    w = sub.add_parser("sweep", help="a grid of scenarios → results/<study>/ (resumable)")
    w.add_argument("sweep", help="sweep file, or a scenario with a sweep: section")
    w.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel workers (default: the cores; at most one per replication to compute)",
    )
    w.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786")
    w.add_argument(
        "--executor",
        default="auto",
        choices=["auto", "serial", "processes", "dask"],
        help="auto: serial for 1 worker, else a local process pool; Dask with --scheduler "
        "(dask: a Dask LocalCluster)",
    )
    w.add_argument("--out", help="study directory (default: results/<study>)")
    _force(w, resumed=True)
    w.add_argument("--quiet", action="store_true", help="print only the study directory")
    w.add_argument("--report", action="store_true", help="also write the study's report.html")
    w.add_argument(
        "--allow-outside",
        action="store_true",
        help="let the sweep file's 'scenario' lie outside the sweep file's folder tree",
    )

    k = sub.add_parser(
        "capacity",
        help="largest load (or number of children) meeting an SLO, per path "
        "→ results/<name>-capacity/",
    )
    k.add_argument("scenario", help="scenario file (YAML)")
    _outside(k)
    k.add_argument(
        "--slo",
        required=True,
        help="e.g. 'p99<=500us', 'mean<=100us', 'p999<=2ms and throughput>=20Gbps' "
        "(mean or any percentile, e.g. p95, p99.9, p99.99, <= a time; throughput >= a "
        "bit or request rate)",
    )
    k.add_argument(
        "--vary",
        default="load",
        choices=["load", "children"],
        help="load: a factor on every open-loop rate (default); children: the count of "
        "one child entry",
    )
    k.add_argument(
        "--paths",
        default="routed,direct",
        help="comma-separated I/O paths, every I/O child switched to each (default "
        "routed,direct); as-is: the scenario's own paths",
    )
    k.add_argument(
        "--child",
        help="the child entries the SLO is about, comma-separated (default: every child "
        "with I/O); with --vary children, the one whose count varies",
    )
    k.add_argument(
        "--resolution",
        type=float,
        default=0.05,
        help="relative resolution of the load factor (default 0.05)",
    )
    k.add_argument(
        "--max-points", type=int, default=16, help="most points simulated per path (default 16)"
    )
    k.add_argument(
        "--per-round",
        type=int,
        metavar="K",
        help="points simulated together in each round of the search (k-section; default: "
        "--workers); the result depends on K, not on --workers",
    )
    k.add_argument(
        "--under",
        action="append",
        default=[],
        metavar="KIND[:TARGET]",
        help="a degraded state the SLO must hold in too, for the whole window (repeatable): "
        "vf_revoke[:CHILD], parent_crash, parent_hang, device_reset:DEVICE, "
        "hv_driver_crash:DEVICE, lp_offline:LP, child_crash:CHILD; the binding one is named",
    )
    k.add_argument("--out", help="result directory (default: results/<name>-capacity)")
    _force(k)
    k.add_argument("--seed", type=int, help="root seed (default: the scenario's run.seed)")
    k.add_argument(
        "--replications",
        type=int,
        help="replications per point, at least 2 (default: run.replications)",
    )
    k.add_argument(
        "--budget",
        type=float,
        metavar="REQUESTS",
        help="refuse points estimated to simulate more requests than this (default: "
        "run.request_budget)",
    )
    k.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD.PATH=VALUE",
        help="override a field, e.g. --set run.duration=200ms (repeatable)",
    )
    k.add_argument(
        "--workers",
        type=int,
        help="processes each point's replications run in (default: the cores; results are "
        "the same for any number)",
    )
    k.add_argument("--quiet", action="store_true", help="print only the result directory")
    k.add_argument("--report", action="store_true", help="also write DIR/report.html")

    a = sub.add_parser(
        "availability",
        help="availability and SLO-violation minutes a year per design, from failure and "
        "repair processes → results/<name>-availability/",
    )
    a.add_argument("scenario", help="scenario file (YAML); its reliability section")
    a.add_argument(
        "--paths",
        default="routed,direct,hypervisor,emulated",
        help="comma-separated I/O paths, every I/O child switched to each (default all "
        "four); as-is: the scenario's own paths",
    )
    a.add_argument("--slo", help="a p99 bound the states are judged by, e.g. 'p99<=1ms'")
    a.add_argument("--years", type=float, default=1.0, help="level-1 horizon (default 1)")
    a.add_argument("--runs", type=int, default=200, help="level-1 horizons (default 200)")
    _common(a)

    v = sub.add_parser("validate", help="model against queueing theory and published figures")
    v.add_argument("cases", nargs="*", help="case files (default: scenarios/validation/*.yaml)")
    v.add_argument("--replications", type=int, help="replications per case (default: the case's)")
    v.add_argument(
        "--suite",
        default="all",
        choices=["theory", "literature", "all"],
        help="theory: queueing theory and scheduler constants; literature: published "
        "figures; all (default)",
    )

    rp = sub.add_parser(
        "report", help="write DIR/report.html for a run, comparison, sweep or capacity search"
    )
    rp.add_argument("directory", help="a result, comparison, study or capacity directory")
    rp.add_argument("--out", help="report file (default: DIR/report.html)")

    f = sub.add_parser(
        "fit", help="fit a stream to a trace (CSV or Parquet): prints its scenario section"
    )
    f.add_argument("trace", help="trace file: timestamp[, op, size] columns")
    f.add_argument("--time-unit", choices=("ns", "us", "ms", "s"), help="unit of timestamps")
    f.add_argument(
        "--size-unit",
        choices=("B", "sectors", "kB", "KiB", "MB", "MiB"),
        help="unit of sizes (default: the header's, else B)",
    )
    f.add_argument("--plot", metavar="PNG", help="also draw the fit against the data")
    cv = sub.add_parser(
        "convert", help="convert blkparse output or typeperf disk counters into a trace CSV"
    )
    cv.add_argument("format", choices=("blkparse", "typeperf"), help="format of the input")
    cv.add_argument("input", help="the file to convert")
    cv.add_argument("output", help="the trace CSV to write")
    cv.add_argument("--seed", type=int, default=1, help="typeperf: seed of the synthesis")
    cv.add_argument("--force", action="store_true", help="replace an existing output file")
    sub.add_parser("schema", help="print the JSON Schema of scenario files")
    ps = sub.add_parser("presets", help="list the presets, or show one with its sources")
    ps.add_argument("name", nargs="?", help="the preset to show: every value and its source")
    ps.add_argument(
        "--diff",
        nargs=2,
        metavar=("A", "B"),
        help="show how preset B differs from A, value by value with sources",
    )
    for name, what in _PLANNED.items():
        sp = sub.add_parser(name, help=f"({what}: not in this version)")
        sp.add_argument("args", nargs="*")
    return p


def _force(p: argparse.ArgumentParser, resumed: bool = False) -> None:
    what = "" if resumed else "replace an existing result in --out, or "
    p.add_argument(
        "--force",
        action="store_true",
        help=f"{what}write beside files hvsim did not write in --out (they are kept)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="result directory (default: under results/)")
    _force(p)
    p.add_argument("--seed", type=int, help="root seed (default: the scenario's run.seed)")
    p.add_argument("--replications", type=int, help="replications (default: run.replications)")
    p.add_argument(
        "--workers",
        type=int,
        help="processes the replications run in (default: the cores; results are the same "
        "for any number)",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="REQUESTS",
        help="refuse runs estimated to simulate more requests than this (default: "
        "run.request_budget, 1e7)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD.PATH=VALUE",
        help="override a field, e.g. --set children[web].streams[0].rate=20k (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the result directory")
    p.add_argument("--report", action="store_true", help="also write DIR/report.html")
    _outside(p)


def _outside(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="let the trace files a scenario replays lie outside its folder tree",
    )


def console() -> NoReturn:
    """The ``hvsim`` program: :func:`main` on the command line, then exit with its status.
    What the command leaves is freed by the system as the process ends: frozen
    (:func:`gc.freeze`), it is not walked by the collector once more on the way out (a
    tenth of a second of every command, most of the time an interpreter takes to exit
    with pandas and the simulator loaded)."""
    status = main()
    gc.freeze()
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``hvsim`` with ``argv`` (default: the command line); returns the exit status.
    In-process callers (tests, notebooks) use this; the program is :func:`console`."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader that went away shows here, not at exit
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE


def _drop_stdout() -> None:
    """Send what is left of stdout to /dev/null: the reader (``| head``) is gone, and the
    interpreter's last flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        pass


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    args.argv = argv  # recorded with every result, to reproduce it
    from sim.scenario.errors import ScenarioError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "capacity":
            return _capacity(args)
        if args.command == "availability":
            return _availability(args)
        if args.command == "report":
            print(_report(args.directory, args.out))
            return EXIT_OK
        if args.command == "fit":
            return _fit(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "schema":
            from sim.scenario.schema import json_schema

            print(json.dumps(json_schema(), indent=2))
            return EXIT_OK
        if args.command == "presets":
            print(_presets(args.name, args.diff))
            return EXIT_OK
        print(
            f"error: 'hvsim {args.command}' ({_PLANNED[args.command]}) is not available "
            "in this version",
            file=sys.stderr,
        )
        return EXIT_INPUT
    except (ScenarioError, InputError, OutError, _report_error()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except WriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        if args.command == "sweep":  # each point is stored as it ends (study.py)
            print("error: interrupted; the points that finished are kept: the same command "
                  "computes the others", file=sys.stderr)  # fmt: skip
        else:
            print("error: interrupted; nothing was written", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace, suffix: str = "") -> tuple[Any, Path]:
    """The scenario with its overrides, and the result directory (checked by
    :func:`_check_out` before anything is simulated)."""
    from sim.scenario.source import load, parse_assignment

    if args.replications is not None and not 1 <= args.replications <= 1000:
        raise InputError(f"--replications: must be between 1 and 1000 (got {args.replications})")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise InputError(f"--seed: must be between 0 and 2**63-1 (got {args.seed})")
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        raise InputError(f"--budget: must be a positive number (got {args.budget})")
    overrides = dict(parse_assignment(a) for a in args.overrides)
    # what the run will be, so that the scenario's budget check sees it
    if args.replications is not None:
        overrides["run.replications"] = args.replications
    if args.budget is not None:
        overrides["run.request_budget"] = args.budget
    scn = load(args.scenario, overrides, allow_outside=getattr(args, "allow_outside", False))
    out = Path(args.out) if args.out else Path("results") / f"{scn.name}{suffix}"
    return scn, out


def _fit(args: argparse.Namespace) -> int:
    """hvsim fit: the stream section fitted to a trace; its plot with --plot."""
    from sim.analysis.fit import fit
    from sim.scenario.traces import read_trace

    if args.plot is not None and not args.plot.endswith(".png"):
        raise InputError(f"--plot: a .png file name (got {args.plot!r})")
    data = read_trace(args.trace, args.time_unit, args.size_unit)
    try:
        fitted = fit(data)
    except ValueError as exc:
        raise InputError(f"{args.trace}: {exc}") from None
    if args.plot is not None:
        from sim.report.fitplot import figure

        _write_atomic(Path(args.plot), lambda tmp: figure(fitted, data).savefig(tmp, dpi=110))
    print(fitted.yaml(), end="")
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    """hvsim convert: a blkparse or typeperf file into a trace CSV."""
    from sim.scenario.traces import convert, to_csv

    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputError(f"{out}: exists; pass --force to replace it")
    data = convert(args.input, args.format, args.seed)
    text = to_csv(data)
    _write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    mix = ", ".join(f"{k} {v:.3g}" for k, v in data.op_mix().items())
    print(f"{out}: {len(data):,} requests over {data.span / 1e6:.6g} s ({mix})")
    return EXIT_OK


def _write_atomic(out: Path, write: Any) -> None:
    """Write ``out`` through a temporary file beside it: whole or not at all."""
    import tempfile

    if out.is_dir():
        raise InputError(f"{out}: is a directory")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{out}: no folder {folder}")
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise WriteError(out, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


MAX_CAPACITY_POINTS = 1000
"""Most points a capacity search may simulate per path (a search brackets the answer in
tens)."""


def _within(option: str, value: float | None, low: float, high: float) -> None:
    """An option's number in [low, high] (None: not given), else one line naming it."""
    if value is not None and not low <= value <= high:  # NaN fails too
        raise InputError(f"{option}: must be between {low:g} and {high:g} (got {value:g})")


def _check_out(out: Path, kind: str, force: bool) -> None:
    """``--out`` usable for a result of ``kind`` (:func:`sim.results.store.check_out`)."""
    from sim.results.store import check_out

    try:
        check_out(out, kind, force)
    except OutError as exc:
        raise InputError(f"--out: {exc}") from None
    _refuse_replacing(out, force)


def _refuse_replacing(out: Path, force: bool) -> None:
    """The command line never replaces an existing result (run, comparison or capacity
    search; its report with it) unless ``--force``: one line saying so. A sweep is not
    checked here: the same study resumes into its directory."""
    from sim.results.store import read_manifest

    if force or not out.is_dir():
        return
    manifest = read_manifest(out)
    if manifest is None or manifest.kind == "sweep":
        return
    raise InputError(
        f"--out: {out} already holds an hvsim {manifest.kind} result; nothing was written "
        "(--force replaces it, or choose another --out)"
    )


def _written(out: Path) -> str:
    """The files hvsim wrote at the top of ``out``, from its manifest."""
    from sim.results.store import MANIFEST, read_manifest

    manifest = read_manifest(out)
    names = {f.split("/")[0] for f in manifest.files} if manifest else set()
    return ", ".join(sorted({*names, MANIFEST}))


def _presets(name: str | None, pair: list[str] | None = None) -> str:
    """``hvsim presets``: one line per preset; ``hvsim presets NAME``: that preset;
    ``hvsim presets --diff A B``: how B differs from A."""
    from sim.report.text import format_preset, format_preset_diff
    from sim.scenario import presets
    from sim.scenario.errors import ScenarioError

    if pair is not None:
        if name is not None:
            raise InputError("presets: give a NAME or --diff A B, not both")
        try:
            return format_preset_diff(*(presets.load(n, file="<cli>") for n in pair))
        except ScenarioError as exc:
            if exc.file == "<cli>":
                raise InputError(f"presets: {exc.message}") from None
            raise
    if name is None:
        found = [presets.load(n) for n in presets.names()]
        width = max((len(p.name) for p in found), default=0)
        lines = [f"{p.name.ljust(width)}  {p.description}" for p in found]
        lines.append("\nhvsim presets NAME shows one; a scenario uses one with 'preset: NAME'.")
        return "\n".join(lines)
    try:
        return format_preset(presets.load(name, file="<cli>"))
    except ScenarioError as exc:
        if exc.file == "<cli>":
            raise InputError(f"presets: {exc.message}") from None
        raise


def _report_error() -> type[Exception]:
    from sim.report.html import ReportError

    return ReportError


def _announce(args: argparse.Namespace, out: Path, table: Callable[[], str], note: str = "") -> int:
    """What run, compare, capacity and availability print once their result is saved in
    ``out``: the directory alone with --quiet, else the ``table`` and the files written
    (``note`` after their list); then the report's line with --report."""
    if args.quiet:
        print(out)
    else:
        print(table())
        print(f"\nresults: {out}/ ({_written(out)}{note})")
    if args.report:
        print(_report(out))
    return EXIT_OK


def _report(directory: str | Path, out: str | None = None) -> str:
    """Write the report of ``directory``; returns the line that tells where it is."""
    from sim.report.html import build

    path = build(directory, out)
    return f"report: {path} ({path.stat().st_size / 1024:.0f} KiB)"


def _terminal() -> bool:
    """Whether both stdout and stderr are terminals: progress is shown only then."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _bar(total: float, desc: str, quiet: bool, unit: str = "ms") -> Any:
    """A progress bar with the time left on stderr (tqdm, as ``sweep``), silent with
    ``--quiet`` or off a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=quiet or not _terminal(),
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, {remaining} left",
    )


def _simulated(bar: Any) -> Any:
    """A model progress callback (simulated µs done) that advances ``bar`` in ms."""
    if bar.disable:
        return None
    return lambda us: bar.update(us / 1000.0)


def explicit_paths(scn: Any) -> list[str]:
    """The fields the scenario file and ``--set`` wrote (:mod:`sim.scenario.explicit`),
    recorded with a result so that its report tells them from defaults."""
    from sim.scenario.explicit import explicit_paths as paths

    return paths(scn)


def _command(args: argparse.Namespace) -> str:
    """The command line that asked for a result, quoted as a shell would need it."""
    return shlex.join(["hvsim", *args.argv])


def _stamp(meta: dict[str, Any], args: argparse.Namespace, scn: Any) -> None:
    """What a result's meta says of how it was asked for: the command line, and which
    fields the scenario file and ``--set`` wrote (the report's "set by")."""
    meta["command"] = _command(args)
    meta["set_in_scenario"] = explicit_paths(scn)


def _workers(args: argparse.Namespace) -> int:
    """``--workers``, or the cores this process may use."""
    from sim.experiment.run import cores

    if args.workers is None:
        return cores()
    if args.workers < 1:
        raise InputError(f"--workers: must be at least 1 (got {args.workers})")
    return int(args.workers)


def _run(args: argparse.Namespace) -> int:
    from sim.experiment.run import run
    from sim.report.text import format_summary

    workers = _workers(args)
    scn, out = _load(args)
    _check_out(out, "run", args.force)
    reps = scn.run.replications if args.replications is None else args.replications
    with _bar(reps * scn.run.duration / 1000.0, f"{scn.name}: simulating", args.quiet) as bar:
        result = run(scn, replications=args.replications, seed=args.seed,
                     progress=_simulated(bar), workers=workers)  # fmt: skip
    _stamp(result.meta, args, scn)
    result.save(out, force=args.force)
    return _announce(args, out, lambda: format_summary(result.summary, scn.name, result.meta))


def _compare(args: argparse.Namespace) -> int:
    from sim.experiment.compare import compare
    from sim.report.text import format_comparison

    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    workers = _workers(args)
    scn, out = _load(args, "-compare")
    from sim.scenario.budget import budget_problem

    over = budget_problem(scn, runs=len(paths), what=f"comparison of {len(paths)} paths")
    if over:
        raise InputError(f"{args.scenario}: run.duration: {over}")
    from sim.experiment.compare import check_paths

    try:  # the paths before the directory: what the user mistyped comes first
        check_paths(paths)
    except ValueError as exc:
        raise InputError(f"--paths: {exc}") from None
    _check_out(out, "compare", args.force)
    reps = scn.run.replications if args.replications is None else args.replications
    total = len(paths) * reps * scn.run.duration / 1000.0
    try:
        with _bar(total, f"{scn.name}: {len(paths)} paths", args.quiet) as bar:
            comparison = compare(scn, paths, replications=args.replications, seed=args.seed,
                                 progress=_simulated(bar), workers=workers)  # fmt: skip
    except ValueError as exc:
        raise InputError(f"--paths: {exc}") from None
    _stamp(comparison.meta, args, scn)
    comparison.save(out, force=args.force)
    return _announce(
        args,
        out,
        lambda: format_comparison(comparison.table, comparison.paths, comparison.meta),
        ": a full result per path",
    )


def _sweep(args: argparse.Namespace) -> int:
    from sim.experiment.study import (
        ExecutorError,
        check_scheduler,
        load_study,
        load_sweep,
        run_sweep,
    )
    from sim.report.text import format_study

    workers = _workers(args)  # more than there are tasks and cores: capped (study.pool_size)
    if args.scheduler is not None:
        try:
            check_scheduler(args.scheduler)
        except ValueError as exc:
            raise InputError(f"--scheduler: {exc}") from None
        if args.executor not in ("auto", "dask"):
            raise InputError(
                f"--scheduler: sends the points to a Dask cluster; it goes with --executor "
                f"dask or auto, not {args.executor}"
            )
    sweep = load_sweep(args.sweep, allow_outside=args.allow_outside)
    try:
        report = run_sweep(
            sweep, args.out, workers=workers, scheduler=args.scheduler,
            executor=args.executor, command=_command(args), force=args.force,
            progress=not args.quiet and _terminal(),
        )  # fmt: skip
    except OutError as exc:
        raise InputError(f"--out: {exc}") from None
    except ExecutorError as exc:
        print(f"error: {'--scheduler: ' if args.scheduler else ''}{exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.quiet:
        print(report.out)
    else:
        used = report.workers
        fewer = (
            ""
            if used in (None, workers) or args.workers is None
            else f" ({used} of the {workers} workers asked)"
        )
        print(
            f"{sweep.study}: {len(sweep.points)} points ({len(report.computed)} computed, "
            f"{len(report.skipped)} already done, {len(report.failed)} failed) on "
            f"{report.executor}{fewer} in {report.wall_s:.1f} s"
        )
        if report.damaged:
            n = len(report.damaged)
            print(
                f"recomputed {n} damaged point{'s' if n != 1 else ''} (stored files that did "
                "not match their hashes)"
            )
        print(format_study(load_study(report.out, report.verified)))
        print(f"\nresults: {report.out}/ (study.json, summary/, requests/, points/)")
        for key in report.failed:
            print(f"failed: point {key}: see {report.out}/failed/{key}.json", file=sys.stderr)
    if args.report:
        print(_report(report.out))
    return EXIT_FAIL if report.failed else EXIT_OK


def _capacity(args: argparse.Namespace) -> int:
    from sim.experiment.capacity import prepare, search
    from sim.experiment.slo import SloError, parse_slo
    from sim.report.plots import capacity_figure
    from sim.report.text import format_capacity, png

    try:
        clauses = parse_slo(args.slo)
    except SloError as exc:
        raise InputError(f"--slo: {exc}") from None
    if not 0 < args.resolution < 1:  # NaN too
        raise InputError(f"--resolution: must be above 0 and below 1 (got {args.resolution:g})")
    _within("--max-points", args.max_points, 2, MAX_CAPACITY_POINTS)
    workers = _workers(args)
    per_round = min(workers, args.max_points) if args.per_round is None else args.per_round
    _within("--per-round", per_round, 1, args.max_points)
    scn, out = _load(args, "-capacity")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    children = [c.strip() for c in args.child.split(",") if c.strip()] if args.child else None
    options = {
        "vary": args.vary,
        "paths": None if paths == ["as-is"] else paths,
        "children": children,
        "replications": args.replications,
        "resolution": args.resolution,
        "max_points": args.max_points,
    }
    try:  # every argument checked before anything runs
        prepare(scn, clauses, **options)
        from sim.experiment.capacity import degraded
        from sim.experiment.compare import on_path

        for state in args.under:
            for p in paths:
                degraded(scn if p == "as-is" else on_path(scn, p), state)
    except ValueError as exc:
        raise InputError(f"capacity: {exc}") from None
    _check_out(out, "capacity", args.force)

    n_paths = len(scn.children) if paths == ["as-is"] else len(paths)
    with _bar(n_paths * args.max_points, f"{scn.name}: capacity", args.quiet, "point") as bar:

        def progress(line: str) -> None:
            bar.write(line, file=sys.stderr)
            bar.update(1)

        cap = search(scn, clauses, seed=args.seed, under=args.under, workers=workers,
                     per_round=per_round, progress=None if bar.disable else progress,
                     **options)  # fmt: skip
    _stamp(cap.meta, args, scn)
    figures = {f"capacity-{m}.png": png(capacity_figure(cap, m)) for m in cap.metrics}
    cap.save(out, files=figures, force=args.force)
    return _announce(args, out, lambda: format_capacity(cap))


def _availability(args: argparse.Namespace) -> int:
    from sim.experiment.availability import estimate, p99_limit
    from sim.experiment.slo import SloError
    from sim.report.availability import format_availability

    try:
        p99_limit(args.slo)
    except (SloError, ValueError) as exc:
        raise InputError(f"--slo: {exc}") from None
    if not (math.isfinite(args.years) and 0 < args.years <= 100):
        raise InputError(f"--years: must be above 0 and at most 100 (got {args.years:g})")
    _within("--runs", args.runs, 2, 100_000)
    scn, out = _load(args, "-availability")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    from sim.scenario.workload import IO_PATHS

    bad = [p for p in paths if p not in IO_PATHS and p != "as-is"]
    if bad or not paths:
        raise InputError(f"--paths: unknown path '{bad[0] if bad else ''}'")
    _check_out(out, "availability", args.force)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    av = estimate(
        scn,
        None if paths == ["as-is"] else paths,
        args.slo,
        args.years,
        args.runs,
        args.replications or scn.run.replications,
        args.seed,
        None if args.quiet else progress,
    )
    _stamp(av.meta, args, scn)
    av.save(out, force=args.force)
    return _announce(args, out, lambda: format_availability(av))


def _validate(args: argparse.Namespace) -> int:
    from sim.experiment.validate import format_table, passed, validate

    _within("--replications", args.replications, 1, 1000)
    with _bar(0, "validate", False, "case") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        table = validate(args.cases or None, replications=args.replications, suite=args.suite,
                         progress=None if bar.disable else progress)  # fmt: skip
    print(format_table(table))
    return EXIT_OK if passed(table) else EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    console()
