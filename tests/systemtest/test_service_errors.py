"""The collector's own errors reach Sentry, scrubbed; bad input never makes a 500."""

import time

import pytest
import requests

from testlib.multipart import multipart_body
from tests.unittest.test_breakpad_resource import DUMP, malformed_cases


def wait_for_events(sentry, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e.get_event() for e in sentry.envelopes() if e.get_event()]
        if len(events) >= count:
            return events
        time.sleep(0.1)
    raise AssertionError("no event reached the fake Sentry")


def test_broken_endpoint_reports_scrubbed_error(start_collector, sentry):
    server = start_collector(SECRET_SENTRY_DSN=sentry.dsn, BROKEN_ENABLED="true")
    resp = requests.get(
        server.url + "/__broken__?token=hunter2",
        headers={"Cookie": "session=abc123", "Authorization": "Bearer s3cret"},
        timeout=5,
    )
    assert resp.status_code == 500
    [event] = wait_for_events(sentry)
    assert event["exception"]["values"][-1]["value"] == "intentional exception from /__broken__"
    text = str(event)
    for secret in ("hunter2", "abc123", "s3cret"):
        assert secret not in text, [k for k in event if secret in str(event[k])]
    assert "server_name" not in event


def test_startup_error_is_reported(start_collector, sentry, tmp_path):
    with pytest.raises(RuntimeError, match="exited with 4"):
        start_collector(SECRET_SENTRY_DSN=sentry.dsn, CONCURRENT_CRASHMOVERS="lots")
    [event] = wait_for_events(sentry)
    assert "CONCURRENT_CRASHMOVERS" in str(event["exception"])


def test_every_malformed_case_gets_400_and_the_worker_keeps_serving(start_collector):
    server = start_collector()
    for reason, body, headers in malformed_cases():
        resp = requests.post(server.url + "/submit", data=body, headers=headers, timeout=10)
        assert (resp.status_code, resp.text) == (400, f"Discarded=malformed_{reason}\n")
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    resp = requests.post(server.url + "/submit", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200 and resp.text.startswith("CrashID=bp-")
    assert server.returncode() is None
