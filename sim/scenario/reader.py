"""Reading input files safely.

:func:`read_text` is the one way every input file (scenario, preset, sweep, validation
case) is read. It guarantees, whatever the path names, an answer within
:data:`PIPE_WAIT_S` or so and never more than ``limit + 1`` bytes in memory:

* only a regular file or a pipe (a FIFO, process substitution ``<(...)``) is read; a
  directory, a device (``/dev/zero``, a terminal), a socket, a symbolic-link loop is refused
  before anything is read;
* a pipe is opened without waiting for its writer and read with a bounded wait: no data
  within :data:`PIPE_WAIT_S` is an error, not a hang;
* at most ``limit + 1`` bytes are read, whatever the file's size says (``/proc`` files say
  0); a longer file is refused;
* a file that cannot be read (``/proc/self/mem``, no permission, a read that would block)
  and text that is not UTF-8 are refused;

each refusal a :class:`ScenarioError` of one line naming the file. :func:`resolve_inside`
resolves a path written in a file relative to that file, and refuses one that leads out
of the file's folder tree (unless allowed).

Then YAML: plain data only (no object construction, no custom tags, no duplicate keys,
bounded depth and aliases), with the line of every value, and locations shown as messages
show them (``children[web].streams[0].rate``)."""

from __future__ import annotations

