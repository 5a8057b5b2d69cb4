"""One-box chaining: the collector's crashmovers hand crash ids to a processor in the same hub.

``CRASHPUBLISH_CLASS=processor.inprocess.InProcessCrashPublish``.  ``publish`` only
queues the id, so neither ``/submit`` nor the crashmover waits for processing;
``PROCESSOR_CONCURRENCY`` coroutines process the queue.  The stackwalker runs as a
child process and Sentry I/O is cooperative, so the hub keeps serving requests.

Each queued id is also an empty marker file in this worker's folder under
``CRASHPUBLISH_QUEUE_DIR`` (``antenna.workerdir``), removed once the crash is processed.
A worker that dies with crashes still queued leaves its markers behind, and a live
worker adopts and processes them: processing is never silently lost.  Markers are
synced (group commit, ``antenna.durability``) before ``publish`` returns, that is before
the crashmover drops the spooled copy: a power cut cannot lose the processing of a
stored crash either.
"""

import contextlib
import logging
import os

import gevent
import gevent.event
import gevent.queue
from everett.manager import Option

from antenna.crashid import is_valid_crash_id
from antenna.durability import barrier_for, sync_dir
from antenna.workerdir import WorkerDir, adopt_periodically
from processor.app import build_processor

LOGGER = logging.getLogger(__name__)


class InProcessCrashPublish:
    """Publishes crash ids to coroutines that process them in this process."""

    class Config:
        queue_dir = Option(
            default="./data/process-queue",
            doc="Local folder of markers for crashes published but not yet processed.",
        )
        adopt_interval = Option(
            default="30",
            parser=float,
            doc="Seconds between scans for crashes left unprocessed by dead workers.",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.queue = gevent.queue.Queue()
        self.folder = WorkerDir(self.config("queue_dir"))
        self.barrier = barrier_for(self.folder.path)
        self.processor = None
        self.workers = []
        self.pending = 0
        self.idle = gevent.event.Event()
        self.idle.set()

    def setup(self, root_config, crashstorage, metrics_backend):
        """Build the processor from the collector's config and storage; start its coroutines."""
        self.processor = build_processor(root_config, crashstorage, metrics_backend)
        self.adopt_orphans()
        self.workers = [
            gevent.spawn(self.worker_loop) for _ in range(self.processor.config("concurrency"))
        ]
        self.workers.append(
            gevent.spawn(
                adopt_periodically,
                self.config("adopt_interval"),
                self.adopt_orphans,
                "unprocessed crashes",
            )
        )

    def marker(self, crash_id):
        return os.path.join(self.folder.path, crash_id)

    def publish(self, crash_id):
        marker = self.marker(crash_id)
        os.close(os.open(marker, os.O_CREAT | os.O_WRONLY, 0o600))
        self.barrier.wait([marker])
        self.enqueue(crash_id)

    def enqueue(self, crash_id):
        self.pending += 1
        self.idle.clear()
        self.queue.put(crash_id)

    def adopt_orphans(self):
        for crash_id in self.folder.adopt_orphans(self.adopt_folder):
            LOGGER.info("re-queued unprocessed crash", extra={"crash_id": crash_id})
            self.enqueue(crash_id)

    def adopt_folder(self, folder):
        """Move a dead worker's markers here; return their crash ids."""
        adopted = []
        for crash_id in self.folder.entries(folder):
            if is_valid_crash_id(crash_id):
                os.replace(os.path.join(folder, crash_id), self.marker(crash_id))
                adopted.append(crash_id)
        if adopted:
            sync_dir(self.folder.path)
        return adopted

    def worker_loop(self):
        while True:
            crash_id = self.queue.get()
            try:
                self.processor.process_crash(crash_id)
                with contextlib.suppress(FileNotFoundError):  # published twice: done once
                    os.unlink(self.marker(crash_id))
            except Exception:
                LOGGER.exception("processing failed", extra={"crash_id": crash_id})
            finally:
                self.pending -= 1
                if self.pending == 0:
                    self.idle.set()

    def join(self, timeout=None):
        """Wait until every published crash is processed; True if that happened in time."""
        return self.idle.wait(timeout)

    def check_health(self):
        if self.workers and all(w.dead for w in self.workers):
            return ["no in-process processor running"]
        return []
