"""The service's own errors go to Sentry, scrubbed of anything a client sent us."""

import logging

import sentry_sdk
from sentry_sdk.integrations.falcon import FalconIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

LOGGER = logging.getLogger(__name__)

SCRUBBED_HEADERS = {"authorization", "cookie", "x-crash-id-token", "proxy-authorization"}


def scrub_event(event, hint):
    """Drop request bodies, cookies, auth headers and query strings before sending."""
    request = event.get("request")
    if request:
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers") or {}
        request["headers"] = {
            k: v for k, v in headers.items() if k.lower() not in SCRUBBED_HEADERS
        }
        if "url" in request:
            request["url"] = request["url"].split("?", 1)[0]
    event.pop("server_name", None)
    return event


def setup_sentry(dsn, release):
    """Initialise sentry-sdk when a DSN is configured; a no-op otherwise."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        server_name="",
        # Frame locals would carry the request (query string, headers, body) around
        # before_send's scrubbing: never send them.
        include_local_variables=False,
        before_send=scrub_event,
        integrations=[FalconIntegration(), LoggingIntegration(event_level=logging.ERROR)],
        traces_sample_rate=0.0,
    )
    LOGGER.info("sentry error reporting enabled")
    return True
