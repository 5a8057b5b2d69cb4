"""Deliver Sentry events synchronously, with a confirmed HTTP status.

A crash counts as sent only when the Sentry server answered 2xx (DESIGN.md). sentry-sdk's own
``Client`` queues envelopes for a background worker thread and never tells the caller what
happened, and it decorates events (``server_name`` = this host, ``sys.argv``, ...). So we use
sentry-sdk only for the wire format (``Envelope``, ``Dsn``/``Auth`` headers) and POST the
envelope ourselves with requests, in the caller's greenlet: one small client per DSN keeps a
connection pool and that DSN's rate-limit state.

Retry policy: network errors and 5xx retry with exponential back-off; 429 waits for the
server's ``X-Sentry-Rate-Limits`` (category ``error``) or ``Retry-After`` and retries; other
4xx are final failures. Attempts are bounded.
"""

import logging
import time

import requests
from everett.manager import Option, parse_bool
from sentry_sdk.envelope import Envelope, Item, PayloadRef
from sentry_sdk.utils import Dsn

try:
    from gevent import sleep as _sleep
except ImportError:  # pragma: no cover - gevent is a dependency, but stay usable without it
    _sleep = time.sleep

logger = logging.getLogger(__name__)

CLIENT_NAME = "antenna-processor/1.0"
# Categories whose rate limits stop an event envelope (empty = every category).
EVENT_CATEGORIES = {"error", "default"}


def mask_dsn(dsn):
    """The DSN without its keys, safe for logs: ``http://***@host:9000/3``."""
    try:
        parsed = Dsn(dsn)
    except ValueError:  # BadDsn, or urllib on a malformed port
        return "<invalid dsn>"
    return f"{parsed.scheme}://***@{parsed.netloc}{parsed.path}{parsed.project_id}"


def parse_rate_limits(header, categories=EVENT_CATEGORIES):
    """Seconds to wait according to an ``X-Sentry-Rate-Limits`` header, for ``categories``.

    Format: ``<seconds>:<cat;cat...>:<scope>[:<reason>...]``, comma separated; an empty
    category list means all categories. Returns None when no entry applies.
    """
    wait = None
    for limit in (header or "").split(","):
        parts = limit.strip().split(":")
        if len(parts) < 2:
            continue
        try:
            seconds = float(parts[0])
        except ValueError:
            continue
        limited = {c for c in parts[1].split(";") if c}
        if not limited or limited & categories:
            wait = max(wait or 0.0, seconds)
    return wait


def _retry_after(response):
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; rare for Sentry, use the default wait


class _Parts(list):
    """A write-only file that keeps what is written, to be joined in one copy."""

    write = list.append


class _DsnClient:
    """Per-DSN state: parsed DSN, auth header, a pooled session, the rate-limit deadline."""

    def __init__(self, dsn):
        self.dsn = Dsn(dsn)
        auth = self.dsn.to_auth(client=CLIENT_NAME)
        self.url = auth.get_api_url()
        self.auth_header = auth.to_header()
        self.session = requests.Session()
        self.limited_until = 0.0


