"""Crashmovers: gevent coroutines that move spooled crashes to storage, then publish.

The request handler spools a crash (synced to disk) and queues it here; it answers 200 only
after that.  Movers save with retries and back-off until the save succeeds, publish
ACCEPTed crash ids, and only then delete the spooled copy.  The queue is bounded
by bytes: when it is full the handler answers 503 and the client retries later,
so memory stays flat however slow storage gets.
"""

import logging
import time

import gevent
import gevent.event
import gevent.queue
import gevent.threadpool
from everett.manager import Option, parse_bool, parse_data_size

from antenna.durability import barrier_for
from antenna.spool import Spool
from antenna.threadcall import call_in_thread
from antenna.throttler import ACCEPT
from antenna.workerdir import adopt_periodically

LOGGER = logging.getLogger(__name__)


class Overloaded(Exception):
    """The save queue is full; the client should retry later."""


class SpoolUnavailable(Exception):
    """The crash could not be written to the local spool (disk full, I/O error)."""


class CrashIdTaken(Exception):
    """A crash with this id is already in this worker's spool."""


class QueueItem:
    """A queued crash: its spool entry (dumps stay on disk, so memory stays flat)."""

    __slots__ = ("entry", "raw_crash", "queued_at")

    def __init__(self, entry, raw_crash=None):
        self.entry = entry
        self.raw_crash = raw_crash
        self.queued_at = time.monotonic()


# Threads that write spool files for requests.  Requests get their own pool so that a
# client's answer never waits behind crashmovers' storage writes.
SPOOL_THREADS = 32


