"""The result store: the one writer of hvsim's result directories (``hvsim run``,
``compare``, ``sweep``, ``capacity`` and the reports written into them).

What it guarantees:

* **A directory is an hvsim result only if its manifest says so.** ``manifest.json``
  names the kind of result (``run``, ``compare``, ``sweep``, ``capacity``), the hvsim
  version that wrote it and every file hvsim wrote there with its SHA-256 and size. A
  sweep's manifest names its study files; its point files (``summary/KEY.parquet``, ...)
  are hvsim's by their names, and each point lists its own files' hashes in
  ``points/KEY.json`` (:mod:`sim.experiment.study`).
* **hvsim removes or replaces only files its manifest lists.** A directory that holds
  anything else (files no manifest lists, or no manifest at all) is refused before
  anything is computed: :class:`ForeignError`, one line naming the directory and its
  first foreign entries. With ``force`` hvsim writes its files beside them and never
  deletes, replaces or moves a foreign entry; a foreign entry where hvsim must write
  its own is refused even then. A rerun into an earlier result of a run, comparison or
  capacity search (only hvsim's files) replaces it: files of the old manifest that the
  new result does not write are removed.
* **Nothing half-written.** A new directory is written whole into a temporary directory
  beside it and renamed into place. An existing one is never renamed or removed (it may
  be the working directory): every file is written into a temporary directory inside it
  first and then moved over its old version with ``os.replace``; while that happens the
  manifest lists the old and the new files, then the new ones. A write that fails (disk
  full, I/O error) raises :class:`WriteError` (``cannot write DIR: reason``) and leaves
  no temporary, and no parent directory it created.
* **The output directory is checked before anything is computed** (:func:`check_out`):
  its path resolved (``--out ../prev/.`` is ``prev`` itself), creatable (missing parents
  are made when it is written, as ``mkdir -p`` does), not under a regular file, not in
  ``/proc`` or ``/sys``, and writable: a probe directory is created and removed where it
  will be written.
* **Temporaries are named** ``.NAME.tmp-PID`` (and ``.hvsim.tmp-PID`` inside a result
  directory); when hvsim writes ``NAME`` it removes those beside it whose process is gone
  (``os.kill(pid, 0)`` finds none), never those of a live process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario

MANIFEST = "manifest.json"
FORMAT = "hvsim-manifest/1"
KINDS = ("run", "compare", "sweep", "capacity", "availability")
FORBIDDEN = (Path("/proc"), Path("/sys"))
"""Where hvsim never writes: the kernel's files, not a place for results."""
STAGING = "hvsim"
"""``.hvsim.tmp-PID``: the temporary directory inside an existing result directory."""

_IO_PATHS = ("native", "routed", "direct", "hypervisor", "emulated")
_RESULT_FILES = ("summary.csv", "replications.csv", "cpu.csv", "counters.csv",
                 "resources.csv", "sched.csv", "occupancy.csv", "faults.csv",
                 "requests.parquet", "scenario.resolved.yaml", "meta.json")  # fmt: skip
WRITES: dict[str, tuple[str, ...]] = {
    "run": (*_RESULT_FILES, "report.html", MANIFEST),
    "compare": (
        "comparison.csv", "meta.json", "scenario.resolved.yaml", *_IO_PATHS, "report.html",
        MANIFEST,
    ),
    "capacity": (
        "capacity.csv", "points.csv", "replications.csv", "capacity-*.png", "meta.json",
        "scenario.resolved.yaml", "report.html", MANIFEST,
    ),
    "sweep": ("study.json", "summary", "requests", "points", "failed", "report.html", MANIFEST),
    "availability": (
        "availability.csv", "states.csv", "blast.csv", "meta.json", "scenario.resolved.yaml",
        "report.html", MANIFEST,
    ),
}  # fmt: skip
"""The top-level names each kind writes (glob patterns): a foreign entry of such a name is
never written beside, even with ``force``."""
SWEEP_FILES = (
    re.compile(r"(summary|requests)/[0-9a-f]{16}\.parquet"),
    re.compile(r"points/[0-9a-f]{16}\.(yaml|json)"),
    re.compile(r"failed/[0-9a-f]{16}\.json"),
)
"""A study's point files, hvsim's by their names (each point lists their hashes)."""
_SWEEP_GLOBS = ("summary/KEY.parquet", "requests/KEY.parquet", "points/KEY.yaml",
                "points/KEY.json", "failed/KEY.json")  # fmt: skip
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")
_SHOWN = 3
"""Foreign entries named in a refusal; the rest are counted."""