import errno
import math
import os
import re
import select
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sim.scenario import units
from sim.scenario.errors import ScenarioError
from sim.scenario.fields import MAX_FILE_BYTES, NAME_RE

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a scenario file may have (scenarios need ~8)."""
MAX_ALIASED = 100_000
"""Most values aliases (``*name``) may repeat: a few aliases nested in each other can
stand for billions of values, which anything that walks the data would go through."""
MAX_INT_BITS = 14_000
"""Largest integer a scenario file may write (about 4,200 digits: below Python's limit on
converting integers to text, so every value can be shown in a message)."""


PIPE_WAIT_S = 10.0
"""Longest a pipe is read: a writer that has sent nothing (or not closed its end) by then
never will, as far as hvsim is concerned."""

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_REASONS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "no such file (a part of the path is not a folder)",
    errno.ELOOP: "a loop of symbolic links",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "file name too long",
}


def read_text(
    path: str | Path, limit: int = MAX_FILE_BYTES, what: str = "scenario", file: str | None = None
) -> str:
    """The text of the file at ``path`` (see the module docstring for what is refused);
    ``what`` names the kind of file in messages, ``file`` the file (default: ``path``)."""
    file = str(path) if file is None else file
    data = read_bytes(path, limit, what, file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            file, "", f"not a UTF-8 text file (byte {exc.start:,} is not UTF-8)"
        ) from None


def read_bytes(
    path: str | Path, limit: int = MAX_FILE_BYTES, what: str = "scenario", file: str | None = None
) -> bytes:
    """The bytes of the file at ``path``, refused as :func:`read_text` refuses (all but
    the UTF-8 check): for binary inputs such as Parquet traces."""
    file = str(path) if file is None else file

    def fail(message: str) -> ScenarioError:
        return ScenarioError(file, "", message)

    def refused(exc: OSError) -> ScenarioError:
        if exc.errno == errno.EISDIR:
            return fail(f"is a directory, not a {what} file")
        return fail(_REASONS.get(exc.errno or 0) or exc.strerror or "cannot be read")

    try:
        info = os.stat(path)  # follows links; opens nothing
    except OSError as exc:
        raise refused(exc) from None
    except ValueError:  # a NUL character
        raise fail("not a file name (it holds a NUL character)") from None
    kind = _kind(info.st_mode, what)
    if kind:
        raise fail(kind)
    try:  # O_NONBLOCK: a FIFO opens at once, writer or not; nothing else waits either
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise refused(exc) from None
    try:
        mode = os.fstat(fd).st_mode
        kind = _kind(mode, what)  # replaced since the stat above
        if kind:
            raise fail(kind)
        data = _read_pipe(fd, limit, fail) if stat.S_ISFIFO(mode) else _read_file(fd, limit, fail)
    finally:
        os.close(fd)
    if len(data) > limit:
        size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit:,} bytes"
        raise fail(f"larger than {size}, the most a {what} file may be")
    return data


def _kind(mode: int, what: str) -> str:
    """Why a file of this mode is not read ('' if it is a regular file or a pipe)."""
    if stat.S_ISDIR(mode):
        return f"is a directory, not a {what} file"
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return ""
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind}); a {what} file is a regular file or a pipe"


def _read_file(fd: int, limit: int, fail: Callable[[str], ScenarioError]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        except BlockingIOError:  # /proc/kmsg and the like: would wait for data
            raise fail("cannot be read without waiting (not a regular file's contents)") from None
        except OSError as exc:  # /proc/self/mem: EIO
            raise fail(f"cannot be read: {exc.strerror or exc}") from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_pipe(fd: int, limit: int, fail: Callable[[str], ScenarioError]) -> bytes:
    """A pipe to its end, at most ``limit + 1`` bytes, within :data:`PIPE_WAIT_S`."""
    deadline = time.monotonic() + PIPE_WAIT_S
    poller = select.poll()  # not select(): any fd number, however many files are open
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(math.ceil(left * 1000)):
            if size == 0:
                raise fail(f"no data from pipe in {PIPE_WAIT_S:g} s (is anything writing to it?)")
            raise fail(f"pipe not closed by its writer within {PIPE_WAIT_S:g} s")
        try:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
        except BlockingIOError:  # woken without data: wait again
            continue
        except OSError as exc:
            raise fail(f"cannot be read: {exc.strerror or exc}") from None
        if not chunk:  # every writer closed its end
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def resolve_inside(
    raw: str, folder: Path, file: str, field: str, allow_outside: bool = False
) -> Path:
    """The path ``raw``, written at ``field`` of ``file`` (whose folder is ``folder``),
    relative to ``folder`` (an absolute path as it is). Unless ``allow_outside``, it must
    stay in that folder's tree once ``..`` and symbolic links are resolved; else a
    :class:`ScenarioError` naming the field and ``--allow-outside``. Nothing is read: the
    contents of a refused file never reach a message."""
    try:
        target = folder / raw
        if allow_outside:
            return target
        root = os.path.realpath(folder)
        real = os.path.realpath(target)  # a loop stays unresolved: read_text reports it
    except ValueError:  # a NUL character
        raise ScenarioError(file, field, "not a file name (it holds a NUL character)") from None
    if os.path.commonpath([root, real]) != root:
        raise ScenarioError(
            file,
            field,
            f"{quote(raw)} is outside the folder of this file ({folder}); a path in a file "
            "stays in that folder's tree unless you pass --allow-outside",
        )
    return target


class Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and remembers where each value is."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more digits than int() converts
            value = None
        if value is None or abs(value).bit_length() > MAX_INT_BITS:
            raise yaml.constructor.ConstructorError(
                None, None, "integer with too many digits", node.start_mark
            )
        return int(value)


Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)


def compose(text: str, file: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML safely: plain data, no duplicate keys; also the line of every value."""
    loader = None
    try:
        loader = Loader(text)  # checks every character: a NUL or control byte fails here
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ScenarioError(file, "", f"YAML: nested more than {MAX_DEPTH} levels") from None
        if node is None:
            raise ScenarioError(file, "", "file is empty")
        lines: dict[tuple[Any, ...], int] = {}
        duplicates: list[tuple[tuple[Any, ...], int]] = []
        _index(node, (), lines, duplicates, set())
        deep = max(lines, key=len)
        if len(deep) > MAX_DEPTH:
            raise ScenarioError(
                file, "", f"YAML: nested more than {MAX_DEPTH} levels", lines[deep[: MAX_DEPTH + 1]]
            )
        nodes: dict[int, tuple[int, int]] = {}
        expanded = _expanded(node, nodes, 0)  # and no deeper than MAX_DEPTH through aliases
        if expanded is None:
            raise ScenarioError(file, "", f"YAML: nested more than {MAX_DEPTH} levels")
        if expanded - len(nodes) > MAX_ALIASED:
            raise ScenarioError(
                file, "", f"YAML: aliases repeat more than {MAX_ALIASED} values (*name)"
            )
        data = loader.construct_document(node)
        if duplicates:
            dup_loc, dup_line = duplicates[0]
            raise ScenarioError(file, fmt_path(dup_loc, data), "duplicate key", dup_line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = f"YAML: {exc.problem or 'invalid YAML'}"
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            tag = problem.split("tag", 1)[1].strip().strip("'")
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            problem = f"YAML tag '{tag}' is not allowed (scenario files are plain data)"
        raise ScenarioError(file, "", problem, line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = exc.character  # the code point, for text
        what = f"character U+{char:04X}" if isinstance(char, int) else "this character"
        raise ScenarioError(file, "", f"YAML: {what} is not allowed in a text file", line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, "", f"YAML: {exc}".splitlines()[0]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _index(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    duplicates: list[tuple[tuple[Any, ...], int]],
    seen: set[int],
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen or len(path) > MAX_DEPTH:  # an alias: already indexed, never walked twice
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else id(k)
            if key in keys:
                duplicates.append(((*path, key), k.start_mark.line + 1))
            keys.add(key)
            lines[(*path, key)] = k.start_mark.line + 1
            _index(v, (*path, key), lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _index(v, (*path, i), lines, duplicates, seen)


def _expanded(node: yaml.Node, seen: dict[int, tuple[int, int]], depth: int) -> int | None:
    """How many values ``node`` stands for with every alias expanded; None if that nests
    deeper than :data:`MAX_DEPTH`. ``seen``: (values, height) of each node, walked once."""
    if depth > MAX_DEPTH:
        return None
    if id(node) not in seen:
        inner: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            inner = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            inner = list(node.value)
        size, height = 1, 0
        for n in inner:
            got = _expanded(n, seen, depth + 1)
            if got is None:
                return None
            size, height = size + got, max(height, 1 + seen[id(n)][1])
        seen[id(node)] = (size, height)
    size, height = seen[id(node)]
    return size if depth + height <= MAX_DEPTH else None


def line_of(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def fmt_path(loc: tuple[Any, ...], data: Any) -> str:
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            valid = isinstance(name, str) and NAME_RE.fullmatch(name)  # not a line of junk
            out += f"[{name}]" if valid else f"[{part}]"
            node = item
        else:
            out += f".{key_shown(part)}" if out else key_shown(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def quote(text: str) -> str:
    """'text' as a message quotes what the user wrote (cut short, escaped if not plain)."""
    return f"'{text}'" if text.isprintable() and len(text) <= 40 else units.show(text)


def key_shown(key: Any) -> str:
    """A mapping key as a message shows it: as written if it is a plain word, else quoted
    and cut short (a key may be any text: control characters, a line of 1 MB)."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_.<-]{1,64}", key):
        return key
    return units.show(key)