class SentryDelivery:
    """Sends events to DSNs; ``send`` returns a result dict for ``processed_crash["sentry"]``."""

    class Config:
        sentry_retries = Option(
            default="5",
            parser=int,
            doc="Attempts per event (network errors, 5xx and 429 each use one).",
        )
        sentry_backoff = Option(
            default="1.0",
            parser=float,
            doc="First retry delay in seconds; doubles per attempt.",
        )
        sentry_backoff_max = Option(
            default="60.0",
            parser=float,
            doc="Longest delay between retries, in seconds.",
        )
        sentry_rate_limit_default_wait = Option(
            default="60.0",
            parser=float,
            doc="Seconds to wait on a 429 that names no limit.",
        )
        sentry_rate_limit_max_wait = Option(
            default="300.0",
            parser=float,
            doc="Longest 429 wait we sit out; longer limits are recorded as 'rate-limited'.",
        )
        sentry_timeout = Option(
            default="10.0",
            parser=float,
            doc="HTTP timeout in seconds (connect and read) for one attempt.",
        )
        sentry_attach_minidump = Option(
            default="false",
            parser=parse_bool,
            doc="Attach the minidump as a plain attachment (event.attachment, never "
            "event.minidump, which Sentry would reprocess).",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self._clients = {}

    def _client(self, dsn):
        if dsn not in self._clients:
            self._clients[dsn] = _DsnClient(dsn)
        return self._clients[dsn]

    def envelope(self, event, minidump=None, minidump_name="upload_file_minidump.dmp",
                 payload=None):
        """Serialize the envelope: the event, plus the minidump as a plain attachment when
        enabled and given.

        ``payload`` is the event's JSON when the caller has it already
        (:meth:`SentryEventBuilder.build_with_payload
        <processor.sentry_event.SentryEventBuilder.build_with_payload>`); a big event is then
        not serialized twice. The pieces are joined once, so a multi-megabyte minidump is
        copied once.
        """
        envelope = Envelope(headers={"event_id": event["event_id"]})
        envelope.add_item(Item(payload=PayloadRef(json=event, bytes=payload), type="event"))
        if minidump is not None and self.config("sentry_attach_minidump"):
            envelope.add_item(Item(
                payload=minidump,
                type="attachment",
                filename=minidump_name,
                content_type="application/octet-stream",
                headers={"attachment_type": "event.attachment"},
            ))
        parts = _Parts()
        envelope.serialize_into(parts)
        return b"".join(parts)

    def send(self, event, dsn_name, dsn, minidump=None, payload=None):
        """POST one event; block (cooperatively under gevent) until confirmed or given up.

        ``payload``: the event's JSON if already serialized (see :meth:`envelope`).

        Returns ``{dsn_name, event_id, status, http_status, attempts}`` where status is
        ``"sent"``, ``"failed: <why>"`` or ``"rate-limited: <why>"``.
        """
        result = {"dsn_name": dsn_name, "event_id": event["event_id"], "status": None,
                  "http_status": None, "attempts": 0}
        masked = mask_dsn(dsn)
        try:
            client = self._client(dsn)
        except ValueError as exc:
            result["status"] = f"failed: invalid DSN ({exc})"
            return result
        body = self.envelope(event, minidump, payload=payload)
        headers = {"Content-Type": "application/x-sentry-envelope",
                   "X-Sentry-Auth": client.auth_header, "User-Agent": CLIENT_NAME}
        max_attempts = max(1, self.config("sentry_retries"))
        timeout = self.config("sentry_timeout")

        while result["attempts"] < max_attempts:
            wait = client.limited_until - time.monotonic()
            if wait > 0:
                if wait > self.config("sentry_rate_limit_max_wait"):
                    result["status"] = f"rate-limited: for another {wait:.0f}s"
                    return result
                _sleep(wait)
            result["attempts"] += 1
            try:
                response = client.session.post(client.url, data=body, headers=headers,
                                               timeout=timeout)
            except requests.RequestException as exc:
                result["http_status"] = None
                result["status"] = f"failed: {type(exc).__name__}"
                logger.warning("sentry %s (%s) attempt %d: %s", dsn_name, masked,
                               result["attempts"], type(exc).__name__)
                self._backoff(result["attempts"], max_attempts)
                continue

            status = response.status_code
            result["http_status"] = status
            if 200 <= status < 300:
                result["status"] = "sent"
                limits = response.headers.get("X-Sentry-Rate-Limits")
                if limits:
                    # Accepted, but some items (e.g. the attachment) may have been dropped.
                    logger.info("sentry %s accepted %s with limits %s", dsn_name,
                                event["event_id"], limits)
                return result
            if status == 429:
                wait = (parse_rate_limits(response.headers.get("X-Sentry-Rate-Limits"))
                        or _retry_after(response)
                        or self.config("sentry_rate_limit_default_wait"))
                client.limited_until = time.monotonic() + wait
                result["status"] = f"rate-limited: HTTP 429, retry after {wait:g}s"
                logger.warning("sentry %s (%s) rate limited for %gs", dsn_name, masked, wait)
                continue
            reason = " ".join(response.text.split())[:200]
            if status >= 500:
                result["status"] = f"failed: HTTP {status}"
                logger.warning("sentry %s (%s) attempt %d: HTTP %d", dsn_name, masked,
                               result["attempts"], status)
                self._backoff(result["attempts"], max_attempts)
                continue
            result["status"] = f"failed: HTTP {status}: {reason}" if reason else f"failed: HTTP {status}"
            logger.error("sentry %s (%s) rejected %s: HTTP %d %s", dsn_name, masked,
                         event["event_id"], status, reason)
            return result
        return result

    def _backoff(self, attempt, max_attempts):
        if attempt < max_attempts:
            _sleep(min(self.config("sentry_backoff") * 2 ** (attempt - 1),
                       self.config("sentry_backoff_max")))