class CrashMover:
    """Owns the spool, the save queue and the mover coroutines of one worker process."""

    class Config:
        concurrent_crashmovers = Option(
            default="32",
            parser=int,
            doc=(
                "Number of coroutines saving crashes to storage in parallel (each waits "
                "for network or disk syncs most of the time, so more movers make bigger "
                "sync batches)."
            ),
        )
        crashmover_max_queue_bytes = Option(
            default="256mb",
            parser=parse_data_size,
            doc=(
                "Bytes of crashes allowed to wait for storage before new submissions get "
                "``503 Discarded=overloaded`` with Retry-After."
            ),
        )
        crashmover_spool_dir = Option(
            default="./data/spool",
            doc="Local folder where crashes are fsync'd before the client gets its 200.",
        )
        crashmover_spool_fsync = Option(
            default="true",
            parser=parse_bool,
            doc=(
                "Sync spooled crashes to disk before answering (group commit: one thread "
                "syncs the files of all waiting requests, with one ``syncfs`` on Linux); "
                "turn off only where losing power may lose crashes."
            ),
        )
        crashmover_retry_max_sleep = Option(
            default="30",
            parser=float,
            doc="Longest back-off, in seconds, between two attempts to save or publish.",
        )
        crashmover_retry_after = Option(
            default="10",
            parser=int,
            doc="Retry-After seconds sent with ``503 Discarded=overloaded``.",
        )
        crashmover_adopt_interval = Option(
            default="30",
            parser=float,
            doc="Seconds between scans for crashes left in the spool by dead workers.",
        )

    def __init__(self, config, crashstorage, crashpublish, metrics):
        self.config = config.with_options(self)
        self.crashstorage = crashstorage
        self.crashpublish = crashpublish
        self.metrics = metrics
        self.max_queue_bytes = self.config("crashmover_max_queue_bytes")
        self.retry_after = self.config("crashmover_retry_after")
        self.max_sleep = self.config("crashmover_retry_max_sleep")
        self.spool = Spool(self.config("crashmover_spool_dir"))
        self.spool_barrier = (
            barrier_for(self.spool.dir) if self.config("crashmover_spool_fsync") else None
        )
        self.spool_threads = gevent.threadpool.ThreadPool(SPOOL_THREADS)
        self.storage_threads = gevent.threadpool.ThreadPool(self.config("concurrent_crashmovers"))
        self.queue = gevent.queue.Queue()
        self.queued_bytes = 0
        self.in_flight = 0
        self.idle = gevent.event.Event()
        self.idle.set()
        self.workers = []
        self.adopter = None
        self.accepting = True

    def start(self):
        """Spawn the movers and queue whatever dead workers left in the spool."""
        self.adopt_orphans()
        self.workers = [
            gevent.spawn(self.mover_loop) for _ in range(self.config("concurrent_crashmovers"))
        ]
        self.adopter = gevent.spawn(
            adopt_periodically,
            self.config("crashmover_adopt_interval"),
            self.adopt_orphans,
            "spooled crashes",
        )

    def adopt_orphans(self):
        for entry in self.spool.adopt_orphans():
            LOGGER.info("re-queued spooled crash", extra={"crash_id": entry.crash_id})
            self.enqueue(QueueItem(entry))

    def enqueue(self, item):
        self.queued_bytes += item.entry.size
        self.in_flight += 1
        self.idle.clear()
        self.queue.put(item)
        self.metrics.gauge("save_queue_size", self.queue.qsize())

    def is_full(self, incoming_bytes):
        """True when a crash of this size would not fit in the save queue."""
        return not self.accepting or self.queued_bytes + incoming_bytes > self.max_queue_bytes

    def accept(self, report, raw_crash):
        """Spool a crash durably and queue it.

        Raises ``Overloaded`` when the queue is full, ``CrashIdTaken`` when the id is
        already spooled here, ``SpoolUnavailable`` when the disk refuses the write.
        """
        if self.is_full(report.size):
            raise Overloaded()
        try:
            entry = call_in_thread(self.spool_threads, self.spool.write, report, raw_crash)
        except FileExistsError as exc:
            raise CrashIdTaken(report.crash_id) from exc
        except OSError as exc:
            self.spool.discard(report)
            raise SpoolUnavailable(str(exc)) from exc
        try:
            if self.spool_barrier:
                self.spool_barrier.wait(entry.files)
        except OSError as exc:
            self.spool.remove(entry)
            raise SpoolUnavailable(str(exc)) from exc
        self.enqueue(QueueItem(entry, raw_crash))
        return entry

    def mover_loop(self):
        while True:
            item = self.queue.get()
            try:
                self.handle(item)
            except Exception:
                # Never lose a mover; the crash stays spooled and is retried via adoption.
                LOGGER.exception("crash handling failed", extra={"crash_id": item.entry.crash_id})
            finally:
                self.queued_bytes -= item.entry.size
                self.in_flight -= 1
                self.metrics.gauge("save_queue_size", self.queue.qsize())
                if self.in_flight == 0:
                    self.idle.set()

    def handle(self, item):
        crash_id = item.entry.crash_id
        if item.raw_crash is None:
            # Adopted from a dead worker: check its dumps before storage links them.
            item.raw_crash, _ = call_in_thread(self.storage_threads, self.spool.read, item.entry)
        with self.metrics.timer("crash_save.time"):
            self.retry("save", crash_id, self.save, item.entry, item.raw_crash)
        self.metrics.incr("save_crash.count")
        LOGGER.info("saved crash", extra={"crash_id": crash_id})
        if item.raw_crash.get("legacy_processing") == ACCEPT:
            self.retry("publish", crash_id, self.crashpublish.publish, crash_id)
            self.metrics.incr("publish_crash.count")
        if self.crashstorage.blocking_io:
            # Filesystem storage hard-links the files (unless spool and storage are on
            # different filesystems): removing the spool names frees nothing and takes
            # microseconds, less than a thread round trip (which cost ~11 % on p99).
            self.spool.remove(item.entry)
        else:
            # Freeing a just-written 400 KB dump takes about a millisecond: not on the hub.
            call_in_thread(self.storage_threads, self.spool.remove, item.entry)
        self.metrics.timing("crash_handling.time", (time.monotonic() - item.queued_at) * 1000.0)

    def save(self, entry, raw_crash):
        """Local-disk backends take the spooled files, in a thread so the hub keeps serving;
        network backends (cooperative under gevent) get the dumps' bytes."""
        crash_id = entry.crash_id
        if self.crashstorage.blocking_io:
            dump_files = {name: entry.dump_path(name) for name in entry.dump_names}
            call_in_thread(
                self.storage_threads,
                self.crashstorage.save_spooled_crash,
                crash_id,
                raw_crash,
                dump_files,
                entry.manifest_path,
            )
        else:
            _, dumps = call_in_thread(self.storage_threads, self.spool.read, entry)
            self.crashstorage.save_crash(crash_id, raw_crash, dumps)
        self.crashstorage.sync(crash_id, entry.dump_names)

    def retry(self, what, crash_id, func, *args):
        """Call ``func`` until it succeeds, backing off exponentially up to max_sleep."""
        attempt = 0
        while True:
            try:
                return func(*args)
            except Exception as exc:
                attempt += 1
                delay = min(self.max_sleep, 0.5 * 2 ** min(attempt - 1, 10))
                LOGGER.warning(
                    "%s failed (attempt %d), retrying in %.1fs: %r", what, attempt, delay, exc,
                    extra={"crash_id": crash_id},
                )
                self.metrics.incr(f"{what}_crash_exception.count")
                gevent.sleep(delay)

    def join(self, timeout=None):
        """Wait until every queued crash is handled; True if the queue drained."""
        return self.idle.wait(timeout)

    def shutdown(self, timeout):
        """Stop taking crashes, drain what we can within ``timeout``; the rest stays spooled."""
        self.accepting = False
        drained = self.join(timeout)
        gevent.killall(self.workers + ([self.adopter] if self.adopter else []), timeout=1)
        left = len(self.spool.pending())
        self.spool.close()
        LOGGER.info("crashmover stopped; drained=%s, left in spool=%d", drained, left)
        return drained

    def check_health(self):
        problems = []
        if self.spool.owner.closed:
            problems.append("spool closed")
        if self.workers and all(w.dead for w in self.workers):
            problems.append("no crashmover running")
        return problems
