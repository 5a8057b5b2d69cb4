"""``POST /submit``: the Breakpad/Crashpad submission endpoint.

Answers in one ``text/plain`` line that clients understand: ``CrashID=bp-<id>`` (200),
``Discarded=rule_<name>`` (200, don't retry), ``Discarded=malformed_<reason>`` (400),
``Discarded=overloaded`` (503 with Retry-After).  A 200 with a CrashID means the crash
is fsync'd in the spool and will reach storage.
"""

import dataclasses
import datetime
import logging

import gevent.threadpool
from everett.manager import Option, parse_bool, parse_data_size

from antenna import crashid, throttler
from antenna.crashmover import CrashIdTaken, Overloaded, SpoolUnavailable
from antenna.payload import (
    MalformedCrashReport,
    PayloadLimits,
    boundary_of,
    parse_body,
    read_raw_body,
)
from antenna.threadcall import call_in_thread

LOGGER = logging.getLogger(__name__)

COLLECTOR_VERSION = "antenna-pipeline/0.1.0"
# Most crashes are parsed on the hub: a 200 KB gzip'd crash takes ~2 ms, less than
# handing it to a thread and back while the hub and the other threads compete for the
# GIL (bench, gzip c=32: 235-245 req/s, p99 185-210 ms on the hub; 200-225 req/s,
# p99 215-255 ms in threads).  Bigger bodies, and gzip bodies inflating past HUB_INFLATE_MAX
# (gzip bombs included), go to threads so that no crash stalls the hub for long.
HUB_PARSE_MAX_BODY = 1 << 20
HUB_INFLATE_MAX = 4 << 20
# Threads for the crashes too big for the hub; idle threads cost nothing.
PARSE_THREADS = 8
DRAIN_CHUNK = 1 << 20
TOKEN_HEADER = "X-Crash-Id-Token"
THROTTLE_METRIC = {
    throttler.ACCEPT: "accept",
    throttler.DEFER: "defer",
    throttler.REJECT: "reject",
    throttler.FAKEACCEPT: "fakeaccept",
}


def body_stream(req):
    """The request body: Falcon's stream bounded by Content-Length, or, for a chunked
    upload (no Content-Length; libcurl-based clients send these), gunicorn's own input,
    which decodes the chunks and ends with the body."""
    if req.content_length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        return req.stream
    return req.bounded_stream


def drain(stream):
    """Read what is left of the body, in large reads, so the connection can be reused.

    Left to itself, gunicorn's gevent worker drains an unread body 1 KB at a time and
    copies the rest of its buffer on every read: answering 503 to a 400 KB crash cost
    more CPU than accepting it.  (It also drops a ``Connection: close`` header.)
    """
    try:
        while stream.read(DRAIN_CHUNK):
            pass
    except OSError as exc:
        LOGGER.info("client went away before sending its whole body: %r", exc)


def text(resp, status, body, **headers):
    resp.status = status
    resp.content_type = "text/plain"
    resp.text = body + "\n"
    for name, value in headers.items():
        resp.set_header(name.replace("_", "-"), value)