class StoreError(Exception):
    """A result directory cannot be written; ``str()`` is the one line to show."""


class OutError(StoreError):
    """The output directory is not usable (the user's choice of it): exit status 2."""


class ForeignError(OutError):
    """The output directory holds entries hvsim did not write."""


class WriteError(OSError):
    """A write failed (disk full, read-only, I/O error): ``cannot write DIR: reason``."""

    def __init__(self, directory: str | Path, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.directory = str(directory)

    def __str__(self) -> str:
        return f"cannot write {self.directory}: {self.strerror}"


# ---------------------------------------------------------------------------------------
# Versions and provenance
# ---------------------------------------------------------------------------------------
def hvsim_version() -> str:
    """The installed hvsim's version."""
    try:
        return importlib.metadata.version("hvsim")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def versions() -> dict[str, str]:
    """hvsim's, Python's and the model's libraries' versions, the platform, and whether the
    model ran compiled (``model``: the same results either way, docs/design.md §8)."""
    import numpy as np
    import pandas as pd
    import scipy
    import simpy

    import sim.model

    return {
        "hvsim": hvsim_version(),
        "model": "compiled" if sim.model.COMPILED else "interpreted",
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


def stamp(meta: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``meta`` as every result's ``meta.json`` has it: its kind, the command that asked
    for it (None from Python) and the versions, beside the seeds and the rest."""
    out = {"kind": kind, **meta}
    out.setdefault("command", None)
    out.setdefault("versions", versions())
    return out


def scenario_yaml(scenario: Scenario) -> str:
    """A resolved scenario as the YAML text hvsim writes beside its results (a run's
    ``scenario.resolved.yaml``, a sweep point's ``points/<key>.yaml``): its fields in
    order, by libyaml's emitter where PyYAML has it (the same text, faster)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(scenario.to_dict(), Dumper=dumper, sort_keys=False, allow_unicode=True)
    return text


def write_scenario_and_meta(
    directory: Path, scenario: Scenario, meta: Mapping[str, Any], kind: str
) -> None:
    """Every result's ``scenario.resolved.yaml`` (the scenario that ran, resolved) and
    ``meta.json`` (``meta`` :func:`stamp`-ed as ``kind``), written into ``directory``."""
    (directory / "scenario.resolved.yaml").write_text(scenario_yaml(scenario), encoding="utf-8")
    with open(directory / "meta.json", "w", encoding="utf-8") as f:
        json.dump(stamp(meta, kind), f, indent=2, default=str)


# ---------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------
@dataclass
class Manifest:
    """What ``manifest.json`` says: the kind and every file hvsim wrote (relative path →
    ``{"sha256", "size"}``)."""

    kind: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True

    def owns(self, rel: str) -> bool:
        """Whether hvsim wrote the file at ``rel`` (a relative POSIX path)."""
        if rel in self.files:
            return True
        return self.kind == "sweep" and any(p.fullmatch(rel) for p in SWEEP_FILES)

    def holds_dir(self, rel: str) -> bool:
        """Whether a file hvsim wrote lies under the directory ``rel``."""
        if self.kind == "sweep" and rel in ("summary", "requests", "points", "failed"):
            return True
        return any(f.startswith(rel + "/") for f in self.files)


def _safe_rel(rel: Any) -> bool:
    """A relative path inside the directory: no absolute path, no ``..``, no empty part."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    parts = rel.split("/")
    return not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def inside(directory: str | Path, rel: str) -> bool:
    """Whether ``rel`` names an entry inside ``directory`` (after resolving links)."""
    if not _safe_rel(rel):
        return False
    root = Path(directory).resolve()
    target = (root / rel).resolve()
    return target != root and root in target.parents


def read_manifest(directory: str | Path) -> Manifest | None:
    """The manifest of ``directory``, or None when it has none hvsim wrote (missing,
    unreadable, of another format, or naming a path outside the directory)."""
    f = Path(directory) / MANIFEST
    try:
        if f.is_symlink() or not f.is_file():
            return None
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("kind") not in KINDS:
        return None
    files = data.get("files")
    if not isinstance(files, dict):
        return None
    for rel, entry in files.items():
        if not _safe_rel(rel) or rel == MANIFEST or not isinstance(entry, dict):
            return None
        if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("size"), int):
            return None
    return Manifest(str(data["kind"]), dict(files), bool(data.get("complete", True)))


def file_entry(path: str | Path, sync: bool = False) -> dict[str, Any]:
    """A file's manifest entry, ``{"sha256", "size"}``; ``sync`` flushes it to disk too."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = os.fstat(f.fileno()).st_size
        if sync:
            os.fsync(f.fileno())
    return {"sha256": digest, "size": size}


def matches(path: str | Path, entry: Mapping[str, Any]) -> bool:
    """Whether the file at ``path`` is the one ``entry`` describes (size, then SHA-256)."""
    try:
        p = Path(path)
        if p.is_symlink() or not p.is_file() or p.stat().st_size != entry.get("size"):
            return False
        return file_entry(p)["sha256"] == entry.get("sha256")
    except OSError:
        return False


def _manifest_text(kind: str, files: Mapping[str, Any], complete: bool = True) -> str:
    data: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "hvsim": hvsim_version(),
        "written": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete": complete,
    }
    if kind == "sweep":
        data["point_files"] = list(_SWEEP_GLOBS)
    data["files"] = {k: files[k] for k in sorted(files)}
    return json.dumps(data, indent=1) + "\n"


def _write_manifest(
    directory: Path, kind: str, files: Mapping[str, Any], complete: bool = True
) -> None:
    write_file(directory / MANIFEST, _manifest_text(kind, files, complete).encode(), clean=False)


def record(directory: str | Path, names: Iterable[str]) -> None:
    """Add the files ``names`` (relative to ``directory``, just written) to its manifest."""
    d = Path(directory)
    manifest = read_manifest(d)
    if manifest is None:
        raise ForeignError(f"{d} has no hvsim manifest: not writing into it")
    files = dict(manifest.files)
    try:
        for name in names:
            files[name] = file_entry(d / name)
        _write_manifest(d, manifest.kind, files, manifest.complete)
    except OSError as exc:
        raise WriteError(d, exc) from None


# ---------------------------------------------------------------------------------------
# What a directory holds
# ---------------------------------------------------------------------------------------
@dataclass
class Scan:
    """A directory's entries: hvsim's files, foreign entries, and temporaries."""

    owned: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)


def _temporary(rel_dir: str, name: str, manifest: Manifest | None) -> bool:
    """Whether ``name`` in ``rel_dir`` is a temporary hvsim makes there."""
    m = _TEMP.match(name)
    if m is None:
        return False
    inner = m["name"]
    if inner == STAGING or (not rel_dir and inner in (MANIFEST, "study.json", "report.html")):
        return True
    return manifest is not None and manifest.owns(f"{rel_dir}/{inner}" if rel_dir else inner)


def _empty(directory: str) -> bool:
    try:
        with os.scandir(directory) as it:
            return next(it, None) is None
    except OSError:
        return False


def scan(directory: str | Path, manifest: Manifest | None = None) -> Scan:
    """Sort every entry under ``directory`` (links never followed): files its manifest
    lists are hvsim's; a directory none of them lies in (unless empty), a link, or any
    other file is foreign (a foreign directory is one entry, ``name/``); hvsim's
    temporaries aside."""
    root = Path(directory)
    if manifest is None:
        manifest = read_manifest(root)
    out = Scan()
    for here, dirnames, filenames in os.walk(root):
        rel_dir = Path(here).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if _temporary(rel_dir, d, manifest):
                out.temporaries.append(rel)
            elif os.path.islink(os.path.join(here, d)):
                out.foreign.append(rel)
            elif manifest is not None and manifest.holds_dir(rel):
                keep.append(d)
            elif not _empty(os.path.join(here, d)):  # an empty directory holds nothing
                out.foreign.append(rel + "/")
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = f"{rel_dir}/{f}" if rel_dir else f
            full = os.path.join(here, f)
            if rel == MANIFEST and manifest is not None:
                continue
            if _temporary(rel_dir, f, manifest):
                out.temporaries.append(rel)
            elif (
                manifest is not None
                and manifest.owns(rel)
                and not os.path.islink(full)
                and os.path.isfile(full)
            ):
                out.owned.append(rel)
            else:
                out.foreign.append(rel)
    return out


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _compatible(old: str, new: str) -> bool:
    """Whether a ``new`` result may replace an ``old`` one: a run, comparison or capacity
    search any other of them; a sweep only a sweep (it is resumed, never replaced)."""
    return (old == "sweep") == (new == "sweep")


def _refuse_foreign(label: str, kind: str, manifest: Manifest | None, found: Scan) -> None:
    if manifest is not None and not _compatible(manifest.kind, kind):
        raise ForeignError(
            f"{label} holds an hvsim {manifest.kind} result, which a {kind} does not "
            "replace; nothing was written (--force writes beside it)"
        )
    if found.foreign:
        why = "no manifest.json of hvsim lists them" if manifest is None else "not in its manifest"
        clash = _collisions(kind, found)
        force = "--force writes hvsim's files beside them and keeps them"
        if clash:
            them = "it" if len(clash) == 1 else "them"
            force = (
                f"--force writes hvsim's files beside them, but never over {_few(clash)}: "
                f"move {them} away, or choose another directory"
            )
        raise ForeignError(
            f"{label} holds entries hvsim did not write ({_few(found.foreign)}; {why}); "
            f"nothing was written ({force})"
        )


def _collisions(kind: str, found: Scan) -> list[str]:
    """Foreign top-level entries at a name ``kind`` writes."""
    return [
        f
        for f in found.foreign
        if "/" not in f.rstrip("/")
        and any(fnmatchcase(f.rstrip("/"), pattern) for pattern in WRITES[kind])
    ]


def _refuse_collisions(label: str, names: list[str]) -> None:
    if names:
        one = len(names) == 1
        raise ForeignError(
            f"{label} holds {_few(names)}, which hvsim did not write and would have to "
            f"replace (even with --force it never does); nothing was written (move "
            f"{'it' if one else 'them'} away, or choose another directory)"
        )


# ---------------------------------------------------------------------------------------
# Checking where to write
# ---------------------------------------------------------------------------------------
def check_out(out: str | Path, kind: str, force: bool = False) -> Path:
    """Check the output directory ``out`` for a result of ``kind`` before anything is
    computed; returns it resolved. :class:`OutError` (one line) if it cannot be used."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    label = str(out)
    try:
        target = Path(out).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise OutError(f"{label}: not a usable path ({exc})") from None
    for bad in FORBIDDEN:
        if target == bad or bad in target.parents:
            raise OutError(f"{label} is inside {bad}, where hvsim does not write")
    existing = target
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        if existing == target:
            raise OutError(f"{label} exists and is not a directory")
        raise OutError(f"{label} is under {existing}, which is a file, not a directory")
    probe = existing / (f".{STAGING}.tmp-{os.getpid()}" if existing == target
                        else f".{target.name}.tmp-{os.getpid()}")  # fmt: skip
    try:
        probe.mkdir()
        probe.rmdir()
    except FileExistsError:  # this process's own temporary: writable
        pass
    except OSError as exc:
        where = "" if existing == target else f" ({existing} is not writable)"
        raise OutError(f"cannot write {label}{where}: {exc.strerror or exc}") from None
    if existing == target:
        manifest = read_manifest(target)
        found = scan(target, manifest)
        if not force:
            _refuse_foreign(label, kind, manifest, found)
        _refuse_collisions(label, _collisions(kind, found))
    return target


# ---------------------------------------------------------------------------------------
# Temporaries
# ---------------------------------------------------------------------------------------
def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(parent: str | Path, name: str) -> list[Path]:
    """Remove the temporaries ``.NAME.tmp-PID`` (and ``.NAME.old-PID``) in ``parent``
    whose process is gone; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP.match(e.name)
        if m and m["name"] == name and not alive(int(m["pid"])):
            _remove(Path(e.path))
            removed.append(Path(e.path))
    return removed


def clean_tree(directory: str | Path) -> list[Path]:
    """Remove every temporary of a dead process under the result directory ``directory``."""
    root = Path(directory)
    manifest = read_manifest(root)
    removed = []
    for rel in scan(root, manifest).temporaries:
        m = _TEMP.match(PurePosixPath(rel).name)
        if m and not alive(int(m["pid"])):
            _remove(root / rel)
            removed.append(root / rel)
    return removed


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file(
    path: str | Path,
    data: bytes | Callable[[Path], None],
    clean: bool = True,
    directory: str | Path | None = None,
) -> None:
    """Write one file atomically: to ``.NAME.tmp-PID`` beside it, flushed, then renamed
    over ``path``; ``data`` is its bytes or a function writing the temporary. ``clean``
    removes stale temporaries of the name first. A failure raises :class:`WriteError`
    naming ``directory`` (default: the file's) and leaves the old file as it was."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if clean:
            clean_stale(path.parent, path.name)
        try:
            if callable(data):
                data(tmp)
            else:
                tmp.write_bytes(data)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise WriteError(directory if directory is not None else path.parent, exc) from None


def _hash_tree(root: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for here, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            full = Path(here) / f
            files[full.relative_to(root).as_posix()] = file_entry(full, sync=True)
    return files


def _makedirs(directory: Path) -> list[Path]:
    """``mkdir -p directory``; returns the directories it created, outermost first."""
    missing = []
    d = directory
    while not os.path.lexists(d):
        missing.append(d)
        d = d.parent
    created = []
    for m in reversed(missing):
        try:
            m.mkdir()
        except FileExistsError:
            continue
        created.append(m)
    return created


def _cwd_and_up() -> set[Path]:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return set()
    return {cwd, *cwd.parents}


def write_result(
    out: str | Path, kind: str, write: Callable[[Path], None], force: bool = False
) -> Path:
    """Write a result of ``kind`` to the directory ``out``: ``write(where)`` writes every
    file into the (empty, existing) directory ``where``; the store adds the manifest and
    puts them in place (module docstring). Returns ``out`` resolved."""
    target = check_out(out, kind, force)
    label = str(out)
    created: list[Path] = []
    staging: Path | None = None
    try:
        created = _makedirs(target.parent)
        fresh = not os.path.lexists(target)
        where = target.parent if fresh else target
        name = target.name if fresh else STAGING
        clean_stale(where, name)
        stage = where / f".{name}.tmp-{os.getpid()}"
        _remove(stage)
        stage.mkdir()
        staging = stage
        write(stage)
        files = _hash_tree(stage)
        if fresh:
            (stage / MANIFEST).write_text(_manifest_text(kind, files), encoding="utf-8")
            file_entry(stage / MANIFEST, sync=True)
            try:
                stage.rename(target)
                staging = None
            except OSError as exc:  # it appeared meanwhile: write into it as into any other
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                (stage / MANIFEST).unlink()
                moved = target / f".{STAGING}.tmp-{os.getpid()}"
                stage.rename(moved)
                staging = moved
                _update(target, label, kind, moved, files, force)
            _fsync_dir(target.parent)
        else:
            _update(target, label, kind, stage, files, force)
    except BaseException as exc:
        if staging is not None:
            _remove(staging)
            staging = None
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(label, exc) from None
        raise
    finally:
        if staging is not None:
            _remove(staging)
    return target


def _update(
    target: Path,
    label: str,
    kind: str,
    staging: Path,
    files: dict[str, dict[str, Any]],
    force: bool,
) -> None:
    """Move the files of ``staging`` into the existing ``target``, file by file, replacing
    only hvsim's own; then remove hvsim's old files the new result does not have."""
    manifest = read_manifest(target)
    found = scan(target, manifest)
    if not force:
        _refuse_foreign(label, kind, manifest, found)
    owned = set(found.owned)
    clash = [MANIFEST] if manifest is None and os.path.lexists(target / MANIFEST) else []
    for rel in files:
        part = target
        for p in PurePosixPath(rel).parts[:-1]:
            part = part / p
            if os.path.lexists(part) and (part.is_symlink() or not part.is_dir()):
                clash.append(part.relative_to(target).as_posix())
        if os.path.lexists(target / rel) and rel not in owned:
            clash.append(rel)
    _refuse_collisions(label, sorted(set(clash)))
    replace_old = manifest is not None and _compatible(manifest.kind, kind)
    old = {r: manifest.files[r] for r in owned if manifest is not None and r in manifest.files}
    _write_manifest(target, kind, {**old, **files}, complete=False)
    for rel in sorted(files):
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, dest)
    if replace_old:
        keep = _cwd_and_up()
        emptied: set[Path] = set()
        for rel in sorted(owned - set(files)):
            (target / rel).unlink(missing_ok=True)
            emptied.update((target / rel).parents)
        for d in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            if target in d.parents and d.resolve() not in keep:
                with contextlib.suppress(OSError):
                    d.rmdir()  # only if empty: a foreign file keeps its directory
    _write_manifest(target, kind, files)
    _fsync_dir(target)


def open_directory(out: str | Path, kind: str, force: bool = False) -> Path:
    """Make (or reopen) the directory ``out`` for a result written piece by piece (a
    sweep's study): checked as :func:`check_out` does, created, its manifest written
    first, stale temporaries removed. Returns it resolved."""
    target = check_out(out, kind, force)
    try:
        manifest = read_manifest(target)
        created = _makedirs(target)
        try:
            if manifest is None or manifest.kind != kind:
                _write_manifest(target, kind, {})
            clean_tree(target)
        except BaseException:
            for d in reversed(created):
                if d == target:
                    with contextlib.suppress(OSError):
                        (d / MANIFEST).unlink()
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise WriteError(str(out), exc) from None
    return target


def add_file(
    directory: str | Path,
    name: str,
    data: bytes,
    replaceable: Callable[[Path], bool] | None = None,
) -> Path:
    """Write the file ``name`` (a report) into the result ``directory`` and list it in
    its manifest. An existing file of that name is replaced only if the manifest lists
    it (or, in a directory without a manifest, ``replaceable(path)`` says it may be)."""
    d = Path(directory)
    dest = d / name
    manifest = read_manifest(d)
    if os.path.lexists(dest):
        ours = (
            manifest.owns(name) and not dest.is_symlink()
            if manifest is not None
            else replaceable is not None and not dest.is_symlink() and replaceable(dest)
        )
        if not ours:
            raise ForeignError(f"{dest} exists and hvsim did not write it; not replacing it")
    write_file(dest, data, directory=d)
    if manifest is not None:
        record(d, [name])
    return dest
