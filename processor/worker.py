"""Scale-out: ``python -m processor worker`` consumes crash ids from the collector's SQS queue.

A message is deleted only after its crash is processed and saved; a failure leaves it
for the visibility timeout to redeliver (to this worker or another one).
"""

import logging

import gevent
import gevent.pool
from everett.manager import Option

from antenna.crashid import is_valid_crash_id
from antenna.ext.sqs.crashpublish import SQSCrashPublish

LOGGER = logging.getLogger(__name__)


class SQSWorker:
    """Receives crash ids in batches and processes them with bounded concurrency."""

    class Config:
        worker_wait_seconds = Option(
            default="10", parser=int, doc="SQS long-poll wait per receive call (0-20)."
        )

    def __init__(self, config, processor, queue=None):
        """``config`` is namespaced ``processor``; the queue uses the ``CRASHPUBLISH_*`` settings."""
        self.config = config.with_options(self)
        self.processor = processor
        self.queue = queue
        self.pool = gevent.pool.Pool(processor.config("concurrency"))
        self.running = True

    @classmethod
    def from_config(cls, root_config, processor):
        return cls(
            root_config.with_namespace("processor"),
            processor,
            SQSCrashPublish(root_config.with_namespace("crashpublish")),
        )

    def handle(self, message):
        crash_id = message["Body"].strip()
        if not is_valid_crash_id(crash_id):
            LOGGER.warning("dropping queue message that is not a crash id: %r", crash_id[:80])
            self.delete(message)
            return
        try:
            self.processor.process_crash(crash_id)
        except Exception:
            LOGGER.exception("processing failed; message left for redelivery", extra={"crash_id": crash_id})
            return
        self.delete(message)

    def delete(self, message):
        self.queue.client.delete_message(
            QueueUrl=self.queue.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    def run_once(self):
        """Receive one batch (as many as there are free slots) and start processing it."""
        free = max(1, min(10, self.pool.free_count()))
        self.pool.wait_available()
        response = self.queue.client.receive_message(
            QueueUrl=self.queue.queue_url,
            MaxNumberOfMessages=free,
            WaitTimeSeconds=self.config("worker_wait_seconds"),
        )
        messages = response.get("Messages", [])
        for message in messages:
            self.pool.spawn(self.handle, message)
        return len(messages)

    def run(self, max_idle_polls=None):
        """Loop until stopped; with ``max_idle_polls``, stop after that many empty polls."""
        idle = 0
        while self.running:
            try:
                received = self.run_once()
            except Exception:
                LOGGER.exception("receiving from the queue failed; retrying")
                gevent.sleep(2)
                continue
            idle = 0 if received else idle + 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
        self.pool.join()

    def stop(self):
        self.running = False
