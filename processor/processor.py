"""The processor: raw crash + dumps → processed crash → storage → Sentry.

Every crash that exists in storage ends with a saved processed crash, even when the
dump is garbage, the stackwalker times out or Sentry is down: failures become notes,
``success: false`` and an EMPTY signature, and (unless no DSN is configured) a Sentry
event that says what went wrong, so the crash stays visible.
"""

import datetime
import logging
import time

from everett.manager import Option

from antenna.ext.crashstorage_base import CrashIDNotFound
from processor.routing import SentryRouter
from processor.rules import MINIDUMP_NAME, CopyAnnotationsRule, SignatureRule, StackwalkRule
from processor.sentry_delivery import SentryDelivery
from processor.sentry_event import SentryEventBuilder
from processor.signature import SignatureMaker
from processor.stackwalker import Stackwalker
from processor.symbols import SymbolsProvider

LOGGER = logging.getLogger(__name__)

HISTORY_LIMIT = 20


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class Processor:
    """Runs the rules over one crash, sends it to Sentry and saves the result."""

    class Config:
        concurrency = Option(
            default="2",
            parser=int,
            doc="Crashes processed at once per process (in-process publisher and worker).",
        )
        temp_dir = Option(
            default="",
            doc=(
                "Folder for the temporary dump file the stackwalker reads when crash storage "
                "is not a local filesystem (default: system tmp)."
            ),
        )

    def __init__(self, config, crashstorage, metrics):
        """``config`` is namespaced ``processor``; ``metrics`` is prefixed ``processor``."""
        self.config = config.with_options(self)
        self.crashstorage = crashstorage
        self.metrics = metrics
        self.stackwalker = Stackwalker(config)
        self.symbols = SymbolsProvider(config)
        self.signature_maker = SignatureMaker(config)
        self.event_builder = SentryEventBuilder(config)
        self.router = SentryRouter(config)
        self.delivery = SentryDelivery(config)
        self.rules = [
            CopyAnnotationsRule(),
            StackwalkRule(
                self.stackwalker,
                self.symbols,
                metrics,
                temp_dir=self.config("temp_dir") or None,
                local_file=crashstorage.local_file,
            ),
            SignatureRule(self.signature_maker),
        ]

    def components(self):
        """(namespace, component) pairs for config logging and docs."""
        ns = ["processor"]
        return [
            (ns, self),
            (ns, self.stackwalker),
            (ns, self.symbols),
            (ns, self.signature_maker),
            (ns, self.event_builder),
            (ns, self.router),
            (ns, self.delivery),
        ]

    def process(self, crash_id, raw_crash, dumps, previous=None):
        """Build the processed crash (no I/O besides the stackwalker and symbols)."""
        processed = {"crash_id": crash_id, "started_datetime": utcnow()}
        notes = []
        failed = False
        for rule in self.rules:
            try:
                rule.action(crash_id, raw_crash, dumps, processed, notes)
            except Exception as exc:
                failed = True
                notes.append(f"{type(rule).__name__} failed: {exc!r}")
                LOGGER.exception("rule %s failed", type(rule).__name__, extra={"crash_id": crash_id})
        stackwalk_ok = processed.get("stackwalker", {}).get("status") == "ok"
        processed["processor_notes"] = notes
        processed["success"] = stackwalk_ok and not failed
        processed["processor_history"] = self.history(previous)
        processed["completed_datetime"] = utcnow()
        processed.setdefault("signature", "EMPTY: no frame data available")
        return processed

    @staticmethod
    def history(previous):
        """Earlier runs' notes, newest last, so reprocessing never erases what we knew."""
        if not previous:
            return []
        history = list(previous.get("processor_history") or [])
        history.append(
            {
                "started_datetime": previous.get("started_datetime"),
                "completed_datetime": previous.get("completed_datetime"),
                "signature": previous.get("signature"),
                "success": previous.get("success"),
                "processor_notes": previous.get("processor_notes") or [],
            }
        )
        return history[-HISTORY_LIMIT:]

    def send_to_sentry(self, processed, raw_crash, dumps):
        """Route, build and deliver the event; return the processed crash's ``sentry`` field."""
        dsn_name, dsn = self.router.pick_dsn(raw_crash)
        if not dsn:
            processed["processor_notes"].append("no Sentry DSN configured for this crash; not sent")
            return {"dsn_name": None, "event_id": None, "status": "not sent: no DSN"}
        event, payload = self.event_builder.build_with_payload(processed, raw_crash)
        result = self.delivery.send(
            event, dsn_name, dsn, minidump=dumps.get(MINIDUMP_NAME), payload=payload
        )
        self.metrics.incr("sentry.status", tags={"status": result["status"].split(":")[0]})
        if result["status"] != "sent":
            processed["processor_notes"].append(f"Sentry delivery: {result['status']}")
        return {
            "dsn_name": dsn_name,
            "event_id": result["event_id"],
            "status": result["status"],
            "http_status": result.get("http_status"),
            "attempts": result.get("attempts"),
        }

    def process_crash(self, crash_id):
        """Load, process, send to Sentry, save; return the processed crash or None.

        None means the crash is not in storage: nothing to process, nothing to send.
        """
        start = time.monotonic()
        try:
            raw_crash = self.crashstorage.load_raw_crash(crash_id)
        except CrashIDNotFound:
            LOGGER.warning("crash not found in storage", extra={"crash_id": crash_id})
            self.metrics.incr("outcome", tags={"result": "not_found"})
            return None
        try:
            dumps = self.crashstorage.load_dumps(crash_id)
        except CrashIDNotFound:
            dumps = {}
        try:
            previous = self.crashstorage.load_processed_crash(crash_id)
        except CrashIDNotFound:
            previous = None
        processed = self.process(crash_id, raw_crash, dumps, previous)
        try:
            processed["sentry"] = self.send_to_sentry(processed, raw_crash, dumps)
        except Exception as exc:
            # The crash must still be saved: a bug in event building is a note, not a loss.
            LOGGER.exception("sending to Sentry failed", extra={"crash_id": crash_id})
            processed["processor_notes"].append(f"Sentry delivery failed: {exc!r}")
            processed["sentry"] = {"dsn_name": None, "event_id": None, "status": f"failed: {exc!r}"}
        # Saved once, after the Sentry attempt: serializing a big crash costs as much as
        # parsing it, and a crash whose delivery is still running is not worth a reader's while.
        self.crashstorage.save_processed_crash(crash_id, processed)
        self.metrics.timing("process.time", (time.monotonic() - start) * 1000.0)
        self.metrics.incr("outcome", tags={"result": "success" if processed["success"] else "failed"})
        for name, value in self.symbols.stats.items():
            self.metrics.gauge(f"symbols.{name}", value)
        LOGGER.info(
            "processed crash: %s; sentry %s", processed["signature"], processed["sentry"]["status"],
            extra={"crash_id": crash_id},
        )
        return processed