class BreakpadSubmitterResource:
    """Parses, throttles and spools crash submissions."""

    class Config:
        dump_id_prefix = Option(default="bp-", doc="Prefix of the crash id in the response.")
        max_compressed_size = Option(
            default="25mb", parser=parse_data_size, doc="Largest request body accepted."
        )
        max_decompressed_size = Option(
            default="100mb",
            parser=parse_data_size,
            doc="Largest decompressed body of a gzip'd request (stops gzip bombs early).",
        )
        max_parts = Option(default="64", parser=int, doc="Most multipart parts in one crash.")
        max_annotation_size = Option(
            default="1mb", parser=parse_data_size, doc="Largest single annotation value."
        )
        crash_id_reuse = Option(
            default="true",
            parser=parse_bool,
            doc=(
                "Reuse a valid ``crash_id`` (or ``uuid``) annotation as the crash id "
                "(prod-to-dev siphoning). An id already in storage is never reused."
            ),
        )
        secret_crash_id_reuse_token = Option(
            default="",
            doc=(
                "When set, a client-supplied crash id is reused only if the request "
                f"carries this value in the ``{TOKEN_HEADER}`` header."
            ),
        )

    def __init__(self, config, throttler_, crashmover, crashstorage, metrics):
        self.config = config.with_options(self)
        self.throttler = throttler_
        self.crashmover = crashmover
        self.crashstorage = crashstorage
        self.metrics = metrics
        self.prefix = self.config("dump_id_prefix")
        self.limits = PayloadLimits(
            max_compressed=self.config("max_compressed_size"),
            max_decompressed=self.config("max_decompressed_size"),
            max_parts=self.config("max_parts"),
            max_annotation=self.config("max_annotation_size"),
        )
        self.hub_limits = dataclasses.replace(
            self.limits, max_decompressed=min(self.limits.max_decompressed, HUB_INFLATE_MAX)
        )
        self.parse_threads = gevent.threadpool.ThreadPool(PARSE_THREADS)
        self.crash_id_reuse = self.config("crash_id_reuse")
        self.reuse_token = self.config("secret_crash_id_reuse_token")

    def on_post(self, req, resp):
        with self.metrics.timer("on_post.time"):
            try:
                self.submit(req, resp)
            finally:
                drain(body_stream(req))

    def submit(self, req, resp):
        self.metrics.incr("incoming_crash")
        if self.crashmover.is_full(req.content_length or 0):
            # Refuse before parsing or spooling: under overload a 503 must stay cheap.
            self.overloaded(resp, None)
            return
        try:
            report = self.read_report(req)
        except MalformedCrashReport as exc:
            self.metrics.incr("malformed", tags={"reason": exc.reason})
            LOGGER.info("malformed crash report: %s", exc.reason)
            text(resp, "400 Bad Request", f"Discarded=malformed_{exc.reason}")
            return
        except OSError as exc:
            LOGGER.info("error reading crash report body: %r", exc)
            text(resp, "400 Bad Request", "Discarded=malformed_read_error")
            return
        self.handle_report(req, resp, report)

    def read_report(self, req):
        boundary = boundary_of(req.content_type)
        body = read_raw_body(body_stream(req), req.content_length, self.limits.max_compressed)
        report = self.parse(body, boundary, req.get_header("Content-Encoding"))
        report.metadata["payload_size"] = len(body)
        return report

    def parse(self, body, boundary, content_encoding):
        """Parse on the hub when the crash is small, else in a thread (see HUB_PARSE_MAX_BODY)."""
        if len(body) <= HUB_PARSE_MAX_BODY:
            try:
                return parse_body(body, boundary, content_encoding, self.hub_limits)
            except MalformedCrashReport as exc:
                if exc.reason != "too_large" or self.hub_limits.max_decompressed == self.limits.max_decompressed:
                    raise
        return call_in_thread(
            self.parse_threads, parse_body, body, boundary, content_encoding, self.limits
        )

    def handle_report(self, req, resp, report):
        now = datetime.datetime.now(datetime.timezone.utc)
        raw_crash = dict(report.annotations)
        result, rule, percentage = self.throttler.throttle(
            {**raw_crash, "dump_checksums": report.checksums}
        )
        reused = self.reusable_crash_id(req, raw_crash)
        if reused and result in (throttler.ACCEPT, throttler.DEFER):
            result = crashid.throttle_digit(reused)
        self.metrics.incr(f"throttle.{THROTTLE_METRIC[result]}")
        if result == throttler.REJECT:
            LOGGER.info("rejected by rule %s", rule)
            text(resp, "200 OK", f"Discarded=rule_{rule}")
            return
        crash_id = reused or crashid.create_crash_id(now, result)
        if result == throttler.FAKEACCEPT:
            LOGGER.info("fake-accepted by rule %s", rule, extra={"crash_id": crash_id})
            text(resp, "200 OK", f"CrashID={self.prefix}{crash_id}")
            return

        report.crash_id = crash_id
        raw_crash.update(
            {
                "uuid": crash_id,
                "submitted_timestamp": now.isoformat(),
                "timestamp": now.timestamp(),
                "type_tag": self.prefix.rstrip("-"),
                "dump_checksums": report.checksums,
                "legacy_processing": result,
                "throttle_rate": percentage,
                "metadata": {
                    **report.metadata,
                    "collector_notes": report.notes,
                    "dump_names": list(report.dumps),
                    "throttle_rule": rule,
                    "user_agent": req.user_agent or "",
                    "collector_version": COLLECTOR_VERSION,
                },
            }
        )
        try:
            self.spool_crash(report, raw_crash, now, result)
        except Overloaded:
            self.overloaded(resp, crash_id)
            return
        except SpoolUnavailable as exc:
            self.metrics.incr("spool_error")
            LOGGER.error("cannot spool crash: %s", exc, extra={"crash_id": crash_id})
            text(
                resp,
                "503 Service Unavailable",
                "Discarded=spool_unavailable",
                Retry_After=str(self.crashmover.retry_after),
            )
            return
        crash_id = report.crash_id
        LOGGER.info(
            "accepted crash (%s, rule %s)", throttler.RESULT_NAMES[result], rule,
            extra={"crash_id": crash_id},
        )
        text(resp, "200 OK", f"CrashID={self.prefix}{crash_id}")

    def spool_crash(self, report, raw_crash, now, result):
        """Spool the crash; a client-supplied id that is already spooled gets a fresh one."""
        try:
            self.crashmover.accept(report, raw_crash)
        except CrashIdTaken:
            report.crash_id = raw_crash["uuid"] = crashid.create_crash_id(now, result)
            LOGGER.info("crash id already spooled; minted a new one", extra={"crash_id": report.crash_id})
            self.crashmover.accept(report, raw_crash)

    def overloaded(self, resp, crash_id):
        self.metrics.incr("overloaded")
        LOGGER.info("save queue full; asking client to retry", extra={"crash_id": crash_id})
        text(
            resp,
            "503 Service Unavailable",
            "Discarded=overloaded",
            Retry_After=str(self.crashmover.retry_after),
        )

    def reusable_crash_id(self, req, raw_crash):
        """A client-supplied crash id we may reuse, or None."""
        if not self.crash_id_reuse:
            return None
        candidate = raw_crash.get("crash_id") or raw_crash.get("uuid")
        if not crashid.is_valid_crash_id(candidate):
            return None
        if self.reuse_token and req.get_header(TOKEN_HEADER) != self.reuse_token:
            return None
        if self.crashstorage.crash_exists(candidate):
            LOGGER.info("client crash id already stored; minting a new one", extra={"crash_id": candidate})
            return None
        return candidate
