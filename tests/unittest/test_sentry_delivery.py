import logging
import time

import pytest
from everett.manager import ConfigManager
from sentry_sdk.envelope import Envelope
from sentry_sdk.utils import json_dumps

from processor.sentry_delivery import SentryDelivery, mask_dsn, parse_rate_limits
from testlib.fake_sentry import KEY

EVENT = {"event_id": "de1bb258cbbf4589a67334f800160918", "platform": "native", "level": "fatal",
         "exception": {"values": [{"type": "SIGSEGV", "value": "SIGSEGV at 0x0"}]}}


@pytest.fixture
def server(sentry):
    """This module's name for the shared fake Sentry (tests/conftest.py)."""
    return sentry


def delivery(**options):
    values = {"PROCESSOR_SENTRY_BACKOFF": "0.05", "PROCESSOR_SENTRY_TIMEOUT": "2"}
    values.update(options)
    return SentryDelivery(ConfigManager.from_dict(values).with_namespace("processor"))


def items(request):
    return list(Envelope.deserialize(request["body"]))


def test_sent_on_200(server):
    result = delivery().send(EVENT, "default", server.dsn)
    assert result == {"dsn_name": "default", "event_id": EVENT["event_id"], "status": "sent",
                      "http_status": 200, "attempts": 1}
    (request,) = server.requests
    assert request["path"] == "/api/42/envelope/"
    assert f"sentry_key={KEY}" in request["headers"]["X-Sentry-Auth"]
    (item,) = items(request)
    assert item.type == "event"
    assert item.get_event()["event_id"] == EVENT["event_id"]


def test_5xx_retried_with_backoff_then_sent(server):
    server.script = [(500, {}), (503, {}), (200, {})]
    result = delivery().send(EVENT, "default", server.dsn)
    assert result["status"] == "sent" and result["attempts"] == 3
    gaps = [b["time"] - a["time"] for a, b in zip(server.requests, server.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # exponential back-off


def test_5xx_gives_up_after_bounded_attempts(server):
    server.script = [(500, {})] * 10
    result = delivery(PROCESSOR_SENTRY_RETRIES="3").send(EVENT, "default", server.dsn)
    assert result == {"dsn_name": "default", "event_id": EVENT["event_id"],
                      "status": "failed: HTTP 500", "http_status": 500, "attempts": 3}
    assert len(server.requests) == 3


def test_4xx_is_final_failure(server):
    server.script = [(400, {})]
    result = delivery().send(EVENT, "default", server.dsn)
    assert result["status"].startswith("failed: HTTP 400") and "nope" in result["status"]
    assert result["attempts"] == 1 and result["http_status"] == 400


def test_429_retry_after_honoured(server):
    server.script = [(429, {"Retry-After": "0.5"}), (200, {})]
    result = delivery().send(EVENT, "default", server.dsn)
    assert result["status"] == "sent" and result["attempts"] == 2
    assert server.requests[1]["time"] - server.requests[0]["time"] >= 0.5


def test_429_sentry_rate_limits_error_category(server):
    # The error category says 0.4 s; the transaction limit (longer) does not apply to events.
    header = "0.4:error;default:organization, 30:transaction:project"
    server.script = [(429, {"X-Sentry-Rate-Limits": header, "Retry-After": "30"}), (200, {})]
    result = delivery().send(EVENT, "default", server.dsn)
    assert result["status"] == "sent"
    assert 0.4 <= server.requests[1]["time"] - server.requests[0]["time"] < 5


def test_429_longer_than_max_wait_is_recorded(server):
    server.script = [(429, {"Retry-After": "3600"})]
    sender = delivery(PROCESSOR_SENTRY_RATE_LIMIT_MAX_WAIT="10")
    started = time.monotonic()
    result = sender.send(EVENT, "default", server.dsn)
    assert time.monotonic() - started < 2
    assert result["status"] == "rate-limited: for another 3600s"
    assert result["http_status"] == 429 and result["attempts"] == 1
    # The limit is remembered for the DSN: the next send does not even try.
    again = sender.send(EVENT, "default", server.dsn)
    assert again["attempts"] == 0 and again["status"].startswith("rate-limited")
    assert len(server.requests) == 1


def test_timeout_is_retried_then_fails(server):
    server.script = ["hang", "hang"]
    result = delivery(PROCESSOR_SENTRY_TIMEOUT="0.3", PROCESSOR_SENTRY_RETRIES="2").send(
        EVENT, "default", server.dsn)
    assert result["status"] == "failed: ReadTimeout"
    assert result["http_status"] is None and result["attempts"] == 2


def test_connection_refused_is_network_failure():
    result = delivery(PROCESSOR_SENTRY_RETRIES="2").send(
        EVENT, "default", f"http://{KEY}@127.0.0.1:9/1")
    assert result["status"] == "failed: ConnectionError" and result["attempts"] == 2


def test_minidump_not_attached_by_default(server):
    delivery().send(EVENT, "default", server.dsn, minidump=b"MDMP\x93\xa7")
    assert [item.type for item in items(server.requests[0])] == ["event"]


def test_minidump_plain_attachment_when_enabled(server):
    delivery(PROCESSOR_SENTRY_ATTACH_MINIDUMP="true").send(
        EVENT, "default", server.dsn, minidump=b"MDMP\x93\xa7")
    _event_item, attachment = items(server.requests[0])
    assert attachment.type == "attachment"
    assert attachment.headers["attachment_type"] == "event.attachment"
    assert attachment.headers["attachment_type"] != "event.minidump"
    assert attachment.get_bytes() == b"MDMP\x93\xa7"


def test_dsn_never_logged_in_clear(server, caplog):
    server.script = [(500, {}), (400, {})]
    with caplog.at_level(logging.DEBUG):
        delivery().send(EVENT, "default", server.dsn)
    assert KEY not in caplog.text
    assert mask_dsn(server.dsn) in caplog.text
    assert mask_dsn(server.dsn) == f"http://***@127.0.0.1:{server.server_address[1]}/42"


def test_invalid_dsn_is_failure():
    result = delivery().send(EVENT, "default", "not a dsn")
    assert result["status"].startswith("failed: invalid DSN") and result["attempts"] == 0


def test_works_in_greenlets(server):
    gevent = pytest.importorskip("gevent")
    server.script = [(429, {"Retry-After": "0.2"}), (200, {}), (200, {})]
    sender = delivery()
    jobs = [gevent.spawn(sender.send, dict(EVENT, event_id=f"{i:032x}"), "d", server.dsn)
            for i in range(2)]
    gevent.joinall(jobs, timeout=10)
    assert [job.value["status"] for job in jobs] == ["sent", "sent"]


def test_parse_rate_limits():
    assert parse_rate_limits("60::organization") == 60  # no categories: everything
    assert parse_rate_limits("60:transaction:key") is None
    assert parse_rate_limits("10:error:key, 20:default;error:org") == 20
    assert parse_rate_limits("bogus, 5:attachment:key") is None


def test_given_payload_is_sent_as_is_and_matches_serializing():
    attach = delivery(PROCESSOR_SENTRY_ATTACH_MINIDUMP="true")
    fresh = attach.envelope(EVENT, minidump=b"MDMP\x93\xa7")
    given = attach.envelope(EVENT, minidump=b"MDMP\x93\xa7", payload=json_dumps(EVENT))
    assert given == fresh
    assert Envelope.deserialize(given).get_event() == EVENT
