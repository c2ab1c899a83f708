"""Running a scenario: ``R`` replications (replication ``r`` draws every stream from the
root seed with ``r`` in its spawn key, so replications are independent and the whole is
reproducible), then their tables (:func:`sim.results.tables.tabulate`).

Replications can run in a pool of ``workers`` processes (:func:`replicate`): each draws
only from its own spawn key, and their records are put together in replication order,
so the result is identical to a serial run's, whatever the number of workers.

A worker does not send its records' arrays (megabytes per replication) through the
pool's pipe, where each 64 KiB waits for this process's reader to be scheduled on cores
the other workers keep busy: it leaves them in a file of a :class:`Spool` (a temporary
folder in memory where the system has ``/dev/shm``, else, or when that is full, on
disk), out of band of the pickle (protocol 5), and sends the rest. This process maps
the file, the arrays view the mapping, and deletes it (its memory is returned when the
arrays go). Same records, bit for bit."""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed

from sim.model.host import simulate
from sim.model.records import RunData
from sim.results.result import Result
from sim.results.tables import tabulate
from sim.scenario.schema import Scenario


def cores() -> int:
    """The cores this process may run on (the default number of workers of the CLI)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def replicate(
    scenario: Scenario,
    replications: int,
    root: int,
    workers: int = 1,
    progress: Callable[[float], None] | None = None,
) -> list[RunData]:
    """The records of replications 0 … ``replications`` − 1, in that order, simulated in
    up to ``workers`` processes, at most one per replication and per core (serially in
    this one for 1). ``progress`` (if given) is called with increments of simulated µs:
    by slices of each replication when serial, by whole replications as they end when
    in processes."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    workers = min(workers, replications, cores())
    if workers <= 1:
        return [simulate(scenario, r, root, progress) for r in range(replications)]
    with Spool() as spool, ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [spool.submit(pool, scenario, r, root) for r in range(replications)]
        try:
            if progress is not None:
                for f in as_completed(futures):
                    f.result()
                    progress(float(scenario.run.duration))
            return [spool.receive(f.result()) for f in futures]
        except BaseException:  # interrupted, or one failed: the rest never starts
            pool.shutdown(wait=False, cancel_futures=True)
            raise


Parcel = tuple[bytes, str, list[int]]
"""A replication's records as a worker sends them (:meth:`Spool.submit`): the pickle
without its arrays' data, the file holding that data, and each array's length in bytes."""

_ALIGN = 64
"""Each array's data starts at a multiple of this many bytes in a parcel's file."""


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _simulate_into(
    folders: Sequence[str], scenario: Scenario, replication: int, root: int
) -> Parcel:
    """In a worker: simulate one replication and leave its arrays' data in a file of the
    first of ``folders`` that takes it (a full or vanished one: the next)."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(simulate(scenario, replication, root), 5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    prefix, sizes = f"replication-{replication}-", [v.nbytes for v in views]
    for folder in folders[:-1]:
        try:
            return head, _write_parcel(folder, prefix, views), sizes
        except OSError:  # full or gone: the next
            continue
    return head, _write_parcel(folders[-1], prefix, views), sizes


def _write_parcel(folder: str, prefix: str, views: Sequence[memoryview]) -> str:
    """A new file of ``folder`` holding ``views``, each from a multiple of :data:`_ALIGN`
    bytes; nothing left behind if it cannot be written whole."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        with open(fd, "wb") as f:
            for v in views:
                f.write(v)
                f.write(bytes(_padded(v.nbytes) - v.nbytes))
    except BaseException:
        os.unlink(path)
        raise
    return path


class Spool:
    """Temporary folders through which pool workers hand this process their
    replications' records (module docstring): one in memory (``/dev/shm``, where the
    system has it) and one in the system's temporary folder, for records the first cannot
    take (a container's ``/dev/shm`` is often 64 MB). Removed, with anything left in
    them, when closed (a ``with`` block, or :meth:`close`)."""

    def __init__(self) -> None:
        shm = "/dev/shm"
        where = [shm] if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else []
        self._dirs = [tempfile.TemporaryDirectory(prefix="hvsim-spool-", dir=d)
                      for d in [*where, None]]  # fmt: skip
        self.folders = [d.name for d in self._dirs]  # where records go, the first that takes them

    def submit(self, pool: Executor, scenario: Scenario, replication: int, root: int) -> Future:
        """Simulate one replication in ``pool``: a future of its :data:`Parcel`."""
        return pool.submit(_simulate_into, self.folders, scenario, replication, root)

    @staticmethod
    def receive(parcel: Parcel) -> RunData:
        """The records a worker sent, their arrays viewing its file, mapped copy-on-write
        (a page of the file is read, not copied, until written to); the file is deleted at
        once and its memory returned when the arrays go."""
        head, path, sizes = parcel
        starts = [0]
        for n in sizes:
            starts.append(starts[-1] + _padded(n))
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size < starts[-1]:
                raise OSError(f"{path}: shorter than the {starts[-1]} bytes its worker wrote")
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if starts[-1] else b""
        os.unlink(path)
        view = memoryview(data)
        buffers = [view[at : at + n] for at, n in zip(starts, sizes, strict=False)]
        run: RunData = pickle.loads(head, buffers=buffers)
        return run

    @staticmethod
    def discard(parcel: Parcel) -> None:
        """Delete a parcel's file unread (records no longer wanted)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(parcel[1])

    def close(self) -> None:
        """Remove the folders and whatever is left in them."""
        for d in self._dirs:
            d.cleanup()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    workers: int = 1,
) -> Result:
    """Simulate ``scenario`` ``replications`` times (default: the scenario's) in up to
    ``workers`` processes → :class:`Result` (the same for any number of workers);
    ``progress`` (if given) is called with the simulated µs done as the replications go
    (``replications × run.duration`` in all), results unchanged."""
    reps = scenario.run.replications if replications is None else replications
    if reps < 1:
        raise ValueError("replications must be at least 1")
    root = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    runs = replicate(scenario, reps, root, workers, progress)
    wall = time.perf_counter() - t0
    return tabulate(scenario, runs, root, wall)
