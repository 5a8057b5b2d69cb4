"""One-box chaining: the collector's crashmovers hand crash ids to a processor in the same hub.

``CRASHPUBLISH_CLASS=processor.inprocess.InProcessCrashPublish``.  ``publish`` only
queues the id, so neither ``/submit`` nor the crashmover waits for processing;
``PROCESSOR_CONCURRENCY`` coroutines process the queue.  The stackwalker runs as a
child process and Sentry I/O is cooperative, so the hub keeps serving requests.
"""

import logging

import gevent
import gevent.event
import gevent.queue

from processor.app import build_processor

LOGGER = logging.getLogger(__name__)


class InProcessCrashPublish:
    """Publishes crash ids to coroutines that process them in this process."""

    class Config:
        pass

    def __init__(self, config):
        self.config = config.with_options(self)
        self.queue = gevent.queue.Queue()
        self.processor = None
        self.workers = []
        self.pending = 0
        self.idle = gevent.event.Event()
        self.idle.set()

    def setup(self, root_config, crashstorage, metrics_backend):
        """Build the processor from the collector's config and storage; start its coroutines."""
        self.processor = build_processor(root_config, crashstorage, metrics_backend)
        self.workers = [
            gevent.spawn(self.worker_loop) for _ in range(self.processor.config("concurrency"))
        ]

    def publish(self, crash_id):
        self.pending += 1
        self.idle.clear()
        self.queue.put(crash_id)

    def worker_loop(self):
        while True:
            crash_id = self.queue.get()
            try:
                self.processor.process_crash(crash_id)
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
